//! What a run records after its steps: the provenance (when every step succeeded), the usage
//! document (always: a failed run used the machine too), Sigstore
//! bundles of its attestations (when asked), the run folder's `SHA256SUMS`, and its record
//! in the run log.

use std::fmt::Write as _;
use std::path::PathBuf;

use crate::atomic;
use crate::attest::predicate::usage::RunUsage;
use crate::attest::run_folder::{self, StepFile};
use crate::attest::{Envelope, bundle};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::exec::context::Context;
use crate::report::Event;
use crate::run::RunSummary;
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
}

/// What the records say of the run.
pub struct Written {
    /// The provenance, when the run succeeded.
    pub provenance: Option<PathBuf>,
    /// Why the run is over its budget.
    pub over_budget: Option<String>,
}

pub const SUMS_FILE: &str = "SHA256SUMS";

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
    if context.rebuild {
        finish_placing(context)?;
        if options.bundles {
            write_bundles(context, &mut links(context)).map_err(failed)?;
        }
        return Ok(Written {
            provenance: None,
            over_budget: None,
        });
    }
    let mut files = links(context);
    let mut over_budget = None;
    files.extend(place_step_attestations(context)?);
    let times = Times {
        started,
        finished: unix_now(),
    };
    let Documents {
        provenance,
        usage,
        used,
    } = provenance_and_usage(context, summary, options, &times)?;
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
        steps: StepCounts {
            executed: summary.executed,
            cached: summary.cached,
            failed: summary.failed,
            skipped: summary.skipped,
        },
        attestations: Digest::of_bytes(sums.as_bytes()).hex(),
        provenance: provenance.as_ref().map(|(_, digest)| digest.hex()),
        usage: Some(usage.hex()),
        previous: String::new(),
    };
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
    Ok(Written {
        provenance: provenance.map(|(path, _)| path),
        over_budget,
    })
}

/// The provenance (when the run succeeded) and the usage document, whose predicate is made
/// while the provenance is written (both list every step); their paths and digests, and what
/// the usage document says.
fn provenance_and_usage(
    context: &Context,
    summary: &RunSummary,
    options: &RecordOptions<'_>,
    times: &Times,
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
        let provenance = summary
            .success()
            .then(|| provenance::write(context, times, options.builder_id))
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

/// Waits for the placer: every step attestation is in the run folder after it.
fn finish_placing(context: &Context) -> Result<()> {
    context
        .placer
        .finish()
        .map_err(|message| Error::Environment { message })
}

/// Each step's run-folder document ([`crate::pipeline::model::StepKind::run_folder_document`]:
/// an SBOM's attestation, a gate's verdict, a rollout's record) beside its link, so the folder
/// holds all the evidence an auditor needs. Returns (file name, digest) of each.
fn place_step_attestations(context: &Context) -> Result<Vec<(String, Digest)>> {
    let mut placed = Vec::new();
    for (step, result) in context.pipeline.steps.iter().zip(&context.results) {
        let Some(document) = step.kind.run_folder_document() else {
            continue;
        };
        let name = document.file.name(&step.name);
        let record = result.get().and_then(|result| {
            (result.outputs.iter()).find(|record| record.path == document.output)
        });
        let Some(record) = record else {
            if document.kept_on_failure
                && let Ok(digest) = Digest::of_file(&context.run_dir.join(&name))
            {
                placed.push((name, digest));
            }
            continue;
        };
        context
            .placer
            .place(
                context.store.cas.path(&record.digest),
                context.run_dir.join(&name),
            )
            .map_err(|message| Error::Environment { message })?;
        placed.push((name, record.digest));
    }
    Ok(placed)
}

/// (file name, digest) of every step attestation in the run folder.
fn links(context: &Context) -> Vec<(String, Digest)> {
    context
        .pipeline
        .steps
        .iter()
        .zip(&context.attestations)
        .filter_map(|(step, digest)| Some((StepFile::Link.name(&step.name), *digest.get()?)))
        .collect()
}

/// `<name>.sigstore.json` beside each `<name>.intoto.json`, added to `files`.
fn write_bundles(context: &Context, files: &mut Vec<(String, Digest)>) -> Result<(), String> {
    let mut written = Vec::new();
    for (name, _) in files.iter() {
        let path = context.run_dir.join(name);
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
