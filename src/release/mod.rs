//! `gantry release`: cut a tagged, signed release from a clean commit (`flow.rs` runs it,
//! `cut.rs` holds its steps), and check one again later (`check.rs`). `version.rs` and `notes.rs` are pure, `manifest.rs` builds the
//! signed manifest from a run's evidence, `git.rs` is the only part that touches git.

pub mod check;
pub mod cut;
pub mod flow;
pub mod git;
pub mod manifest;
pub mod notes;
pub mod version;

/// Where releases go, inside the attestations folder: `releases/VERSION/`.
pub const FOLDER: &str = "releases";
/// The signed manifest in a release's folder.
pub const MANIFEST: &str = "manifest.intoto.json";
/// The release notes beside it.
pub const NOTES: &str = "NOTES.md";
/// How a tag's message names the manifest.
pub const TAG_MANIFEST_LINE: &str = "Manifest: sha256:";
