//! `[budget]` (docs/usage.md): what the steps a run executed used, against the pipeline's
//! limits, judged when the run ends from the usage document it signed. A run over budget
//! keeps its documents (they are the evidence) and fails, naming the step that used most.

use rust_decimal::Decimal;

use crate::attest::predicate::usage::RunUsage;
use crate::diagnostic::SourceFile;
use crate::error::{Error, Result};
use crate::pipeline::Pipeline;
use crate::pipeline::model::Budget;
use crate::usage::price::{self, GroupBy, MeteredRun, Options};
use crate::usage::rate_card::{self, RateCard};

/// A budget with its rate card read.
pub struct Loaded {
    pub budget: Budget,
    pub card: Option<RateCard>,
}

/// Reads the budget's rate card (before anything runs, so a mistake in it costs nothing).
pub fn load(pipeline: &Pipeline) -> Result<Option<Loaded>> {
    let Some(budget) = &pipeline.budget else {
        return Ok(None);
    };
    let card = match &budget.rate_card {
        None => None,
        Some(path) => {
            let text = crate::bounded::read_to_string(path, crate::bounded::Kind::Policy)
                .map_err(Error::read(path))?;
            let shown = path
                .strip_prefix(&pipeline.root)
                .unwrap_or(path)
                .to_path_buf();
            let card = rate_card::parse(&SourceFile {
                path: shown,
                text: text.into(),
            })
            .map_err(|diagnostics| Error::Pipeline(Box::new(diagnostics)))?;
            // A run the card cannot price would fail only at its end: say so now.
            card.tier_of(pipeline.tenant.as_deref())
                .map_err(|problem| {
                    Error::Usage(format!(
                        "the budget's rate card `{}` cannot price this run: {problem}",
                        shown_path(pipeline, path)
                    ))
                })?;
            Some(card)
        }
    };
    Ok(Some(Loaded {
        budget: budget.clone(),
        card,
    }))
}

fn shown_path(pipeline: &Pipeline, path: &std::path::Path) -> String {
    path.strip_prefix(&pipeline.root)
        .unwrap_or(path)
        .display()
        .to_string()
}

/// Why the run is over its budget (or cannot be priced against it); `None` within it.
#[must_use]
pub fn judge(loaded: &Loaded, usage: &RunUsage, started: i64) -> Option<String> {
    let mut over = Vec::new();
    if let (Some(limit), Some(written)) = (loaded.budget.cpu_us, &loaded.budget.cpu_hours) {
        let mut used: u128 = 0;
        let mut most: Option<(&str, u64)> = None;
        // What ran: executions and failed attempts, not what the cache saved.
        for step in usage.steps.iter().filter(|step| step.status != "cached") {
            let Some(measured) = &step.usage else {
                continue;
            };
            let cpu = measured.billed_cpu_us();
            used += u128::from(cpu);
            if most.is_none_or(|(_, top)| cpu > top) {
                most = Some((&step.step, cpu));
            }
        }
        if used > u128::from(limit) {
            let (step, top) = most.unwrap_or(("", 0));
            over.push(format!(
                "it used {} CPU-hours, more than the budget's {written}; the step that used most: `{step}` ({} CPU-hours)",
                hours(used),
                hours(u128::from(top))
            ));
        }
    }
    if let (Some(limit), Some(card)) = (&loaded.budget.cost, &loaded.card) {
        match cost(card, usage, started) {
            Err(problem) => over.push(format!("its cost cannot be priced: {problem}")),
            Ok((total, step, top)) => {
                let limit: Decimal = limit.parse().unwrap_or_default();
                if total > limit {
                    let code = card.currency.code;
                    over.push(format!(
                        "it cost {} {code}, more than the budget's {limit} {code}; the step that cost most: `{step}` ({} {code})",
                        card.currency.format(total),
                        card.currency.format(top)
                    ));
                }
            }
        }
    }
    (!over.is_empty()).then(|| format!("the run is over its budget: {}", over.join("; ")))
}

/// The run's cost without base fees, and its dearest step.
fn cost(
    card: &RateCard,
    usage: &RunUsage,
    started: i64,
) -> Result<(Decimal, String, Decimal), String> {
    let day = started - started.rem_euclid(86_400);
    let run = MeteredRun {
        file: "(this run)".to_owned(),
        usage: String::new(),
        provenance: usage.run_id.clone(),
        predicate: usage.clone(),
        started,
    };
    // The run has ended: its own end is "now" for it, however long it took.
    let finished = crate::time::parse_rfc3339(&usage.finished_on).unwrap_or(started);
    let options = Options {
        since: day,
        until: day + 86_400,
        tenant: usage.tenant.clone(),
        group_by: GroupBy::Step,
        now: finished.max(started),
        base_fees: false,
        covered: None,
    };
    let report =
        price::price(card, &[run], Vec::new(), &options).map_err(|problems| problems.join("; "))?;
    if let Some(refused) = report.refused.first() {
        return Err(refused.reason.clone());
    }
    if report.runs.is_empty() {
        return Err("the run is not in what its rate card prices".to_owned());
    }
    let mut total = Decimal::ZERO;
    let mut by_step: std::collections::BTreeMap<String, Decimal> =
        std::collections::BTreeMap::new();
    for line in report.lines.iter().filter(|line| line.charge != "base") {
        let amount: Decimal = line.amount.parse().unwrap_or_default();
        total += amount;
        let step = line
            .group
            .split_once('/')
            .map_or(line.group.as_str(), |(_, step)| step);
        *by_step.entry(step.to_owned()).or_default() += amount;
    }
    let (step, top) = by_step
        .into_iter()
        .max_by(|a, b| a.1.cmp(&b.1))
        .unwrap_or_default();
    Ok((total, step, top))
}

fn hours(micros: u128) -> String {
    let micros = i128::try_from(micros).unwrap_or(i128::MAX);
    Decimal::try_from_i128_with_scale(micros, 0)
        .ok()
        .and_then(|value| value.checked_div(Decimal::from(3_600_000_000u64)))
        .map_or_else(String::new, |value| {
            value.round_dp(4).normalize().to_string()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run that lasted six minutes is judged on what it cost like any other (its end is
    /// "now" for it, not its start).
    #[test]
    fn a_long_run_is_judged_on_its_cost() {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/usage/rate-card.toml"),
        )
        .expect("fixture");
        let card = rate_card::parse(&SourceFile {
            path: "rate-card.toml".into(),
            text: text.into(),
        })
        .expect("card");
        let usage: RunUsage = serde_json::from_value(serde_json::json!({
            "runId": "r", "tenant": "acme",
            "pipeline": {"name": "app", "path": "p.toml", "sha256": ""}, "machine": {"cores": 2},
            "startedOn": "2026-11-03T10:00:00Z", "finishedOn": "2026-11-03T10:06:00Z",
            "steps": [{"step": "build", "status": "executed",
                       "usage": {"method": "wait4", "wallUs": 360_000_000u64, "cpuUserUs": 360_000_000_000u64}}]
        }))
        .expect("usage");
        let loaded = Loaded {
            budget: Budget {
                cpu_us: None,
                cpu_hours: None,
                cost: Some("0.01".to_owned()),
                rate_card: None,
            },
            card: Some(card),
        };
        let started = crate::time::parse_rfc3339("2026-11-03T10:00:00Z").expect("time");
        let verdict = judge(&loaded, &usage, started).expect("over budget");
        assert!(
            verdict.contains("it cost 8.00 USD, more than the budget's 0.01 USD; the step that cost most: `build` (8.00 USD)"),
            "{verdict}"
        );
    }
}
