//! Rebuilds: runs of (part of) the pipeline with a [`Rebuild`], each in a private cache, and
//! what `gantry repro` must clean up however it ends.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use rand_core::RngCore;

use crate::error::{Error, Result};
use crate::exec::variation::Variation;
use crate::keys::Signer;
use crate::pipeline::Pipeline;
use crate::report::Reporter;
use crate::repro::attested::{self, AttestedRun};
use crate::run::{Rebuild, RunOptions, RunSummary};

/// Runs rebuilds of one (selected) pipeline.
pub struct Rebuilder<'a> {
    pub pipeline: &'a Pipeline,
    pub signer: &'a Arc<dyn Signer>,
    /// Sign steps' keys.
    pub artifact_keys: &'a crate::exec::context::Keys,
    pub cargo_home: Option<&'a std::path::Path>,
    pub home: Option<&'a std::path::Path>,
    /// Never sources of a rebuild: the workspace's cache and attestation folders, and the
    /// outputs of steps left out by `--step`.
    pub skip: Vec<PathBuf>,
    /// Private to this `gantry repro`: caches, outputs, throwaway attestations.
    pub private: PathBuf,
    pub jobs: usize,
    /// The checked run's `--param` values and release: the rebuild's steps see what the
    /// original's saw.
    pub started_with: super::attested::StartedWith,
}

/// One finished rebuild.
pub struct Rebuilt {
    pub summary: RunSummary,
    /// Its link attestations, read back (empty when it was interrupted).
    pub run: AttestedRun,
    /// Its cache's blobs: the rebuilt bytes.
    pub cas: PathBuf,
}

/// How a rebuild is done.
pub struct Plan<'a> {
    pub variation: &'a Variation,
    /// Only these steps and what they depend on; everything when `None`.
    pub only: Option<&'a BTreeSet<String>>,
    /// Where its run folder goes.
    pub attestations: PathBuf,
    pub reporter: Reporter,
    pub scratch: Option<PathBuf>,
    /// Rebuild Nix steps with `nix build --rebuild`.
    pub nix_check: bool,
    /// Also write each attestation as a Sigstore bundle.
    pub bundles: bool,
}

impl Rebuilder<'_> {
    pub fn rebuild(&self, plan: Plan<'_>) -> Result<Rebuilt> {
        let (pipeline, mut skip) = match plan.only {
            Some(names) => select(self.pipeline, names, &self.skip)?,
            None => (self.pipeline.clone(), Vec::new()),
        };
        skip.extend(self.skip.iter().cloned());
        let private = self
            .private
            .join(format!("{:08x}", rand_core::OsRng.next_u32()));
        let summary = crate::run::run(
            pipeline,
            Box::new(Arc::clone(self.signer)),
            RunOptions {
                remote: None,
                trusted_cache_keys: Vec::new(),
                jobs: self.jobs,
                keep_going: true,
                attestations: plan.attestations,
                cache_dir: private.join("cache"),
                reporter: plan.reporter,
                rebuild: Some(Rebuild {
                    variation: plan.variation.clone(),
                    output_root: private.join("outputs"),
                    scratch: plan.scratch,
                    skip,
                    nix_check: plan.nix_check,
                }),
                artifact_keys: self.artifact_keys.clone(),
                cargo_home: self.cargo_home.map(std::path::Path::to_path_buf),
                parameters: self.started_with.parameters.clone(),
                builder_id: crate::attest::provenance::LOCAL_BUILDER_ID.to_owned(),
                bundles: plan.bundles,
                home: self.home.map(std::path::Path::to_path_buf),
                release: self.started_with.release.clone(),
                // A rebuild records no usage of its own.
                tenant: None,
            },
        )?;
        let own = crate::keys::EcdsaVerifier::from_pem(self.signer.public_key_pem())
            .map_err(Error::Internal)?;
        let run = if summary.interrupted_by.is_some() {
            AttestedRun::default()
        } else {
            attested::read_run(&summary.run_dir, &own)
                .map_err(|message| Error::Internal(format!("reading a rebuild back: {message}")))?
        };
        Ok(Rebuilt {
            summary,
            run,
            cas: private.join("cache").join("cas"),
        })
    }
}

