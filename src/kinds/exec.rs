//! The exec kind: a step's command planned (its program, environment and inputs keyed), run
//! in its slot with its warm folders, and its link (the command, what it read, the sandbox it
//! ran in) signed and committed.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::attest::{self, Link, ResourceDescriptor, link};
use crate::digest::Digest;
use crate::exec::command::{
    self, ExecAction, changed_input, executor_for, limit_reached, placement, sandboxed, take_slot,
};
use crate::exec::commit::{Commit, Failure, StepError, commit, store_log, subjects, tail};
use crate::exec::context::Context;
use crate::exec::outputs;
use crate::exec::sandbox::{self, Termination};
use crate::exec::warm::{self, Lease};
use crate::kinds::{Ran, Work};
use crate::pipeline::model::Placement;
use crate::pipeline::{ExecStep, StepId};
use crate::report::{Event, FailureCategory as Category, FailureDetail};
use crate::store::Tree;

pub(crate) fn plan(context: &Context, id: StepId, exec: &ExecStep) -> Result<ExecAction, String> {
    command::prepare_command(context, id, exec)
}

impl Work for ExecAction {
    fn key(&self) -> Option<Digest> {
        Some(self.key)
    }

    fn execute(&self, context: &Context, id: StepId) -> Result<Ran, Failure> {
        execute(context, id, self).map(|()| Ran::Executed)
    }
}

fn execute(context: &Context, id: StepId, action: &ExecAction) -> Result<(), Failure> {
    let slot = take_slot(context, id, action)?;
    // Declared after the slot, so dropped first: the warm folders leave the slot before it
    // goes back to the pool.
    let warm = take_warm(context, id, action, &slot.path)?;
    let uses = warm.as_ref().map(Lease::uses).unwrap_or_default();
    execute_in(context, id, action, &slot.path, &uses)
}

/// The step's warm folders moved into its slot: for local runs only, never for a rebuild
/// (`gantry repro` shows the result does not depend on them).
fn take_warm(
    context: &Context,
    id: StepId,
    action: &ExecAction,
    slot: &Path,
) -> Result<Option<Lease>, Failure> {
    let step = &context.pipeline.steps[id];
    if action.warm.is_empty() || context.rebuild || placement(context, step) != Placement::Local {
        return Ok(None);
    }
    if let Some(input) = (action.inputs.iter()).find(|input| {
        (action.warm.iter()).any(|warm| crate::pipeline::path::is_within(&input.path, warm))
    }) {
        return Err(Failure::input(format!(
            "input `{}` lies in a warm folder; a warm folder is the step's own state, not a source: narrow the step's `inputs`",
            input.path
        )));
    }
    Lease::take(
        &context.store.root,
        &context.pipeline.file,
        &step.name,
        &action.warm,
        slot,
    )
    .map(Some)
    .map_err(|error| {
        Failure::environment(format!("cannot bring in the step's warm folders: {error}"))
    })
}

fn execute_in(
    context: &Context,
    id: StepId,
    action: &ExecAction,
    scratch: &Path,
    warm: &[warm::Use],
) -> Result<(), Failure> {
    let step = &context.pipeline.steps[id];
    let work = scratch;
    let (finished, duration) = sandboxed(context, id, action, work, warm)?;
    if let Some(refused) = (finished.remote.as_ref()).and_then(|remote| remote.refused.clone()) {
        context.reporter.emit(&Event::Warning {
            step: Some(step.name.clone()),
            message: refused,
        });
    }
    let failure = |message: String, exit_code| Failure::Step {
        error: StepError {
            category: Category::Step,
            message,
        },
        exit_code,
        detail: Some(FailureDetail {
            command: action.argv.clone(),
            stderr_tail: tail(&finished.stderr.bytes, 20, 4096),
            // A failed attempt used the machine too: its bill is not the cache's business.
            usage: Some(Box::new(usage(duration, &finished))),
        }),
    };
    let mut reached = limit_reached(step, finished.reached);
    let file_too_large = libc::SIGXFSZ;
    if finished.termination == Termination::Signaled(file_too_large)
        || finished.termination == Termination::Exited(128 + file_too_large)
    {
        use std::fmt::Write as _;
        let _ = write!(
            reached,
            " (SIGXFSZ: a file reached the output limit of {}, `limits.output`)",
            crate::pipeline::limits::show_size(step.limits.output)
        );
    }
    match finished.termination {
        Termination::Exited(0) => {}
        Termination::Exited(code) => {
            return Err(failure(format!("exit code {code}{reached}"), Some(code)));
        }
        Termination::Signaled(signal) => {
            return Err(failure(format!("killed by signal {signal}{reached}"), None));
        }
        Termination::TimedOut => {
            let limit = step.timeout.unwrap_or_default();
            return Err(failure(
                format!(
                    "timed out after {}{reached}",
                    crate::duration::humanize(limit)
                ),
                None,
            ));
        }
        Termination::Cancelled => return Err(Failure::Cancelled),
    }
    if let Some(changed) = changed_input(context, action) {
        return Err(failure(
            format!(
                "input `{changed}` changed while the step ran; nothing of this run of the step is kept (run again once the file is settled)"
            ),
            Some(0),
        ));
    }
    let outputs::Collected {
        records,
        trees,
        bytes,
    } = outputs::collect(step, work, &context.store.cas)
        .map_err(|error| failure(error, Some(0)))?;
    let logs = [
        store_log(context, &finished.stdout.bytes)?,
        store_log(context, &finished.stderr.bytes)?,
    ];
    let result = Produced {
        records,
        trees,
        logs,
        truncated: [finished.stdout.truncated, finished.stderr.truncated],
        duration,
        usage: crate::store::Usage {
            output_bytes: Some(bytes),
            ..usage(duration, &finished)
        },
        remote: finished.remote,
        warm: warm.to_vec(),
    };
    record_success(context, id, action, result)
}

