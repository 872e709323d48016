//! `[require] vulns`: each artifact has a signed vulnerability scan, by a key the policy
//! allows for it, of a database no older than the window at the verifier's clock, that finds
//! nothing above the policy's severity. The scan need not be the run's: a nightly re-scan of
//! a shipped artifact counts. When there are several, the newest database (then the newest
//! scan) decides, so that an older, cleaner scan cannot hide what a newer one found.

use std::collections::HashSet;

use super::{Found, Input, Item, sha};
use crate::verify::evidence::{Kind, ScanSummary};
use crate::verify::report::{CheckKind, Finding, Reason};
use crate::vulns::severity::Level;

pub(super) fn check(
    input: &Input<'_>,
    items: &[Item<'_>],
    valid: &HashSet<usize>,
    found: &mut Found,
) {
    let Some(required) = input.policy.require.vulns else {
        found.summary(CheckKind::Vulns, "not required by the policy");
        return;
    };
    for artifact in input.artifacts {
        let hex = sha(&artifact.digest);
        let newest = (items.iter())
            .filter(|item| valid.contains(&item.index))
            .filter(|item| {
                (item.parsed.subjects.iter())
                    .any(|subject| subject.sha256.as_deref() == Some(hex.as_str()))
            })
            .filter_map(|item| match &item.parsed.kind {
                Kind::Vulns(scan) => Some((item, scan.as_ref())),
                _ => None,
            })
            .max_by_key(|(item, scan)| (scan.last_update, scan.finished, item.file.name.clone()));
        let Some((item, scan)) = newest else {
            found.add(
                CheckKind::Vulns,
                Finding::new(
                    Reason::ScanMissing,
                    format!(
                        "no valid vulnerability scan has `{}` as its subject (scan its SBOM with a `vulns` step or `gantry vulns scan --attest`)",
                        artifact.name
                    ),
                )
                .digest(Some(&hex)),
            );
            continue;
        };
        let file = item.file.path.display().to_string();
        if let Some(window) = required.db_not_older_than {
            match scan.last_update {
                Some(updated) if updated >= input.now.saturating_sub(window) => {}
                updated => found.add(
                    CheckKind::Vulns,
                    Finding::new(
                        Reason::DatabaseStale,
                        format!(
                            "`{}` scanned `{}` against a database last updated {}, more than {} before {}",
                            item.file.name,
                            artifact.name,
                            updated.map_or_else(|| "at an unknown time".to_owned(), crate::time::rfc3339),
                            window_text(window),
                            crate::time::rfc3339(input.now)
                        ),
                    )
                    .in_file(&file)
                    .field("predicate.scanner.db.lastUpdate")
                    .digest(Some(&hex)),
                ),
            }
        }
        for (id, level) in above(scan, required.max_severity) {
            found.add(
                CheckKind::Vulns,
                Finding::new(
                    Reason::Vulnerable,
                    format!(
                        "`{}` is vulnerable to {id} ({}), above {}",
                        artifact.name,
                        level.map_or("severity unknown, counted as high", Level::name),
                        required.max_severity.name()
                    ),
                )
                .in_file(&file)
                .digest(Some(&hex)),
            );
        }
    }
    found.summary(
        CheckKind::Vulns,
        format!(
            "a signed scan of each artifact finds nothing above {}{}",
            required.max_severity.name(),
            required
                .db_not_older_than
                .map_or_else(String::new, |window| format!(
                    ", its database updated in the last {}",
                    window_text(window)
                ))
        ),
    );
}

/// The vulnerabilities above `ceiling`; one of unknown severity counts as high.
fn above(scan: &ScanSummary, ceiling: Level) -> Vec<(&str, Option<Level>)> {
    (scan.vulnerabilities.iter())
        .filter(|(_, level)| level.unwrap_or(Level::High) > ceiling)
        .map(|(id, level)| (id.as_str(), *level))
        .collect()
}

/// `7d`, `36h`, `90m` or `45s`: the window as a policy writes it.
fn window_text(seconds: i64) -> String {
    match seconds {
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}
