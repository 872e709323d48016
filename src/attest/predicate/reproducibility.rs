//! gantry's reproducibility predicate (docs/reproducibility.md): an in-toto Statement v1
//! whose subjects are the checked run's outputs and whose predicate says, for each, the digest
//! the rebuild produced, whether it reproduced, and why not. `repro` writes it; `verify` and
//! `release` read it.

use serde::{Deserialize, Serialize};

use crate::attest::ResourceDescriptor;
use crate::digest::Digest;

pub const URI: &str = "https://gantry.dev/attestation/reproducibility/v1";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Predicate {
    pub pipeline: PipelineRef,
    /// The run whose attestations were checked.
    pub checked: RunRef,
    pub rebuild: RebuildRef,
    pub results: Vec<Outcome>,
    /// True when every result reproduced.
    pub reproduced: bool,
    /// What explaining the differences was allowed and took.
    pub explanation: ExplanationRef,
}

/// The limits that keep a reproduction affordable, and what it used of them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct ExplanationRef {
    /// The size a diffoscope report is cut at; absent: reports are whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffoscope_limit_bytes: Option<u64>,
    /// The time the rebuilds that attribute a difference may take in all.
    pub budget_ms: u64,
    /// The time they took.
    pub spent_ms: u64,
    /// How many there were.
    pub rebuilds: usize,
    /// Variations no rebuild tried: the next would not have fit in the budget.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_tried: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct PipelineRef {
    pub name: String,
    /// Relative to the workspace root.
    pub file: String,
    pub digest: Digests,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct RunRef {
    pub run_id: String,
    /// Each step's attestation file with the digest of its bytes.
    pub attestations: Vec<ResourceDescriptor>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct RebuildRef {
    pub run_id: String,
    pub attestations: Vec<ResourceDescriptor>,
    /// What was varied and how.
    pub variations: Vec<VariationRef>,
    pub builder: Builder,
    pub started_on: String,
    pub finished_on: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct VariationRef {
    pub aspect: String,
    pub change: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Builder {
    pub id: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Outcome {
    pub step: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attested: Option<Digests>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<Digests>,
    pub reproduced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// For a step whose inputs were the same: `nondeterministic`, `surroundings` (with the
    /// variations that change it) or `combination`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionRef>,
    /// Materials whose digest changed between the two builds of the step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_inputs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffoscope: Option<ResourceDescriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unexplained: Option<String>,
    /// The diffoscope report was cut at `explanation.diffoscopeLimitBytes`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub diffoscope_cut: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct AttributionRef {
    pub kind: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variations: Vec<String>,
    /// Variations the explanation budget left untried.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_tried: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Digests {
    pub sha256: String,
}

impl From<&Digest> for Digests {
    fn from(digest: &Digest) -> Self {
        Self {
            sha256: digest.hex(),
        }
    }
}
