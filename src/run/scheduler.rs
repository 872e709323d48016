//! Runs the DAG: up to `jobs` steps at once, each as soon as everything it depends on is
//! done; fail-fast by default (nothing new starts after a failure, running steps finish) or
//! keep-going (only the failed step's dependents are skipped). Ctrl-C / SIGTERM kill every
//! running step's whole process tree and stop the run.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::signal::unix::{SignalKind, signal};
use tokio::task::JoinSet;

use crate::exec::context::Context;
use crate::kinds::{self as step, Action, Outcome, Planned};
use crate::pipeline::StepId;
use crate::report::{Event, StepStatus};

/// What happened to every step.
pub struct Finished {
    pub statuses: Vec<StepStatus>,
    /// The signal that stopped the run, if one did.
    pub interrupted_by: Option<i32>,
}

/// Bookkeeping of one run's progress through the graph.
struct State {
    waiting_on: Vec<usize>,
    ready: VecDeque<StepId>,
    statuses: Vec<Option<StepStatus>>,
    skip_reason: Vec<Option<String>>,
    stopping: bool,
    interrupted_by: Option<i32>,
}

impl State {
    fn new(context: &Context) -> Self {
        let graph = &context.graph;
        let count = context.pipeline.steps.len();
        let waiting_on: Vec<usize> = graph.dependencies.iter().map(Vec::len).collect();
        // Ready steps start in the order the file declares them.
        let ready = (0..count).filter(|&id| waiting_on[id] == 0).collect();
        Self {
            waiting_on,
            ready,
            statuses: vec![None; count],
            skip_reason: vec![None; count],
            stopping: false,
            interrupted_by: None,
        }
    }

    /// Records a finished step and queues what it unlocked.
    fn step_done(&mut self, context: &Context, id: StepId, status: StepStatus, keep_going: bool) {
        self.statuses[id] = Some(status);
        match status {
            StepStatus::Executed | StepStatus::Cached => {
                let mut unlocked: Vec<StepId> = Vec::new();
                for &dependent in &context.graph.dependents[id] {
                    self.waiting_on[dependent] -= 1;
                    if self.waiting_on[dependent] == 0
                        && self.statuses[dependent].is_none()
                        && self.skip_reason[dependent].is_none()
                    {
                        unlocked.push(dependent);
                    }
                }
                unlocked.sort_unstable();
                self.ready.extend(unlocked);
            }
            StepStatus::Failed | StepStatus::Skipped if keep_going => {
                skip_dependents(context, id, &mut self.skip_reason);
                let skip_reason = &self.skip_reason;
                self.ready.retain(|&queued| skip_reason[queued].is_none());
            }
            StepStatus::Failed | StepStatus::Skipped => self.stopping = true,
        }
    }

    fn interrupt(&mut self, context: &Context, signal: i32) {
        self.interrupted_by = Some(signal);
        context.cancel.store(true, Ordering::Relaxed);
        self.stopping = true;
    }

    /// Reports every step that never ran as skipped, with the reason.
    fn finish(mut self, context: &Context) -> Finished {
        for id in 0..self.statuses.len() {
            if self.statuses[id].is_some() {
                continue;
            }
            let reason = self.skip_reason[id].take().unwrap_or_else(|| {
                if self.interrupted_by.is_some() {
                    "the run was interrupted".to_owned()
                } else {
                    "an earlier step failed".to_owned()
                }
            });
            context.reporter.emit(&Event::StepFinished {
                step: context.pipeline.steps[id].name.clone(),
                status: StepStatus::Skipped,
                duration_ms: 0,
                exit_code: None,
                error: Some(reason),
                category: None,
                attestation: None,
                attempts: 0,
                usage: None,
                detail: None,
            });
            self.statuses[id] = Some(StepStatus::Skipped);
        }
        let statuses = self
            .statuses
            .into_iter()
            .map(|status| status.unwrap_or(StepStatus::Skipped))
            .collect();
        Finished {
            statuses,
            interrupted_by: self.interrupted_by,
        }
    }
}

/// What a task on the blocking pool hands back.
enum Work {
    Planned(Vec<(StepId, Planned, Instant)>),
    Executed(StepId, Outcome, Duration),
}

