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
pub mod rebuild;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use rand_core::RngCore;

use crate::error::{Error, Result};
use crate::exec::variation::{Aspect, Variation};
use crate::keys::{Signer, Verifier};
use crate::pipeline::Pipeline;
use crate::report::{Event, Reporter};
use attested::AttestedRun;
use attribute::Attribution;
use compare::StepComparison;
use explain::{Copies, Explanation};
use rebuild::{Cleanup, Plan, Rebuilder};

/// Its Sigstore bundle, written with `--bundles`.
pub const STATEMENT_BUNDLE_FILE: &str = "reproducibility.sigstore.json";

pub struct ReproOptions {
    /// The run folder to check; default: the newest run of this pipeline under `attestations`.
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
    /// The diffoscope program; without it differences get no report.
    pub diffoscope: Option<PathBuf>,
    /// Sign steps' keys.
    pub artifact_keys: crate::exec::context::Keys,
    /// Where sbom steps look up crates' licences.
    pub cargo_home: Option<std::path::PathBuf>,
    /// The caller's home, for `[tools]` written as `~/...`.
    pub home: Option<std::path::PathBuf>,
    /// Also write the rebuild's attestations and the Statement as Sigstore bundles.
    pub bundles: bool,
    /// How long the rebuilds that explain differences may take in all; `None`: twice the
    /// first rebuild, at least a minute.
    pub explain_budget: Option<std::time::Duration>,
    /// The size a diffoscope report is cut at; `None`: whole reports.
    pub diffoscope_limit: Option<u64>,
}

/// A diffoscope report's size unless `--diffoscope-limit` says otherwise: a screenful shows
/// where a difference starts; a binary that differs everywhere made an 841 MB report.
pub const DIFFOSCOPE_LIMIT: u64 = 1 << 20;

impl ReproOptions {
    /// `--explain-budget`, else twice the first rebuild, at least a minute.
    fn explain_budget(&self, rebuilt_in: std::time::Duration) -> std::time::Duration {
        (self.explain_budget)
            .unwrap_or_else(|| (rebuilt_in * 2).max(std::time::Duration::from_secs(60)))
    }
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
    /// What explaining the differences took.
    pub spent: attribute::Spent,
    /// The size diffoscope reports were cut at.
    pub diffoscope_limit: Option<u64>,
}

