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
use crate::exec::step::{self, Outcome};
use crate::pipeline::StepId;
use crate::report::{Event, StepStatus};

/// What happened to every step.
pub struct Finished {
    pub statuses: Vec<StepStatus>,
    /// The signal that stopped the run, if one did.
    pub interrupted_by: Option<i32>,
}

pub async fn schedule(context: Arc<Context>, jobs: usize, keep_going: bool) -> Finished {
    let graph = &context.graph;
    let count = context.pipeline.steps.len();
    let position: Vec<usize> = {
        let mut position = vec![0; count];
        for (index, &id) in graph.order.iter().enumerate() {
            position[id] = index;
        }
        position
    };
    let mut waiting_on: Vec<usize> = graph.dependencies.iter().map(Vec::len).collect();
    let mut ready: VecDeque<StepId> = graph
        .order
        .iter()
        .copied()
        .filter(|&id| waiting_on[id] == 0)
        .collect();
    let mut statuses: Vec<Option<StepStatus>> = vec![None; count];
    let mut skip_reason: Vec<Option<String>> = vec![None; count];
    let mut running = JoinSet::new();
    let mut stopping = false;
    let mut interrupted_by = None;
    let mut interrupt = signal(SignalKind::interrupt()).ok();
    let mut terminate = signal(SignalKind::terminate()).ok();
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);

    loop {
        while !stopping && running.len() < jobs.max(1) {
            let Some(id) = ready.pop_front() else { break };
            let task_context = Arc::clone(&context);
            context.reporter.emit(&Event::StepStarted {
                step: context.pipeline.steps[id].name.clone(),
            });
            running.spawn_blocking(move || {
                let started = Instant::now();
                let outcome = step::run(&task_context, id);
                (id, outcome, started.elapsed())
            });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            joined = running.join_next() => {
                let Some(joined) = joined else { break };
                let (id, outcome, elapsed) = match joined {
                    Ok(result) => result,
                    Err(error) => {
                        // A panic in a step is a gantry bug: report it, keep the run consistent.
                        context.reporter.emit(&Event::Warning { step: None, message: format!("internal error in a step: {error}") });
                        stopping = true;
                        continue;
                    }
                };
                let status = finish(&context, id, outcome, elapsed);
                statuses[id] = Some(status);
                match status {
                    StepStatus::Executed | StepStatus::Cached => {
                        let mut unlocked: Vec<StepId> = Vec::new();
                        for &dependent in &graph.dependents[id] {
                            waiting_on[dependent] -= 1;
                            if waiting_on[dependent] == 0 && statuses[dependent].is_none() && skip_reason[dependent].is_none() {
                                unlocked.push(dependent);
                            }
                        }
                        unlocked.sort_by_key(|&dependent| position[dependent]);
                        ready.extend(unlocked);
                    }
                    StepStatus::Failed | StepStatus::Skipped => {
                        if keep_going {
                            skip_dependents(&context, id, &mut skip_reason);
                            ready.retain(|&queued| skip_reason[queued].is_none());
                        } else {
                            stopping = true;
                        }
                    }
                }
            }
            Some(()) = recv(&mut interrupt) => {
                interrupted_by = Some(libc::SIGINT);
                context.cancel.store(true, Ordering::Relaxed);
                stopping = true;
            }
            Some(()) = recv(&mut terminate) => {
                interrupted_by = Some(libc::SIGTERM);
                context.cancel.store(true, Ordering::Relaxed);
                stopping = true;
            }
            _ = ticker.tick(), if context.reporter.is_live() => context.reporter.tick(),
        }
    }

    let mut final_statuses = Vec::with_capacity(count);
    for &id in &graph.order {
        if statuses[id].is_none() {
            let reason = skip_reason[id].take().unwrap_or_else(|| {
                if interrupted_by.is_some() {
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
                attestation: None,
                attempts: 0,
                detail: None,
            });
            statuses[id] = Some(StepStatus::Skipped);
        }
    }
    for status in statuses {
        final_statuses.push(status.unwrap_or(StepStatus::Skipped));
    }
    Finished {
        statuses: final_statuses,
        interrupted_by,
    }
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

fn finish(context: &Context, id: StepId, outcome: Outcome, elapsed: Duration) -> StepStatus {
    let step = &context.pipeline.steps[id].name;
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let attestation = Some(
        context
            .run_dir
            .join(format!("{step}.intoto.json"))
            .display()
            .to_string(),
    );
    let (status, event) = match outcome {
        Outcome::Executed { attempts } => (
            StepStatus::Executed,
            Event::StepFinished {
                step: step.clone(),
                status: StepStatus::Executed,
                duration_ms,
                exit_code: Some(0),
                error: None,
                attestation,
                attempts,
                detail: None,
            },
        ),
        Outcome::Cached => (
            StepStatus::Cached,
            Event::StepFinished {
                step: step.clone(),
                status: StepStatus::Cached,
                duration_ms,
                exit_code: None,
                error: None,
                attestation,
                attempts: 1,
                detail: None,
            },
        ),
        Outcome::Failed {
            error,
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
                attestation: None,
                attempts: attempts.max(1),
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
                attestation: None,
                attempts: 1,
                detail: None,
            },
        ),
    };
    context.reporter.emit(&event);
    status
}
