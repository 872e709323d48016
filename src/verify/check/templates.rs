//! `[require] templates_from`: every template the run's steps were expanded from (the
//! provenance's `resolvedDependencies` named `template:...`) was signed by a key the policy
//! lists (by in-toto key id, or by the `id` of one of its `[[keys]]`), is the pack the approved pipeline's `gantry.lock` pins (when the policy names one),
//! and every link that names a template names one the provenance lists.

use std::collections::HashSet;

use super::{Found, Input, Item};
use crate::keys::Verifier as _;
use crate::verify::evidence::Kind;
use crate::verify::report::{CheckKind, Finding, Reason};

pub(super) fn check(
    input: &Input<'_>,
    items: &[Item<'_>],
    run: Option<&Item<'_>>,
    valid: &HashSet<usize>,
    found: &mut Found,
) {
    let Some(listed_keys) = &input.policy.require.templates_from else {
        found.summary(CheckKind::Templates, "not required by the policy");
        return;
    };
    // An entry is an in-toto key id, or the `id` of one of the policy's `[[keys]]`.
    let trusted: Vec<String> = (listed_keys.iter())
        .map(|entry| {
            (input.keys.iter())
                .find(|key| key.spec.id == *entry)
                .map_or_else(|| entry.clone(), |key| key.verifier.key_id().to_owned())
        })
        .collect();
    let resolved = match run.map(|item| &item.parsed.kind) {
        Some(Kind::Provenance { resolved, .. }) => resolved.as_slice(),
        _ => &[],
    };
    let file = run.map(|item| item.file.path.display().to_string());
    let mut listed = HashSet::new();
    for descriptor in resolved {
        let Some((name, key)) = &descriptor.template else {
            continue;
        };
        let sha256 = descriptor.sha256.clone().unwrap_or_default();
        listed.insert(sha256.clone());
        let finding = |reason, message: String| {
            let finding = Finding::new(reason, message)
                .field("predicate.buildDefinition.resolvedDependencies");
            match &file {
                Some(file) => finding.in_file(file),
                None => finding,
            }
        };
        if !trusted.contains(key) {
            found.add(
                CheckKind::Templates,
                finding(
                    Reason::TemplateNotTrusted,
                    format!(
                        "template `{}` was signed by key `{key}`, which the policy's `templates_from` does not list",
                        descriptor.name
                    ),
                ),
            );
        }
        if let Some(approved) = input.approved {
            match approved.templates.get(name) {
                Some((version, pinned)) if *pinned == sha256 => {}
                Some((version, pinned)) => found.add(
                    CheckKind::Templates,
                    finding(
                        Reason::TemplateNotLocked,
                        format!(
                            "template `{}` is sha256:{sha256}, but the approved pipeline's lock pins {name}@{version} as sha256:{pinned}",
                            descriptor.name
                        ),
                    ),
                ),
                None => found.add(
                    CheckKind::Templates,
                    finding(
                        Reason::TemplateNotLocked,
                        format!(
                            "the run used template `{}`, which the approved pipeline `{}` does not use",
                            descriptor.name, approved.path
                        ),
                    ),
                ),
            }
        }
    }
    unlisted_links(items, valid, &listed, found);
    found.summary(
        CheckKind::Templates,
        format!(
            "{} template(s), each signed by a publisher the policy trusts{}",
            listed.len(),
            if input.approved.is_some() {
                " and pinned by the approved pipeline's lock"
            } else {
                ""
            }
        ),
    );
}

/// Each valid link that names a template the provenance does not list.
fn unlisted_links(
    items: &[Item<'_>],
    valid: &HashSet<usize>,
    listed: &HashSet<String>,
    found: &mut Found,
) {
    for item in items.iter().filter(|item| valid.contains(&item.index)) {
        let Kind::Link {
            name,
            template: Some((template, sha256)),
            ..
        } = &item.parsed.kind
        else {
            continue;
        };
        if !listed.contains(sha256) {
            found.add(
                CheckKind::Templates,
                Finding::new(
                    Reason::TemplateUnlisted,
                    format!(
                        "step `{name}` came from template `{template}` (sha256:{sha256}), which the provenance does not list"
                    ),
                )
                .in_file(&item.file.path.display().to_string()),
            );
        }
    }
}
