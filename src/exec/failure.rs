//! How a step fails, for the engine and the kinds: a [`StepError`] says what went wrong and
//! whose it is to fix ([`FailureCategory`]), so the run's report (`--json`'s `category`) can
//! tell a step that said no from a machine that could not run it.

pub(crate) use crate::report::FailureCategory as Category;
use crate::report::FailureDetail;

/// A failure's message and category; the message is a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    pub category: Category,
    pub message: String,
}

pub(crate) enum Failure {
    Step {
        error: StepError,
        exit_code: Option<i32>,
        detail: Option<FailureDetail>,
    },
    Cancelled,
}

impl Failure {
    pub(crate) fn new(category: Category, message: impl Into<String>) -> Self {
        Self::Step {
            error: StepError {
                category,
                message: message.into(),
            },
            exit_code: None,
            detail: None,
        }
    }

    /// The step did its work and it said no: its command failed, a gate's threshold did not
    /// hold, a rollout rolled back.
    pub(crate) fn refused(message: impl Into<String>) -> Self {
        Self::new(Category::Step, message)
    }

    /// What the step was given is wrong: a missing or malformed input, an output the step
    /// did not make.
    pub(crate) fn input(message: impl Into<String>) -> Self {
        Self::new(Category::Input, message)
    }

    /// The machine could not do it: a folder not writable, a tool missing, the store full.
    pub(crate) fn environment(message: impl Into<String>) -> Self {
        Self::new(Category::Environment, message)
    }

    /// A bug in gantry.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(Category::Internal, message)
    }
}
