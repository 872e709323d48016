//! `gantry repro`: rebuild a pipeline from scratch in varied surroundings, compare every
//! output with what a run attested, explain each difference (changed inputs; or, for a step
//! whose inputs were the same, which variation it depends on or that it is not deterministic
//! at all; plus a diffoscope report) and sign a reproducibility Statement.
//!
//! A rebuild is an ordinary run with a [`Rebuild`]: an empty cache of its own, outputs kept
//! out of the workspace, steps in a varied sandbox, Nix steps built with `--rebuild`. Its link
//! attestations are read back like the checked run's, so both sides are compared from what
//! was signed.

pub mod attested;
pub mod attribute;
pub mod compare;
pub mod diffoscope;
pub mod explain;
pub mod predicate;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rand_core::RngCore;

use crate::error::{Error, Result};
use crate::exec::variation::{Aspect, Variation};
use crate::exec::{self, Rebuild, RunOptions, RunSummary};
use crate::keys::{Signer, Verifier};
use crate::pipeline::Pipeline;
use crate::report::{Event, Reporter};
use attested::AttestedRun;
use attribute::Attribution;
use compare::StepComparison;
use explain::{Copies, Explanation};

/// The file a repro folder's Statement is written to.
pub const STATEMENT_FILE: &str = "reproducibility.intoto.json";

pub struct ReproOptions {
    /// The run folder to check; default: the newest under `attestations`.
    pub against: Option<PathBuf>,
    /// Only these steps (and the steps they depend on); default: all.
    pub steps: Vec<String>,
    pub aspects: BTreeSet<Aspect>,
    /// The attestation folder; repro folders go to its `repro/`.
    pub attestations: PathBuf,
    /// The workspace's cache: never written, read for the attested bytes diffoscope needs.
    pub cache_dir: PathBuf,
    /// Scratch folders for the rebuilt steps; default: `/dev/shm` when file order varies.
    pub scratch: Option<PathBuf>,
    pub jobs: usize,
    pub reporter: Reporter,
    /// Checks the attestations of the run being checked.
    pub verifier: Box<dyn Verifier>,
}

/// What `gantry repro` found.
pub struct ReproReport {
    pub pipeline: String,
    pub against: PathBuf,
    /// `attestations/repro/<run-id>/`: the rebuild's links, the Statement, diffoscope reports.
    pub folder: PathBuf,
    pub statement: Option<PathBuf>,
    pub variation: Variation,
    pub steps: Vec<StepReport>,
    /// Things the user should know (a missing tool, a copy that was not on this machine).
    pub notes: Vec<String>,
    pub interrupted_by: Option<i32>,
    /// What the signed Statement says.
    pub predicate: Option<predicate::Predicate>,
}

impl ReproReport {
    #[must_use]
    pub fn reproduced(&self) -> bool {
        self.interrupted_by.is_none() && self.steps.iter().all(|step| step.comparison.reproduced())
    }
}

pub struct StepReport {
    pub comparison: StepComparison,
    /// Why it did not reproduce; `None` when it did.
    pub cause: Option<String>,
    /// For a step whose inputs were the same: what its output depends on.
    pub attribution: Option<Attribution>,
    /// Per differing output.
    pub explanations: BTreeMap<String, Explanation>,
}

/// Removes the rebuild's private folders however `repro` ends.
struct Cleanup(Vec<PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for folder in &self.0 {
            make_writable(folder);
            let _ = fs::remove_dir_all(folder);
            if let Some(parent) = folder.parent() {
                // `.gantry/repro/` when this was the last rebuild in it.
                let _ = fs::remove_dir(parent);
            }
        }
    }
}

/// Runs rebuilds of (part of) one pipeline.
pub struct Rebuilder<'a> {
    pipeline: &'a Pipeline,
    signer: &'a Arc<dyn Signer>,
    cache_dir: &'a Path,
    attestations: &'a Path,
    /// Private to this `gantry repro`: caches, outputs, throwaway attestations.
    private: PathBuf,
    jobs: usize,
}

