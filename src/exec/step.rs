//! One step, start to finish: resolve inputs, compute the action key, reuse a cached result
//! or run the step in the sandbox (with retries), store its outputs, sign its link.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rand_core::RngCore;

use crate::attest::{self, LINK_PREDICATE_TYPE, Link, PAYLOAD_TYPE, ResourceDescriptor, Statement};
use crate::digest::{Digest, DigestBuilder};
use crate::exec::context::{Context, StepResult};
use crate::exec::inputs::{self, InputFile};
use crate::exec::outputs;
use crate::exec::sandbox::{self, Termination};
use crate::exec::warm::{self, Lease};
use crate::kinds::exec::{self as exec_kind, Program};
use crate::kinds::gate as gate_kind;
use crate::kinds::nix as nix_kind;
use crate::kinds::rollout as rollout_kind;
use crate::kinds::sbom as sbom_kind;
use crate::kinds::sign as sign_kind;
use crate::pipeline::model::Placement;
use crate::pipeline::{StepId, StepKind};
use crate::report::{Event, FailureDetail};
use crate::store::{ActionResult, Lookup, Tree};

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
    Nix(nix_kind::NixAction),
    Sign(sign_kind::SignAction),
    Sbom(sbom_kind::SbomAction),
    Gate(gate_kind::GateAction),
    Rollout(rollout_kind::RolloutAction),
}

/// How an execution ended well: it ran, or (a Nix step, whose build Nix itself caches) it
/// found its attestation in the action cache.
pub enum Ran {
    Executed,
    Cached,
}

/// Everything about a command's action that decides its result.
pub struct ExecAction {
    pub(crate) key: Digest,
    argv: Vec<String>,
    program: Program,
    env: Vec<(String, String)>,
    inputs: Vec<InputFile>,
    tool: Option<(String, Digest)>,
    /// The step's `[tools]`, mounted read-only at their mount points.
    tools: Vec<crate::exec::tools::Resolved>,
    /// The step's warm folders (`warm = [...]`), relative to the build folder.
    warm: Vec<String>,
}

/// The first half of a step: settled without running anything, or an action to run.
pub enum Planned {
    Done(Outcome),
    /// Served from the cache: outputs and attestation are in place, every blob checked; the
    /// scheduler publishes the result with [`finish_cached`].
    Cached(Box<CachedStep>),
    Execute(Box<Action>),
}

pub struct CachedStep {
    result: StepResult,
}

/// Completes a cache hit: publishes its outputs to the steps that read them.
pub fn finish_cached(context: &Context, id: StepId, cached: CachedStep) -> Outcome {
    let _ = context.results[id].set(Arc::new(cached.result));
    Outcome::Cached
}