/// The pipeline restricted to `names` and everything they depend on, and the outputs of the
/// steps left out (never sources of the rebuild).
pub fn select(
    pipeline: &Pipeline,
    names: &BTreeSet<String>,
    skip: &[PathBuf],
) -> Result<(Pipeline, Vec<PathBuf>)> {
    let skips: Vec<&Path> = skip.iter().map(PathBuf::as_path).collect();
    let graph = crate::run::plan(pipeline, &skips)?;
    let mut wanted = BTreeSet::new();
    let mut stack = Vec::new();
    for name in names {
        let id = pipeline.step_id(name).ok_or_else(|| {
            let known: Vec<&str> = pipeline
                .steps
                .iter()
                .map(|step| step.name.as_str())
                .collect();
            Error::Usage(format!(
                "no step `{name}` in the pipeline; its steps are: {}",
                known.join(", ")
            ))
        })?;
        stack.push(id);
    }
    while let Some(id) = stack.pop() {
        if wanted.insert(id) {
            stack.extend(graph.dependencies[id].iter().copied());
        }
    }
    let mut selected = pipeline.clone();
    selected.steps.clear();
    let mut left_out = Vec::new();
    for (id, step) in pipeline.steps.iter().enumerate() {
        if wanted.contains(&id) {
            selected.steps.push(step.clone());
        } else {
            left_out.extend(
                step.outputs
                    .iter()
                    .map(|output| pipeline.root.join(&output.path)),
            );
        }
    }
    Ok((selected, left_out))
}

/// Removes the rebuilds' private folders and the differing copies Nix kept, however `gantry
/// repro` ends.
#[derive(Default)]
pub struct Cleanup {
    pub folders: Vec<PathBuf>,
    pub store_copies: Vec<String>,
}

impl Cleanup {
    /// Removes Nix's kept copies now (before rebuilds that would replace them).
    pub fn store_copies_now(&mut self) {
        for copy in self.store_copies.drain(..) {
            crate::kinds::nix::remove_store_copy(&copy);
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.store_copies_now();
        for folder in &self.folders {
            remove_folder(folder);
            if let Some(parent) = folder.parent() {
                // `.gantry/repro/` when this was the last rebuild in it.
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// Removes a folder a step may have left read-only parts in.
pub fn remove_folder(folder: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(folder).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755));
        }
    }
    let _ = fs::remove_dir_all(folder);
}

/// A private folder on `/dev/shm` (tmpfs lists entries by creation order).
#[must_use]
pub fn tmpfs_scratch() -> Option<PathBuf> {
    let folder =
        Path::new("/dev/shm").join(format!("gantry-repro-{:016x}", rand_core::OsRng.next_u64()));
    fs::create_dir(&folder).ok()?;
    Some(folder)
}

/// Runs `work` (blocking, outside a run) with a flag that Ctrl-C or SIGTERM sets; returns its
/// result and the signal, if one came. A run's own scheduler handles signals while it runs;
/// this covers the work between runs (diffoscope), which tokio's handler would otherwise
/// silently swallow.
pub fn interruptible<T>(work: impl FnOnce(&AtomicBool) -> T) -> (T, Option<i32>) {
    use tokio::signal::unix::{SignalKind, signal};
    let cancel = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicI32::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .ok();
    if let Some(runtime) = &runtime {
        let (cancel, received) = (Arc::clone(&cancel), Arc::clone(&received));
        runtime.spawn(async move {
            let (Ok(mut interrupt), Ok(mut terminate)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            let number = tokio::select! {
                _ = interrupt.recv() => libc::SIGINT,
                _ = terminate.recv() => libc::SIGTERM,
            };
            received.store(number, Ordering::SeqCst);
            cancel.store(true, Ordering::SeqCst);
        });
    }
    let result = work(&cancel);
    if let Some(runtime) = runtime {
        runtime.shutdown_background();
    }
    let signal = received.load(Ordering::SeqCst);
    (result, (signal != 0).then_some(signal))
}