impl Rebuilder<'_> {
    /// Rebuilds `only` (and what it depends on; everything when `None`) in `variation`'s
    /// surroundings. The run's attestations go to `attestations`.
    fn rebuild(
        &self,
        variation: &Variation,
        only: Option<&BTreeSet<String>>,
        attestations: PathBuf,
        reporter: Reporter,
        scratch: Option<PathBuf>,
    ) -> Result<Rebuilt> {
        let (pipeline, skip) = match only {
            Some(names) => select(self.pipeline, names, self.cache_dir, self.attestations)?,
            None => (self.pipeline.clone(), Vec::new()),
        };
        let private = self
            .private
            .join(format!("{:08x}", rand_core::OsRng.next_u32()));
        let summary = exec::run(
            pipeline,
            Box::new(Arc::clone(self.signer)),
            RunOptions {
                jobs: self.jobs,
                keep_going: true,
                attestations,
                cache_dir: private.join("cache"),
                reporter,
                rebuild: Some(Rebuild {
                    variation: variation.clone(),
                    output_root: private.join("outputs"),
                    scratch,
                    skip,
                }),
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

/// One finished rebuild.
pub struct Rebuilt {
    pub summary: RunSummary,
    /// Its link attestations, read back.
    pub run: AttestedRun,
    /// Its cache's blobs: the rebuilt bytes.
    pub cas: PathBuf,
}

pub fn repro(
    pipeline: &Pipeline,
    signer: &Arc<dyn Signer>,
    options: &ReproOptions,
) -> Result<ReproReport> {
    let started = now();
    let against = match &options.against {
        Some(folder) => folder.clone(),
        None => attested::latest_run(&options.attestations).map_err(Error::Usage)?,
    };
    let checked = attested::read_run(&against, options.verifier.as_ref())
        .map_err(|message| Error::Attestation { message })?;
    let wanted: Option<BTreeSet<String>> =
        (!options.steps.is_empty()).then(|| options.steps.iter().cloned().collect());
    let selected = match &wanted {
        Some(names) => select(pipeline, names, &options.cache_dir, &options.attestations)?.0,
        None => pipeline.clone(),
    };
    let private = options
        .cache_dir
        .join("repro")
        .join(format!("{:016x}", rand_core::OsRng.next_u64()));
    let mut cleanup = Cleanup(vec![private.clone()]);
    let rebuilder = Rebuilder {
        pipeline: &selected,
        signer,
        cache_dir: &options.cache_dir,
        attestations: &options.attestations,
        private: private.clone(),
        jobs: options.jobs,
    };
    let mut notes = Vec::new();
    let mut aspects = options.aspects.clone();
    if aspects.contains(&Aspect::Clock) && !Path::new("/proc/self/ns/time").exists() {
        aspects.remove(&Aspect::Clock);
        notes.push(
            "clock: this kernel has no time namespaces (Linux 5.6 or later), so the clocks were \
             not moved"
                .to_owned(),
        );
    }
    let variation = Variation::of(&aspects);
    let scratch = scratch_folder(options, &variation, &mut cleanup, &mut notes);
    let Rebuilt {
        summary,
        run: rebuilt,
        cas: rebuild_cas,
    } = rebuilder.rebuild(
        &variation,
        None,
        options.attestations.join("repro"),
        options.reporter.sibling(),
        scratch,
    )?;
    let mut report = ReproReport {
        pipeline: selected.name.clone(),
        against,
        folder: summary.run_dir.clone(),
        statement: None,
        variation,
        steps: Vec::new(),
        notes,
        interrupted_by: summary.interrupted_by,
        predicate: None,
    };
    if summary.interrupted_by.is_some() {
        return Ok(report);
    }
    let comparisons: Vec<StepComparison> = selected
        .steps
        .iter()
        .map(|step| {
            compare::compare(
                &step.name,
                checked.steps.get(&step.name),
                rebuilt.steps.get(&step.name),
            )
        })
        .collect();
    let attributions = attribute::attribute(
        &rebuilder,
        &checked,
        &comparisons,
        &report.variation,
        &options.reporter,
    )?;
    let copies = Copies {
        root: &selected.root,
        workspace_cas: options.cache_dir.join("cas"),
        rebuild_cas,
    };
    report.steps = explain_all(
        &selected,
        comparisons,
        attributions,
        &copies,
        &report.folder,
        &private,
        &mut report.notes,
    );
    for step in &report.steps {
        for output in &step.comparison.outputs {
            if let Some(check) = &output.rebuilt_at {
                crate::kinds::nix::remove_store_copy(check);
            }
        }
    }
    sign(&mut report, &selected, &checked, &rebuilt, signer, started)?;
    drop(cleanup);
    Ok(report)
}

fn scratch_folder(
    options: &ReproOptions,
    variation: &Variation,
    cleanup: &mut Cleanup,
    notes: &mut Vec<String>,
) -> Option<PathBuf> {
    if options.scratch.is_some() || !variation.reverse_file_order {
        return options.scratch.clone();
    }
    if let Some(folder) = tmpfs_scratch() {
        cleanup.0.push(folder.clone());
        return Some(folder);
    }
    notes.push(
        "file order: /dev/shm is not a writable tmpfs, so input folders are made in reverse \
         order on the cache's filesystem (ext4 lists them by name hash, which hides the \
         change); pass `--scratch` on a tmpfs"
            .to_owned(),
    );
    None
}

/// Causes and diffoscope reports for every step that did not reproduce.
fn explain_all(
    pipeline: &Pipeline,
    comparisons: Vec<StepComparison>,
    mut attributions: BTreeMap<String, Attribution>,
    copies: &Copies<'_>,
    folder: &Path,
    private: &Path,
    notes: &mut Vec<String>,
) -> Vec<StepReport> {
    let reproduced: BTreeMap<String, bool> = comparisons
        .iter()
        .map(|comparison| (comparison.step.clone(), comparison.reproduced()))
        .collect();
    let owners = output_owners(pipeline);
    let program = diffoscope::locate();
    if program.is_none() && reproduced.values().any(|&good| !good) {
        notes.push(format!(
            "no diffoscope reports: diffoscope was not found; {}",
            diffoscope::INSTALL_HINT
        ));
    }
    let cancel = AtomicBool::new(false);
    let mut steps = Vec::new();
    for comparison in comparisons {
        let mut step = StepReport {
            cause: None,
            attribution: attributions.remove(&comparison.step),
            explanations: BTreeMap::new(),
            comparison,
        };
        if !step.comparison.reproduced() {
            let producers: BTreeMap<String, (String, bool)> = step
                .comparison
                .changed_inputs
                .iter()
                .filter_map(|input| {
                    let owner = owner_of(&owners, &input.name)?;
                    let good = reproduced.get(owner).copied().unwrap_or(false);
                    Some((input.name.clone(), (owner.to_owned(), good)))
                })
                .collect();
            step.cause = Some(match &step.attribution {
                Some(attribution) => attribution.cause(),
                None => compare::cause(&step.comparison, &producers),
            });
            for output in &step.comparison.outputs {
                if !output.reproduced() {
                    let explanation = explain::explain(
                        program.as_deref(),
                        copies,
                        &step.comparison.step,
                        output,
                        folder,
                        private,
                        &cancel,
                    );
                    step.explanations.insert(output.name.clone(), explanation);
                }
            }
        }
        steps.push(step);
    }
    steps
}

/// Writes the signed reproducibility Statement into the repro folder.
fn sign(
    report: &mut ReproReport,
    pipeline: &Pipeline,
    checked: &AttestedRun,
    rebuilt: &AttestedRun,
    signer: &Arc<dyn Signer>,
    started: i64,
) -> Result<()> {
    let statement = predicate::statement(&predicate::Inputs {
        pipeline: &pipeline.name,
        pipeline_file: &pipeline.file,
        pipeline_digest: &pipeline.digest,
        root: &pipeline.root,
        checked,
        rebuilt,
        report,
        started_on: started,
        finished_on: now(),
    });
    let body = serde_json::to_vec(&statement)
        .map_err(|error| Error::Internal(format!("encoding the Statement: {error}")))?;
    let envelope = crate::attest::dsse::sign(crate::attest::PAYLOAD_TYPE, &body, signer.as_ref());
    let bytes = serde_json::to_vec_pretty(&envelope)
        .map_err(|error| Error::Internal(format!("encoding the envelope: {error}")))?;
    let path = report.folder.join(STATEMENT_FILE);
    crate::store::atomic::write(&path, &bytes).map_err(Error::write(&path))?;
    report.statement = Some(path);
    report.predicate = Some(statement.predicate);
    Ok(())
}

/// The pipeline restricted to `names` and everything they depend on, and the outputs of the
/// steps left out (never sources of the rebuild).
fn select(
    pipeline: &Pipeline,
    names: &BTreeSet<String>,
    cache_dir: &Path,
    attestations: &Path,
) -> Result<(Pipeline, Vec<PathBuf>)> {
    let graph = exec::plan(pipeline, &[cache_dir, attestations])?;
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
    let mut skip = Vec::new();
    for (id, step) in pipeline.steps.iter().enumerate() {
        if wanted.contains(&id) {
            selected.steps.push(step.clone());
        } else {
            skip.extend(
                step.outputs
                    .iter()
                    .map(|output| pipeline.root.join(&output.path)),
            );
        }
    }
    Ok((selected, skip))
}

/// Declared output path → the step that makes it.
fn output_owners(pipeline: &Pipeline) -> Vec<(String, String)> {
    pipeline
        .steps
        .iter()
        .flat_map(|step| {
            step.outputs
                .iter()
                .map(|output| (output.path.clone(), step.name.clone()))
        })
        .collect()
}

fn owner_of<'a>(owners: &'a [(String, String)], name: &str) -> Option<&'a str> {
    owners.iter().find_map(|(path, step)| {
        let inside = name == path
            || name
                .strip_prefix(path.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        inside.then_some(step.as_str())
    })
}

/// A private folder on `/dev/shm` (tmpfs lists entries by creation order).
pub(crate) fn tmpfs_scratch() -> Option<PathBuf> {
    let folder =
        Path::new("/dev/shm").join(format!("gantry-repro-{:016x}", rand_core::OsRng.next_u64()));
    fs::create_dir(&folder).ok()?;
    Some(folder)
}

fn make_writable(folder: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(folder).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755));
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0))
}

/// Tells the user about work that is not a run of its own.
pub(crate) fn note(reporter: &Reporter, message: String) {
    reporter.emit(&Event::Note { message });
}
