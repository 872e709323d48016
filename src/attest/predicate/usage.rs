//! What a run used: gantry's usage predicate (docs/usage.md). Its subject is the run's
//! provenance, or the pipeline file when the run failed and has none; it lists each step that ran with what it used and each cache hit with what the
//! execution that made its entry used (what the cache saved), the tenant, the pipeline, the
//! machine, and when the run started and ended.

use serde::{Deserialize, Serialize};

use crate::store::Usage;

pub const URI: &str = "https://gantry.dev/attestation/usage/v0.1";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct RunUsage {
    pub run_id: String,
    /// `success` (the subject is the run's provenance), `failed` or `interrupted` (the
    /// subject is the pipeline file: a failed run has no provenance). Absent in documents
    /// from before failed runs were metered: `success`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub result: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub pipeline: Pipeline,
    pub machine: Machine,
    /// RFC 3339.
    pub started_on: String,
    pub finished_on: String,
    pub steps: Vec<StepUsage>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Pipeline {
    pub name: String,
    /// The file, relative to the workspace.
    pub path: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Machine {
    /// The cores gantry could use.
    pub cores: u64,
    /// Its memory (`MemTotal`), when it could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct StepUsage {
    pub step: String,
    /// `executed` (it used this), `failed` (an attempt that failed used this; one entry per
    /// attempt) or `cached` (a hit: the execution that made the entry used this, which the
    /// run saved).
    pub status: String,
    /// `None`: nothing measured it (an entry from before gantry measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the step may have used that nothing here could measure: `networkBytes` for a step
    /// with the host's network (`network = true`, a Nix build), whose traffic is not its own
    /// to count. Absent is not zero.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_measured: Vec<String>,
}

impl RunUsage {
    /// Whether the run succeeded (its subject is its provenance).
    #[must_use]
    pub fn succeeded(&self) -> bool {
        self.result.is_empty() || self.result == "success"
    }
}
