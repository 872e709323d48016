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
pub mod vulns;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::digest::Digest;
use crate::exec::commit::{self, CachedStep, Failure};
use crate::exec::context::Context;
use crate::pipeline::{StepId, StepKind};
use crate::report::{Event, FailureCategory, FailureDetail};

/// How a step ended.
pub enum Outcome {
    Executed {
        attempts: u32,
    },
    Cached,
    Failed {
        error: String,
        category: FailureCategory,
        exit_code: Option<i32>,
        detail: Option<FailureDetail>,
        attempts: u32,
    },
    Cancelled,
}

/// The contract between the dispatch and a kind: what its plan leaves to run. Each kind's
/// action holds its own typed spec; the dispatch never looks inside.
trait Work: Send + Sync {
    /// The action key, known before running: the cache is tried under it.
    fn key(&self) -> Option<Digest>;

    /// Whether a cached result may stand in for running it.
    fn cacheable(&self) -> bool {
        true
    }

    fn execute(&self, context: &Context, id: StepId) -> Result<Ran, Failure>;
}

/// The work a step's plan leaves to do.
pub struct Action(Box<dyn Work>);

impl Action {
    fn new(work: impl Work + 'static) -> Self {
        Self(Box::new(work))
    }
}

/// How an execution ended well: it ran, or (a Nix step, whose build Nix itself caches) it
/// found its attestation in the action cache.
enum Ran {
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
    // The one place that knows every kind.
    let action = match &context.pipeline.steps[id].kind {
        StepKind::Exec(spec) => exec::plan(context, id, spec).map(Action::new),
        StepKind::Nix(spec) => nix::plan(context, id, spec).map(Action::new),
        StepKind::Sign(_) => sign::plan(context, id).map(Action::new),
        StepKind::Sbom(spec) => sbom::plan(context, id, spec).map(Action::new),
        StepKind::Gate(spec) => gate::plan(context, id, spec).map(Action::new),
        StepKind::Rollout(spec) => rollout::plan(context, id, spec).map(Action::new),
        StepKind::Vulns(spec) => vulns::plan(context, id, spec).map(Action::new),
    };
    let action = match action {
        Ok(action) => action,
        Err(error) => {
            // What planning reads is what the step was given: its inputs, its spec.
            return Planned::Done(Outcome::Failed {
                error,
                category: FailureCategory::Input,
                exit_code: None,
                detail: None,
                attempts: 0,
            });
        }
    };
    // A rebuild proves what a step makes now; it never takes a result on trust.
    let cached = match action.0.key() {
        Some(key) if !context.rebuild && action.0.cacheable() => {
            commit::try_cache(context, id, &key)
        }
        _ => None,
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
        match action.0.execute(context, id) {
            Ok(Ran::Executed) => return Outcome::Executed { attempts: attempt },
            Ok(Ran::Cached) => return Outcome::Cached,
            Err(Failure::Cancelled) => return Outcome::Cancelled,
            Err(Failure::Step {
                error,
                exit_code,
                detail,
            }) => {
                if let Some(usage) = detail.as_ref().and_then(|detail| detail.usage.as_deref()) {
                    let mut failed = (context.failed_attempts.lock())
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    failed.push((id, usage.clone()));
                }
                if attempt >= step.retry.attempts || context.cancel.load(Ordering::Relaxed) {
                    return Outcome::Failed {
                        error: error.message,
                        category: error.category,
                        exit_code,
                        detail,
                        attempts: attempt,
                    };
                }
                let delay = backoff(step.retry.backoff, attempt);
                context.reporter.emit(&Event::Warning {
                    step: Some(step.name.clone()),
                    message: format!(
                        "attempt {attempt} failed ({}); retrying in {} ms",
                        error.message,
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
