//! An SBOM attestation: its predicate is the document itself, SPDX's or `CycloneDX`'s, whose
//! types live in `crate::sbom` (they are what the validators check).

/// SPDX 2.3 JSON as the predicate.
pub const SPDX: &str = "https://spdx.dev/Document";

/// `CycloneDX` 1.6 JSON as the predicate.
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
