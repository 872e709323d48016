//! A published template's statement (`https://gantry.dev/attestation/template/v0.1`): its
//! subject is the template's pack, its predicate what the publisher says the pack is. A
//! registry's copy is trusted only when the statement verifies with a key the pipeline's
//! registry configuration names, and its subject is the pack's digest.

use serde::{Deserialize, Serialize};

pub const URI: &str = "https://gantry.dev/attestation/template/v0.1";

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Published {
    /// `publisher/name`.
    pub name: String,
    pub version: String,
    /// The gantry versions it works with.
    pub gantry: String,
    pub description: String,
    /// Its parameters (name → type, required) and its steps' outputs.
    pub interface: serde_json::Value,
}
