//! The parts of an in-toto Statement that `gantry verify` reads, typed: parsing straight into
//! these skips every other field without building it. The predicates gantry writes are read
//! with their own types (`attest::predicate`); a SLSA provenance, which other builders write
//! too, only for the fields verify checks. A field of the wrong type makes the file "not a
//! Statement", with serde's message.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::attest::statement::DescriptorSummary as Descriptor;

#[derive(Deserialize)]
pub(super) struct Envelope<'a> {
    #[serde(rename = "payloadType", borrow)]
    pub payload_type: Cow<'a, str>,
    #[serde(borrow)]
    pub payload: Cow<'a, str>,
    #[serde(borrow)]
    pub signatures: Vec<Signature<'a>>,
}

#[derive(Deserialize)]
pub(super) struct Signature<'a> {
    #[serde(borrow)]
    pub sig: Cow<'a, str>,
    /// DSSE's unauthenticated hint of who signed.
    #[serde(default, borrow)]
    pub keyid: Cow<'a, str>,
}

#[derive(Deserialize)]
pub(super) struct Statement<'a> {
    #[serde(rename = "_type", default, borrow)]
    pub kind: Cow<'a, str>,
    #[serde(default)]
    pub subject: Vec<Descriptor>,
    #[serde(rename = "predicateType", default, borrow)]
    pub predicate_type: Cow<'a, str>,
    /// Read once the type is known.
    #[serde(borrow)]
    pub predicate: Option<&'a RawValue>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Provenance {
    #[serde(default)]
    pub run_details: RunDetails,
    #[serde(default)]
    pub build_definition: BuildDefinition,
}

#[derive(Default, Deserialize)]
pub(super) struct RunDetails {
    #[serde(default)]
    pub metadata: Metadata,
    #[serde(default)]
    pub byproducts: Vec<Descriptor>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Metadata {
    #[serde(default)]
    pub invocation_id: String,
    pub finished_on: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BuildDefinition {
    #[serde(default)]
    pub resolved_dependencies: Vec<Descriptor>,
    #[serde(default)]
    pub external_parameters: ExternalParameters,
}

#[derive(Default, Deserialize)]
pub(super) struct ExternalParameters {
    /// The pipeline file the run executed, with its digest (which fixes gate thresholds).
    pub pipeline: Option<Descriptor>,
}