/// Ready steps are planned (key, cache check, restore) on the blocking pool in batches when
/// there are many, as in a no-op run of thousands of steps, and inline when there are few, as
/// along a chain, where a thread hand-off would cost more than the planning.
const BATCH: usize = 128;
const INLINE_BELOW: usize = 16;
const QUEUED_ACTIONS: usize = 2 * BATCH;

pub async fn schedule(context: Arc<Context>, jobs: usize, keep_going: bool) -> Finished {
    let jobs = jobs.max(1);
    let mut state = State::new(&context);
    let mut tasks = JoinSet::new();
    let (mut executing, mut planning) = (0usize, 0usize);
    let mut to_execute: VecDeque<(StepId, Box<Action>)> = VecDeque::new();
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        // Planning runs ahead of execution only so far: a planned action holds its inputs and
        // environment, and 50,000 of them waiting would cost memory for nothing.
        if !state.stopping && to_execute.len() < QUEUED_ACTIONS {
            if state.ready.len() >= INLINE_BELOW {
                // When the attestation placer falls behind (`exec/placer.rs`), it is the
                // no-op run's critical path and gets a core of its own: with every core
                // planning it waited for CPU (ext4, 2 cores, 5,000 cached steps: 102.6 → 95.4
                // ms). Where links are cheap (tmpfs) it keeps up and every core plans.
                let planners = if context.placer.backlog() > BATCH {
                    jobs.saturating_sub(1).max(1)
                } else {
                    jobs
                };
                while planning < planners && !state.ready.is_empty() {
                    let count = state.ready.len().min(BATCH);
                    let batch: Vec<StepId> = state.ready.drain(..count).collect();
                    let task_context = Arc::clone(&context);
                    planning += 1;
                    tasks.spawn_blocking(move || {
                        let plan = |id| {
                            let started = Instant::now();
                            (id, step::plan(&task_context, id), started)
                        };
                        Work::Planned(batch.into_iter().map(plan).collect())
                    });
                }
            } else {
                while state.ready.len() < INLINE_BELOW
                    && !state.stopping
                    && to_execute.len() < QUEUED_ACTIONS
                {
                    let Some(id) = state.ready.pop_front() else {
                        break;
                    };
                    let started = Instant::now();
                    let planned = step::plan(&context, id);
                    settle(
                        &context,
                        &mut state,
                        &mut to_execute,
                        (id, planned, started),
                        keep_going,
                    );
                }
            }
        }
        while executing < jobs && !state.stopping {
            let Some((id, action)) = to_execute.pop_front() else {
                break;
            };
            // A step starts when its process may run: durations measure the work, not the queue.
            context.reporter.emit(&Event::StepStarted {
                step: context.pipeline.steps[id].name.clone(),
            });
            let started = Instant::now();
            let task_context = Arc::clone(&context);
            executing += 1;
            tasks.spawn_blocking(move || {
                let outcome = step::execute_with_retries(&task_context, id, &action);
                Work::Executed(id, outcome, started.elapsed())
            });
        }
        if tasks.is_empty() {
            let more = !state.ready.is_empty() || (!to_execute.is_empty() && executing < jobs);
            if state.stopping || !more {
                break;
            }
            continue;
        }
        tokio::select! {
            Some(joined) = tasks.join_next() => match joined {
                Ok(Work::Planned(batch)) => {
                    planning -= 1;
                    for planned in batch {
                        settle(&context, &mut state, &mut to_execute, planned, keep_going);
                    }
                }
                Ok(Work::Executed(id, outcome, elapsed)) => {
                    executing -= 1;
                    let status = finish(&context, id, outcome, elapsed);
                    state.step_done(&context, id, status, keep_going);
                }
                Err(error) => {
                    // A panic in a step is a gantry bug: report it and start nothing new.
                    let message = format!("internal error in a step: {error}");
                    context.reporter.emit(&Event::Warning { step: None, message });
                    state.stopping = true;
                }
            },
            Some(()) = recv(&mut interrupt) => state.interrupt(&context, libc::SIGINT),
            Some(()) = recv(&mut terminate) => state.interrupt(&context, libc::SIGTERM),
            _ = ticker.tick(), if context.reporter.is_live() => context.reporter.tick(),
        }
    }
    state.finish(&context)
}

