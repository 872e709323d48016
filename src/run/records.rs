//! What a run records after its steps: the provenance (when every step succeeded), the usage
//! document (always: a failed run used the machine too), Sigstore
//! bundles of its attestations (when asked), the run folder's `SHA256SUMS`, and its record
//! in the run log.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::atomic;
use crate::attest::predicate::usage::RunUsage;
use crate::attest::provenance::GitSource;
use crate::attest::run_folder;
use crate::attest::{Envelope, bundle};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::exec::context::Context;
use crate::report::Event;
use crate::run::RunSummary;
use crate::run::last_run;
use crate::run::provenance::{self, Times};
use crate::runlog::{self, LogFiles, Record, StepCounts};
use crate::time::unix_now;

pub struct RecordOptions<'a> {
    pub builder_id: &'a str,
    pub bundles: bool,
    pub log: LogFiles,
    /// Each step's status, in the pipeline's order.
    pub statuses: &'a [crate::report::StepStatus],
    /// The pipeline's `[budget]`, its rate card read.
    pub budget: Option<&'a crate::run::budget::Loaded>,
    /// Where the pipeline's last provenance is recorded (`last_run`).
    pub last: PathBuf,
}

impl<'a> RecordOptions<'a> {
    /// What a settled run (`run::settled`) records with: it names the last run, so it has no
    /// statuses to sum and no budget to judge.
    #[must_use]
    pub fn settled(builder_id: &'a str, bundles: bool, log: LogFiles, last: PathBuf) -> Self {
        Self {
            builder_id,
            bundles,
            log,
            statuses: &[],
            budget: None,
            last,
        }
    }
}

/// What the records say of the run.
#[derive(Default)]
pub struct Written {
    /// The provenance, when the run succeeded: its own, or the one it names.
    pub provenance: Option<PathBuf>,
    /// Why the run is over its budget.
    pub over_budget: Option<String>,
    /// A run that executed nothing and would have written the provenance of the run before
    /// it, but for its id and times: that run's id and folder, which it names instead.
    pub reused: Option<(String, PathBuf)>,
    /// The git state the provenance written or named records (`run::settled` keeps it), when
    /// the run has one.
    pub git: Option<Option<GitSource>>,
}

impl Written {
    /// What the records add to the run's summary.
    pub fn into_summary(self, summary: &mut RunSummary) {
        summary.provenance = self.provenance;
        summary.over_budget = self.over_budget;
        if let Some((run_id, folder)) = self.reused {
            summary.reused = Some(run_id);
            summary.run_dir = folder;
        }
    }
}

pub const SUMS_FILE: &str = run_folder::SUMS;

/// Writes the run's records; returns the provenance's path when one was written and whether
/// the run is over its budget. A rebuild by `gantry repro` records nothing but its links
/// (and, when asked, their bundles).
pub fn write(
    context: &Context,
    summary: &RunSummary,
    options: &RecordOptions<'_>,
    started: i64,
) -> Result<Written> {
    let failed = |message: String| Error::Environment { message };
    let placing = |error: crate::store::BlobError| Error::Environment {
        message: format!("cannot place an attestation: {error}"),
    };
    crate::exec::commit::place_documents(context).map_err(placing)?;
    if context.rebuild {
        finish_placing(context)?;
        if options.bundles {
            write_bundles(context, &mut step_files(context)).map_err(failed)?;
        }
        return Ok(Written::default());
    }
    let mut files = step_files(context);
    let (body, fingerprint, earlier, git) = statement_and_last(context, summary, options, &files)?;
    if let (Some(earlier), Some(fingerprint)) = (earlier, &fingerprint)
        && earlier.fingerprint == *fingerprint
    {
        finish_placing(context)?;
        return record_reuse(context, summary, options, earlier)
            .map(|done| Written { git, ..done });
    }
    let mut over_budget = None;
    let times = Times {
        started,
        finished: unix_now(),
    };
    let Documents {
        provenance,
        usage,
        used,
    } = provenance_and_usage(context, summary, options, &times, body)?;
    if let Some((_, digest)) = &provenance {
        files.push((run_folder::PROVENANCE.to_owned(), *digest));
    }
    files.push((run_folder::USAGE.to_owned(), usage));
    if provenance.is_some() {
        over_budget =
            (options.budget).and_then(|budget| crate::run::budget::judge(budget, &used, started));
    }
    // The links go in while the provenance is made; what follows reads or vouches for them.
    finish_placing(context)?;
    if options.bundles {
        write_bundles(context, &mut files).map_err(failed)?;
    }
    files.sort();
    let mut sums = String::new();
    for (name, digest) in &files {
        let _ = writeln!(sums, "{}  {name}", digest.hex());
    }
    let sums_path = context.run_dir.join(SUMS_FILE);
    atomic::write(&sums_path, sums.as_bytes()).map_err(Error::write(&sums_path))?;
    let sums_digest = Digest::of_bytes(sums.as_bytes());
    let record = Record {
        seq: 0,
        run_id: context.run_id.clone(),
        time: crate::time::rfc3339(unix_now()),
        pipeline: context.pipeline.file.display().to_string(),
        pipeline_digest: context.pipeline.digest.hex(),
        result: if summary.interrupted_by.is_some() {
            "interrupted"
        } else if over_budget.is_some() {
            "over-budget"
        } else if summary.success() {
            "success"
        } else {
            "failed"
        }
        .to_owned(),
        steps: counts(summary),
        attestations: sums_digest.hex(),
        provenance: provenance.as_ref().map(|(_, digest)| digest.hex()),
        usage: Some(usage.hex()),
        reused: None,
        previous: String::new(),
    };
    append(context, options, record)?;
    if let (Some((path, digest)), Some(fingerprint)) = (&provenance, &fingerprint)
        && over_budget.is_none()
    {
        // Only a shortcut for the next run: failing to record it costs it a provenance. After
        // the run log names this provenance, so a later run never names one it does not.
        let _ = last_run::save(
            &options.last,
            &last_run::LastRun {
                run_id: context.run_id.clone(),
                folder: context.run_dir.clone(),
                provenance: (path.clone(), *digest),
                sums: sums_digest,
                fingerprint: *fingerprint,
            },
            context.signer.as_ref(),
        );
    }
    Ok(Written {
        git: git.filter(|_| provenance.is_some() && over_budget.is_none()),
        provenance: provenance.map(|(path, _)| path),
        over_budget,
        reused: None,
    })
}

