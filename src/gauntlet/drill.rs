//! A drill: a command (a rollback rehearsal, a restore) whose wall-clock time is checked
//! against a budget. The step kind runs and times it; this turns the outcome into a reading.

use super::Reading;

/// How the drill's command ended.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Timing {
    pub seconds: f64,
    /// `None`: it did not exit (timed out); a signal counts as 128 + its number, as in a shell.
    pub exit_code: Option<i32>,
}

/// `seconds` is always measured (a timed-out drill took at least its timeout); `exit_code`
/// only when the command exited.
#[must_use]
pub fn measure(timing: Timing) -> Reading {
    let mut reading = Reading::default();
    reading.values.insert("seconds".to_owned(), timing.seconds);
    if let Some(code) = timing.exit_code {
        reading
            .values
            .insert("exit_code".to_owned(), f64::from(code));
    }
    reading
}