/// Acts on a planned step: finishes failures and cache hits, queues executions.
fn settle(
    context: &Context,
    state: &mut State,
    to_execute: &mut VecDeque<(StepId, Box<Action>)>,
    (id, planned, started): (StepId, Planned, Instant),
    keep_going: bool,
) {
    let outcome = match planned {
        Planned::Done(outcome) => outcome,
        Planned::Cached(cached) => step::finish_cached(context, id, *cached),
        Planned::Execute(action) => {
            to_execute.push_back((id, action));
            return;
        }
    };
    context.reporter.emit(&Event::StepStarted {
        step: context.pipeline.steps[id].name.clone(),
    });
    let status = finish(context, id, outcome, started.elapsed());
    state.step_done(context, id, status, keep_going);
}

async fn recv(stream: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match stream {
        Some(stream) => stream.recv().await,
        None => std::future::pending().await,
    }
}

fn skip_dependents(context: &Context, failed: StepId, skip_reason: &mut [Option<String>]) {
    let name = &context.pipeline.steps[failed].name;
    let mut stack = vec![failed];
    while let Some(id) = stack.pop() {
        for &dependent in &context.graph.dependents[id] {
            if skip_reason[dependent].is_none() {
                skip_reason[dependent] = Some(format!("depends on failed step `{name}`"));
                stack.push(dependent);
            }
        }
    }
}

/// Where the step's link is (or, while the placer catches up, soon will be): only JSON lines
/// show it, and a no-op run would build 5,000 paths for nobody.
fn shown_attestation(context: &Context, id: StepId) -> Option<String> {
    let step = &context.pipeline.steps[id].name;
    (context.attestations[id].get())
        .filter(|_| context.reporter.is_json())
        .map(|digest| {
            if context.rebuild {
                context
                    .run_dir
                    .join(crate::attest::run_folder::StepFile::Link.name(step))
            } else {
                crate::exec::commit::stored_attestation(context, digest)
            }
            .display()
            .to_string()
        })
}

/// The event of a step served from the cache, its saved usage read only for JSON lines.
pub(crate) fn cached_event(
    context: &Context,
    id: StepId,
    duration_ms: u64,
    usage: impl FnOnce() -> Option<crate::store::Usage>,
) -> Event {
    Event::StepFinished {
        step: context.pipeline.steps[id].name.clone(),
        status: StepStatus::Cached,
        duration_ms,
        exit_code: None,
        error: None,
        category: None,
        attestation: shown_attestation(context, id),
        attempts: 1,
        usage: context
            .reporter
            .is_json()
            .then(usage)
            .flatten()
            .map(Box::new),
        detail: None,
    }
}

fn finish(context: &Context, id: StepId, outcome: Outcome, elapsed: Duration) -> StepStatus {
    let step = &context.pipeline.steps[id].name;
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let shown = context.reporter.is_json();
    let attestation = shown_attestation(context, id);
    let usage = || shown.then(|| context.usage_of(id)).flatten().map(Box::new);
    let (status, event) = match outcome {
        Outcome::Executed { attempts } => (
            StepStatus::Executed,
            Event::StepFinished {
                step: step.clone(),
                status: StepStatus::Executed,
                duration_ms,
                exit_code: Some(0),
                error: None,
                category: None,
                attestation,
                attempts,
                usage: usage(),
                detail: None,
            },
        ),
        Outcome::Cached => (
            StepStatus::Cached,
            cached_event(context, id, duration_ms, || context.usage_of(id)),
        ),
        Outcome::Failed {
            error,
            category,
            exit_code,
            detail,
            attempts,
        } => (
            StepStatus::Failed,
            Event::StepFinished {
                step: step.clone(),
                status: StepStatus::Failed,
                duration_ms,
                exit_code,
                error: Some(error),
                category: Some(category),
                attestation: None,
                attempts: attempts.max(1),
                usage: detail.as_ref().and_then(|detail| detail.usage.clone()),
                detail,
            },
        ),
        Outcome::Cancelled => (
            StepStatus::Skipped,
            Event::StepFinished {
                step: step.clone(),
                status: StepStatus::Skipped,
                duration_ms,
                exit_code: None,
                error: Some("stopped by the interrupt".to_owned()),
                category: None,
                attestation: None,
                attempts: 1,
                usage: None,
                detail: None,
            },
        ),
    };
    context.reporter.emit(&event);
    status
}