/// Resolves inputs, computes the action key and tries the cache. Cheap when nothing changed
/// (stat-cached digests, an in-memory index), so the scheduler runs it inline for a few ready
/// steps and in parallel batches for many; only executions take a `--jobs` slot.
pub fn plan(context: &Context, id: StepId) -> Planned {
    if let StepKind::Nix(_) = &context.pipeline.steps[id].kind {
        // Nix decides whether anything needs building; the build runs in a `--jobs` slot.
        return match nix_kind::plan(context, id) {
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
        StepKind::Sign(_) => sign_kind::plan(context, id).map(Action::Sign),
        StepKind::Sbom(_) => sbom_kind::plan(context, id).map(Action::Sbom),
        StepKind::Gate(_) => gate_kind::plan(context, id).map(Action::Gate),
        StepKind::Rollout(_) => rollout_kind::plan(context, id).map(Action::Rollout),
        StepKind::Exec(_) | StepKind::Nix(_) => prepare(context, id).map(Action::Exec),
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
        try_cache(context, id, &key)
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
            Action::Exec(action) => execute(context, id, action).map(|()| Ran::Executed),
            Action::Nix(action) => nix_kind::execute(context, id, action),
            Action::Sign(action) => sign_kind::execute(context, id, action).map(|()| Ran::Executed),
            Action::Sbom(action) => sbom_kind::execute(context, id, action).map(|()| Ran::Executed),
            Action::Gate(action) => gate_kind::execute(context, id, action).map(|()| Ran::Executed),
            Action::Rollout(action) => {
                rollout_kind::execute(context, id, action).map(|()| Ran::Executed)
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

fn prepare(context: &Context, id: StepId) -> Result<ExecAction, String> {
    let step = &context.pipeline.steps[id];
    let StepKind::Exec(exec) = &step.kind else {
        return Err(format!("internal: step `{}` is not a command", step.name));
    };
    prepare_command(context, id, exec)
}

/// Plans `exec` as step `id`'s command: its program, environment and inputs, and the key
/// they decide. Exec steps and drills share it.
pub(crate) fn prepare_command(
    context: &Context,
    id: StepId,
    exec: &crate::pipeline::ExecStep,
) -> Result<ExecAction, String> {
    let step = &context.pipeline.steps[id];
    let inputs = inputs::resolve(context, id)?;
    let mut env = exec_kind::environment(
        &step.env,
        &context.parameters,
        context
            .release
            .as_ref()
            .map(|release| release.version.as_str()),
        crate::exec::epoch::of_step(context, id),
        &context.variation,
    );
    let tools = (step.tools.iter())
        .map(|name| context.tools.get(name, &context.store.stats))
        .collect::<Result<Vec<_>, _>>()?;
    if !step.env.contains_key("PATH") {
        exec_kind::put_tools_on_path(&mut env, &tools);
    }
    let mounts: Vec<exec_kind::ToolMount> = (tools.iter())
        .map(|tool| (tool.mount_point.clone(), tool.host.clone()))
        .collect();
    let input_paths: Vec<String> = inputs.iter().map(|input| input.path.clone()).collect();
    let program = context
        .programs
        .resolve(exec, &env, &input_paths, &mounts)?;
    let tool = match &program {
        Program::System { resolved, .. } => {
            let digest = context
                .programs
                .digest(resolved, &context.store.stats)
                .map_err(|error| {
                    format!("cannot read program `{}`: {error}", resolved.display())
                })?;
            Some((resolved.to_string_lossy().into_owned(), digest))
        }
        Program::Input { .. } | Program::Tool { .. } => None,
    };
    let mut key = DigestBuilder::new("gantry-action/1");
    key.str(step.kind.name())
        .str(&context.sandbox_settings)
        .str(if step.network { "network" } else { "offline" });
    key.str(program.exec_path());
    for argument in &exec.argv {
        key.str(argument);
    }
    key.str("env");
    for (name, value) in &env {
        key.str(name).str(value);
    }
    key.str("inputs");
    for input in &inputs {
        key.str(&input.path).field(input.digest.as_bytes());
    }
    key.str("tool");
    if let Some((path, digest)) = &tool {
        key.str(path).field(digest.as_bytes());
    }
    key.str("tools");
    for tool in &tools {
        key.str(&tool.mount_point).field(tool.digest.as_bytes());
    }
    key.str("host").field(context.host.digest.as_bytes());
    key.str("outputs");
    for output in &step.outputs {
        key.str(&output.path)
            .str(if output.directory { "dir" } else { "file" });
    }
    Ok(ExecAction {
        key: key.finish(),
        argv: exec.argv.clone(),
        program,
        env,
        inputs,
        tool,
        tools,
        warm: exec.warm.clone(),
    })
}

/// Reuses a cached result when every blob it names is intact. A broken entry is reported and
/// dropped, and the step runs.
fn try_cache(context: &Context, id: StepId, key: &Digest) -> Option<CachedStep> {
    let step = &context.pipeline.steps[id];
    let warn = |message: String| {
        context.reporter.emit(&Event::Warning {
            step: Some(step.name.clone()),
            message,
        });
    };
    let cached = match context.store.actions.get(key) {
        Lookup::Hit(result) => result,
        Lookup::Miss => return None,
        Lookup::Corrupt => {
            warn(
                "its action cache entry was unreadable; discarded it and running the step"
                    .to_owned(),
            );
            return None;
        }
    };
    // The store is untrusted storage: an entry must name exactly the step's declared outputs,
    // and a folder listing only plain paths inside its folder, before anything is written.
    let declared = cached.outputs.len() == step.outputs.len()
        && (cached.outputs.iter().zip(&step.outputs)).all(|(record, output)| {
            record.path == output.path && record.directory == output.directory
        });
    if !declared {
        warn(format!(
            "its action cache entry {} names other outputs than the step declares; ignored it and running the step",
            key.hex()
        ));
        return None;
    }
    let restored = (|| {
        let mut trees = HashMap::new();
        for (index, record) in cached.outputs.iter().enumerate() {
            if record.directory {
                let bytes = context.store.cas.read(&record.digest)?;
                let tree: Tree = serde_json::from_slice(&bytes)
                    .ok()
                    .filter(Tree::is_plain)
                    .ok_or(crate::store::BlobError::Missing(record.digest))?;
                trees.insert(index, tree);
            }
        }
        if let Err(reason) = crate::exec::vouch::check(context, key, &cached, &trees) {
            return Ok(Err(reason));
        }
        for (index, record) in cached.outputs.iter().enumerate() {
            outputs::materialize(
                &context.pipeline.root,
                record,
                trees.get(&index),
                &context.store.cas,
                &context.store.stats,
            )?;
        }
        place_cached_attestation(context, id, &cached)?;
        Ok::<_, crate::store::BlobError>(Ok(trees))
    })();
    match restored {
        Ok(Err(reason)) => {
            warn(format!(
                "its action cache entry {} is not vouched for: {reason}; ignored it and running the step",
                key.hex()
            ));
            context.store.actions.remove(key);
            None
        }
        Ok(Ok(trees)) => Some(CachedStep {
            result: StepResult {
                outputs: cached.outputs.clone(),
                trees,
            },
        }),
        Err(error) => {
            warn(format!(
                "cached result unusable ({error}); running the step again"
            ));
            context.store.actions.remove(key);
            None
        }
    }
}

/// Places a cached result's attestation. One signed by another key (the run's key changed)
/// is signed again, statement unchanged, and the cache entry updated: a new key re-signs,
/// it does not rebuild.
pub(crate) fn place_cached_attestation(
    context: &Context,
    step: StepId,
    cached: &ActionResult,
) -> Result<(), crate::store::BlobError> {
    let key_id = context.signer.key_id();
    if cached.signer == key_id {
        return place_attestation(context, step, &cached.attestation);
    }
    let unusable = || crate::store::BlobError::Missing(cached.attestation);
    let bytes = context.store.cas.read(&cached.attestation)?;
    let envelope: attest::Envelope = serde_json::from_slice(&bytes).map_err(|_| unusable())?;
    let body = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &envelope.payload,
    )
    .map_err(|_| unusable())?;
    let signed = attest::dsse::sign(&envelope.payload_type, &body, context.signer.as_ref());
    let bytes = serde_json::to_vec_pretty(&signed).map_err(|_| unusable())?;
    let digest =
        context
            .store
            .cas
            .put_bytes(&bytes)
            .map_err(|source| crate::store::BlobError::Io {
                path: context.store.cas.path(&cached.attestation),
                source,
            })?;
    place_attestation(context, step, &digest)?;
    let mut updated = cached.clone();
    updated.attestation = digest;
    key_id.clone_into(&mut updated.signer);
    // Only a shortcut for the next run: failing to record it costs one more signature.
    let _ = context.store.actions.put(&updated);
    Ok(())
}

/// Has the attestation blob put into the run folder (a hard link when possible), by the
/// run's placer: the run waits for it before it writes its records.
pub(crate) fn place_attestation(
    context: &Context,
    step: StepId,
    digest: &Digest,
) -> Result<(), crate::store::BlobError> {
    context.store.check(digest)?;
    let _ = context.attestations[step].set(*digest);
    let name = &context.pipeline.steps[step].name;
    let target = context
        .run_dir
        .join(crate::attest::run_folder::StepFile::Link.name(name));
    let source = context.store.cas.path(digest);
    context
        .placer
        .place(source, target.clone())
        .map_err(|message| crate::store::BlobError::Io {
            path: target,
            source: std::io::Error::other(message),
        })
}

pub(crate) enum Failure {
    Step {
        error: String,
        exit_code: Option<i32>,
        detail: Option<FailureDetail>,
    },
    Cancelled,
}

pub(crate) fn step_failure(error: impl Into<String>) -> Failure {
    Failure::Step {
        error: error.into(),
        exit_code: None,
        detail: None,
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
        return Err(step_failure(format!(
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
    .map_err(|error| step_failure(format!("cannot bring in the step's warm folders: {error}")))
}

/// A scratch folder with the action's inputs in place and its outputs' folders made.
fn take_slot<'a>(
    context: &'a Context,
    id: StepId,
    action: &ExecAction,
) -> Result<crate::exec::scratch::Slot<'a>, Failure> {
    let step = &context.pipeline.steps[id];
    let files: Vec<&str> = action
        .inputs
        .iter()
        .filter(|input| input.link.is_none())
        .map(|input| input.path.as_str())
        .collect();
    let links: Vec<(&str, &str)> = action
        .inputs
        .iter()
        .filter_map(|input| Some((input.path.as_str(), input.link.as_deref()?)))
        .collect();
    let folders: Vec<&str> = step
        .outputs
        .iter()
        .filter_map(|output| {
            if output.directory {
                Some(output.path.as_str())
            } else {
                output.path.rfind('/').map(|slash| &output.path[..slash])
            }
        })
        .collect();
    context
        .slots
        .take(&files, &folders, &links)
        .map_err(|error| step_failure(format!("cannot prepare the step's scratch folder: {error}")))
}

/// Runs the action's command in the sandbox, in a scratch folder of its own, and says how it
/// ended and how long it took; nothing it writes is kept (a drill).
pub(crate) fn run_command(
    context: &Context,
    id: StepId,
    action: &ExecAction,
) -> Result<(sandbox::Finished, Duration), Failure> {
    let slot = take_slot(context, id, action)?;
    sandboxed(context, id, action, &slot.path, &[])
}

/// Where the step runs: its `executor`, else the remote when the run has one, else here.
fn placement(context: &Context, step: &crate::pipeline::Step) -> Placement {
    // Only exec steps may run elsewhere: gates' drills measure this machine.
    let default =
        matches!(step.kind, crate::pipeline::StepKind::Exec(_)) && context.remote.is_some();
    step.executor.unwrap_or(if default {
        Placement::Remote
    } else {
        Placement::Local
    })
}

fn executor_for<'a>(
    context: &'a Context,
    step: &crate::pipeline::Step,
) -> Result<&'a dyn crate::exec::executor::Executor, Failure> {
    match (placement(context, step), &context.remote) {
        (Placement::Local, _) => context.executor.get().map_err(step_failure),
        (Placement::Remote, Some(remote)) => remote.get().map_err(step_failure),
        (Placement::Remote, None) => Err(step_failure(format!(
            "step `{}` runs on the remote (`executor = \"remote\"`), but the run has none: add `[executor] remote = \"grpc://HOST:PORT\"` to the pipeline or pass --remote",
            step.name
        ))),
    }
}

fn sandboxed(
    context: &Context,
    id: StepId,
    action: &ExecAction,
    work: &Path,
    warm: &[warm::Use],
) -> Result<(sandbox::Finished, Duration), Failure> {
    let step = &context.pipeline.steps[id];
    let mounts: Vec<_> = action
        .inputs
        .iter()
        .filter(|input| input.link.is_none())
        .map(|input| (input.host.clone(), input.path.clone()))
        .collect();
    let tools: Vec<_> = (action.tools.iter())
        .map(|tool| (tool.host.clone(), tool.mount_point.clone()))
        .collect();
    let outputs: Vec<String> = (step.outputs.iter())
        .map(|output| output.path.clone())
        .collect();
    let warm: Vec<String> = warm.iter().map(|used| used.path.clone()).collect();
    let request = sandbox::Request {
        outputs: &outputs,
        warm: &warm,
        argv: &action.argv,
        program: action.program.exec_path(),
        env: &action.env,
        work_dir: work,
        inputs: &mounts,
        tools: &tools,
        network: step.network,
        timeout: step.timeout,
        cancel: &context.cancel,
        limits: step.limits,
        cache: (!context.rebuild).then_some(sandbox::CacheTrust {
            key: &action.key,
            verifiers: &context.cache_verifiers,
        }),
    };
    let started = Instant::now();
    let finished = executor_for(context, step)?.execute(&request);
    let duration = started.elapsed();
    let finished = finished.map_err(|error| step_failure(error.to_string()))?;
    Ok((finished, duration))
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
    let failure = |error: String, exit_code| Failure::Step {
        error,
        exit_code,
        detail: Some(FailureDetail {
            command: action.argv.clone(),
            stderr_tail: tail(&finished.stderr.bytes, 20, 4096),
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
    let (records, trees) = outputs::collect(step, work, &context.store.cas)
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
        remote: finished.remote,
        warm: warm.to_vec(),
    };
    record_success(context, id, action, result)
}

/// The first input whose bytes may no longer be those hashed into the action key: its stat
/// data moved since it was hashed and its content hashes differently now. The step read the
/// file live (a bind mount), so what it made cannot be vouched for by the recorded digest.
fn changed_input(context: &Context, action: &ExecAction) -> Option<String> {
    let stats = &context.store.stats;
    (action.inputs.iter())
        .filter(|input| input.link.is_none())
        .find(|input| {
            !stats.unchanged(&input.host) && Digest::of_file(&input.host).ok() != Some(input.digest)
        })
        .map(|input| input.path.clone())
}

/// `, after it reached its memory limit of 8GiB (limits.memory)`, or nothing.
fn limit_reached(
    step: &crate::pipeline::Step,
    reached: Option<sandbox::cgroup::Reached>,
) -> String {
    use crate::pipeline::limits::show_size;
    use sandbox::cgroup::Reached;
    match reached {
        Some(Reached::Memory) => format!(
            ", after it reached its memory limit of {} (`limits.memory`)",
            show_size(step.limits.memory)
        ),
        Some(Reached::Processes) => format!(
            ", after it reached its limit of {} processes (`limits.processes`)",
            step.limits.processes
        ),
        None => String::new(),
    }
}

pub(crate) fn store_log(context: &Context, bytes: &[u8]) -> Result<Digest, Failure> {
    context
        .store
        .cas
        .put_bytes(bytes)
        .map_err(|error| step_failure(format!("cannot store the step's log: {error}")))
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
    let envelope = link_envelope(context, id, action, &produced);
    let ran_remotely = (produced.remote.clone()).filter(|remote| !remote.cached);
    let Produced {
        records,
        trees,
        logs,
        duration,
        ..
    } = produced;
    commit(
        context,
        id,
        Commit {
            key: action.key,
            envelope: &envelope,
            records,
            trees,
            logs,
            duration,
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

/// A successful execution's result, ready to be made visible.
pub(crate) struct Commit<'a> {
    pub key: Digest,
    pub envelope: &'a attest::Envelope,
    pub records: Vec<crate::store::OutputRecord>,
    pub trees: HashMap<usize, Tree>,
    /// stdout and stderr.
    pub logs: [Digest; 2],
    pub duration: Duration,
}

/// Stores the link, puts outputs into the workspace (out-links, which Nix made, excepted),
/// places the link in the run folder, records the action result and publishes the outputs,
/// in that order: a cache entry exists only once everything it names is in place. Every
/// kind's execution ends here.
pub(crate) fn commit(context: &Context, id: StepId, commit: Commit<'_>) -> Result<(), Failure> {
    let Commit {
        key,
        envelope,
        records,
        trees,
        logs,
        duration,
    } = commit;
    let bytes =
        serde_json::to_vec_pretty(envelope).map_err(|error| step_failure(error.to_string()))?;
    let attestation = context
        .store
        .cas
        .put_bytes(&bytes)
        .map_err(|error| step_failure(format!("cannot store the attestation: {error}")))?;
    for (index, record) in records.iter().enumerate() {
        if record.link.is_some() {
            continue;
        }
        outputs::materialize(
            &context.output_root,
            record,
            trees.get(&index),
            &context.store.cas,
            &context.store.stats,
        )
        .map_err(|error| step_failure(format!("cannot write output `{}`: {error}", record.path)))?;
    }
    place_attestation(context, id, &attestation)
        .map_err(|error| step_failure(format!("cannot write the attestation: {error}")))?;
    let result = ActionResult {
        key,
        step: context.pipeline.steps[id].name.clone(),
        outputs: records.clone(),
        attestation,
        signer: context.signer.key_id().to_owned(),
        stdout: logs[0],
        stderr: logs[1],
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
    };
    context
        .store
        .actions
        .put(&result)
        .map_err(|error| step_failure(format!("cannot write the action cache: {error}")))?;
    let _ = context.results[id].set(Arc::new(StepResult {
        outputs: records,
        trees,
    }));
    Ok(())
}

/// What a link lists as made: each file output, each file of a folder output (its links
/// aside: what they point to is listed itself).
fn subjects(
    records: &[crate::store::OutputRecord],
    trees: &HashMap<usize, Tree>,
) -> Vec<ResourceDescriptor> {
    let mut subjects = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match trees.get(&index) {
            Some(tree) => subjects.extend(tree.regular_files().map(|file| {
                ResourceDescriptor::named(format!("{}/{}", record.path, file.path), &file.digest)
            })),
            None => subjects.push(ResourceDescriptor::named(
                record.path.clone(),
                &record.digest,
            )),
        }
    }
    subjects
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

fn link_envelope(
    context: &Context,
    id: StepId,
    action: &ExecAction,
    produced: &Produced,
) -> attest::Envelope {
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
    let variables: serde_json::Map<String, serde_json::Value> = action
        .env
        .iter()
        .map(|(name, value)| (name.clone(), value.clone().into()))
        .collect();
    let mut environment = serde_json::json!({
        "variables": variables,
        "sandbox": {
            "settings": context.sandbox_settings,
            "network": step.network,
            "executor": executor_for(context, step).map_or("local", |executor| executor.name()),
            "limits": {
                "processes": step.limits.processes,
                "memory": step.limits.memory,
                "tmp": step.limits.tmp,
                "output": step.limits.output,
                "enforcedBy": executor_for(context, step).map_or("rlimits", |executor| executor.limits_by()),
            },
        },
        "actionKey": action.key.hex(),
    });
    if let Some(remote) = remote {
        environment["sandbox"]["worker"] = remote.worker.clone().into();
        environment["sandbox"]["remoteAction"] = remote.action.clone().into();
        environment["sandbox"]["remoteCacheHit"] = remote.cached.into();
    }
    if !warm.is_empty() {
        environment["warm"] = (warm.iter())
            .map(|used| serde_json::json!({ "path": used.path, "runsBefore": used.runs_before }))
            .collect::<Vec<_>>()
            .into();
    }
    if !context.variation.aspects.is_empty() {
        environment["varied"] = context
            .variation
            .aspects
            .iter()
            .map(|aspect| aspect.name())
            .collect::<Vec<_>>()
            .into();
    }
    let mut byproducts = serde_json::json!({
        "return-value": 0,
        "stdout": { "sha256": stdout.hex() },
        "stderr": { "sha256": stderr.hex() },
    });
    for (stream, truncated) in ["stdout", "stderr"].into_iter().zip(*truncated) {
        if truncated {
            byproducts[stream]["truncatedAt"] = sandbox::LOG_LIMIT.into();
        }
    }
    let link = Link {
        name: step.name.clone(),
        command: action.argv.clone(),
        materials,
        byproducts: byproducts.as_object().cloned().unwrap_or_default(),
        environment: environment.as_object().cloned().unwrap_or_default(),
    };
    let statement = Statement::new(subjects, LINK_PREDICATE_TYPE, link);
    let body = serde_json::to_vec(&statement).unwrap_or_default();
    attest::dsse::sign(PAYLOAD_TYPE, &body, context.signer.as_ref())
}

/// The last `lines` lines (at most `bytes` bytes) of a log.
pub(crate) fn tail(log: &[u8], lines: usize, bytes: usize) -> String {
    let text = String::from_utf8_lossy(&log[log.len().saturating_sub(bytes)..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
