//! A command as the engine runs it: its program, environment and inputs decided and keyed
//! (`ExecAction`), a scratch folder with its inputs in place, and the executor (this machine's
//! sandbox or the remote) that runs it. Exec steps and gates' drills run commands.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::context::Context;
use crate::exec::failure::Failure;
use crate::exec::inputs::{self, InputFile};
use crate::exec::program::{self, Program};
use crate::exec::sandbox;
use crate::exec::warm;
use crate::pipeline::StepId;
use crate::pipeline::model::Placement;

/// Everything about a command's action that decides its result.
pub struct ExecAction {
    pub(crate) key: Digest,
    pub(crate) argv: Vec<String>,
    pub(crate) program: Program,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) inputs: Vec<InputFile>,
    pub(crate) tool: Option<(String, Digest)>,
    /// The step's `[tools]`, mounted read-only at their mount points.
    pub(crate) tools: Vec<crate::exec::tools::Resolved>,
    /// The step's warm folders (`warm = [...]`), relative to the build folder.
    pub(crate) warm: Vec<String>,
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
    let mut env = program::environment(
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
        program::put_tools_on_path(&mut env, &tools);
    }
    let mounts: Vec<program::ToolMount> = (tools.iter())
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
    let outputs: Vec<(&str, bool)> = (step.outputs.iter())
        .map(|output| (output.path.as_str(), output.directory))
        .collect();
    let tool_digests: Vec<(&str, &Digest)> = (tools.iter())
        .map(|tool| (tool.mount_point.as_str(), &tool.digest))
        .collect();
    let key = command_key(&CommandKey {
        kind: step.kind.name(),
        sandbox: &context.sandbox_settings,
        network: step.network,
        program: program.exec_path(),
        argv: &exec.argv,
        env: &env,
        inputs: &inputs,
        host_program: tool.as_ref().map(|(path, digest)| (path.as_str(), digest)),
        tools: &tool_digests,
        host: &context.host.digest,
        outputs: &outputs,
        template: step.template.as_ref().map(|template| &template.pin.digest),
    });
    Ok(ExecAction {
        key,
        argv: exec.argv.clone(),
        program,
        env,
        inputs,
        tool,
        tools,
        warm: exec.warm.clone(),
    })
}

/// Bump when what a command's result is made of changes in a way its key does not show.
const VERSION: u32 = 1;

/// Everything a command's result depends on: what [`prepare_command`] gathered.
pub(crate) struct CommandKey<'a> {
    /// `exec`, or `gate` for a drill.
    pub kind: &'a str,
    /// The sandbox's settings, as the link records them.
    pub sandbox: &'a str,
    pub network: bool,
    pub program: &'a str,
    pub argv: &'a [String],
    pub env: &'a [(String, String)],
    pub inputs: &'a [InputFile],
    /// A program from the host (not an input or a toolchain), by its path and digest.
    pub host_program: Option<(&'a str, &'a Digest)>,
    /// `[tools]` toolchains, by mount point and tree digest.
    pub tools: &'a [(&'a str, &'a Digest)],
    /// The host system the step sees (`exec::host`).
    pub host: &'a Digest,
    /// The declared outputs, and whether each is a folder.
    pub outputs: &'a [(&'a str, bool)],
    /// The pack of the template the step was expanded from.
    pub template: Option<&'a Digest>,
}

pub(crate) fn command_key(parts: &CommandKey<'_>) -> Digest {
    let mut key = ActionKey::new(parts.kind, VERSION);
    key.template(parts.template);
    key.text("sandbox", parts.sandbox)
        .text("network", if parts.network { "network" } else { "offline" })
        .text("program", parts.program)
        .texts("argv", parts.argv.iter().map(String::as_str))
        .texts(
            "env",
            (parts.env.iter()).flat_map(|(name, value)| [name.as_str(), value.as_str()]),
        );
    for input in parts.inputs {
        key.input(&input.path, &input.digest);
    }
    if let Some((path, digest)) = parts.host_program {
        key.text("host program", path)
            .digest("host program digest", digest);
    }
    for (mount, digest) in parts.tools {
        key.text("toolchain", mount)
            .digest("toolchain digest", digest);
    }
    key.digest("host", parts.host);
    for (path, folder) in parts.outputs {
        key.text(
            if *folder {
                "output folder"
            } else {
                "output file"
            },
            path,
        );
    }
    key.finish()
}

/// A scratch folder with the action's inputs in place and its outputs' folders made.
pub(crate) fn take_slot<'a>(
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
        .map_err(|error| {
            Failure::environment(format!("cannot prepare the step's scratch folder: {error}"))
        })
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
pub(crate) fn placement(context: &Context, step: &crate::pipeline::Step) -> Placement {
    // Only exec steps may run elsewhere: gates' drills measure this machine.
    let default =
        matches!(step.kind, crate::pipeline::StepKind::Exec(_)) && context.remote.is_some();
    step.executor.unwrap_or(if default {
        Placement::Remote
    } else {
        Placement::Local
    })
}

pub(crate) fn executor_for<'a>(
    context: &'a Context,
    step: &crate::pipeline::Step,
) -> Result<&'a dyn crate::exec::executor::Executor, Failure> {
    match (placement(context, step), &context.remote) {
        (Placement::Local, _) => context.executor.get().map_err(Failure::environment),
        (Placement::Remote, Some(remote)) => remote.get().map_err(Failure::environment),
        (Placement::Remote, None) => Err(Failure::input(format!(
            "step `{}` runs on the remote (`executor = \"remote\"`), but the run has none: add `[executor] remote = \"grpc://HOST:PORT\"` to the pipeline or pass --remote",
            step.name
        ))),
    }
}

