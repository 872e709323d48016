//! The remote executor: one sandbox request as an REAPI action. The input root is built from
//! the step's scratch folder (inputs by content, the folders its outputs go into), the remote
//! action cache is asked first, only missing blobs are uploaded, `Execute` is followed to the
//! end, and the outputs are written back into the scratch folder, each checked against its
//! digest, where the engine collects them as it does after a local run.

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bazel_remote_apis::google::longrunning::operation;
use bazel_remote_apis::google::longrunning::operations_client::OperationsClient;
use bazel_remote_apis::google::longrunning::{CancelOperationRequest, Operation};
use prost::Message as _;
use tonic::codegen::tokio_stream::StreamExt as _;
use tonic::transport::Channel;

use super::cas::{Cas, Source, failed};
use super::reapi::action_cache_client::ActionCacheClient;
use super::reapi::execution_client::ExecutionClient;
use super::reapi::{
    self, ActionResult, ExecuteRequest, ExecuteResponse, GetActionResultRequest,
    UpdateActionResultRequest,
};
use super::tree::{self, Entry};
use super::{action, blob};
use crate::digest::Digest;
use crate::exec::executor::Executor;
use crate::exec::sandbox::{
    CacheTrust, Finished, Log, RemoteRun, Request, SandboxError, Termination,
};
use crate::exec::vouch;

/// How often a waiting step looks at its cancel flag.
const CANCEL_POLL: Duration = Duration::from_millis(100);

pub struct RemoteExecutor {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    cas: Cas,
    instance: String,
}

