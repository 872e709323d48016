//! Reusable step templates (docs/templates.md): a template's manifest and parameters, versions
//! and their constraints resolved to one version per template, and the filling of a
//! template's steps with a pipeline's values. Pure.

pub mod catalog;
pub mod constraint;
pub mod fill;
pub mod lock;
pub mod manifest;
pub mod pack;
pub mod publish;
pub mod registry;
pub mod resolve;

use std::collections::BTreeMap;

use crate::diagnostic::SourceFile;
use crate::digest::Digest;

/// A template as a pipeline's `uses` found it: its manifest, its text (for diagnostics at
/// its lines) and exactly which bytes it is.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub manifest: manifest::Manifest,
    pub source: SourceFile,
    pub pin: Pin,
    /// Where its pack came from (empty before publication).
    pub uri: String,
    /// The key id of the trusted key its statement verified with.
    pub publisher_key: String,
}

/// One template version, by the digest of its pack: what the lock file holds and the
/// provenance names.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pin {
    /// `publisher/name`.
    pub name: String,
    pub version: String,
    /// SHA-256 of the template's pack.
    pub digest: Digest,
    /// The registry it came from, by the name the configuration gives it.
    pub registry: String,
}

/// What each `uses = "..."` of a pipeline (by its exact text) resolved to, or why it did not.
pub type Templates = BTreeMap<String, Result<Loaded, String>>;
