//! Renders events: JSON lines on stdout for `--json`, text on stderr otherwise. On a terminal
//! a status line (done/total, running steps, elapsed) is redrawn below the finished steps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use crate::report::event::{Event, StepStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Quiet,
    Json,
    Plain,
    Live,
}

struct State {
    total: usize,
    done: usize,
    running: BTreeMap<String, Instant>,
    started: Instant,
    status_shown: bool,
    /// JSON lines not yet written.
    pending: String,
    /// Last write of JSON lines or of the status line.
    flushed: Instant,
}

const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

pub struct Reporter {
    mode: Mode,
    state: Mutex<State>,
}

impl Reporter {
    #[must_use]
    pub fn new(json: bool, terminal: bool) -> Self {
        let mode = match (json, terminal) {
            (true, _) => Mode::Json,
            (false, true) => Mode::Live,
            (false, false) => Mode::Plain,
        };
        let state = State {
            total: 0,
            done: 0,
            running: BTreeMap::new(),
            started: Instant::now(),
            status_shown: false,
            pending: String::new(),
            flushed: Instant::now(),
        };
        Self {
            mode,
            state: Mutex::new(state),
        }
    }

    /// A new reporter that prints the way this one does (for a second run in one command).
    #[must_use]
    pub fn sibling(&self) -> Self {
        let mut reporter = Self::new(false, false);
        reporter.mode = self.mode;
        reporter
    }

    /// A reporter that prints nothing (library use, tests).
    #[must_use]
    pub fn quiet() -> Self {
        let mut reporter = Self::new(false, false);
        reporter.mode = Mode::Quiet;
        reporter
    }

    /// Whether events are printed as JSON lines (every field of them is shown).
    #[must_use]
    pub fn is_json(&self) -> bool {
        matches!(self.mode, Mode::Json)
    }

    #[must_use]
    pub fn is_live(&self) -> bool {
        self.mode == Mode::Live
    }

    pub fn emit(&self, event: &Event) {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            Event::RunStarted { steps, .. } => state.total = *steps,
            Event::StepStarted { step } => {
                state.running.insert(step.clone(), Instant::now());
            }
            Event::StepFinished { step, .. } => {
                state.running.remove(step);
                state.done += 1;
            }
            _ => {}
        }
        if self.mode == Mode::Quiet {
            return;
        }
        if self.mode == Mode::Json {
            if let Ok(line) = serde_json::to_string(event) {
                state.pending.push_str(&line);
                state.pending.push('\n');
            }
            // Cache hits come in bursts of thousands: write them in batches, and everything
            // else (executions, failures, the end) at once, so a reader sees it promptly.
            let urgent = !matches!(
                event,
                Event::StepStarted { .. }
                    | Event::StepFinished {
                        status: StepStatus::Cached,
                        ..
                    }
            );
            if urgent || state.pending.len() > 64 * 1024 || state.flushed.elapsed() > FLUSH_EVERY {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(state.pending.as_bytes());
                let _ = stdout.flush();
                state.pending.clear();
                state.flushed = Instant::now();
            }
            return;
        }
        let text = render(event);
        let finished = matches!(event, Event::RunFinished { .. });
        let redraw = self.mode == Mode::Live
            && !finished
            && (text.is_some() || state.flushed.elapsed() > FLUSH_EVERY);
        if text.is_none() && !redraw {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        if self.mode == Mode::Live && state.status_shown {
            let _ = write!(stderr, "\r\x1b[K");
            state.status_shown = false;
        }
        if let Some(text) = text {
            let _ = write!(stderr, "{}", super::escape::controls(&text));
        }
        if redraw {
            let _ = write!(stderr, "{}", status_line(&state));
            state.status_shown = true;
            state.flushed = Instant::now();
        }
        let _ = stderr.flush();
    }

    /// Redraws the status line (elapsed times move on).
    pub fn tick(&self) {
        if self.mode != Mode::Live {
            return;
        }
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.total == 0 {
            return;
        }
        let mut stderr = std::io::stderr().lock();
        let _ = write!(stderr, "\r\x1b[K{}", status_line(&state));
        state.status_shown = true;
        let _ = stderr.flush();
    }
}

