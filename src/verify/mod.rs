//! `gantry verify`: decides offline whether artifacts came from the pipeline run their
//! attestations claim, under a policy (docs/verify.md). `policy` and `evidence` read what the
//! auditor gives, `check` decides (pure), `report` says why, `vsa` signs the verdict.

pub mod check;
pub mod evidence;
pub mod gather;
pub mod gauntlet_report;
pub mod legacy;
pub mod policy;
pub mod report;
pub mod signed;
mod statement;
pub mod vsa;

pub use check::{ApprovedPipeline, Artifact, Input, verify};
pub use report::{CheckKind, Reason, Report};
pub use signed::Signatures;
