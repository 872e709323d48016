//! One leased action on `gantry worker`: fetch the `Command` and the input root (only the
//! blobs the stash lacks), lay the input root out in a scratch slot (files as read-only bind
//! mounts of stash blobs, as a local step sees its inputs), run the command in gantry's
//! sandbox, then upload the outputs, stdout and stderr and report the `ActionResult`.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use bazel_remote_apis::google::protobuf::{Any, Timestamp};
use bazel_remote_apis::google::rpc::Status;
use prost::Message as _;

use super::blob;
use super::bots::{self, Lease, LeaseState};
use super::cas::{Cas, Source};
use super::reapi::{
    self, Action, ActionResult, Command, Directory, ExecutedActionMetadata, OutputDirectory,
    OutputFile, OutputSymlink,
};
use super::stash::Stash;
use super::tree::{self, Entry};
use crate::digest::Digest;
use crate::exec::sandbox::{Finished, Profile, Request, Sandbox, SandboxError, Termination};
use crate::exec::scratch::Slots;

/// Why an action could not be run, as the status its lease is completed with. `INTERNAL`
/// and `UNAVAILABLE` make the server hand the action to a worker again.
#[derive(Debug)]
pub struct JobError {
    pub code: tonic::Code,
    pub message: String,
}

fn internal(message: String) -> JobError {
    JobError {
        code: tonic::Code::Internal,
        message,
    }
}

fn invalid(message: String) -> JobError {
    JobError {
        code: tonic::Code::InvalidArgument,
        message,
    }
}

/// What came of a lease.
pub enum Outcome {
    /// The lease, completed, to report: an `ActionResult` (whatever the exit code), or the
    /// status of why there is none.
    Completed { lease: Box<Lease>, summary: String },
    /// The server took the lease back (cancelled, or reassigned): nothing to report.
    Dropped,
}

/// What a worker needs to run actions: the CAS, its stash, scratch slots and the sandbox.
pub struct Runner {
    cas: Cas,
    stash: Stash,
    slots: Slots,
    sandbox: Sandbox,
    bot_id: String,
}

impl Runner {
    /// A runner keeping its stash and slots under `folder`; slots a killed worker left behind
    /// are removed first.
    pub fn new(cas: Cas, folder: &Path, bot_id: &str) -> Result<Self, String> {
        let slots = folder.join("slots").join(bot_id);
        if slots.exists() {
            crate::exec::scratch::remove(&slots)
                .map_err(|error| format!("cannot clear `{}`: {error}", slots.display()))?;
        }
        std::fs::create_dir_all(&slots)
            .map_err(|error| format!("cannot make `{}`: {error}", slots.display()))?;
        let stash = Stash::open(folder.join("stash"))
            .map_err(|error| format!("cannot make the worker's stash: {error}"))?;
        let sandbox = Sandbox::new(&folder.join("sandbox").join(bot_id), Profile::standard())
            .map_err(|error| format!("cannot prepare the sandbox: {error}"))?;
        Ok(Self {
            cas,
            stash,
            slots: Slots::without_trash(slots),
            sandbox,
            bot_id: bot_id.to_owned(),
        })
    }

    /// Runs the lease `id` whose payload is an `Action`.
    pub async fn run(
        self: Arc<Self>,
        id: String,
        payload: Option<Any>,
        cancel: Arc<AtomicBool>,
    ) -> Outcome {
        let completed = |status: Status, result: Option<ActionResult>| Lease {
            id: id.clone(),
            state: LeaseState::Completed as i32,
            status: Some(status),
            result: result.map(|result| Any {
                type_url: bots::type_url(bots::ACTION_RESULT_TYPE),
                value: result.encode_to_vec(),
            }),
            ..Lease::default()
        };
        match self.execute(payload, cancel).await {
            Ok(Ran::Cancelled) => Outcome::Dropped,
            Ok(Ran::Done { result, timed_out }) => {
                let summary = if timed_out {
                    "timed out".to_owned()
                } else {
                    format!("exit code {}", result.exit_code)
                };
                let status = if timed_out {
                    Status {
                        code: tonic::Code::DeadlineExceeded as i32,
                        message: "the action ran past its timeout".to_owned(),
                        details: Vec::new(),
                    }
                } else {
                    Status::default()
                };
                Outcome::Completed {
                    lease: Box::new(completed(status, Some(*result))),
                    summary,
                }
            }
            Err(error) => Outcome::Completed {
                summary: format!("{:?}: {}", error.code, error.message),
                lease: Box::new(completed(
                    Status {
                        code: error.code as i32,
                        message: error.message,
                        details: Vec::new(),
                    },
                    None,
                )),
            },
        }
    }