/// What a successful execution produced.
struct Produced {
    records: Vec<crate::store::OutputRecord>,
    trees: HashMap<usize, Tree>,
    /// Digests of stdout and stderr.
    logs: [Digest; 2],
    /// Whether stdout and stderr passed the capture limit (the digests cover what was kept).
    truncated: [bool; 2],
    duration: Duration,
    usage: crate::store::Usage,
    /// Set when a remote executor ran it.
    remote: Option<sandbox::RemoteRun>,
    /// The warm folders it ran with.
    warm: Vec<warm::Use>,
}

/// Signs the link, puts outputs into the workspace and the result into the action cache, in
/// that order: a cache entry exists only once everything it names is in place.
fn record_success(
    context: &Context,
    id: StepId,
    action: &ExecAction,
    produced: Produced,
) -> Result<(), Failure> {
    let (subjects, link) = link(context, id, action, &produced);
    let ran_remotely = (produced.remote.clone()).filter(|remote| !remote.cached);
    let Produced {
        records,
        trees,
        logs,
        duration,
        usage,
        ..
    } = produced;
    let envelope = commit(
        context,
        id,
        Commit {
            key: action.key,
            subjects,
            link,
            records,
            trees,
            logs,
            duration,
            usage,
        },
    )?;
    if let Some(remote) = ran_remotely {
        keep_link_remotely(context, id, &remote, &envelope);
    }
    Ok(())
}

/// Has the executor that ran the step keep its link beside its cached result; without it,
/// another machine runs the action again (it is told why).
fn keep_link_remotely(
    context: &Context,
    id: StepId,
    remote: &sandbox::RemoteRun,
    envelope: &attest::Envelope,
) {
    let step = &context.pipeline.steps[id];
    let kept = match (
        serde_json::to_vec_pretty(envelope),
        executor_for(context, step),
    ) {
        (Ok(bytes), Ok(executor)) => executor.keep_link(remote, &bytes, context.signer.key_id()),
        (Err(error), _) => Err(error.to_string()),
        (_, Err(_)) => Err("the run has no remote executor".to_owned()),
    };
    if let Err(error) = kept {
        context.reporter.emit(&Event::Warning {
            step: Some(step.name.clone()),
            message: format!(
                "could not keep the step's link in the remote ({error}); another machine will run the action again instead of taking the remote's cached result"
            ),
        });
    }
}

/// What a link lists as read: the inputs, the program, the host system, the toolchains.
fn materials(context: &Context, action: &ExecAction) -> Vec<ResourceDescriptor> {
    let mut materials: Vec<ResourceDescriptor> = action
        .inputs
        .iter()
        .filter(|input| input.material)
        .map(|input| ResourceDescriptor::named(input.path.clone(), &input.digest))
        .collect();
    if let Some((path, digest)) = &action.tool {
        let mut tool = ResourceDescriptor::named(path.clone(), digest);
        tool.uri = Some(format!("file://{path}"));
        tool.annotations = Some(serde_json::Map::from_iter([(
            "role".to_owned(),
            serde_json::Value::from("tool"),
        )]));
        materials.push(tool);
    }
    materials.push(context.host.material());
    for tool in &action.tools {
        let mut material = ResourceDescriptor::named(tool.mount_point.clone(), &tool.digest);
        material.uri = Some(format!("file://{}", tool.host.display()));
        material.annotations = Some(serde_json::Map::from_iter([
            ("role".to_owned(), serde_json::Value::from("toolchain")),
            ("digestOf".to_owned(), serde_json::Value::from("tree")),
        ]));
        materials.push(material);
    }
    materials
}

