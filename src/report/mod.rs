//! What a run tells people and machines: events, rendered as JSON lines or as text (a live
//! status line on a terminal, plain lines elsewhere).

pub mod escape;
pub mod event;
mod human;

pub use event::{Event, FailureDetail, StepStatus};
pub use human::Reporter;