    async fn execute(
        self: Arc<Self>,
        payload: Option<Any>,
        cancel: Arc<AtomicBool>,
    ) -> Result<Ran, JobError> {
        let mut metadata = ExecutedActionMetadata {
            worker: self.bot_id.clone(),
            worker_start_timestamp: Some(timestamp()),
            input_fetch_start_timestamp: Some(timestamp()),
            ..ExecutedActionMetadata::default()
        };
        let action = decode_action(payload)?;
        let command_digest = (action.command_digest.as_ref())
            .ok_or_else(|| invalid("the action names no command".to_owned()))?;
        let command = Command::decode(
            self.cas
                .download(command_digest)
                .await
                .map_err(internal)?
                .as_slice(),
        )
        .map_err(|error| invalid(format!("the action's command does not decode: {error}")))?;
        let root = (action.input_root_digest.as_ref())
            .ok_or_else(|| invalid("the action names no input root".to_owned()))?;
        let inputs = self.fetch_input_root(root).await?;
        self.fill_stash(&inputs).await?;
        metadata.input_fetch_completed_timestamp = Some(timestamp());
        let timeout = (action.timeout.as_ref())
            .filter(|timeout| timeout.seconds > 0 || timeout.nanos > 0)
            .map(|timeout| {
                Duration::new(
                    u64::try_from(timeout.seconds).unwrap_or(0),
                    u32::try_from(timeout.nanos).unwrap_or(0),
                )
            });
        metadata.execution_start_timestamp = Some(timestamp());
        let runner = Arc::clone(&self);
        let (finished, produced) = tokio::task::spawn_blocking(move || {
            runner.run_in_slot(&command, &inputs, timeout, &cancel)
        })
        .await
        .map_err(|error| internal(format!("the action's thread failed: {error}")))??;
        metadata.execution_completed_timestamp = Some(timestamp());
        let timed_out = match finished.termination {
            Termination::Cancelled => return Ok(Ran::Cancelled),
            Termination::TimedOut => true,
            Termination::Exited(_) | Termination::Signaled(_) => false,
        };
        metadata.output_upload_start_timestamp = Some(timestamp());
        let Produced {
            mut result,
            mut blobs,
        } = produced.unwrap_or_default();
        let stdout = blob::of_bytes(&finished.stdout.bytes);
        let stderr = blob::of_bytes(&finished.stderr.bytes);
        blobs.push((stdout.clone(), Source::Bytes(finished.stdout.bytes)));
        blobs.push((stderr.clone(), Source::Bytes(finished.stderr.bytes)));
        self.cas.upload_missing(blobs).await.map_err(internal)?;
        metadata.output_upload_completed_timestamp = Some(timestamp());
        metadata.worker_completed_timestamp = Some(timestamp());
        result.exit_code = match finished.termination {
            Termination::Exited(code) => code,
            Termination::Signaled(signal) => 128 + signal,
            Termination::TimedOut | Termination::Cancelled => -1,
        };
        result.stdout_digest = Some(stdout);
        result.stderr_digest = Some(stderr);
        result.execution_metadata = Some(metadata);
        Ok(Ran::Done {
            result: Box::new(result),
            timed_out,
        })
    }

