//! What a run tells people and machines: events, rendered as JSON lines or as text (a live
//! status line on a terminal, plain lines elsewhere).

pub mod escape;
pub mod event;
mod human;

pub use event::{Event, FailureCategory, FailureDetail, StepStatus};
pub use human::Reporter;

/// `1 step`, `3 steps`: a count with its noun, for every message that counts.
#[must_use]
pub fn counted(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
