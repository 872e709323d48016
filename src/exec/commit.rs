//! The commit protocol every kind's execution ends with, and the cache's side of it: a
//! result's link stored and placed in the run folder, its outputs put into the workspace, the
//! action cache entry written last (so an entry exists only once everything it names is in
//! place); a cached result restored, checked and, under a new key, signed again.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::attest::{self, ResourceDescriptor};
use crate::digest::Digest;
use crate::exec::context::{Context, StepResult};
pub(crate) use crate::exec::failure::{Failure, StepError};
use crate::exec::outputs;
use crate::pipeline::StepId;
use crate::report::Event;
use crate::store::{ActionResult, Lookup, Tree};

pub(crate) fn store_log(context: &Context, bytes: &[u8]) -> Result<Digest, Failure> {
    context
        .store
        .cas
        .put_bytes(bytes)
        .map_err(|error| Failure::environment(format!("cannot store the step's log: {error}")))
}

/// A step's link as an in-toto Statement about `subjects`, signed with the run's key: the
/// one place every kind's link is signed.
fn sign_link(
    context: &Context,
    subjects: Vec<ResourceDescriptor>,
    link: attest::Link,
) -> attest::Envelope {
    let statement = attest::Statement::new(subjects, attest::LINK_PREDICATE_TYPE, link);
    // gantry's own types always serialise.
    let body = serde_json::to_vec(&statement).unwrap_or_default();
    attest::dsse::sign(attest::PAYLOAD_TYPE, &body, context.signer.as_ref())
}

/// A successful execution's result, ready to be signed and made visible.
pub(crate) struct Commit {
    pub key: Digest,
    /// What the link names as made (a folder output by each of its files).
    pub subjects: Vec<ResourceDescriptor>,
    pub link: attest::Link,
    pub records: Vec<crate::store::OutputRecord>,
    pub trees: HashMap<usize, Tree>,
    /// stdout and stderr.
    pub logs: [Digest; 2],
    pub duration: Duration,
    /// What running it used, as measured.
    pub usage: crate::store::Usage,
}

/// Signs and stores the link, puts outputs into the workspace (out-links, which Nix made,
/// excepted), places the link in the run folder, records the action result and publishes the
/// outputs, in that order: a cache entry exists only once everything it names is in place.
/// Every kind's execution ends here; the signed link is returned for a remote to keep.
pub(crate) fn commit(
    context: &Context,
    id: StepId,
    commit: Commit,
) -> Result<attest::Envelope, Failure> {
    let Commit {
        key,
        subjects,
        link,
        records,
        trees,
        logs,
        duration,
        usage,
    } = commit;
    let mut link = link;
    link.environment.template =
        (context.pipeline.steps[id].template.as_ref()).map(|used| attest::link::Template {
            name: used.pin.name.clone(),
            version: used.pin.version.clone(),
            sha256: used.pin.digest.hex(),
            uri: used.uri.clone(),
            publisher_key: used.publisher_key.clone(),
            step: used.step.clone(),
        });
    let envelope = sign_link(context, subjects, link);
    let bytes = serde_json::to_vec_pretty(&envelope)
        .map_err(|error| Failure::internal(error.to_string()))?;
    let attestation =
        context.store.cas.put_bytes(&bytes).map_err(|error| {
            Failure::environment(format!("cannot store the attestation: {error}"))
        })?;
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
        .map_err(|error| {
            Failure::environment(format!("cannot write output `{}`: {error}", record.path))
        })?;
    }
    place_attestation(context, id, &attestation)
        .map_err(|error| Failure::environment(format!("cannot write the attestation: {error}")))?;
    let result = ActionResult {
        key,
        step: context.pipeline.steps[id].name.clone(),
        outputs: records.clone(),
        attestation,
        signer: context.signer.key_id().to_owned(),
        stdout: logs[0],
        stderr: logs[1],
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        usage: Some(usage.clone()),
    };
    context
        .store
        .actions
        .put(&result)
        .map_err(|error| Failure::environment(format!("cannot write the action cache: {error}")))?;
    let _ = context.results[id].set(Arc::new(StepResult {
        outputs: records,
        trees,
        usage: Some(usage),
        cached: None,
    }));
    Ok(envelope)
}

pub struct CachedStep {
    pub(crate) result: StepResult,
}