    /// Every entry of the input root, fetched folder level by folder level in batches.
    async fn fetch_input_root(
        &self,
        root: &reapi::Digest,
    ) -> Result<Vec<(String, Entry)>, JobError> {
        let mut folders: BTreeMap<String, Directory> = BTreeMap::new();
        let mut wanted = vec![root.clone()];
        while !wanted.is_empty() {
            let fetched = self.cas.download_many(&wanted).await.map_err(internal)?;
            let mut next = Vec::new();
            for digest in &wanted {
                let bytes = fetched.get(&digest.hash).map_or(&[][..], Vec::as_slice);
                let folder = Directory::decode(bytes).map_err(|error| {
                    invalid(format!(
                        "input folder {} does not decode: {error}",
                        blob::display(digest)
                    ))
                })?;
                for child in &folder.directories {
                    if let Some(digest) = &child.digest
                        && !folders.contains_key(&digest.hash)
                    {
                        next.push(digest.clone());
                    }
                }
                folders.insert(digest.hash.clone(), folder);
            }
            if folders.len() > MAX_FOLDERS {
                return Err(invalid(format!(
                    "the input root holds more than {MAX_FOLDERS} folders"
                )));
            }
            next.sort_by(|left, right| left.hash.cmp(&right.hash));
            next.dedup_by(|left, right| left.hash == right.hash);
            wanted = next;
        }
        let children: BTreeMap<String, &Directory> = folders
            .iter()
            .map(|(hash, folder)| (hash.clone(), folder))
            .collect();
        let top = children
            .get(&root.hash)
            .ok_or_else(|| internal("the input root was not fetched".to_owned()))?;
        tree::entries(top, &children).map_err(invalid)
    }