impl RemoteExecutor {
    /// An executor sending actions to `url` (`grpc://HOST:PORT`) for `instance`.
    pub fn new(url: &str, instance: &str) -> Result<Self, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("gantry-remote")
            .enable_all()
            .build()
            .map_err(|error| format!("cannot start the remote client: {error}"))?;
        let channel = {
            let _entered = runtime.enter();
            super::cas::channel(url)?
        };
        Ok(Self {
            cas: Cas::new(channel.clone(), instance),
            runtime,
            channel,
            instance: instance.to_owned(),
        })
    }

    async fn run(&self, request: &Request<'_>) -> Result<Finished, String> {
        let (entries, files) = input_entries(request)?;
        let input_root = tree::build(
            entries
                .iter()
                .map(|(path, entry)| (path.as_str(), entry.clone())),
        )?;
        let (action_digest, action_blobs) = action::encode(request, &input_root.root);

        // The action cache is untrusted storage: its result is used only when gantry's own
        // link for the action, kept beside it, vouches for it.
        let mut refused = None;
        let cached = match request.cache {
            Some(trust) => match self.cached(&action_digest).await? {
                Some(result) => match self.vouched(&action_digest, &result, trust).await {
                    Ok(()) => Some(result),
                    Err(reason) => {
                        refused = Some(reason);
                        None
                    }
                },
                None => None,
            },
            None => None,
        };
        let from_cache = cached.is_some();
        let result = if let Some(result) = cached {
            result
        } else {
            let mut blobs: Vec<(reapi::Digest, Source)> = (input_root.folders.into_values())
                .map(|(digest, bytes)| (digest, Source::Bytes(bytes)))
                .collect();
            blobs.extend(files);
            blobs.extend(
                action_blobs
                    .into_iter()
                    .map(|(digest, bytes)| (digest, Source::Bytes(bytes))),
            );
            self.cas.upload_missing(blobs).await?;
            match self.execute(&action_digest, request).await? {
                Executed::Done(response) => {
                    let status = response.status.unwrap_or_default();
                    let result = response.result;
                    if status.code == tonic::Code::DeadlineExceeded as i32 {
                        let mut finished =
                            self.finished(result.as_ref(), Termination::TimedOut).await;
                        finished.remote = Some(ran(&action_digest, result.as_ref(), false));
                        return Ok(finished);
                    }
                    if status.code != 0 {
                        return Err(format!(
                            "the remote could not run the action: {:?}: {}",
                            tonic::Code::from_i32(status.code),
                            status.message
                        ));
                    }
                    let result =
                        result.ok_or_else(|| "the remote's answer holds no result".to_owned())?;
                    if response.cached_result {
                        // Asked to skip its cache, the server answered from it anyway.
                        let trust = request.cache.ok_or_else(|| {
                            "the remote answered from its action cache though asked to run the action".to_owned()
                        })?;
                        self.vouched(&action_digest, &result, trust).await.map_err(|reason| {
                            format!("the remote answered from its action cache though asked to run the action, and {reason}")
                        })?;
                    }
                    result
                }
                Executed::Cancelled => {
                    return Ok(self.finished(None, Termination::Cancelled).await);
                }
            }
        };
        self.write_outputs(&result, request.work_dir).await?;
        let mut finished = self
            .finished(Some(&result), Termination::Exited(result.exit_code))
            .await;
        let mut remote = ran(&action_digest, Some(&result), from_cache);
        remote.refused = refused.map(|reason| {
            format!(
                "the remote action cache's result for action {} is not vouched for: {reason}; ran the action again",
                blob::display(&action_digest)
            )
        });
        finished.remote = Some(remote);
        Ok(finished)
    }

    /// Whether `result`, the action cache's answer for `action`, is vouched for: the link
    /// kept beside it ([`link_entry`]) verifies with a trusted key, names this step's action
    /// key and this remote action, and lists exactly the result's outputs.
    async fn vouched(
        &self,
        action: &reapi::Digest,
        result: &ActionResult,
        trust: CacheTrust<'_>,
    ) -> Result<(), String> {
        // One entry per key: machines with different keys sharing a remote keep their own.
        let mut kept = None;
        for verifier in trust.verifiers {
            let (entry, _) = link_entry(action, verifier.key_id());
            if let Some(found) = self.cached(&entry).await? {
                kept = Some(found);
                break;
            }
        }
        let kept = kept.ok_or("no link signed by a trusted key is kept beside it")?;
        let link = (kept.output_files.iter())
            .find(|file| file.path == LINK_FILE)
            .and_then(|file| file.digest.clone())
            .ok_or("the entry for its link names no link")?;
        if u64::try_from(link.size_bytes).map_or(true, |size| size > LINK_CAP) {
            return Err(format!(
                "its link is {} bytes, over the {LINK_CAP} a link may have",
                link.size_bytes
            ));
        }
        let bytes = (self.cas.download(&link).await)
            .map_err(|error| format!("its link cannot be fetched ({error})"))?;
        let vouched = vouch::link_subjects(
            &bytes,
            trust.verifiers,
            trust.key,
            Some(&blob::display(action)),
        )?;
        if vouched != self.subjects(result).await? {
            return Err("its outputs are not the subjects of its link".to_owned());
        }
        Ok(())
    }

    /// The (name, sha256) pairs a link lists for the result's outputs: a file by its path, a
    /// folder by each of its files. gantry never makes a symbolic link an output.
    async fn subjects(
        &self,
        result: &ActionResult,
    ) -> Result<std::collections::BTreeSet<(String, String)>, String> {
        if !result.output_symlinks.is_empty() {
            return Err("it holds symbolic links, which no step of gantry's outputs".to_owned());
        }
        let mut subjects: std::collections::BTreeSet<(String, String)> =
            (result.output_files.iter())
                .map(|file| {
                    let hash = file.digest.as_ref().map(|digest| digest.hash.clone());
                    (file.path.clone(), hash.unwrap_or_default())
                })
                .collect();
        for folder in &result.output_directories {
            let digest = (folder.tree_digest.as_ref())
                .ok_or_else(|| format!("its output folder `{}` has no tree", folder.path))?;
            let tree = reapi::Tree::decode(self.cas.download(digest).await?.as_slice())
                .map_err(|error| format!("its output folder `{}`: {error}", folder.path))?;
            for (path, entry) in tree::flatten(&tree)? {
                match entry {
                    Entry::Folder => {}
                    Entry::Symlink { .. } => {
                        return Err(format!(
                            "its output folder `{}` holds a symbolic link",
                            folder.path
                        ));
                    }
                    Entry::File { digest, .. } => {
                        subjects.insert((format!("{}/{path}", folder.path), digest.hash));
                    }
                }
            }
        }
        Ok(subjects)
    }

    /// Keeps the link gantry signed for a fresh run of `action` in the remote, under
    /// [`link_entry`], so that another machine can vouch for the action cache's result.
    async fn store_link(
        &self,
        action: &reapi::Digest,
        link: &[u8],
        key_id: &str,
    ) -> Result<(), String> {
        let (entry, blobs) = link_entry(action, key_id);
        let link_digest = blob::of_bytes(link);
        let mut blobs: Vec<(reapi::Digest, Source)> = (blobs.into_iter())
            .map(|(digest, bytes)| (digest, Source::Bytes(bytes)))
            .collect();
        blobs.push((link_digest.clone(), Source::Bytes(link.to_vec())));
        self.cas.upload_missing(blobs).await?;
        ActionCacheClient::new(self.channel.clone())
            .update_action_result(UpdateActionResultRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(entry),
                action_result: Some(ActionResult {
                    output_files: vec![reapi::OutputFile {
                        path: LINK_FILE.to_owned(),
                        digest: Some(link_digest),
                        ..reapi::OutputFile::default()
                    }],
                    ..ActionResult::default()
                }),
                ..UpdateActionResultRequest::default()
            })
            .await
            .map_err(|status| failed("keeping the link in the remote action cache", &status))?;
        Ok(())
    }

    /// The remote action cache's result for the action, if it has one.
    async fn cached(&self, action_digest: &reapi::Digest) -> Result<Option<ActionResult>, String> {
        let answer = ActionCacheClient::new(self.channel.clone())
            .get_action_result(GetActionResultRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(action_digest.clone()),
                inline_stdout: true,
                inline_stderr: true,
                ..GetActionResultRequest::default()
            })
            .await;
        match answer {
            Ok(result) => Ok(Some(result.into_inner())),
            Err(status) if status.code() == tonic::Code::NotFound => Ok(None),
            Err(status) => Err(failed("asking the remote action cache", &status)),
        }
    }

    /// Executes the action and follows its operation until it is done, or the step is
    /// cancelled (then the operation is cancelled too).
    async fn execute(
        &self,
        action_digest: &reapi::Digest,
        request: &Request<'_>,
    ) -> Result<Executed, String> {
        let mut stream = ExecutionClient::new(self.channel.clone())
            .max_decoding_message_size(64 << 20)
            .execute(ExecuteRequest {
                instance_name: self.instance.clone(),
                action_digest: Some(action_digest.clone()),
                // Its cache was asked first, and its answer vouched for or refused.
                skip_cache_lookup: true,
                ..ExecuteRequest::default()
            })
            .await
            .map_err(|status| failed("asking the remote to execute", &status))?
            .into_inner();
        let mut name = String::new();
        loop {
            let next = tokio::select! {
                next = stream.next() => next,
                () = tokio::time::sleep(CANCEL_POLL) => {
                    if request.cancel.load(Ordering::Relaxed) {
                        self.cancel(&name).await;
                        return Ok(Executed::Cancelled);
                    }
                    continue;
                }
            };
            let Some(operation) = next else {
                return Err(format!(
                    "the remote ended operation `{name}` before it was done"
                ));
            };
            let operation: Operation =
                operation.map_err(|status| failed("following the remote execution", &status))?;
            name.clone_from(&operation.name);
            if !operation.done {
                continue;
            }
            return match operation.result {
                Some(operation::Result::Response(any)) => {
                    ExecuteResponse::decode(any.value.as_slice())
                        .map(|response| Executed::Done(Box::new(response)))
                        .map_err(|error| {
                            format!("the remote's ExecuteResponse does not decode: {error}")
                        })
                }
                Some(operation::Result::Error(status)) => {
                    Err(format!("the remote execution failed: {}", status.message))
                }
                None => Err("the remote's operation is done but holds no result".to_owned()),
            };
        }
    }

    async fn cancel(&self, name: &str) {
        if name.is_empty() {
            return;
        }
        let _ = OperationsClient::new(self.channel.clone())
            .cancel_operation(CancelOperationRequest {
                name: name.to_owned(),
            })
            .await;
    }

    /// Writes the result's outputs into the scratch folder, each checked against its digest.
    async fn write_outputs(&self, result: &ActionResult, work: &Path) -> Result<(), String> {
        for file in &result.output_files {
            let path = inside(work, &file.path)?;
            let digest = file
                .digest
                .as_ref()
                .ok_or_else(|| format!("output `{}` has no digest", file.path))?;
            self.cas
                .download_to(digest, &path, file.is_executable)
                .await?;
        }
        for link in &result.output_symlinks {
            symlink(&link.target, &inside(work, &link.path)?)?;
        }
        for folder in &result.output_directories {
            let root = inside(work, &folder.path)?;
            let digest = folder
                .tree_digest
                .as_ref()
                .ok_or_else(|| format!("output folder `{}` has no tree", folder.path))?;
            let tree = reapi::Tree::decode(self.cas.download(digest).await?.as_slice())
                .map_err(|error| format!("output folder `{}`: {error}", folder.path))?;
            std::fs::create_dir_all(&root)
                .map_err(|error| format!("cannot make `{}`: {error}", root.display()))?;
            for (path, entry) in tree::flatten(&tree)? {
                let target = root.join(&path);
                match entry {
                    Entry::Folder => std::fs::create_dir_all(&target)
                        .map_err(|error| format!("cannot make `{}`: {error}", target.display()))?,
                    Entry::Symlink { target: to } => symlink(&to, &target)?,
                    Entry::File { digest, executable } => {
                        self.cas.download_to(&digest, &target, executable).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// What the engine sees: how it ended and what it printed (inline, else from the CAS).
    async fn finished(&self, result: Option<&ActionResult>, termination: Termination) -> Finished {
        let Some(result) = result else {
            return Finished {
                termination,
                stdout: Log::default(),
                stderr: Log::default(),
                remote: None,
                reached: None,
                rusage: None,
                group: None,
                processes: None,
            };
        };
        let stdout = self
            .log(&result.stdout_raw, result.stdout_digest.as_ref())
            .await;
        let stderr = self
            .log(&result.stderr_raw, result.stderr_digest.as_ref())
            .await;
        Finished {
            termination,
            stdout,
            stderr,
            remote: None,
            reached: None,
            rusage: None,
            group: None,
            processes: None,
        }
    }

    async fn log(&self, raw: &[u8], digest: Option<&reapi::Digest>) -> Log {
        let bytes = match digest {
            Some(digest) if raw.is_empty() && digest.size_bytes > 0 => {
                self.cas.download(digest).await.unwrap_or_else(|error| {
                    format!("(the log could not be fetched: {error})").into_bytes()
                })
            }
            _ => raw.to_vec(),
        };
        Log {
            bytes,
            truncated: false,
        }
    }
}

/// The action and the worker its result names.
fn ran(action: &reapi::Digest, result: Option<&ActionResult>, cached: bool) -> RemoteRun {
    let metadata = result.and_then(|result| result.execution_metadata.as_ref());
    RemoteRun {
        action: blob::display(action),
        worker: metadata
            .map(|metadata| metadata.worker.clone())
            .unwrap_or_default(),
        cached,
        refused: None,
        usage: metadata.map(|metadata| worker_usage(metadata, cached)),
    }
}

/// The worker's spans from its `ExecutedActionMetadata`: each only when both its timestamps
/// are there and in order.
fn worker_usage(
    metadata: &reapi::ExecutedActionMetadata,
    cached: bool,
) -> crate::store::usage::Remote {
    let micros = |timestamp: Option<&bazel_remote_apis::google::protobuf::Timestamp>| {
        let timestamp = timestamp?;
        i128::from(timestamp.seconds)
            .checked_mul(1_000_000)?
            .checked_add(i128::from(timestamp.nanos) / 1000)
    };
    let span = |start: Option<&bazel_remote_apis::google::protobuf::Timestamp>,
                end: Option<&bazel_remote_apis::google::protobuf::Timestamp>| {
        let length = micros(end)?.checked_sub(micros(start)?)?;
        u64::try_from(length).ok()
    };
    crate::store::usage::Remote::with_spans(
        metadata.worker.clone(),
        cached,
        [
            span(
                metadata.queued_timestamp.as_ref(),
                metadata.worker_start_timestamp.as_ref(),
            ),
            span(
                metadata.input_fetch_start_timestamp.as_ref(),
                metadata.input_fetch_completed_timestamp.as_ref(),
            ),
            span(
                metadata.execution_start_timestamp.as_ref(),
                metadata.execution_completed_timestamp.as_ref(),
            ),
            span(
                metadata.output_upload_start_timestamp.as_ref(),
                metadata.output_upload_completed_timestamp.as_ref(),
            ),
        ],
    )
}

/// The name of the link in its action cache entry.
const LINK_FILE: &str = "link.intoto.json";

/// The most bytes a kept link may have (a link lists a step's inputs and outputs).
const LINK_CAP: u64 = 16 << 20;

/// Where gantry keeps the link that key `key_id` signed for `action` in the remote action
/// cache: the entry of a made-up action (its blobs, also stored, returned second) that does
/// nothing and whose salt names the real action and the key. REAPI has no place for a
/// client's signature beside a result; the action cache takes any action, and servers check
/// that its blobs exist.
fn link_entry(
    action: &reapi::Digest,
    key_id: &str,
) -> (reapi::Digest, Vec<(reapi::Digest, Vec<u8>)>) {
    let (command, command_bytes) = blob::encoded(&reapi::Command {
        arguments: vec!["true".to_owned()],
        ..reapi::Command::default()
    });
    let (root, root_bytes) = blob::encoded(&reapi::Directory::default());
    let (entry, entry_bytes) = blob::encoded(&reapi::Action {
        command_digest: Some(command.clone()),
        input_root_digest: Some(root.clone()),
        do_not_cache: false,
        salt: format!(
            "gantry link for action {} signed by key {key_id}",
            blob::display(action)
        )
        .into_bytes(),
        ..reapi::Action::default()
    });
    let blobs = vec![
        (command, command_bytes),
        (root, root_bytes),
        (entry.clone(), entry_bytes),
    ];
    (entry, blobs)
}

enum Executed {
    Done(Box<ExecuteResponse>),
    Cancelled,
}

impl Executor for RemoteExecutor {
    fn execute(&self, request: &Request<'_>) -> Result<Finished, SandboxError> {
        if request.network {
            return Err(SandboxError::Remote(
                "a step with `network = true` cannot run remotely: a worker gives actions no network; give it `executor = \"local\"`".to_owned(),
            ));
        }
        if !request.tools.is_empty() {
            return Err(SandboxError::Remote(
                "a step with `tools` cannot run remotely yet: a worker has no copy of the host's toolchain".to_owned(),
            ));
        }
        self.runtime
            .block_on(self.run(request))
            .map_err(SandboxError::Remote)
    }

    fn name(&self) -> &'static str {
        "remote"
    }

    fn keep_link(&self, run: &RemoteRun, link: &[u8], key_id: &str) -> Result<(), String> {
        let action = blob::parse_display(&run.action)
            .ok_or_else(|| format!("`{}` is not a remote action digest", run.action))?;
        self.runtime
            .block_on(self.store_link(&action, link, key_id))
    }
}

/// The input root's entries, from the scratch folder: each input placeholder as its host
/// file's content, symlinks as they are, folders (the outputs' among them) as folders. And
/// the files to upload, by digest.
#[expect(clippy::type_complexity)]
fn input_entries(
    request: &Request<'_>,
) -> Result<(Vec<(String, Entry)>, Vec<(reapi::Digest, Source)>), String> {
    let hosts: HashMap<&str, &Path> = (request.inputs.iter())
        .map(|(host, path)| (path.as_str(), host.as_path()))
        .collect();
    let mut entries = Vec::new();
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(request.work_dir).min_depth(1) {
        let entry = entry.map_err(|error| format!("reading the scratch folder: {error}"))?;
        let relative = entry
            .path()
            .strip_prefix(request.work_dir)
            .map_err(|error| error.to_string())?
            .to_string_lossy()
            .into_owned();
        let kind = entry.file_type();
        if kind.is_dir() {
            entries.push((relative, Entry::Folder));
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path())
                .map_err(|error| format!("cannot read link `{relative}`: {error}"))?;
            entries.push((
                relative,
                Entry::Symlink {
                    target: target.to_string_lossy().into_owned(),
                },
            ));
        } else {
            let source = hosts
                .get(relative.as_str())
                .copied()
                .unwrap_or(entry.path());
            let metadata = std::fs::metadata(source)
                .map_err(|error| format!("cannot read input `{relative}`: {error}"))?;
            let digest = Digest::of_file(source)
                .map_err(|error| format!("cannot read input `{relative}`: {error}"))?;
            let digest = blob::from(&digest, metadata.len());
            files.push((digest.clone(), Source::File(source.to_path_buf())));
            entries.push((
                relative,
                Entry::File {
                    digest,
                    executable: metadata.permissions().mode() & 0o100 != 0,
                },
            ));
        }
    }
    Ok((entries, files))
}

/// `path` under `work`, refusing anything that would leave it.
fn inside(work: &Path, path: &str) -> Result<std::path::PathBuf, String> {
    let relative = Path::new(path);
    let escapes = relative.is_absolute()
        || relative
            .components()
            .any(|part| !matches!(part, std::path::Component::Normal(_)));
    if escapes || path.is_empty() {
        return Err(format!(
            "the remote named output `{path}`, outside the build folder"
        ));
    }
    Ok(work.join(relative))
}

fn symlink(target: &str, path: &Path) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|error| format!("cannot make `{}`: {error}", parent.display()))?;
    }
    let _ = std::fs::remove_file(path);
    std::os::unix::fs::symlink(target, path)
        .map_err(|error| format!("cannot make link `{}`: {error}", path.display()))
}
