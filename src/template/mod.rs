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
    /// Where its other files (scripts) were unpacked, when it has any: its steps see them
    /// read-only at [`Loaded::files_mount`], `${{ template_dir }}` in the template.
    pub files: Option<std::path::PathBuf>,
}

impl Loaded {
    /// The `[tools]` name its files are shown under: `template-PUBLISHER.NAME`. Neither part
    /// holds a `.` and a pipeline's own tool names cannot, so no two templates and no
    /// declared tool share it.
    #[must_use]
    pub fn files_tool(&self) -> String {
        format!(
            "template-{}.{}",
            self.manifest.name.publisher, self.manifest.name.name
        )
    }

    /// Where its steps see its files.
    #[must_use]
    pub fn files_mount(&self) -> String {
        format!("/tools/{}", self.files_tool())
    }
}

/// The value a template's steps see for `${{ template_dir }}`: the folder of its files.
pub const TEMPLATE_DIR: &str = "template_dir";

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