/// Reuses a cached result when every blob it names is intact. A broken entry is reported and
/// dropped, and the step runs.
pub(crate) fn try_cache(context: &Context, id: StepId, key: &Digest) -> Option<CachedStep> {
    let step = &context.pipeline.steps[id];
    let warn = |message: String| {
        context.reporter.emit(&Event::Warning {
            step: Some(step.name.clone()),
            message,
        });
    };
    let cached = match context.store.actions.get_without_usage(key) {
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
                usage: cached.usage.clone(),
                cached: Some(*key),
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
    // Planning read the result without its usage: the new entry keeps it.
    if updated.usage.is_none() {
        updated.usage = context.store.actions.saved_usage(&cached.key);
    }
    // Only a shortcut for the next run: failing to record it costs one more signature.
    let _ = context.store.actions.put(&updated);
    Ok(())
}

/// Has the attestation blob put where the run's attestations live, by the run's placer (the
/// run waits for it before it writes its records): the attestation store beside the run
/// folder, by content, unless it is there already; a rebuild's own folder, by name (a
/// `gantry repro` folder is a hand-off of its own).
pub(crate) fn place_attestation(
    context: &Context,
    step: StepId,
    digest: &Digest,
) -> Result<(), crate::store::BlobError> {
    let target = if context.rebuild {
        let name = &context.pipeline.steps[step].name;
        context
            .run_dir
            .join(crate::attest::run_folder::StepFile::Link.name(name))
    } else if stored_intact(context, digest) {
        let _ = context.attestations[step].set(*digest);
        return Ok(());
    } else {
        stored_attestation(context, digest)
    };
    // Only once placed: a cached link that turns out broken leaves the step to run again,
    // and the link it makes then is the step's.
    place_blob(context, digest, target)?;
    let _ = context.attestations[step].set(*digest);
    Ok(())
}

/// Whether the attestation store holds `digest`'s file as the store's blob was recorded: the
/// stored file is a hard link to that blob, so one `fstatat` of it, compared with the stat
/// cache's entry for the blob, says both that it is there and that neither was changed.
fn stored_intact(context: &Context, digest: &Digest) -> bool {
    let Some(stat) = context.stored.stat(digest) else {
        return false;
    };
    context.store.cas.with_path(digest, |blob| {
        context
            .store
            .stats
            .blob_unchanged(blob, stat.size, stat.mtime, stat.inode)
    }) == Some(*digest)
}

/// Whether no attempt of any step failed (a retried step's failures are billed and recorded).
pub(crate) fn no_failed_attempts(context: &Context) -> bool {
    context
        .failed_attempts
        .lock()
        .is_ok_and(|attempts| attempts.is_empty())
}

/// Where the attestation with `digest` is stored for this run (not a rebuild).
pub(crate) fn stored_attestation(context: &Context, digest: &Digest) -> std::path::PathBuf {
    context.stored.path(digest)
}

/// Queues the store's blob `digest` to be linked (or copied) at `target`, once checked.
pub(crate) fn place_blob(
    context: &Context,
    digest: &Digest,
    target: std::path::PathBuf,
) -> Result<(), crate::store::BlobError> {
    context.store.check(digest)?;
    let source = context.store.cas.path(digest);
    context
        .placer
        .place(source, target.clone())
        .map_err(|message| crate::store::BlobError::Io {
            path: target,
            source: std::io::Error::other(message),
        })
}

/// (name, digest) of every attestation of the run so far: each placed step's link and its
/// run-folder document (an SBOM's attestation, a gate's verdict, a rollout's record, a scan),
/// or the document a failed step kept in the run folder. What `SHA256SUMS` lists of the
/// steps.
pub(crate) fn step_files(context: &Context) -> Vec<(String, Digest)> {
    use crate::attest::run_folder::StepFile;
    let mut files = Vec::new();
    for (id, step) in context.pipeline.steps.iter().enumerate() {
        if let Some(digest) = context.attestations[id].get() {
            files.push((StepFile::Link.name(&step.name), *digest));
        }
        let Some(document) = step.kind.run_folder_document() else {
            continue;
        };
        let name = document.file.name(&step.name);
        let record = context.results[id].get().and_then(|result| {
            (result.outputs.iter()).find(|record| record.path == document.output)
        });
        match record {
            Some(record) => files.push((name, record.digest)),
            None if document.kept_on_failure => {
                if let Ok(digest) = Digest::of_file(&context.run_dir.join(&name)) {
                    files.push((name, digest));
                }
            }
            None => {}
        }
    }
    files
}

/// Makes the run folder show the run so far, for a step that verifies this very run (a
/// rollout): every step file placed, and a `SHA256SUMS` naming them, which the run's records
/// replace at its end.
pub(crate) fn show_run_so_far(context: &Context) -> Result<(), String> {
    place_documents(context).map_err(|error| format!("cannot place an attestation: {error}"))?;
    context.placer.flush();
    let mut files = step_files(context);
    files.sort();
    let sums = files
        .iter()
        .fold(String::new(), |mut sums, (name, digest)| {
            let _ = writeln!(sums, "{}  {name}", digest.hex());
            sums
        });
    let path = context.run_dir.join(crate::attest::run_folder::SUMS);
    crate::atomic::write(&path, sums.as_bytes())
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))
}

/// Places each step's run-folder document (see [`step_files`]) with the links: by content
/// in the attestation store, or by name in a rebuild's folder.
pub(crate) fn place_documents(context: &Context) -> Result<(), crate::store::BlobError> {
    for (id, step) in context.pipeline.steps.iter().enumerate() {
        let Some(document) = step.kind.run_folder_document() else {
            continue;
        };
        let Some(record) = context.results[id].get().and_then(|result| {
            (result.outputs.iter()).find(|record| record.path == document.output)
        }) else {
            continue;
        };
        let target = if context.rebuild {
            context.run_dir.join(document.file.name(&step.name))
        } else {
            if stored_intact(context, &record.digest) {
                continue;
            }
            stored_attestation(context, &record.digest)
        };
        place_blob(context, &record.digest, target)?;
    }
    Ok(())
}

/// What a link lists as made: each file output, each file of a folder output (its links
/// aside: what they point to is listed itself).
pub(crate) fn subjects(
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

/// The last `lines` lines (at most `bytes` bytes) of a log.
pub(crate) fn tail(log: &[u8], lines: usize, bytes: usize) -> String {
    let text = String::from_utf8_lossy(&log[log.len().saturating_sub(bytes)..]);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
