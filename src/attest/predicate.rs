//! The predicate types gantry writes and reads, by URI: one definition for the writers (the
//! kinds, the run, repro, release) and the readers (verify, the gauntlet report).

pub use super::link::LINK_PREDICATE_TYPE as LINK;
pub use super::provenance::PREDICATE_TYPE as PROVENANCE;

/// A gate's verdict: in-toto's test-result predicate.
pub const TEST_RESULT: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// A rollout's record.
pub const ROLLOUT: &str = "https://gantry.dev/attestation/rollout/v0.1";

/// `gantry repro`'s statement.
pub const REPRODUCIBILITY: &str = "https://gantry.dev/attestation/reproducibility/v1";

/// A release's manifest.
pub const RELEASE: &str = "https://in-toto.io/attestation/release/v0.1";

/// A verification summary (SLSA VSA).
pub const VSA: &str = "https://slsa.dev/verification_summary/v1";

/// An SBOM attestation whose predicate is the document: SPDX's and `CycloneDX`'s.
pub const SPDX: &str = "https://spdx.dev/Document";
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