/// What [`statement_and_last`] finds: the provenance's body (unless the last run's stands),
/// its fingerprint, the last run when its provenance is the same, and the git state read.
type StatementAndLast = (
    Option<provenance::Body>,
    Option<Digest>,
    Option<last_run::LastRun>,
    Option<Option<GitSource>>,
);

/// The run's provenance Statement (when it succeeded) without its id and times, what it
/// would say (`fingerprint`), and, for a run that executed nothing, the last run of the
/// pipeline as it was recorded: a run may name that one's provenance instead of writing the
/// same again. That run's files are checked while this run's Statement is made.
fn statement_and_last(
    context: &Context,
    summary: &RunSummary,
    options: &RecordOptions<'_>,
    files: &[(String, Digest)],
) -> Result<StatementAndLast> {
    // A release always has its own run: its manifest and tag name that run's folder.
    let may_reuse = summary.success()
        && summary.executed == 0
        && context.release.is_none()
        && crate::exec::commit::no_failed_attempts(context);
    let failed = |message: String| Error::Environment { message };
    let (gathered, earlier) = std::thread::scope(|scope| {
        let earlier = may_reuse.then(|| scope.spawn(|| last_run::intact(context, &options.last)));
        let gathered = summary
            .success()
            .then(|| provenance::gather(context))
            .transpose();
        (
            gathered,
            earlier.and_then(|earlier| earlier.join().ok().flatten()),
        )
    });
    let Some(gathered) = gathered.map_err(failed)? else {
        return Ok((None, None, None, None));
    };
    let statement = provenance::fingerprint(context, options.builder_id, &gathered);
    let fingerprint = fingerprint_of(&statement, files, options.bundles);
    let git = Some(gathered.git().cloned());
    if let Some(earlier) = earlier.filter(|earlier| earlier.fingerprint == fingerprint) {
        return Ok((None, Some(fingerprint), Some(earlier), git));
    }
    let body = provenance::body(context, options.builder_id, &gathered).map_err(failed)?;
    Ok((Some(body), Some(fingerprint), None, git))
}

fn counts(summary: &RunSummary) -> StepCounts {
    StepCounts {
        executed: summary.executed,
        cached: summary.cached,
        failed: summary.failed,
        skipped: summary.skipped,
    }
}

/// What decides whether a run's provenance is the one before it: what the Statement says but
/// its id and times (`provenance::fingerprint`), every step file of the run by name and
/// digest, and whether it wrote bundles.
fn fingerprint_of(statement: &Digest, files: &[(String, Digest)], bundles: bool) -> Digest {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"gantry-run-fingerprint/2\n");
    hasher.update(statement.as_bytes());
    for (name, digest) in files {
        hasher.update(name.as_bytes());
        hasher.update(b"\0");
        hasher.update(digest.as_bytes());
    }
    hasher.update([u8::from(bundles)]);
    Digest::from_raw(hasher.finalize().into())
}

