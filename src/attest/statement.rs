//! in-toto Statement v1 and `ResourceDescriptor`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;

pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Statement<P> {
    #[serde(rename = "_type")]
    pub statement_type: String,
    pub subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    pub predicate: P,
}

impl<P> Statement<P> {
    pub fn new(subject: Vec<ResourceDescriptor>, predicate_type: &str, predicate: P) -> Self {
        Self {
            statement_type: STATEMENT_TYPE.to_owned(),
            subject,
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }
}

/// <https://github.com/in-toto/attestation/blob/main/spec/v1/resource_descriptor.md>
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourceDescriptor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    #[serde(default, rename = "mediaType", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ResourceDescriptor {
    #[must_use]
    pub fn named(name: impl Into<String>, digest: &Digest) -> Self {
        Self {
            name: Some(name.into()),
            digest: BTreeMap::from([(Digest::ALGORITHM.to_owned(), digest.hex())]),
            ..Self::default()
        }
    }

    /// The SHA-256 digest, when present and well formed.
    #[must_use]
    pub fn sha256(&self) -> Option<Digest> {
        self.digest
            .get(Digest::ALGORITHM)
            .and_then(|hex| Digest::from_hex(hex))
    }
}
