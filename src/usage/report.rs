//! A usage report (docs/usage.md): the runs it covered, the documents it refused and why, the
//! priced lines and their totals. Amounts are decimal strings in the currency's minor unit,
//! so the JSON states them exactly. Signed, it is an in-toto Statement about the usage
//! documents it counted; [`differences`] names what a re-computation does not agree with.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub const URI: &str = "https://gantry.dev/attestation/usage-report/v0.1";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Report {
    /// RFC 3339: the time the report was made (documents dated after it are refused).
    pub generated_on: String,
    pub period: PeriodDays,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub group_by: String,
    pub rate_card: RateCardRef,
    pub currency: String,
    /// Every run counted, once.
    pub runs: Vec<Covered>,
    /// Every document not counted, with why.
    pub refused: Vec<Refused>,
    pub lines: Vec<Line>,
    /// By group, then by tenant: sums of lines.
    pub groups: Vec<Subtotal>,
    pub tenants: Vec<Subtotal>,
    /// What cache hits saved (not charged).
    pub saved: Saved,
    pub total: String,
}

/// The period's first and last day, both included.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct PeriodDays {
    pub since: String,
    pub until: String,
}

/// The rate card the report was priced with, whole, so that anyone can price it again.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct RateCardRef {
    pub name: String,
    pub sha256: String,
    pub text: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Covered {
    pub run_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub pipeline: String,
    pub started_on: String,
    /// `success`, `failed` or `interrupted`.
    pub result: String,
    /// SHA-256 of the run's provenance; absent for a run that failed (it has none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub provenance: String,
    /// SHA-256 of its usage document.
    pub usage: String,
    pub file: String,
    pub executed: u64,
    pub cached: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Refused {
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub reason: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Line {
    pub group: String,
    /// Empty: runs without a tenant.
    pub tenant: String,
    pub tier: String,
    /// The first day of the rate that priced it.
    pub rate_from: String,
    /// A base fee's month (`2026-12`); empty for use.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub month: String,
    /// `base`, `cpu`, `memory`, `network`, `steps` or `storage`.
    pub charge: String,
    /// The exact quantity in the unit it was measured in (microseconds of CPU, byte-
    /// microseconds of memory, bytes, steps, days of a base fee's month).
    pub measured: String,
    /// The quantity in `unit`, six places.
    pub quantity: String,
    pub unit: String,
    pub unit_price: String,
    pub amount: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Subtotal {
    pub name: String,
    pub amount: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Saved {
    pub cpu_hours: String,
    /// Cache hits.
    pub steps: u64,
    /// What the hits' work would have cost at the same rates.
    pub amount: String,
}

/// What `again` (the same documents, card and options, priced now) says differently from
/// `report`, each difference named; empty when they agree.
#[must_use]
pub fn differences(report: &Report, again: &Report) -> Vec<String> {
    let mut found = Vec::new();
    let runs = |report: &Report| -> Vec<(String, String)> {
        let mut runs: Vec<_> = (report.runs.iter())
            .map(|run| (run.run_id.clone(), run.usage.clone()))
            .collect();
        runs.sort();
        runs
    };
    let (claimed, found_runs) = (runs(report), runs(again));
    for (run, usage) in &claimed {
        if !found_runs.iter().any(|(_, other)| other == usage) {
            found.push(format!(
                "run {run} (usage {}) is counted by the report but not found in the attestations given",
                short(usage)
            ));
        }
    }
    for (run, usage) in &found_runs {
        if !claimed.iter().any(|(_, other)| other == usage) {
            found.push(format!(
                "run {run} (usage {}) is in the attestations and the period but not counted by the report",
                short(usage)
            ));
        }
    }
    line_differences(report, again, &mut found);
    // Whatever the line by line comparison cannot name (a line listed twice, another order).
    if found.is_empty() && report.lines != again.lines {
        found.push(
            "the lines are not the ones the attestations give (a line repeated or out of order)"
                .to_owned(),
        );
    }
    for (what, claimed, computed) in [
        ("subtotals by group", &report.groups, &again.groups),
        ("subtotals by tenant", &report.tenants, &again.tenants),
    ] {
        if claimed != computed {
            found.push(format!("the {what} differ from the attestations'"));
        }
    }
    if report.saved != again.saved {
        found.push(format!(
            "what cache hits saved: the report says {} CPU-hours ({}), the attestations give {} ({})",
            report.saved.cpu_hours, report.saved.amount, again.saved.cpu_hours, again.saved.amount
        ));
    }
    if report.currency != again.currency {
        found.push(format!(
            "the currency: the report says {}, its rate card {}",
            report.currency, again.currency
        ));
    }
    let strip = |runs: &[Covered]| -> Vec<Covered> {
        let mut runs: Vec<Covered> = (runs.iter())
            .map(|run| Covered {
                file: String::new(),
                ..run.clone()
            })
            .collect();
        runs.sort_by(|a, b| a.usage.cmp(&b.usage));
        runs
    };
    let claimed_runs = strip(&report.runs);
    if claimed_runs
        .windows(2)
        .any(|pair| pair[0].usage == pair[1].usage)
    {
        found.push("the report counts a run twice".to_owned());
    } else if found.is_empty() && claimed_runs != strip(&again.runs) {
        found.push("the runs' details differ from the attestations'".to_owned());
    }
    if report.total != again.total {
        found.push(format!(
            "the total: the report says {} {}, the attestations give {} {}",
            report.total, report.currency, again.total, again.currency
        ));
    }
    found
}

/// A line's name: one (group, tenant, tier, rate, month, charge), the ledger's key.
fn line_key(line: &Line) -> String {
    let mut text = format!(
        "{} {} of `{}` for {} ({} from {})",
        line.charge,
        line.unit,
        line.group,
        if line.tenant.is_empty() {
            "no tenant"
        } else {
            &line.tenant
        },
        line.tier,
        line.rate_from
    );
    if !line.month.is_empty() {
        let _ = write!(text, " in {}", line.month);
    }
    text
}

/// Each line the report claims against the line the attestations give under the same key.
fn line_differences(report: &Report, again: &Report, found: &mut Vec<String>) {
    let key = line_key;
    for line in &report.lines {
        match again.lines.iter().find(|other| key(other) == key(line)) {
            None => found.push(format!(
                "line `{}` ({}) has no usage behind it",
                key(line),
                line.amount
            )),
            Some(other) if other != line => found.push(format!(
                "line `{}`: the report says {} {} for {}, the attestations give {} {} for {}",
                key(line),
                line.quantity,
                line.unit,
                line.amount,
                other.quantity,
                other.unit,
                other.amount
            )),
            Some(_) => {}
        }
    }
    for line in &again.lines {
        if !report.lines.iter().any(|other| key(other) == key(line)) {
            found.push(format!(
                "line `{}` ({}) is missing from the report",
                key(line),
                line.amount
            ));
        }
    }
}

fn short(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