    /// Downloads the input files the stash lacks.
    async fn fill_stash(&self, inputs: &[(String, Entry)]) -> Result<(), JobError> {
        let missing: Vec<(reapi::Digest, bool)> = (inputs.iter())
            .filter_map(|(_, entry)| match entry {
                Entry::File { digest, executable }
                    if !self.stash.has(&digest.hash, *executable) =>
                {
                    Some((digest.clone(), *executable))
                }
                _ => None,
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let digests: Vec<reapi::Digest> =
            missing.iter().map(|(digest, _)| digest.clone()).collect();
        let fetched = self.cas.download_many(&digests).await.map_err(internal)?;
        for (digest, executable) in &missing {
            let bytes = fetched.get(&digest.hash).map_or(&[][..], Vec::as_slice);
            self.stash
                .put(&digest.hash, bytes, *executable)
                .map_err(|error| internal(format!("cannot keep an input blob: {error}")))?;
        }
        Ok(())
    }

    /// Lays out the input root in a slot, runs the command, and collects its outputs (none
    /// when it was cancelled). Blocking.
    fn run_in_slot(
        &self,
        command: &Command,
        inputs: &[(String, Entry)],
        timeout: Option<Duration>,
        cancel: &AtomicBool,
    ) -> Result<(Finished, Option<Produced>), JobError> {
        let layout = Layout::of(command, inputs, &self.stash)?;
        let files: Vec<&str> = layout
            .mounts
            .iter()
            .map(|(_, path)| path.as_str())
            .collect();
        let folders: Vec<&str> = layout.folders.iter().map(String::as_str).collect();
        let links: Vec<(&str, &str)> = (layout.links.iter())
            .map(|(path, target)| (path.as_str(), target.as_str()))
            .collect();
        let slot = self
            .slots
            .take(&files, &folders, &links)
            .map_err(|error| internal(format!("cannot prepare a scratch folder: {error}")))?;
        let request = Request {
            argv: &layout.argv,
            program: &layout.program,
            env: &layout.env,
            work_dir: &slot.path,
            inputs: &layout.mounts,
            tools: &[],
            network: false,
            timeout,
            cancel,
            warm: &[],
            outputs: &layout.outputs,
            limits: crate::pipeline::model::Limits::default(),
            // The local sandbox has no cache to consult.
            cache: None,
        };
        let finished = self.sandbox.run(&request).map_err(|error| match error {
            SandboxError::Exec { .. } => invalid(error.to_string()),
            other => internal(other.to_string()),
        })?;
        if finished.termination == Termination::Cancelled {
            return Ok((finished, None));
        }
        let base = slot.path.join(&command.working_directory);
        let produced = collect(&base, &layout.outputs, &self.stash)?;
        Ok((finished, Some(produced)))
    }
}

/// Deeper or wider than this, an input root is refused rather than fetched forever.
const MAX_FOLDERS: usize = 1 << 20;

enum Ran {
    Done {
        result: Box<ActionResult>,
        timed_out: bool,
    },
    Cancelled,
}

/// The outputs as the `ActionResult` names them, and the blobs to upload for them.
#[derive(Default)]
struct Produced {
    result: ActionResult,
    blobs: Vec<(reapi::Digest, Source)>,
}

/// How a command is laid out in a slot and run.
struct Layout {
    /// (stash file, path in the slot) of each input file.
    mounts: Vec<(PathBuf, String)>,
    folders: Vec<String>,
    links: Vec<(String, String)>,
    program: String,
    argv: Vec<String>,
    env: Vec<(String, String)>,
    /// Relative to the working directory.
    outputs: Vec<String>,
}

impl Layout {
    fn of(command: &Command, inputs: &[(String, Entry)], stash: &Stash) -> Result<Self, JobError> {
        let mut layout = Self {
            mounts: Vec::new(),
            folders: Vec::new(),
            links: Vec::new(),
            program: String::new(),
            argv: Vec::new(),
            env: (command.environment_variables.iter())
                .map(|variable| (variable.name.clone(), variable.value.clone()))
                .collect(),
            outputs: outputs_of(command)?,
        };
        for (path, entry) in inputs {
            match entry {
                Entry::File { digest, executable } => layout
                    .mounts
                    .push((stash.path(&digest.hash, *executable), path.clone())),
                Entry::Symlink { target } => layout.links.push((path.clone(), target.clone())),
                Entry::Folder => layout.folders.push(path.clone()),
            }
        }
        let working = command.working_directory.trim_end_matches('/');
        if !working.is_empty() {
            check_relative(working)?;
            layout.folders.push(working.to_owned());
        }
        // The worker makes the folders outputs go into, as the API asks.
        for output in &layout.outputs {
            let full = if working.is_empty() {
                output.clone()
            } else {
                format!("{working}/{output}")
            };
            if let Some((parent, _)) = full.rsplit_once('/') {
                layout.folders.push(parent.to_owned());
            }
        }
        let (program, rest) = command
            .arguments
            .split_first()
            .ok_or_else(|| invalid("the command has no arguments".to_owned()))?;
        if working.is_empty() {
            layout.program.clone_from(program);
            layout.argv.clone_from(&command.arguments);
        } else {
            // The sandbox starts in the input root; a working directory is entered by a shell
            // that then replaces itself with the command.
            "/bin/sh".clone_into(&mut layout.program);
            layout.argv = ["sh", "-c", "cd -- \"$0\" && exec \"$@\"", working, program]
                .iter()
                .map(|word| (*word).to_owned())
                .chain(rest.iter().cloned())
                .collect();
        }
        Ok(layout)
    }
}

/// The paths the command's outputs are at: `output_paths`, or for older clients
/// `output_files` and `output_directories`.
#[expect(
    deprecated,
    reason = "clients before REAPI 2.1 send only the deprecated fields"
)]
fn outputs_of(command: &Command) -> Result<Vec<String>, JobError> {
    let mut outputs: Vec<String> = if command.output_paths.is_empty() {
        (command.output_files.iter())
            .chain(&command.output_directories)
            .cloned()
            .collect()
    } else {
        command.output_paths.clone()
    };
    for output in &outputs {
        check_relative(output)?;
    }
    outputs.sort();
    outputs.dedup();
    Ok(outputs)
}

fn check_relative(path: &str) -> Result<(), JobError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        Err(invalid(format!(
            "`{path}` is not a relative path without `.` or `..`"
        )))
    } else {
        Ok(())
    }
}

/// The outputs under `base`: files and folders moved into the stash (from which they are
/// uploaded), symlinks as they are. An output the command did not make is left out.
fn collect(base: &Path, outputs: &[String], stash: &Stash) -> Result<Produced, JobError> {
    let mut produced = Produced::default();
    for output in outputs {
        let path = base.join(output);
        let Ok(metadata) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if metadata.is_symlink() {
            produced.result.output_symlinks.push(OutputSymlink {
                path: output.clone(),
                target: read_link(&path)?,
                node_properties: None,
            });
        } else if metadata.is_dir() {
            let folder = collect_folder(&path, stash, &mut produced.blobs)?;
            produced.result.output_directories.push(OutputDirectory {
                path: output.clone(),
                tree_digest: Some(folder.0),
                is_topologically_sorted: false,
                root_directory_digest: Some(folder.1),
            });
        } else if metadata.is_file() {
            let (digest, executable, kept) = keep(&path, stash)?;
            produced.blobs.push((digest.clone(), Source::File(kept)));
            produced.result.output_files.push(OutputFile {
                path: output.clone(),
                digest: Some(digest),
                is_executable: executable,
                ..OutputFile::default()
            });
        }
    }
    Ok(produced)
}

