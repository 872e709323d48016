//! The `gates` check: every gate the policy requires passed in the run, judging the
//! thresholds of the pipeline the run executed; with an approved pipeline, the run executed
//! exactly it and each verdict's thresholds are the approved ones. A threshold lowered in
//! the pipeline changes its digest, so it is caught without re-running anything.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Found, Input, Item, sha};
use crate::digest::Digest;
use crate::gauntlet::Threshold;
use crate::verify::evidence::{GateVerdict, Kind};
use crate::verify::report::{CheckKind, Finding, Reason};

/// The pipeline file the policy approves, read by the caller.
#[derive(Clone, Debug)]
pub struct ApprovedPipeline {
    /// As the policy names it, for messages.
    pub path: String,
    pub digest: Digest,
    /// Each gate step's thresholds.
    pub gates: BTreeMap<String, Vec<Threshold>>,
    /// The templates it uses as its lock pins them: name → (version, pack SHA-256).
    pub templates: BTreeMap<String, (String, String)>,
}

pub(super) fn check(
    input: &Input<'_>,
    items: &[Item<'_>],
    run: Option<&Item<'_>>,
    valid: &HashSet<usize>,
    links: &[&Item<'_>],
    found: &mut Found,
) {
    let require = &input.policy.require;
    if require.gates.is_empty() && input.approved.is_none() {
        found.summary(CheckKind::Gates, "not required by the policy");
        return;
    }
    let executed = run.and_then(|run| match &run.parsed.kind {
        Kind::Provenance { pipeline, .. } => pipeline.as_deref(),
        _ => None,
    });
    if let Some(approved) = input.approved {
        approved_pipeline(approved, run, executed, found);
    }
    let verdicts = bound_verdicts(items, valid, links);
    let mut names: Vec<&str> = Vec::new();
    for name in &require.gates {
        if name == "*" {
            names.extend(
                input
                    .approved
                    .iter()
                    .flat_map(|approved| approved.gates.keys().map(String::as_str)),
            );
        } else {
            names.push(name);
        }
    }
    let mut seen = HashSet::new();
    names.retain(|name| seen.insert(*name));
    let mut passed = 0;
    for name in &names {
        let before = found.by_check.get(&CheckKind::Gates).map_or(0, Vec::len);
        match verdicts.get(name) {
            Some((item, verdict)) => judge(input, name, item, verdict, executed, found),
            None => missing(items, valid, run, name, found),
        }
        if found.by_check.get(&CheckKind::Gates).map_or(0, Vec::len) == before {
            passed += 1;
        }
    }
    let under = executed.map_or_else(String::new, |hex| {
        format!(" under pipeline sha256 {}", &hex[..hex.len().min(12)])
    });
    found.summary(
        CheckKind::Gates,
        format!("{passed} of {} required gates passed{under}", names.len()),
    );
}

/// The run must have executed the approved pipeline, byte for byte.
fn approved_pipeline(
    approved: &ApprovedPipeline,
    run: Option<&Item<'_>>,
    executed: Option<&str>,
    found: &mut Found,
) {
    let wanted = approved.digest.hex();
    let finding = match executed {
        Some(hex) if hex == wanted => return,
        Some(hex) => Finding::new(
            Reason::PipelineNotApproved,
            format!(
                "the run executed a pipeline with sha256 {hex}, not the approved `{}` (sha256 {wanted})",
                approved.path
            ),
        )
        .field("predicate.buildDefinition.externalParameters.pipeline.digest"),
        None => Finding::new(
            Reason::PipelineNotApproved,
            format!(
                "no provenance says which pipeline the run executed, so it cannot be the approved `{}`",
                approved.path
            ),
        ),
    };
    let finding = match run {
        Some(run) => finding.in_file(&run.file.path.display().to_string()),
        None => finding,
    };
    found.add(CheckKind::Gates, finding);
}

/// The verdicts the run's gate links list as products, by step.
fn bound_verdicts<'a, 'b>(
    items: &'b [Item<'a>],
    valid: &HashSet<usize>,
    links: &[&'b Item<'a>],
) -> HashMap<&'b str, (&'b Item<'a>, &'b GateVerdict)> {
    let by_digest: HashMap<String, (&Item<'a>, &GateVerdict)> = items
        .iter()
        .filter(|item| valid.contains(&item.index))
        .filter_map(|item| match &item.parsed.kind {
            Kind::TestResult(verdict) => Some((sha(&item.file.digest), (item, verdict.as_ref()))),
            _ => None,
        })
        .collect();
    let mut bound = HashMap::new();
    for link in links {
        let Kind::Link { name, .. } = &link.parsed.kind else {
            continue;
        };
        for subject in &link.parsed.subjects {
            if let Some(found) = subject.sha256.as_ref().and_then(|hex| by_digest.get(hex)) {
                bound.insert(name.as_str(), *found);
            }
        }
    }
    bound
}

fn judge(
    input: &Input<'_>,
    name: &str,
    item: &Item<'_>,
    verdict: &GateVerdict,
    executed: Option<&str>,
    found: &mut Found,
) {
    let file = item.file.path.display().to_string();
    let mut add = |reason, message: String, field: &str| {
        found.add(
            CheckKind::Gates,
            Finding::new(reason, message)
                .in_file(&file)
                .field(field)
                .digest(Some(&sha(&item.file.digest))),
        );
    };
    if verdict.step.as_deref() != Some(name) {
        add(
            Reason::Misnamed,
            format!(
                "gate `{name}`'s verdict says it is about step `{}`",
                verdict.step.as_deref().unwrap_or("(none)")
            ),
            "predicate.configuration[0].annotations.step",
        );
    }
    if !verdict.says_passed() {
        add(
            Reason::GateFailed,
            format!("gate `{name}` failed: {}", verdict.failed.join("; ")),
            "predicate.result",
        );
    }
    match (verdict.pipeline.as_deref(), executed) {
        (Some(judged), Some(ran)) if judged == ran => {}
        (judged, ran) => add(
            Reason::PipelineMismatch,
            format!(
                "gate `{name}` judged the thresholds of pipeline sha256 {}, but the run executed {}",
                judged.unwrap_or("(none)"),
                ran.map_or_else(
                    || "no recorded pipeline".to_owned(),
                    |hex| format!("sha256 {hex}")
                )
            ),
            "predicate.configuration[0].digest",
        ),
    }
    let Some(approved) = input.approved else {
        return;
    };
    let Some(wanted) = approved.gates.get(name) else {
        add(
            Reason::GateMissing,
            format!(
                "the approved pipeline `{}` has no gate `{name}`",
                approved.path
            ),
            "predicate.configuration[0].annotations.step",
        );
        return;
    };
    let judged: Vec<Threshold> = verdict
        .thresholds
        .iter()
        .map(|verdict| Threshold {
            metric: verdict.metric.clone(),
            bound: verdict.bound,
            limit: verdict.limit,
        })
        .collect();
    let changed = differences(&judged, wanted);
    if !changed.is_empty() {
        add(
            Reason::ThresholdChanged,
            format!(
                "gate `{name}` judged thresholds the approved pipeline does not have: {}",
                changed.join("; ")
            ),
            "predicate.configuration[1].annotations.thresholds",
        );
    }
}

/// What differs between the judged and the approved thresholds, as sentences.
fn differences(judged: &[Threshold], approved: &[Threshold]) -> Vec<String> {
    let key = |threshold: &Threshold| (threshold.metric.clone(), threshold.bound.symbol());
    let approved_by: BTreeMap<_, f64> = approved.iter().map(|t| (key(t), t.limit)).collect();
    let judged_by: BTreeMap<_, f64> = judged.iter().map(|t| (key(t), t.limit)).collect();
    let mut changes = Vec::new();
    for ((metric, symbol), limit) in &approved_by {
        match judged_by.get(&(metric.clone(), symbol)) {
            Some(judged) if same(*judged, *limit) => {}
            Some(judged) => changes.push(format!(
                "`{metric} {symbol} {}` instead of `{metric} {symbol} {}`",
                crate::gauntlet::number(*judged),
                crate::gauntlet::number(*limit)
            )),
            None => changes.push(format!(
                "`{metric} {symbol} {}` not judged",
                crate::gauntlet::number(*limit)
            )),
        }
    }
    for ((metric, symbol), limit) in &judged_by {
        if !approved_by.contains_key(&(metric.clone(), symbol)) {
            changes.push(format!(
                "`{metric} {symbol} {}` is not in the approved pipeline",
                crate::gauntlet::number(*limit)
            ));
        }
    }
    changes
}

/// Limits equal up to a JSON round trip.
fn same(left: f64, right: f64) -> bool {
    (left - right).abs() <= f64::EPSILON * left.abs().max(right.abs()).max(1.0)
}

/// No verdict of a required gate in the run: a signed `fail` verdict in the run's folder says
/// why (a failed gate has no link); otherwise the gate did not run.
fn missing(
    items: &[Item<'_>],
    valid: &HashSet<usize>,
    run: Option<&Item<'_>>,
    name: &str,
    found: &mut Found,
) {
    let file_name = crate::attest::run_folder::StepFile::Gate.name(name);
    let in_folder = items.iter().find_map(|item| match &item.parsed.kind {
        Kind::TestResult(verdict)
            if item.file.name == file_name
                && run.is_none_or(|run| run.file.folder == item.file.folder) =>
        {
            Some((item, verdict))
        }
        _ => None,
    });
    let finding = match in_folder {
        Some((item, verdict))
            if valid.contains(&item.index)
                && verdict.step.as_deref() == Some(name)
                && !verdict.says_passed() =>
        {
            Finding::new(
                Reason::GateFailed,
                format!("gate `{name}` failed: {}", verdict.failed.join("; ")),
            )
            .in_file(&item.file.path.display().to_string())
            .field("predicate.result")
        }
        Some((item, _)) => Finding::new(
            Reason::GateMissing,
            format!(
                "`{file_name}` is not the verdict the link of gate `{name}` lists as its product"
            ),
        )
        .in_file(&item.file.path.display().to_string())
        .digest(Some(&sha(&item.file.digest))),
        None => Finding::new(
            Reason::GateMissing,
            format!("no verdict of gate `{name}` in the run: its link lists none"),
        ),
    };
    found.add(CheckKind::Gates, finding);
}
