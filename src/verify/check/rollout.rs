//! The `rollout` check: a signed rollout record of the run (a product of its rollout step's
//! link) has the artifact as its subject and says `promoted`. A record that says
//! `rolled-back` is named, with its reason.

use std::collections::HashSet;

use super::{Found, Input, Item, Products, sha};
use crate::verify::evidence::Kind;
use crate::verify::report::{CheckKind, Finding, Reason};

pub(super) fn check(
    input: &Input<'_>,
    items: &[Item<'_>],
    valid: &HashSet<usize>,
    products: &Products<'_>,
    found: &mut Found,
) {
    if !input.policy.require.rollout {
        found.summary(CheckKind::Rollout, "not required by the policy");
        return;
    }
    for artifact in input.artifacts {
        let hex = sha(&artifact.digest);
        let records: Vec<(&Item<'_>, &str, &str, Option<&str>)> = (items.iter())
            .filter(|item| valid.contains(&item.index))
            .filter(|item| {
                (item.parsed.subjects.iter())
                    .any(|subject| subject.sha256.as_deref() == Some(hex.as_str()))
            })
            .filter_map(|item| match &item.parsed.kind {
                Kind::Rollout {
                    step,
                    result,
                    reason,
                } => Some((item, step.as_str(), result.as_str(), reason.as_deref())),
                _ => None,
            })
            .collect();
        let in_run = |item: &Item<'_>| products.digests.contains(sha(&item.file.digest).as_str());
        if records
            .iter()
            .any(|(item, _, result, _)| *result == "promoted" && in_run(item))
        {
            continue;
        }
        let finding = if let Some((item, step, _, reason)) =
            (records.iter()).find(|(_, _, result, _)| *result != "promoted")
        {
            Finding::new(
                Reason::RolledBack,
                format!(
                    "the rollout `{step}` of `{}` rolled back: {}",
                    artifact.name,
                    reason.unwrap_or("no reason given")
                ),
            )
            .in_file(&item.file.path.display().to_string())
        } else if let Some((item, step, _, _)) = records.first() {
            Finding::new(
                Reason::NotInRun,
                format!(
                    "`{}` (rollout `{step}`) promoted `{}`, but no step of the run made the record",
                    item.file.name, artifact.name
                ),
            )
            .in_file(&item.file.path.display().to_string())
        } else {
            Finding::new(
                Reason::NotRolledOut,
                format!(
                    "no valid rollout record of the run promoted `{}`",
                    artifact.name
                ),
            )
        };
        found.add(CheckKind::Rollout, finding.digest(Some(&hex)));
    }
    found.summary(
        CheckKind::Rollout,
        "a signed rollout record of the run promoted each artifact",
    );
}
