//! Pricing measured runs with a rate card (docs/usage.md): quantities add exactly in the units
//! they were measured in (microseconds, bytes, byte-microseconds, days), each line is priced
//! once and rounded half-even to the currency's minor unit, and every total is the sum of its
//! rounded lines. Pure: verified runs in, a [`Report`] out.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rust_decimal::Decimal;

use crate::attest::predicate::usage::RunUsage;
use crate::usage::money::Currency;
use crate::usage::rate_card::{Prices, Rate, RateCard};
use crate::usage::report::{
    Covered, Line, PeriodDays, RateCardRef, Refused, Report, Saved, Subtotal,
};

/// A usage document whose signature verified.
#[derive(Clone, Debug)]
pub struct MeteredRun {
    /// Where it was found.
    pub file: String,
    /// SHA-256 of the document.
    pub usage: String,
    /// SHA-256 of the provenance it is about; empty for a run that failed (it has none).
    pub provenance: String,
    pub predicate: RunUsage,
    /// Unix seconds.
    pub started: i64,
}

impl MeteredRun {
    /// What makes two documents the same run: its provenance; a failed run's id (it has no
    /// provenance).
    #[must_use]
    pub fn identity(&self) -> String {
        if self.provenance.is_empty() {
            format!("run {}", self.predicate.run_id)
        } else {
            self.provenance.clone()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Tenant,
    Pipeline,
    Step,
    Day,
}

impl GroupBy {
    pub const NAMES: [&'static str; 4] = ["tenant", "pipeline", "step", "day"];

    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "tenant" => Some(Self::Tenant),
            "pipeline" => Some(Self::Pipeline),
            "step" => Some(Self::Step),
            "day" => Some(Self::Day),
            _ => None,
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Pipeline => "pipeline",
            Self::Step => "step",
            Self::Day => "day",
        }
    }
}

/// What to report on.
#[derive(Clone, Debug)]
pub struct Options {
    /// Unix seconds: `[since, until)`, whole UTC days.
    pub since: i64,
    pub until: i64,
    pub tenant: Option<String>,
    pub group_by: GroupBy,
    /// The time the report is made (documents dated after it are refused).
    pub now: i64,
    /// Whether tenants' monthly base fees are charged (a budget judges a run's use alone).
    pub base_fees: bool,
    /// Checking a report made at `now`: the usage documents it covered. A document it did not
    /// cover whose run started after it was made is newer than the report, not a difference.
    pub covered: Option<BTreeSet<String>>,
}

/// What is charged, in the order lines are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Charge {
    Base,
    Cpu,
    Memory,
    Network,
    Steps,
    Storage,
}

impl Charge {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Base => "base",
            Self::Cpu => "cpu",
            Self::Memory => "memory",
            Self::Network => "network",
            Self::Steps => "steps",
            Self::Storage => "storage",
        }
    }

    /// The unit a line's quantity is given in (and its price is per).
    #[must_use]
    pub fn unit(self) -> &'static str {
        match self {
            Self::Base => "month",
            Self::Cpu => "cpu-hour",
            Self::Memory => "GB-hour",
            Self::Network => "GB",
            Self::Steps => "step",
            Self::Storage => "GB-month",
        }
    }

    fn price(self, prices: &Prices) -> Decimal {
        match self {
            Self::Base => prices.base_per_month,
            Self::Cpu => prices.cpu_hour,
            Self::Memory => prices.memory_gb_hour,
            Self::Network => prices.network_gb,
            Self::Steps => prices.step,
            Self::Storage => prices.storage_gb_month,
        }
    }
}

/// Microseconds in an hour.
const HOUR_US: u128 = 3_600_000_000;
/// Bytes in a GB (decimal, as clouds bill).
const GB: u128 = 1_000_000_000;
/// A clock more than this far ahead of the reporter's is not believed.
const SKEW_SECONDS: i64 = 300;

/// One line before pricing: the measured quantity in its base unit and what one billing unit
/// is in that base unit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    group: String,
    tenant: String,
    tier: String,
    /// The rate's first day.
    rate_from: String,
    /// A base fee's month (`2026-12`); empty for use.
    month: String,
    charge: Charge,
}

#[derive(Clone, Copy, Debug)]
struct Measured {
    quantity: u128,
    divisor: u128,
    price: Decimal,
}

