//! Known vulnerabilities: advisories on disk (OSV records, a RustSec advisory-db checkout),
//! each ecosystem's version order, and which of an SBOM's components they affect. Pure but
//! for reading the database.

pub mod components;
pub mod db;
pub mod osv;
pub mod rustsec;
pub mod sarif;
pub mod scan;
pub mod severity;
pub mod statement;
pub mod threshold;
pub mod version;
pub mod vex;
