//! The predicates gantry writes and reads, each a serde type beside its URI: one definition
//! for the writers (the kinds, the run, repro, release) and the readers (verify, repro, the
//! gauntlet report, `gantry logs`). Readers parse leniently (a missing field takes its
//! default), so documents from other tools and older gantry versions read.

pub mod link;
pub mod reproducibility;
pub mod rollout;
pub mod sbom;
pub mod template;
pub mod test_result;
pub mod usage;
pub mod vulns;

pub use super::provenance::PREDICATE_TYPE as PROVENANCE;
pub use link::LINK_PREDICATE_TYPE as LINK;
pub use reproducibility::URI as REPRODUCIBILITY;
pub use rollout::URI as ROLLOUT;
pub use sbom::{CYCLONEDX, SPDX};
pub use template::URI as TEMPLATE;
pub use test_result::URI as TEST_RESULT;
pub use usage::URI as USAGE;
pub use vulns::URI as VULNS;

/// A release's manifest (`release::manifest`).
pub const RELEASE: &str = "https://in-toto.io/attestation/release/v0.1";

/// A verification summary (SLSA VSA), `verify::vsa`.
pub const VSA: &str = "https://slsa.dev/verification_summary/v1";
