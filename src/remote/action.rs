//! A sandbox request as an REAPI `Command` and `Action`. Pure. The worker (gantry's, or any
//! other) runs `arguments` in the input root with exactly these variables; gantry's worker
//! runs it in the same sandbox a local step gets, so the outputs are the same bytes.

use std::time::Duration;

use super::blob;
use super::reapi::{self, Action, Command, command::EnvironmentVariable};
use crate::exec::sandbox::Request;

/// The `Command` for `request`: the program, then `argv` after its first word (the program is
/// run by its path; a worker sets `argv[0]` itself), every variable sorted by name, and the
/// outputs sorted.
#[must_use]
pub fn command(request: &Request<'_>) -> Command {
    let mut arguments = vec![request.program.to_owned()];
    arguments.extend(request.argv.iter().skip(1).cloned());
    let mut environment_variables: Vec<EnvironmentVariable> = (request.env.iter())
        .map(|(name, value)| EnvironmentVariable {
            name: name.clone(),
            value: value.clone(),
        })
        .collect();
    environment_variables.sort_by(|left, right| left.name.cmp(&right.name));
    environment_variables.dedup_by(|later, earlier| later.name == earlier.name);
    let mut output_paths = request.outputs.to_vec();
    output_paths.sort();
    output_paths.dedup();
    Command {
        arguments,
        environment_variables,
        output_paths,
        ..Command::default()
    }
}

/// The `Action` running `command` on `input_root`, with the step's timeout.
#[must_use]
pub fn action(
    command: &reapi::Digest,
    input_root: &reapi::Digest,
    timeout: Option<Duration>,
) -> Action {
    Action {
        command_digest: Some(command.clone()),
        input_root_digest: Some(input_root.clone()),
        timeout: timeout.map(|timeout| bazel_remote_apis::google::protobuf::Duration {
            seconds: i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(timeout.subsec_nanos()).unwrap_or(0),
        }),
        ..Action::default()
    }
}

/// The action's digest and the blobs it names besides the input root's: (digest, bytes) of
/// the `Command` and the `Action`.
#[must_use]
pub fn encode(
    request: &Request<'_>,
    input_root: &reapi::Digest,
) -> (reapi::Digest, Vec<(reapi::Digest, Vec<u8>)>) {
    let (command_digest, command_bytes) = blob::encoded(&command(request));
    let (action_digest, action_bytes) =
        blob::encoded(&action(&command_digest, input_root, request.timeout));
    (
        action_digest.clone(),
        vec![
            (command_digest, command_bytes),
            (action_digest, action_bytes),
        ],
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::AtomicBool;

    use super::*;

    #[test]
    fn a_request_becomes_a_sorted_command_and_a_stable_action() {
        let cancel = AtomicBool::new(false);
        let argv = vec![
            "sh".to_owned(),
            "-c".to_owned(),
            "echo hi > out/a".to_owned(),
        ];
        let env = vec![
            ("PATH".to_owned(), "/usr/bin:/bin".to_owned()),
            ("HOME".to_owned(), "/home/build".to_owned()),
        ];
        let outputs = vec!["out/b".to_owned(), "out/a".to_owned()];
        let request = Request {
            argv: &argv,
            program: "/bin/sh",
            env: &env,
            work_dir: Path::new("/tmp"),
            inputs: &[],
            tools: &[],
            network: false,
            timeout: Some(Duration::from_secs(90)),
            cancel: &cancel,
            warm: &[],
            outputs: &outputs,
            limits: crate::pipeline::model::Limits::default(),
            cache: None,
        };
        let command = command(&request);
        assert_eq!(command.arguments, ["/bin/sh", "-c", "echo hi > out/a"]);
        let names: Vec<&str> = (command.environment_variables.iter())
            .map(|variable| variable.name.as_str())
            .collect();
        assert_eq!(names, ["HOME", "PATH"]);
        assert_eq!(command.output_paths, ["out/a", "out/b"]);
        let root = blob::of_bytes(b"");
        let (first, blobs) = encode(&request, &root);
        let (again, _) = encode(&request, &root);
        assert_eq!(first, again);
        assert_eq!(blobs.len(), 2);
        assert_eq!(blobs[1].0, first);
    }
}
