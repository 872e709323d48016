//! A vulnerability scan's result: in-toto's vulns predicate v0.2
//! (<https://github.com/in-toto/attestation/blob/main/spec/predicates/vulns_02.md>). The
//! scanner with the database it read (its snapshot's digest as the version, its newest
//! advisory as `lastUpdate`), one result per vulnerability with its severities, and when the
//! scan ran. `vulns` writes it; `verify` reads it.

use serde::{Deserialize, Serialize};

pub const URI: &str = "https://in-toto.io/attestation/vulns/v0.2";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Vulns {
    pub scanner: Scanner,
    pub metadata: Metadata,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Scanner {
    pub uri: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub db: Db,
    /// Empty when nothing was found.
    pub result: Vec<Result>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Db {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// RFC 3339: the newest advisory's `modified`.
    pub last_update: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Result {
    pub id: String,
    pub severity: Vec<Severity>,
    /// gantry's: the component (`purl`), every id (`aliases`), a VEX status (`vex`),
    /// `allowed` or `informational`, one object each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<serde_json::Map<String, serde_json::Value>>,
}

/// A severity by its method: `CVSS:3.1` (the base score), `label` (the database's band).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Severity {
    pub method: String,
    pub score: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Metadata {
    pub scan_started_on: String,
    pub scan_finished_on: String,
}