/// An output folder as a `Tree`: returns the digests of the tree and of its root folder, and
/// adds the tree, its folders and its files to `blobs`.
fn collect_folder(
    root: &Path,
    stash: &Stash,
    blobs: &mut Vec<(reapi::Digest, Source)>,
) -> Result<(reapi::Digest, reapi::Digest), JobError> {
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let entry =
            entry.map_err(|error| internal(format!("reading an output folder: {error}")))?;
        let relative = entry
            .path()
            .strip_prefix(root)
            .map_err(|error| internal(error.to_string()))?
            .to_string_lossy()
            .into_owned();
        let kind = entry.file_type();
        if kind.is_symlink() {
            let target = read_link(entry.path())?;
            entries.push((relative, Entry::Symlink { target }));
        } else if kind.is_dir() {
            entries.push((relative, Entry::Folder));
        } else if kind.is_file() {
            let (digest, executable, kept) = keep(entry.path(), stash)?;
            blobs.push((digest.clone(), Source::File(kept)));
            entries.push((relative, Entry::File { digest, executable }));
        }
    }
    let built = tree::build(
        entries
            .iter()
            .map(|(path, entry)| (path.as_str(), entry.clone())),
    )
    .map_err(internal)?;
    let root_digest = built.root.clone();
    let whole = tree::to_tree(&built).map_err(internal)?;
    let (tree_digest, tree_bytes) = blob::encoded(&whole);
    blobs.push((tree_digest.clone(), Source::Bytes(tree_bytes)));
    blobs.extend(
        (built.folders.into_values()).map(|(digest, bytes)| (digest, Source::Bytes(bytes))),
    );
    Ok((tree_digest, root_digest))
}

/// Hashes an output file and moves it into the stash: its digest, whether it is executable,
/// and where it now is.
fn keep(path: &Path, stash: &Stash) -> Result<(reapi::Digest, bool, PathBuf), JobError> {
    let unreadable = |error: std::io::Error| {
        internal(format!("cannot read output `{}`: {error}", path.display()))
    };
    let metadata = std::fs::metadata(path).map_err(unreadable)?;
    let executable = metadata.permissions().mode() & 0o100 != 0;
    let digest = Digest::of_file(path).map_err(unreadable)?;
    let kept = stash
        .adopt(path, &digest.hex(), executable)
        .map_err(|error| internal(format!("cannot keep output `{}`: {error}", path.display())))?;
    Ok((blob::from(&digest, metadata.len()), executable, kept))
}

fn read_link(path: &Path) -> Result<String, JobError> {
    std::fs::read_link(path)
        .map(|target| target.to_string_lossy().into_owned())
        .map_err(|error| internal(format!("cannot read link `{}`: {error}", path.display())))
}

fn decode_action(payload: Option<Any>) -> Result<Action, JobError> {
    let payload = payload.ok_or_else(|| invalid("the lease carries no action".to_owned()))?;
    if !payload.type_url.ends_with(bots::ACTION_TYPE) {
        return Err(invalid(format!(
            "the lease carries a `{}`, not an Action",
            payload.type_url
        )));
    }
    Action::decode(payload.value.as_slice())
        .map_err(|error| invalid(format!("the lease's Action does not decode: {error}")))
}

