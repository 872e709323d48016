//! in-toto Statement v1 and `ResourceDescriptor`.

use std::borrow::Cow;
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
    #[serde(default, skip_serializing_if = "DigestSet::is_empty")]
    pub digest: DigestSet,
    #[serde(default, rename = "mediaType", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<Cow<'static, str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ResourceDescriptor {
    #[must_use]
    pub fn named(name: impl Into<String>, digest: &Digest) -> Self {
        Self {
            name: Some(name.into()),
            digest: DigestSet::sha256(digest),
            ..Self::default()
        }
    }

    /// The SHA-256 digest, when present and well formed.
    #[must_use]
    pub fn sha256(&self) -> Option<Digest> {
        self.digest
            .get(Digest::ALGORITHM)
            .and_then(Digest::from_hex)
    }
}

/// A resource descriptor as an auditor reads it: its name, its SHA-256 and the `outLink`
/// annotation (a Nix out-link's path), parsed straight from the JSON with everything else
/// skipped unbuilt (verify reads thousands). Same fields, same names as
/// [`ResourceDescriptor`].
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct DescriptorSummary {
    pub name: String,
    pub digest: Sha256Only,
    pub annotations: OutLinkOnly,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Sha256Only {
    pub sha256: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct OutLinkOnly {
    #[serde(rename = "outLink")]
    pub out_link: Option<String>,
    /// A template's (`resolvedDependencies`): its name and the key that signed it.
    pub template: Option<String>,
    #[serde(rename = "publisherKey")]
    pub publisher_key: Option<String>,
}

/// A resource's digests by algorithm, as the spec's `DigestSet` map (`{"sha256": "…"}`).
/// Nearly always a single entry with a well-known algorithm: a small sorted vector with
/// static names costs one allocation where a `BTreeMap` cost three and a large node, which a
/// provenance naming thousands of artifacts paid for each of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigestSet(Vec<(Cow<'static, str>, String)>);

impl DigestSet {
    #[must_use]
    pub fn sha256(digest: &Digest) -> Self {
        Self::one(Digest::ALGORITHM, digest.hex())
    }

    #[must_use]
    pub fn one(algorithm: impl Into<Cow<'static, str>>, value: String) -> Self {
        Self(vec![(algorithm.into(), value)])
    }

    #[must_use]
    pub fn get(&self, algorithm: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(name, _)| name == algorithm)
            .map(|(_, value)| value.as_str())
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (algorithm, value) pairs, sorted by algorithm.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0
            .iter()
            .map(|(name, value)| (name.as_ref(), value.as_str()))
    }
}

impl<A: Into<Cow<'static, str>>> FromIterator<(A, String)> for DigestSet {
    fn from_iter<I: IntoIterator<Item = (A, String)>>(pairs: I) -> Self {
        let mut entries: Vec<(Cow<'static, str>, String)> = pairs
            .into_iter()
            .map(|(name, value)| (name.into(), value))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.dedup_by(|later, earlier| later.0 == earlier.0);
        Self(entries)
    }
}

impl Serialize for DigestSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for DigestSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, String>::deserialize(deserializer)?;
        Ok(Self(
            map.into_iter()
                .map(|(name, value)| (Cow::Owned(name), value))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_set_is_a_sorted_map_in_json() {
        let set: DigestSet = [("sha512", "b".to_owned()), ("gitCommit", "a".to_owned())]
            .into_iter()
            .collect();
        let json = serde_json::to_string(&set).expect("json");
        assert_eq!(json, r#"{"gitCommit":"a","sha512":"b"}"#);
        let back: DigestSet = serde_json::from_str(&json).expect("parse");
        assert_eq!(back, set);
        assert_eq!(back.get("sha512"), Some("b"));
        assert_eq!(back.get("sha256"), None);
        let descriptor = ResourceDescriptor::named("out/a", &Digest::of_bytes(b""));
        assert_eq!(
            serde_json::to_string(&descriptor).expect("json"),
            r#"{"name":"out/a","digest":{"sha256":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}}"#
        );
    }
}
