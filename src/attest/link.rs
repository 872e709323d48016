//! The in-toto link predicate v0.3: what one step read, ran and produced.
//! <https://github.com/in-toto/attestation/blob/main/spec/predicates/link.md>

use serde::{Deserialize, Serialize};

use crate::attest::statement::ResourceDescriptor;

pub const LINK_PREDICATE_TYPE: &str = "https://in-toto.io/attestation/link/v0.3";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Link {
    pub name: String,
    pub command: Vec<String>,
    pub materials: Vec<ResourceDescriptor>,
    pub byproducts: serde_json::Map<String, serde_json::Value>,
    pub environment: serde_json::Map<String, serde_json::Value>,
}