/// Prices `runs` (each verified, in the order found) with `card`; `refused` are the
/// documents that did not verify. An error names every run the card cannot price.
pub fn price(
    card: &RateCard,
    runs: &[MeteredRun],
    mut refused: Vec<Refused>,
    options: &Options,
) -> Result<Report, Vec<String>> {
    let mut problems = Vec::new();
    let mut ledger = Ledger::default();
    let mut covered = Vec::new();
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut tenants: BTreeSet<String> = card
        .tenants
        .keys()
        .filter(|tenant| options.tenant.as_ref().is_none_or(|only| only == *tenant))
        .cloned()
        .collect();
    for run in runs {
        let predicate = &run.predicate;
        // Another tenant's documents are none of this report's business, refused or not.
        if options
            .tenant
            .as_ref()
            .is_some_and(|only| predicate.tenant.as_ref() != Some(only))
        {
            continue;
        }
        if (options.covered.as_ref())
            .is_some_and(|covered| !covered.contains(&run.usage) && run.started > options.now)
        {
            continue;
        }
        if let Some(reason) = refusal(run, &seen, options) {
            refused.push(Refused {
                file: run.file.clone(),
                run_id: Some(predicate.run_id.clone()),
                reason,
            });
            continue;
        }
        seen.entry(run.identity()).or_insert(&run.file);
        let tenant = predicate.tenant.clone().unwrap_or_default();
        let tier = match card.tier_of(predicate.tenant.as_deref()) {
            Ok(tier) => tier.to_owned(),
            Err(message) => {
                problems.push(format!("run {}: {message}", predicate.run_id));
                continue;
            }
        };
        let Some(rate) = card.rate_at(&tier, run.started) else {
            problems.push(format!(
                "run {} started {}: tier `{tier}` has no price that day",
                predicate.run_id, predicate.started_on
            ));
            continue;
        };
        if !tenant.is_empty() {
            tenants.insert(tenant.clone());
        }
        let (executed, cached) = ledger.meter(run, &tenant, &tier, rate, options.group_by);
        covered.push(Covered {
            run_id: predicate.run_id.clone(),
            tenant: predicate.tenant.clone(),
            pipeline: predicate.pipeline.name.clone(),
            started_on: predicate.started_on.clone(),
            result: if predicate.succeeded() {
                "success".to_owned()
            } else {
                predicate.result.clone()
            },
            provenance: run.provenance.clone(),
            usage: run.usage.clone(),
            file: run.file.clone(),
            executed,
            cached,
        });
    }
    if options.base_fees {
        base_fees(card, &tenants, options, &mut ledger.lines);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    assemble(card, options, &ledger, covered, refused).map_err(|problem| vec![problem])
}

/// The report of what the ledger holds: each line priced and rounded, the subtotals and the
/// total their sums.
fn assemble(
    card: &RateCard,
    options: &Options,
    ledger: &Ledger,
    covered: Vec<Covered>,
    refused: Vec<Refused>,
) -> Result<Report, String> {
    let currency = card.currency;
    let priced = priced_lines(&ledger.lines, currency)?;
    let saved_priced = priced_lines(&ledger.saved, currency)?;
    // Sums that would not fit a decimal (prices near its limit) are a refusal, not a panic.
    let too_large = || "the report's total is too large to price".to_owned();
    let sum = |amounts: &mut dyn Iterator<Item = Decimal>| -> Result<Decimal, String> {
        let mut sum = Decimal::ZERO;
        for amount in amounts {
            sum = sum.checked_add(amount).ok_or_else(too_large)?;
        }
        Ok(sum)
    };
    let total = sum(&mut priced.iter().map(|(_, amount)| *amount))?;
    let subtotal = |pick: &dyn Fn(&Line) -> String| -> Result<Vec<Subtotal>, String> {
        let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
        for (line, amount) in &priced {
            let sum = sums.entry(pick(line)).or_default();
            *sum = sum.checked_add(*amount).ok_or_else(too_large)?;
        }
        Ok(sums
            .into_iter()
            .map(|(name, amount)| Subtotal {
                name,
                amount: currency.format(amount),
            })
            .collect())
    };
    let groups = subtotal(&|line| line.group.clone())?;
    let by_tenant = subtotal(&|line| display_tenant(&line.tenant))?;
    let saved_amount = sum(&mut saved_priced
        .iter()
        .filter(|(line, _)| line.charge != "base")
        .map(|(_, amount)| *amount))?;
    Ok(Report {
        generated_on: crate::time::rfc3339(options.now),
        period: PeriodDays {
            since: crate::time::rfc3339(options.since)[..10].to_owned(),
            until: crate::time::rfc3339(options.until - 86_400)[..10].to_owned(),
        },
        tenant: options.tenant.clone(),
        group_by: options.group_by.name().to_owned(),
        rate_card: RateCardRef {
            name: card.name.clone(),
            sha256: card.digest.hex(),
            text: card.source.text.to_string(),
        },
        currency: currency.code.to_owned(),
        runs: covered,
        refused,
        lines: priced.into_iter().map(|(line, _)| line).collect(),
        groups,
        tenants: by_tenant,
        saved: Saved {
            cpu_hours: hours(ledger.saved_cpu_us),
            steps: ledger.saved_steps,
            amount: currency.format(saved_amount),
        },
        total: currency.format(total),
    })
}

/// Why a verified document is not counted: a run already counted, dated in the future, or
/// outside the period.
fn refusal(run: &MeteredRun, seen: &BTreeMap<String, &str>, options: &Options) -> Option<String> {
    let predicate = &run.predicate;
    if let Some(first) = seen.get(run.identity().as_str()) {
        return Some(format!("the same run as `{first}` (counted once)"));
    }
    let finished = crate::time::parse_rfc3339(&predicate.finished_on).unwrap_or(run.started);
    let latest = options.now.saturating_add(SKEW_SECONDS);
    if run.started > latest || finished > latest {
        return Some(format!(
            "dated in the future ({}, the report is made {})",
            predicate.finished_on,
            crate::time::rfc3339(options.now)
        ));
    }
    if run.started < options.since || run.started >= options.until {
        return Some(format!(
            "outside the period (started {})",
            predicate.started_on
        ));
    }
    None
}

/// What the runs used, line by line, and what their cache hits saved.
#[derive(Default)]
struct Ledger {
    lines: BTreeMap<Key, Measured>,
    saved: BTreeMap<Key, Measured>,
    saved_cpu_us: u128,
    saved_steps: u64,
}

/// A run's use in one group: (group, cached), steps, then CPU µs, memory byte-µs and
/// stored bytes (each `None` when nothing measured it).
type GroupSums = ((String, bool), u128, [Option<u128>; 3]);

impl Ledger {
    /// Adds a run's steps at `rate`; returns how many were executed and cached. A run's
    /// steps are summed by group first (one group per run unless grouped by step), so the
    /// ledger is touched a few times per run rather than for every step.
    fn meter(
        &mut self,
        run: &MeteredRun,
        tenant: &str,
        tier: &str,
        rate: &Rate,
        group_by: GroupBy,
    ) -> (u64, u64) {
        let predicate = &run.predicate;
        // The UTC day it started (a time written with an offset may say another day).
        let day = crate::time::rfc3339(run.started)[..10].to_owned();
        let run_group = match group_by {
            GroupBy::Tenant => display_tenant(tenant),
            GroupBy::Pipeline => predicate.pipeline.name.clone(),
            GroupBy::Step => String::new(),
            GroupBy::Day => day.clone(),
        };
        let mut sums: Vec<GroupSums> = Vec::new();
        let mut index: HashMap<(String, bool), usize> = HashMap::new();
        let (mut executed, mut cached) = (0, 0);
        for step in &predicate.steps {
            let is_cached = step.status == "cached";
            if is_cached {
                cached += 1;
            } else {
                executed += 1;
            }
            let group = if group_by == GroupBy::Step {
                format!("{}/{}", predicate.pipeline.name, step.step)
            } else {
                run_group.clone()
            };
            let slot = *index.entry((group.clone(), is_cached)).or_insert_with(|| {
                sums.push(((group, is_cached), 0, [None; 3]));
                sums.len() - 1
            });
            let (_, steps, [cpu, memory, stored]) = &mut sums[slot];
            *steps += 1;
            let Some(usage) = &step.usage else {
                continue;
            };
            *cpu = Some(
                cpu.unwrap_or(0)
                    .saturating_add(u128::from(usage.billed_cpu_us())),
            );
            if let Some(peak) = usage.peak_memory_bytes {
                let used = u128::from(peak) * u128::from(usage.wall_us);
                *memory = Some(memory.unwrap_or(0).saturating_add(used));
            }
            if let Some(bytes) = usage.output_bytes {
                *stored = Some(stored.unwrap_or(0).saturating_add(u128::from(bytes)));
            }
        }
        let rate_from = rate.from_day();
        for ((group, is_cached), steps, [cpu, memory, stored]) in sums {
            let target = if is_cached {
                self.saved_steps += u64::try_from(steps).unwrap_or(u64::MAX);
                self.saved_cpu_us = self.saved_cpu_us.saturating_add(cpu.unwrap_or(0));
                &mut self.saved
            } else {
                &mut self.lines
            };
            let mut add = |charge: Charge, quantity: u128, divisor: u128| {
                let key = Key {
                    group: group.clone(),
                    tenant: tenant.to_owned(),
                    tier: tier.to_owned(),
                    rate_from: rate_from.clone(),
                    month: String::new(),
                    charge,
                };
                let entry = target.entry(key).or_insert(Measured {
                    quantity: 0,
                    divisor,
                    price: charge.price(&rate.prices),
                });
                entry.quantity = entry.quantity.saturating_add(quantity);
            };
            add(Charge::Steps, steps, 1);
            if let Some(cpu) = cpu {
                add(Charge::Cpu, cpu, HOUR_US);
            }
            if let Some(memory) = memory {
                add(Charge::Memory, memory, GB * HOUR_US);
            }
            // What a step stored is billed for one month (a cache hit stores nothing new).
            if let Some(stored) = stored.filter(|_| !is_cached) {
                add(Charge::Storage, stored, GB);
            }
        }
        (executed, cached)
    }
}

fn display_tenant(tenant: &str) -> String {
    if tenant.is_empty() {
        "(no tenant)".to_owned()
    } else {
        tenant.to_owned()
    }
}

/// Each tenant's base fee for each month the period touches, in proportion to the days of
/// that month it covers, each day at the rate that holds that day (a day without one is free:
/// a tier that starts or ends inside the period fails nothing).
fn base_fees(
    card: &RateCard,
    tenants: &BTreeSet<String>,
    options: &Options,
    lines: &mut BTreeMap<Key, Measured>,
) {
    for tenant in tenants {
        let Ok(tier) = card.tier_of(Some(tenant)) else {
            continue;
        };
        let mut start = options.since;
        while start < options.until {
            let (year, month, _, _, _, _) = crate::time::civil(start);
            let days = crate::time::days_in_month(year, month);
            let (next_year, next_month) = if month == 12 {
                (year + 1, 1)
            } else {
                (year, month + 1)
            };
            let next = crate::time::parse_date(&format!("{next_year:04}-{next_month:02}-01"))
                .unwrap_or(options.until);
            let end = next.min(options.until);
            // Each day at the rate that holds that day; a day the tier has no price is free.
            let mut day = start;
            while day < end {
                let Some(rate) = card.rate_at(tier, day) else {
                    day += 86_400;
                    continue;
                };
                let group = match options.group_by {
                    GroupBy::Tenant => tenant.clone(),
                    _ => format!("base fee: {tenant}"),
                };
                let entry = lines
                    .entry(Key {
                        group,
                        tenant: tenant.clone(),
                        tier: tier.to_owned(),
                        rate_from: rate.from_day(),
                        month: format!("{year:04}-{month:02}"),
                        charge: Charge::Base,
                    })
                    .or_insert(Measured {
                        quantity: 0,
                        divisor: u128::try_from(days).unwrap_or(1),
                        price: rate.prices.base_per_month,
                    });
                entry.quantity += 1;
                day += 86_400;
            }
            start = end;
        }
    }
}

/// Each line priced and rounded.
fn priced_lines(
    lines: &BTreeMap<Key, Measured>,
    currency: Currency,
) -> Result<Vec<(Line, Decimal)>, String> {
    lines
        .iter()
        .map(|(key, measured)| {
            let overflow = || {
                format!(
                    "the {} of `{}` is too large to price",
                    key.charge.name(),
                    key.group
                )
            };
            let quantity = i128::try_from(measured.quantity).map_err(|_| overflow())?;
            let quantity =
                Decimal::try_from_i128_with_scale(quantity, 0).map_err(|_| overflow())?;
            let divisor = i128::try_from(measured.divisor).map_err(|_| overflow())?;
            let divisor = Decimal::try_from_i128_with_scale(divisor, 0).map_err(|_| overflow())?;
            let exact = quantity
                .checked_mul(measured.price)
                .and_then(|product| product.checked_div(divisor))
                .ok_or_else(overflow)?;
            let amount = currency.round(exact);
            let shown = quantity
                .checked_div(divisor)
                .ok_or_else(overflow)?
                .round_dp(6)
                .normalize();
            Ok((
                Line {
                    group: key.group.clone(),
                    tenant: key.tenant.clone(),
                    tier: key.tier.clone(),
                    rate_from: key.rate_from.clone(),
                    month: key.month.clone(),
                    charge: key.charge.name().to_owned(),
                    measured: measured.quantity.to_string(),
                    quantity: shown.to_string(),
                    unit: key.charge.unit().to_owned(),
                    unit_price: measured.price.to_string(),
                    amount: currency.format(amount),
                },
                amount,
            ))
        })
        .collect()
}

/// Microseconds as hours, six places.
fn hours(microseconds: u128) -> String {
    let micro = i128::try_from(microseconds).unwrap_or(i128::MAX);
    Decimal::try_from_i128_with_scale(micro, 0)
        .ok()
        .and_then(|value| value.checked_div(Decimal::from(3_600_000_000u64)))
        .map_or_else(String::new, |value| {
            value.round_dp(6).normalize().to_string()
        })
}