/// A run that executed nothing, named as the earlier run whose provenance it would have
/// repeated: its own folder (empty) goes, its record names that run's provenance and
/// `SHA256SUMS`, and it writes no usage document (it ran nothing).
pub(crate) fn record_reuse(
    context: &Context,
    summary: &RunSummary,
    options: &RecordOptions<'_>,
    earlier: last_run::LastRun,
) -> Result<Written> {
    let _ = std::fs::remove_dir(&context.run_dir);
    let record = Record {
        seq: 0,
        run_id: context.run_id.clone(),
        time: crate::time::rfc3339(unix_now()),
        pipeline: context.pipeline.file.display().to_string(),
        pipeline_digest: context.pipeline.digest.hex(),
        result: "success".to_owned(),
        steps: counts(summary),
        attestations: earlier.sums.hex(),
        provenance: Some(earlier.provenance.1.hex()),
        usage: None,
        reused: Some(earlier.run_id.clone()),
        previous: String::new(),
    };
    append(context, options, record)?;
    Ok(Written {
        provenance: Some(earlier.provenance.0),
        over_budget: None,
        reused: Some((earlier.run_id, earlier.folder)),
        git: None,
    })
}

fn append(context: &Context, options: &RecordOptions<'_>, record: Record) -> Result<()> {
    let appended = runlog::append(&options.log, record, context.signer.as_ref())
        .map_err(Error::write(&options.log.log))?;
    if appended.cut_partial > 0 {
        context.reporter.emit(&Event::Warning {
            step: None,
            message: format!(
                "the run log ended in a record a crash left half-written ({} bytes); cut it off before appending",
                appended.cut_partial
            ),
        });
    }
    Ok(())
}

/// The provenance (when the run succeeded: `body`) and the usage document, whose predicate is
/// made while the provenance is written (both list every step); their paths and digests, and
/// what the usage document says.
fn provenance_and_usage(
    context: &Context,
    summary: &RunSummary,
    options: &RecordOptions<'_>,
    times: &Times,
    body: Option<provenance::Body>,
) -> Result<Documents> {
    let failed = |message: String| Error::Environment { message };
    let result = match (summary.success(), summary.interrupted_by.is_some()) {
        (true, _) => "success",
        (false, true) => "interrupted",
        (false, false) => "failed",
    };
    let (provenance, prepared) = std::thread::scope(|scope| {
        let prepared =
            scope.spawn(|| crate::run::usage::prepare(context, options.statuses, times, result));
        let provenance = body
            .map(|body| provenance::write(context, body, times))
            .transpose();
        let prepared = prepared
            .join()
            .unwrap_or_else(|_| Err("making the usage document failed".to_owned()));
        (provenance, prepared)
    });
    let provenance = provenance.map_err(failed)?;
    let (usage, used) = crate::run::usage::write(
        context,
        prepared.map_err(failed)?,
        provenance.as_ref().map(|(_, digest)| digest),
    )
    .map_err(failed)?;
    Ok(Documents {
        provenance,
        usage,
        used,
    })
}

/// The run's provenance and usage document, written.
struct Documents {
    /// Its path and digest, when the run succeeded.
    provenance: Option<(PathBuf, Digest)>,
    usage: Digest,
    /// What the usage document says.
    used: RunUsage,
}

/// Waits for the placer: every step attestation is in place after it.
fn finish_placing(context: &Context) -> Result<()> {
    context
        .placer
        .finish()
        .map_err(|message| Error::Environment { message })
}

/// (file name, digest) of every step file of the run.
fn step_files(context: &Context) -> Vec<(String, Digest)> {
    crate::exec::commit::step_files(context)
}

/// `<name>.sigstore.json` beside each `<name>.intoto.json`, added to `files`.
fn write_bundles(context: &Context, files: &mut Vec<(String, Digest)>) -> Result<(), String> {
    let mut written = Vec::new();
    for (name, digest) in files.iter() {
        let in_folder = context.run_dir.join(name);
        let path = if context.rebuild || in_folder.is_file() {
            in_folder
        } else {
            crate::exec::commit::stored_attestation(context, digest)
        };
        let bytes = std::fs::read(&path)
            .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
        let envelope: Envelope = serde_json::from_slice(&bytes)
            .map_err(|error| format!("`{}` is not an envelope: {error}", path.display()))?;
        let json = bundle::envelope_json(&envelope, context.signer.public_key_pem())?;
        let bundle_name = format!(
            "{}.sigstore.json",
            name.strip_suffix(".intoto.json").unwrap_or(name)
        );
        let target = context.run_dir.join(&bundle_name);
        atomic::write(&target, &json)
            .map_err(|error| format!("cannot write `{}`: {error}", target.display()))?;
        written.push((bundle_name, Digest::of_bytes(&json)));
    }
    files.extend(written);
    Ok(())
}