fn timestamp() -> Timestamp {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: i64::try_from(now.as_secs()).unwrap_or(i64::MAX),
        nanos: i32::try_from(now.subsec_nanos()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reapi::command::EnvironmentVariable;

    fn command(arguments: &[&str], working: &str, outputs: &[&str]) -> Command {
        Command {
            arguments: arguments.iter().map(|word| (*word).to_owned()).collect(),
            environment_variables: vec![EnvironmentVariable {
                name: "PATH".to_owned(),
                value: "/bin".to_owned(),
            }],
            output_paths: outputs.iter().map(|path| (*path).to_owned()).collect(),
            working_directory: working.to_owned(),
            ..Command::default()
        }
    }

    #[test]
    fn a_command_is_laid_out_with_its_inputs_mounted_and_output_folders_made() {
        let folder = tempfile::tempdir().unwrap();
        let stash = Stash::open(folder.path().to_owned()).unwrap();
        let inputs = vec![
            (
                "src/main.c".to_owned(),
                Entry::File {
                    digest: blob::of_bytes(b"int main;"),
                    executable: false,
                },
            ),
            ("src".to_owned(), Entry::Folder),
            (
                "cc".to_owned(),
                Entry::Symlink {
                    target: "/usr/bin/cc".to_owned(),
                },
            ),
        ];
        let layout = Layout::of(
            &command(&["/bin/sh", "-c", "true"], "", &["out/bin/app", "log"]),
            &inputs,
            &stash,
        )
        .unwrap();
        assert_eq!(layout.program, "/bin/sh");
        assert_eq!(layout.argv, ["/bin/sh", "-c", "true"]);
        assert_eq!(layout.mounts[0].1, "src/main.c");
        assert_eq!(
            layout.mounts[0].0,
            stash.path(&blob::of_bytes(b"int main;").hash, false)
        );
        assert!(layout.folders.contains(&"out/bin".to_owned()));
        assert_eq!(layout.links, [("cc".to_owned(), "/usr/bin/cc".to_owned())]);
        assert_eq!(layout.outputs, ["log", "out/bin/app"]);
    }

    #[test]
    fn a_working_directory_is_entered_and_bad_paths_are_refused() {
        let folder = tempfile::tempdir().unwrap();
        let stash = Stash::open(folder.path().to_owned()).unwrap();
        let layout =
            Layout::of(&command(&["./build", "x"], "pkg/", &["out"]), &[], &stash).unwrap();
        assert_eq!(layout.program, "/bin/sh");
        assert_eq!(
            layout.argv,
            [
                "sh",
                "-c",
                "cd -- \"$0\" && exec \"$@\"",
                "pkg",
                "./build",
                "x"
            ]
        );
        assert!(layout.folders.contains(&"pkg".to_owned()));
        for bad in ["../out", "/etc/passwd", "a/./b"] {
            let error = Layout::of(&command(&["x"], "", &[bad]), &[], &stash)
                .err()
                .unwrap();
            assert_eq!(error.code, tonic::Code::InvalidArgument);
            assert!(error.message.contains(bad), "{}", error.message);
        }
        let empty = Layout::of(&command(&[], "", &[]), &[], &stash)
            .err()
            .unwrap();
        assert!(empty.message.contains("no arguments"));
    }

    #[test]
    fn outputs_are_collected_into_the_stash_with_their_tree() {
        let folder = tempfile::tempdir().unwrap();
        let stash = Stash::open(folder.path().join("stash")).unwrap();
        let base = folder.path().join("slot");
        std::fs::create_dir_all(base.join("out/sub")).unwrap();
        std::fs::write(base.join("out/sub/a"), b"a").unwrap();
        std::fs::write(base.join("bin"), b"#!").unwrap();
        std::fs::set_permissions(base.join("bin"), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("bin", base.join("link")).unwrap();
        let outputs: Vec<String> = ["bin", "link", "missing", "out"]
            .iter()
            .map(|path| (*path).to_owned())
            .collect();
        let produced = collect(&base, &outputs, &stash).unwrap();
        let result = &produced.result;
        assert_eq!(result.output_files.len(), 1);
        assert!(result.output_files[0].is_executable);
        assert!(stash.has(&blob::of_bytes(b"#!").hash, true));
        assert_eq!(result.output_symlinks[0].target, "bin");
        let tree_digest = result.output_directories[0].tree_digest.clone().unwrap();
        let tree_bytes = produced
            .blobs
            .iter()
            .find_map(|(digest, source)| match source {
                Source::Bytes(bytes) if *digest == tree_digest => Some(bytes.clone()),
                _ => None,
            })
            .unwrap();
        let tree = reapi::Tree::decode(tree_bytes.as_slice()).unwrap();
        let paths: Vec<String> = tree::flatten(&tree)
            .unwrap()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(paths, ["sub", "sub/a"]);
    }
}