pub(crate) fn sandboxed(
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
    let finished = finished.map_err(|error| Failure::environment(error.to_string()))?;
    Ok((finished, duration))
}

/// The first input whose bytes may no longer be those hashed into the action key: its stat
/// data moved since it was hashed and its content hashes differently now. The step read the
/// file live (a bind mount), so what it made cannot be vouched for by the recorded digest.
pub(crate) fn changed_input(context: &Context, action: &ExecAction) -> Option<String> {
    let stats = &context.store.stats;
    (action.inputs.iter())
        .filter(|input| input.link.is_none())
        .find(|input| {
            !stats.unchanged(&input.host) && Digest::of_file(&input.host).ok() != Some(input.digest)
        })
        .map(|input| input.path.clone())
}

/// `, after it reached its memory limit of 8GiB (limits.memory)`, or nothing.
pub(crate) fn limit_reached(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A command's parts, owned, so that a test can change one.
    #[derive(Clone)]
    struct Parts {
        kind: &'static str,
        sandbox: String,
        network: bool,
        program: String,
        argv: Vec<String>,
        env: Vec<(String, String)>,
        inputs: Vec<(String, Digest)>,
        host_program: Option<(String, Digest)>,
        tools: Vec<(String, Digest)>,
        host: Digest,
        outputs: Vec<(String, bool)>,
    }

    fn key_of(parts: &Parts) -> Digest {
        let inputs: Vec<InputFile> = (parts.inputs.iter())
            .map(|(path, digest)| InputFile {
                path: path.clone(),
                host: std::path::PathBuf::from(path),
                digest: *digest,
                link: None,
                material: true,
            })
            .collect();
        let tools: Vec<(&str, &Digest)> = (parts.tools.iter())
            .map(|(mount, digest)| (mount.as_str(), digest))
            .collect();
        let outputs: Vec<(&str, bool)> = (parts.outputs.iter())
            .map(|(path, folder)| (path.as_str(), *folder))
            .collect();
        command_key(&CommandKey {
            kind: parts.kind,
            sandbox: &parts.sandbox,
            network: parts.network,
            program: &parts.program,
            argv: &parts.argv,
            env: &parts.env,
            inputs: &inputs,
            host_program: (parts.host_program.as_ref())
                .map(|(path, digest)| (path.as_str(), digest)),
            tools: &tools,
            host: &parts.host,
            outputs: &outputs,
            template: None,
        })
    }

    type Change = (&'static str, fn(&mut Parts));

    /// What changes a command's key: every part of it, each on its own. What is not a part
    /// (the step's name, description, timeout, retries, limits) cannot change it.
    #[test]
    fn each_part_of_a_command_changes_its_key() {
        let digest = |text: &str| Digest::of_bytes(text.as_bytes());
        let base = Parts {
            kind: "exec",
            sandbox: "standard".into(),
            network: false,
            program: "/bin/sh".into(),
            argv: vec!["sh".into(), "-c".into(), "make".into()],
            env: vec![("LANG".into(), "C.UTF-8".into())],
            inputs: vec![("src/a.c".into(), digest("a"))],
            host_program: Some(("/bin/sh".into(), digest("sh"))),
            tools: vec![("/tools/rust".into(), digest("rust"))],
            host: digest("host"),
            outputs: vec![("out/a".into(), false)],
        };
        let changes: [Change; 14] = [
            ("the kind", |parts| {
                parts.kind = "gate";
            }),
            ("the sandbox", |parts| {
                parts.sandbox = "varied".into();
            }),
            ("the network", |parts| {
                parts.network = true;
            }),
            ("the program", |parts| {
                parts.program = "/bin/bash".into();
            }),
            ("an argument", |parts| {
                parts.argv[2] = "make test".into();
            }),
            ("the arguments' split", |parts| {
                parts.argv = vec!["sh".into(), "-c make".into(), String::new()];
            }),
            ("a variable", |parts| {
                parts.env[0].1 = "C".into();
            }),
            ("an input's bytes", |parts| {
                parts.inputs[0].1 = Digest::of_bytes(b"b");
            }),
            ("an input's path", |parts| {
                parts.inputs[0].0 = "src/b.c".into();
            }),
            ("the host program", |parts| {
                parts.host_program = Some(("/bin/sh".into(), Digest::of_bytes(b"new sh")));
            }),
            ("a toolchain", |parts| {
                parts.tools[0].1 = Digest::of_bytes(b"new rust");
            }),
            ("the host system", |parts| {
                parts.host = Digest::of_bytes(b"upgraded");
            }),
            ("an output's path", |parts| {
                parts.outputs[0].0 = "out/b".into();
            }),
            ("an output's type", |parts| {
                parts.outputs[0].1 = true;
            }),
        ];
        let base_key = key_of(&base);
        assert_eq!(
            base_key,
            key_of(&base.clone()),
            "the same parts, the same key"
        );
        for (what, change) in changes {
            let mut changed = base.clone();
            change(&mut changed);
            assert_ne!(key_of(&changed), base_key, "{what} does not change the key");
        }
    }
}