fn status_line(state: &State) -> String {
    let mut line = format!(
        "[{}/{}] {:.1}s",
        state.done,
        state.total,
        state.started.elapsed().as_secs_f64()
    );
    if !state.running.is_empty() {
        let names: Vec<String> = state
            .running
            .iter()
            .take(4)
            .map(|(name, started)| format!("{name} ({:.1}s)", started.elapsed().as_secs_f64()))
            .collect();
        let _ = write!(line, " running: {}", names.join(", "));
        if state.running.len() > 4 {
            let _ = write!(line, " +{}", state.running.len() - 4);
        }
    }
    line
}

fn render(event: &Event) -> Option<String> {
    match event {
        Event::RunStarted {
            run_id,
            pipeline,
            steps,
            jobs,
        } => Some(format!(
            "gantry: running `{pipeline}`: {}, {} (run {run_id})\n",
            super::counted(*steps, "step"),
            super::counted(*jobs, "job")
        )),
        Event::StepStarted { .. } => None,
        Event::StepFinished {
            step,
            status,
            duration_ms,
            exit_code,
            error,
            attempts,
            detail,
            ..
        } => {
            let mut text = match status {
                StepStatus::Executed => format!("{:>10} {step} ({duration_ms} ms)", "executed"),
                // Thousands of cache hits would drown what ran; the summary counts them.
                StepStatus::Cached => return None,
                StepStatus::Failed => format!("{:>10} {step}", "failed"),
                StepStatus::Skipped => format!("{:>10} {step}", "skipped"),
            };
            if *attempts > 1 {
                let _ = write!(text, " after {attempts} attempts");
            }
            text.push('\n');
            if *status == StepStatus::Failed {
                let _ = writeln!(
                    text,
                    "error: step `{step}` failed: {}",
                    error.as_deref().unwrap_or("unknown error")
                );
                if let Some(code) = exit_code {
                    let _ = writeln!(text, "  exit code: {code}");
                }
                if let Some(detail) = detail {
                    if !detail.command.is_empty() {
                        let _ = writeln!(text, "  command: {}", shell_words(&detail.command));
                    }
                    if !detail.stderr_tail.trim().is_empty() {
                        let _ = writeln!(text, "  stderr (last lines):");
                        for line in detail.stderr_tail.lines() {
                            let _ = writeln!(text, "    {line}");
                        }
                    }
                }
            } else if *status == StepStatus::Skipped
                && let Some(error) = error
            {
                text.pop();
                let _ = writeln!(text, " ({error})");
            }
            Some(text)
        }
        Event::Note { message } => Some(format!("gantry: {message}\n")),
        Event::Progress { step, message } => Some(format!("  {step}: {message}\n")),
        Event::Warning { step, message } => Some(match step {
            Some(step) => format!("warning: step `{step}`: {message}\n"),
            None => format!("warning: {message}\n"),
        }),
        Event::RunFinished { .. } => Some(finished(event)),
    }
}

/// The run's last lines: its tally, where its records are, why it failed its budget.
fn finished(event: &Event) -> String {
    let Event::RunFinished {
        executed,
        cached,
        failed,
        skipped,
        attestations,
        provenance,
        duration_ms,
        cancelled,
        over_budget,
        reused,
        settled,
        ..
    } = event
    else {
        return String::new();
    };
    #[expect(clippy::cast_precision_loss)] // milliseconds of a run fit an f64 exactly
    let seconds = *duration_ms as f64 / 1000.0;
    let mut text = format!(
        "gantry: {executed} executed, {cached} cached, {failed} failed, {skipped} skipped in {seconds:.2}s\n"
    );
    if *cancelled {
        text.push_str(
            "gantry: run interrupted; running steps were stopped and no partial output was kept\n",
        );
    }
    if let Some(run) = reused {
        let how = if *settled {
            " (every file as it left them: no step planned)"
        } else {
            ""
        };
        let _ = writeln!(
            text,
            "gantry: nothing changed since run {run}{how}: its provenance still holds ({attestations})"
        );
    } else {
        let _ = writeln!(text, "gantry: attestations in {attestations}");
    }
    if let Some(provenance) = provenance {
        let _ = writeln!(text, "gantry: provenance {provenance}");
    }
    if let Some(message) = over_budget {
        let _ = writeln!(text, "error: {message}");
    }
    text
}

/// Quotes an argument vector the way a POSIX shell would read it back.
fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|word| {
            if !word.is_empty()
                && word
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:@%+,".contains(c))
            {
                word.clone()
            } else {
                format!("'{}'", word.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
