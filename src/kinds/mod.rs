//! The step kinds, and the dispatch between them: a step's plan (inputs resolved, action
//! key, the cache tried) and its execution (with retries), by kind. Each kind is a file of
//! its own and receives its own spec; they share the engine below (`crate::exec`): commands,
//! the sandbox, the commit protocol.

pub mod exec;
pub mod gate;
pub mod in_process;
pub mod nix;
pub mod rollout;
pub mod sbom;
pub mod sign;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::exec::command::ExecAction;
use crate::exec::commit::{self, CachedStep, Failure};
use crate::exec::context::Context;
use crate::pipeline::{StepId, StepKind};
use crate::report::{Event, FailureDetail};

/// How a step ended.
pub enum Outcome {
    Executed {
        attempts: u32,
    },
    Cached,
    Failed {
        error: String,
        exit_code: Option<i32>,
        detail: Option<FailureDetail>,
        attempts: u32,
    },
    Cancelled,
}

/// The work a step's plan leaves to do, by kind.
pub enum Action {
    Exec(ExecAction),
    Nix(nix::NixAction),
    Sign(sign::SignAction),
    Sbom(sbom::SbomAction),
    Gate(gate::GateAction),
    Rollout(rollout::RolloutAction),
}

/// How an execution ended well: it ran, or (a Nix step, whose build Nix itself caches) it
/// found its attestation in the action cache.
pub enum Ran {
    Executed,
    Cached,
}

/// The first half of a step: settled without running anything, or an action to run.
pub enum Planned {
    Done(Outcome),
    /// Served from the cache: outputs and attestation are in place, every blob checked; the
    /// scheduler publishes the result with [`finish_cached`].
    Cached(Box<CachedStep>),
    Execute(Box<Action>),
}

/// Completes a cache hit: publishes its outputs to the steps that read them.
pub fn finish_cached(context: &Context, id: StepId, cached: CachedStep) -> Outcome {
    let _ = context.results[id].set(std::sync::Arc::new(cached.result));
    Outcome::Cached
}

/// Resolves inputs, computes the action key and tries the cache. Cheap when nothing changed
/// (stat-cached digests, an in-memory index), so the scheduler runs it inline for a few ready
/// steps and in parallel batches for many; only executions take a `--jobs` slot.
pub fn plan(context: &Context, id: StepId) -> Planned {
    if let StepKind::Nix(_) = &context.pipeline.steps[id].kind {
        // Nix decides whether anything needs building; the build runs in a `--jobs` slot.
        return match nix::plan(context, id) {
            Ok(action) => Planned::Execute(Box::new(Action::Nix(action))),
            Err(error) => Planned::Done(Outcome::Failed {
                error,
                exit_code: None,
                detail: None,
                attempts: 0,
            }),
        };
    }
    let action = match &context.pipeline.steps[id].kind {
        StepKind::Sign(_) => sign::plan(context, id).map(Action::Sign),
        StepKind::Sbom(_) => sbom::plan(context, id).map(Action::Sbom),
        StepKind::Gate(_) => gate::plan(context, id).map(Action::Gate),
        StepKind::Rollout(_) => rollout::plan(context, id).map(Action::Rollout),
        StepKind::Exec(_) | StepKind::Nix(_) => exec::plan(context, id).map(Action::Exec),
    };
    let action = match action {
        Ok(action) => action,
        Err(error) => {
            return Planned::Done(Outcome::Failed {
                error,
                exit_code: None,
                detail: None,
                attempts: 0,
            });
        }
    };
    let key = match &action {
        Action::Exec(action) => action.key,
        Action::Sign(action) => *action.key(),
        Action::Sbom(action) => action.key,
        Action::Gate(action) => action.key,
        Action::Rollout(action) => action.key,
        Action::Nix(_) => unreachable!("nix steps are planned above"),
    };
    // A rebuild proves what a step makes now; it never takes a result on trust. A drill
    // measures how long something takes now; a rollout acts on the world now.
    let now = matches!(&action, Action::Gate(gate) if gate.is_drill())
        || matches!(&action, Action::Rollout(_));
    let cached = if context.rebuild || now {
        None
    } else {
        commit::try_cache(context, id, &key)
    };
    match cached {
        Some(cached) => Planned::Cached(Box::new(cached)),
        None => Planned::Execute(Box::new(action)),
    }
}

/// Runs the action in the sandbox, retrying as the step asks.
pub fn execute_with_retries(context: &Context, id: StepId, action: &Action) -> Outcome {
    let step = &context.pipeline.steps[id];
    let mut attempt = 1;
    loop {
        let ran = match action {
            Action::Exec(action) => exec::execute(context, id, action).map(|()| Ran::Executed),
            Action::Nix(action) => nix::execute(context, id, action),
            Action::Sign(action) => sign::execute(context, id, action).map(|()| Ran::Executed),
            Action::Sbom(action) => sbom::execute(context, id, action).map(|()| Ran::Executed),
            Action::Gate(action) => gate::execute(context, id, action).map(|()| Ran::Executed),
            Action::Rollout(action) => {
                rollout::execute(context, id, action).map(|()| Ran::Executed)
            }
        };
        match ran {
            Ok(Ran::Executed) => return Outcome::Executed { attempts: attempt },
            Ok(Ran::Cached) => return Outcome::Cached,
            Err(Failure::Cancelled) => return Outcome::Cancelled,
            Err(Failure::Step {
                error,
                exit_code,
                detail,
            }) => {
                if attempt >= step.retry.attempts || context.cancel.load(Ordering::Relaxed) {
                    return Outcome::Failed {
                        error,
                        exit_code,
                        detail,
                        attempts: attempt,
                    };
                }
                let delay = backoff(step.retry.backoff, attempt);
                context.reporter.emit(&Event::Warning {
                    step: Some(step.name.clone()),
                    message: format!(
                        "attempt {attempt} failed ({error}); retrying in {} ms",
                        delay.as_millis()
                    ),
                });
                if sleep_unless_cancelled(context, delay) {
                    return Outcome::Cancelled;
                }
                attempt += 1;
            }
        }
    }
}

/// The longest wait between two attempts, whatever the backoff and the attempt.
const LONGEST_BACKOFF: Duration = Duration::from_secs(3600);

/// Exponential backoff with ±50% jitter, so retries of many steps do not move in lockstep;
/// never more than [`LONGEST_BACKOFF`].
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exponential = base
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(LONGEST_BACKOFF);
    let jitter = 0.5 + f64::from(rand_core::OsRng.next_u32()) / f64::from(u32::MAX);
    exponential.mul_f64(jitter)
}

fn sleep_unless_cancelled(context: &Context, delay: Duration) -> bool {
    let now = Instant::now();
    let until = now.checked_add(delay).unwrap_or(now);
    while Instant::now() < until {
        if context.cancel.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(
            Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())),
        );
    }
    context.cancel.load(Ordering::Relaxed)
}