/// The link's subjects (each file made) and the link.
fn link(
    context: &Context,
    id: StepId,
    action: &ExecAction,
    produced: &Produced,
) -> (Vec<ResourceDescriptor>, Link) {
    let Produced {
        records,
        trees,
        logs: [stdout, stderr],
        truncated,
        remote,
        warm,
        ..
    } = produced;
    let step = &context.pipeline.steps[id];
    let subjects = subjects(records, trees);
    let materials = materials(context, action);
    let executor = executor_for(context, step).ok();
    let stream = |digest: &Digest, truncated: bool| link::Stream {
        sha256: digest.hex(),
        truncated_at: truncated.then_some(sandbox::LOG_LIMIT as u64),
    };
    let environment = link::Environment {
        variables: Some(action.env.iter().cloned().collect()),
        sandbox: Some(link::Sandbox {
            settings: context.sandbox_settings.clone(),
            network: step.network,
            executor: executor
                .map_or("local", |executor| executor.name())
                .to_owned(),
            limits: link::Limits {
                processes: step.limits.processes,
                memory: step.limits.memory,
                tmp: step.limits.tmp,
                output: step.limits.output,
                enforced_by: executor
                    .map_or("rlimits", |executor| executor.limits_by())
                    .to_owned(),
            },
            worker: remote.as_ref().map(|remote| remote.worker.clone()),
            remote_action: remote.as_ref().map(|remote| remote.action.clone()),
            remote_cache_hit: remote.as_ref().map(|remote| remote.cached),
        }),
        action_key: action.key.hex(),
        warm: (warm.iter())
            .map(|used| link::Warm {
                path: used.path.clone(),
                runs_before: used.runs_before,
            })
            .collect(),
        varied: (context.variation.aspects.iter())
            .map(|aspect| aspect.name().to_owned())
            .collect(),
        ..link::Environment::default()
    };
    let link = Link {
        name: step.name.clone(),
        command: action.argv.clone(),
        materials,
        byproducts: link::Byproducts {
            return_value: Some(0),
            stdout: Some(stream(stdout, truncated[0])),
            stderr: Some(stream(stderr, truncated[1])),
            ..link::Byproducts::default()
        },
        environment,
    };
    (subjects, link)
}

/// The step's usage: what the kernel counted when the sandbox here ran it (CPU time and the
/// peak memory of the whole tree by the step's cgroup when it had one of its own, else by
/// `wait4`: what pid 1 reaped, and the largest single process; block I/O by `wait4`), the
/// time alone when a remote did.
fn usage(duration: Duration, finished: &sandbox::Finished) -> crate::store::Usage {
    let Some(counted) = finished.rusage else {
        return crate::store::Usage {
            method: "remote".to_owned(),
            remote: (finished.remote.as_ref())
                .and_then(|remote| remote.usage.clone())
                .map(Box::new),
            ..crate::store::Usage::wall(duration)
        };
    };
    // The step's own cgroup counts the whole tree (what was still running when pid 1 exited
    // too); `wait4` only what pid 1 reaped.
    let group = finished.group;
    let cpu = (group.and_then(|group| group.cpu))
        .map_or((counted.user_us, counted.system_us), |cpu| {
            (cpu.user_us, cpu.system_us)
        });
    let peak = (group.and_then(|group| group.peak_memory)).unwrap_or(counted.peak_rss_bytes);
    let method = match group {
        Some(group) => match (group.cpu.is_some(), group.peak_memory.is_some()) {
            (true, true) => group.version.name().to_owned(),
            (true, false) => format!("{} cpu", group.version.name()),
            (false, true) => format!("wait4+{}", group.version.name()),
            (false, false) => "wait4".to_owned(),
        },
        None => "wait4".to_owned(),
    };
    crate::store::Usage {
        method,
        wall_us: crate::store::usage::micros(duration),
        cpu_user_us: Some(cpu.0),
        cpu_system_us: Some(cpu.1),
        peak_memory_bytes: Some(peak),
        block_read_bytes: Some(counted.block_read_bytes),
        block_written_bytes: Some(counted.block_written_bytes),
        output_bytes: None,
        processes_started: finished.processes,
        remote: None,
    }
}
