//! The tamper-evident run log, `.gantry/log`: one signed, hash-chained record per run, and a
//! signed head naming the last one. `gantry log verify` names the first bad record.

pub mod file;
pub mod record;

pub use file::{LogFiles, append};
pub use record::{LogProblem, Record, StepCounts, verify};
