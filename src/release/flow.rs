//! `gantry release VERSION` as one flow: the git checks, the release run, its reproduction
//! (`--reproduce`), the signed manifest and notes, the check `gantry release verify` will
//! make, then the tag. The CLI gathers the options and renders what this returns and
//! reports; nothing here prints.

use std::path::Path;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::keys::Signer;
use crate::pipeline::Pipeline;
use crate::release::check::{self, ReleaseReport};
use crate::release::cut::{self, Cut, Plan};
use crate::repro::{ReproOptions, ReproReport};
use crate::run::RunOptions;

/// What a release asks beyond the run's options.
pub struct Request<'a> {
    pub version: &'a str,
    /// Release from a work tree that differs from HEAD.
    pub allow_dirty: bool,
    /// Everything but the tag.
    pub dry_run: bool,
    /// The policy `gantry release verify` will check the release against, as given.
    pub policy: &'a Path,
    /// `--reproduce`: how to rebuild. What it rebuilds and against which run are the flow's
    /// to fill in, once the run has made the artifacts.
    pub reproduce: Option<ReproOptions>,
}

/// What the flow tells as it goes, for the CLI to show.
pub enum Progress<'a> {
    /// Before the run: the version, the commit, the last release, the differing paths.
    Releasing(&'a Plan),
    /// The reproduction's report, before the manifest names it.
    Reproduced(&'a ReproReport),
    /// The check `release verify` will make failed: its report, before the refusal.
    WouldNotPass(&'a ReleaseReport),
}

pub enum Released {
    Cut(Box<Cut>),
    /// A signal stopped the run or its reproduction: nothing was written or tagged.
    Interrupted {
        signal: i32,
    },
}

/// Cuts the release of `pipeline`'s run: refused (as an error) when git, the run, the
/// reproduction or the check say no; a tag only when everything passed.
pub fn release(
    pipeline: &Pipeline,
    request: Request<'_>,
    mut run: RunOptions,
    signer: &Arc<dyn Signer>,
    progress: &dyn Fn(Progress<'_>),
) -> Result<Released> {
    let attestations = run.attestations.clone();
    let plan = cut::plan(
        pipeline,
        request.version,
        request.allow_dirty,
        &run.cache_dir,
        &attestations,
    )?;
    progress(Progress::Releasing(&plan));
    run.release = Some(plan.parameter());
    let summary = crate::run::run(pipeline.clone(), Box::new(Arc::clone(signer)), run)?;
    if let Some(signal) = summary.interrupted_by {
        return Ok(Released::Interrupted { signal });
    }
    let mut built = cut::built(pipeline, &summary)?;
    if let Some(mut options) = request.reproduce {
        options.against = Some(summary.run_dir.clone());
        options.steps = built.steps();
        let report = crate::repro::repro(pipeline, signer, &options)?;
        if let Some(signal) = report.interrupted_by {
            return Ok(Released::Interrupted { signal });
        }
        progress(Progress::Reproduced(&report));
        let (Some(statement), Some(predicate)) = (&report.statement, &report.predicate) else {
            return Err(Error::Internal(
                "the reproduction signed no Statement".to_owned(),
            ));
        };
        built.attach_reproducibility(statement, predicate, &attestations)?;
    }
    let will_pass =
        |version: &str| will_pass(pipeline, &attestations, request.policy, version, progress);
    let cut = cut::finish(
        &plan,
        pipeline,
        &summary,
        built,
        &attestations,
        signer.as_ref(),
        request.dry_run,
        &will_pass,
    )?;
    Ok(Released::Cut(Box::new(cut)))
}

/// The check `gantry release verify` will make (the tag aside), before the tag is made: the
/// failures, when there are any, as one error.
fn will_pass(
    pipeline: &Pipeline,
    attestations: &Path,
    policy_given: &Path,
    version: &str,
    progress: &dyn Fn(Progress<'_>),
) -> Result<()> {
    let policy = std::path::absolute(policy_given).unwrap_or_else(|_| policy_given.to_owned());
    let root = crate::pipeline::git_root(&pipeline.root).unwrap_or_else(|| pipeline.root.clone());
    let report = check::check(&check::Request {
        root: &root,
        attestations,
        version,
        policy: &policy,
        now: crate::time::unix_now(),
        tagged: false,
    })?;
    if report.passed {
        return Ok(());
    }
    progress(Progress::WouldNotPass(&report));
    let mut failed: Vec<String> = (report.checks.iter())
        .filter(|check| !check.passed && check.name != "policy")
        .map(|check| format!("{}: {}", check.name, check.findings.join("; ")))
        .collect();
    if let Some(verification) = &report.verification {
        failed.extend(
            (verification.checks.iter())
                .flat_map(|check| &check.failures)
                .take(5)
                .map(|finding| finding.message.clone()),
        );
    }
    Err(Error::Release(format!(
        "the release would not pass `gantry release verify` with policy `{}`: {}. No tag was made; the manifest and notes are in `{}` for a look",
        policy_given.display(),
        failed.join("; "),
        attestations
            .join(crate::release::FOLDER)
            .join(version)
            .display()
    )))
}