impl ReproReport {
    /// The report of a rebuild that has just ended, before anything is compared.
    fn of(
        selected: &Pipeline,
        rebuilt: &crate::run::flow::RunSummary,
        options: &ReproOptions,
    ) -> Self {
        Self {
            pipeline: selected.name.clone(),
            against: PathBuf::new(),
            folder: rebuilt.run_dir.clone(),
            statement: None,
            variation: Variation::none(),
            steps: Vec::new(),
            notes: Vec::new(),
            interrupted_by: rebuilt.interrupted_by,
            predicate: None,
            spent: attribute::Spent::default(),
            diffoscope_limit: options.diffoscope_limit,
        }
    }

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

pub fn repro(
    pipeline: &Pipeline,
    signer: &Arc<dyn Signer>,
    options: &ReproOptions,
) -> Result<ReproReport> {
    let started = now();
    let (against, checked) = checked_run(pipeline, options)?;
    let (selected, skip) = selection(pipeline, options)?;
    let private = private_folder(options);
    let mut cleanup = Cleanup {
        folders: vec![private.clone()],
        store_copies: Vec::new(),
    };
    let rebuilder = Rebuilder {
        pipeline: &selected,
        signer,
        artifact_keys: &options.artifact_keys,
        cargo_home: options.cargo_home.as_deref(),
        home: options.home.as_deref(),
        skip,
        private: private.clone(),
        jobs: options.jobs,
        started_with: checked.started_with.clone(),
    };
    let mut notes = Vec::new();
    let variation = Variation::of(&supported(&options.aspects, &mut notes));
    let scratch = scratch_folder(options, &variation, &mut cleanup, &mut notes);
    let rebuild_started = std::time::Instant::now();
    let main = rebuilder.rebuild(Plan {
        variation: &variation,
        only: None,
        attestations: options.attestations.join("repro"),
        reporter: options.reporter.sibling(),
        scratch,
        nix_check: true,
        bundles: options.bundles,
    })?;
    let mut report = ReproReport {
        against,
        variation,
        notes,
        ..ReproReport::of(&selected, &main.summary, options)
    };
    if report.interrupted_by.is_some() {
        return Ok(report);
    }
    cleanup.store_copies.extend(
        (main.run.steps.values())
            .flat_map(|step| step.subjects.iter())
            .filter_map(|subject| subject.rebuilt_at.clone()),
    );
    let rebuilt_in = rebuild_started.elapsed();
    let comparisons = compare_all(&selected, &checked, &main.run, &mut report.notes);
    let copies = Copies {
        root: &selected.root,
        workspace_cas: options.cache_dir.join("cas"),
        rebuild_cas: main.cas.clone(),
    };
    note_missing_diffoscope(options, &comparisons, &mut report.notes);
    let reporting = explain::Reporting {
        program: options.diffoscope.as_deref(),
        limit: options.diffoscope_limit,
    };
    let (explanations, interrupted) = rebuild::interruptible(|cancel| {
        explain_outputs(
            reporting,
            &comparisons,
            &copies,
            &report.folder,
            &private,
            cancel,
        )
    });
    if interrupted.is_some() {
        report.interrupted_by = interrupted;
        return Ok(report);
    }
    // The attributing rebuilds may rebuild these Nix steps; their copies are explained.
    cleanup.store_copies_now();
    let attributed = attribute::attribute(
        &rebuilder,
        &checked,
        &comparisons,
        &report.variation,
        &options.reporter,
        options.explain_budget(rebuilt_in),
        rebuilt_in,
    )?;
    if attributed.interrupted.is_some() {
        report.interrupted_by = attributed.interrupted;
        return Ok(report);
    }
    report.spent = attributed.spent;
    report.steps = step_reports(&selected, comparisons, explanations, attributed.found);
    sign(
        &mut report,
        &selected,
        &checked,
        &main.run,
        signer,
        started,
        options.bundles,
    )?;
    drop(cleanup);
    Ok(report)
}

/// Each step's comparison with its cause (when it did not reproduce), attribution and
/// reports.
fn step_reports(
    selected: &Pipeline,
    comparisons: Vec<StepComparison>,
    mut explanations: BTreeMap<String, BTreeMap<String, Explanation>>,
    mut attributions: BTreeMap<String, Attribution>,
) -> Vec<StepReport> {
    let owners = output_owners(selected);
    let reproduced: BTreeMap<String, bool> = comparisons
        .iter()
        .map(|comparison| (comparison.step.clone(), comparison.reproduced()))
        .collect();
    comparisons
        .into_iter()
        .map(|comparison| {
            let attribution = attributions.remove(&comparison.step);
            let cause = (!comparison.reproduced()).then(|| match &attribution {
                Some(attribution) => attribution.cause(),
                None => compare::cause(&comparison, &producers(&comparison, &owners, &reproduced)),
            });
            StepReport {
                explanations: explanations.remove(&comparison.step).unwrap_or_default(),
                cause,
                attribution,
                comparison,
            }
        })
        .collect()
}

/// The rebuild's own store and outputs: a fresh folder under the cache's `repro/`.
fn private_folder(options: &ReproOptions) -> PathBuf {
    (options.cache_dir.join("repro")).join(format!("{:016x}", rand_core::OsRng.next_u64()))
}

/// The run folder to check (`--against`, else the newest) and its verified links.
fn checked_run(pipeline: &Pipeline, options: &ReproOptions) -> Result<(PathBuf, AttestedRun)> {
    let against = if let Some(folder) = &options.against {
        folder.clone()
    } else {
        let relative = (pipeline.file.strip_prefix(&pipeline.root))
            .unwrap_or(&pipeline.file)
            .to_string_lossy()
            .into_owned();
        attested::latest_run(&options.attestations, &relative).map_err(Error::Usage)?
    };
    let checked = attested::read_run(&against, options.verifier.as_ref()).map_err(|message| {
        Error::Attestation {
            path: against.clone(),
            message,
        }
    })?;
    Ok((against, checked))
}

/// The steps to rebuild (`--step` and what they depend on, else all) and the paths that are
/// never sources of a rebuild.
fn selection(pipeline: &Pipeline, options: &ReproOptions) -> Result<(Pipeline, Vec<PathBuf>)> {
    let mut skip = vec![options.cache_dir.clone(), options.attestations.clone()];
    if options.steps.is_empty() {
        return Ok((pipeline.clone(), skip));
    }
    let names: BTreeSet<String> = options.steps.iter().cloned().collect();
    let (selected, left_out) = rebuild::select(pipeline, &names, &skip)?;
    skip.extend(left_out);
    Ok((selected, skip))
}

/// The variations this machine can apply; the others are dropped with a note.
fn supported(aspects: &BTreeSet<Aspect>, notes: &mut Vec<String>) -> BTreeSet<Aspect> {
    let mut aspects = aspects.clone();
    if aspects.contains(&Aspect::Clock) && !Path::new("/proc/self/ns/time").exists() {
        aspects.remove(&Aspect::Clock);
        notes.push(
            "clock: this kernel has no time namespaces (Linux 5.6 or later), so the clocks were \
             not moved"
                .to_owned(),
        );
    }
    aspects
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
    if let Some(folder) = rebuild::tmpfs_scratch() {
        cleanup.folders.push(folder.clone());
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

/// A diffoscope report (or why there is none) for every output that did not reproduce, by
/// step and output.
fn explain_outputs(
    reporting: explain::Reporting<'_>,
    comparisons: &[StepComparison],
    copies: &Copies<'_>,
    folder: &Path,
    private: &Path,
    cancel: &AtomicBool,
) -> BTreeMap<String, BTreeMap<String, Explanation>> {
    let mut explanations: BTreeMap<String, BTreeMap<String, Explanation>> = BTreeMap::new();
    for comparison in comparisons {
        for output in &comparison.outputs {
            if output.reproduced() || cancel.load(std::sync::atomic::Ordering::SeqCst) {
                continue;
            }
            let explanation = explain::explain(
                reporting,
                copies,
                &comparison.step,
                output,
                folder,
                private,
                cancel,
            );
            explanations
                .entry(comparison.step.clone())
                .or_default()
                .insert(output.name.clone(), explanation);
        }
    }
    explanations
}

/// Changed input → (the step that makes it, whether that step reproduced).
fn producers(
    comparison: &StepComparison,
    owners: &[(String, String)],
    reproduced: &BTreeMap<String, bool>,
) -> BTreeMap<String, (String, bool)> {
    comparison
        .changed_inputs
        .iter()
        .filter_map(|input| {
            let owner = owner_of(owners, &input.name)?;
            let good = reproduced.get(owner).copied().unwrap_or(false);
            Some((input.name.clone(), (owner.to_owned(), good)))
        })
        .collect()
}

/// The steps whose outputs hold a measurement of now (a drill's seconds, a scan's times),
/// and those that read them: no rebuild makes their bytes again, and they prove nothing
/// about the artifacts' bytes. Each is noted.
fn measuring_now(selected: &Pipeline, notes: &mut Vec<String>) -> Vec<bool> {
    let steps = &selected.steps;
    let mut excluded = vec![false; steps.len()];
    for (number, step) in steps.iter().enumerate() {
        if let Some(why) = step.kind.measures_now() {
            excluded[number] = true;
            notes.push(format!("`{}` {why}", step.name));
        }
    }
    // Whatever reads such a step's outputs (to a fixed point: a chain of readers).
    loop {
        let mut changed = false;
        for (number, step) in steps.iter().enumerate() {
            if excluded[number] {
                continue;
            }
            let reads_excluded = (steps.iter().enumerate())
                .filter(|(other, _)| excluded[*other])
                .find(|(_, other)| {
                    other.outputs.iter().any(|output| {
                        step.inputs.iter().any(|input| {
                            crate::pipeline::path::is_within(&input.pattern, &output.path)
                                || crate::pipeline::path::is_within(&output.path, &input.pattern)
                        })
                    })
                });
            if let Some((_, other)) = reads_excluded {
                excluded[number] = true;
                changed = true;
                notes.push(format!(
                    "`{}` reads what `{}` measured, so it is not compared",
                    step.name, other.name
                ));
            }
        }
        if !changed {
            return excluded;
        }
    }
}

/// Every step's comparison but those that measure now (`notes` says which were left out).
fn compare_all(
    selected: &Pipeline,
    checked: &AttestedRun,
    rebuilt: &AttestedRun,
    notes: &mut Vec<String>,
) -> Vec<StepComparison> {
    let excluded = measuring_now(selected, notes);
    selected
        .steps
        .iter()
        .enumerate()
        .filter(|(number, _)| !excluded[*number])
        .map(|(_, step)| step)
        .map(|step| {
            let name = &step.name;
            compare::compare(name, checked.steps.get(name), rebuilt.steps.get(name))
        })
        .collect()
}

fn note_missing_diffoscope(
    options: &ReproOptions,
    comparisons: &[StepComparison],
    notes: &mut Vec<String>,
) {
    if options.diffoscope.is_none() && comparisons.iter().any(|step| !step.reproduced()) {
        notes.push(format!(
            "no diffoscope reports: diffoscope was not found; {}",
            diffoscope::INSTALL_HINT
        ));
    }
}

/// Writes the signed reproducibility Statement into the repro folder.
fn sign(
    report: &mut ReproReport,
    pipeline: &Pipeline,
    checked: &AttestedRun,
    rebuilt: &AttestedRun,
    signer: &Arc<dyn Signer>,
    started: i64,
    bundles: bool,
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
    let path = report
        .folder
        .join(crate::attest::run_folder::REPRODUCIBILITY);
    crate::atomic::write(&path, &bytes).map_err(Error::write(&path))?;
    if bundles {
        let json = crate::attest::bundle::envelope_json(&envelope, signer.public_key_pem())
            .map_err(Error::Internal)?;
        let path = report.folder.join(STATEMENT_BUNDLE_FILE);
        crate::atomic::write(&path, &json).map_err(Error::write(&path))?;
    }
    report.statement = Some(path);
    report.predicate = Some(statement.predicate);
    Ok(())
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

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(0))
}

/// Tells the user about work that is not a run of its own.
pub(crate) fn note(reporter: &Reporter, message: String) {
    reporter.emit(&Event::Note { message });
}
