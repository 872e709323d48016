//! Rate cards (docs/usage.md): what a unit of use costs, per tier, from a date, and which tier
//! each tenant is on. Wire structs keep spans so every mistake is shown at its line; prices
//! are read from the text they were written in (never through a float). Pure.

use std::collections::BTreeMap;
use std::ops::Range;

use rust_decimal::Decimal;
use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::digest::Digest;
use crate::usage::money::{self, Currency};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateCardFileWire {
    rate_card: Option<Spanned<SectionWire>>,
    #[serde(default)]
    tiers: Vec<Spanned<TierWire>>,
    #[serde(default)]
    tenants: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionWire {
    name: Option<Spanned<String>>,
    currency: Option<Spanned<String>>,
    default_tier: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierWire {
    name: Option<Spanned<String>>,
    effective_from: Option<Spanned<toml::Value>>,
    effective_until: Option<Spanned<toml::Value>>,
    base_per_month: Option<Spanned<toml::Value>>,
    cpu_hour: Option<Spanned<toml::Value>>,
    memory_gb_hour: Option<Spanned<toml::Value>>,
    network_gb: Option<Spanned<toml::Value>>,
    step: Option<Spanned<toml::Value>>,
    storage_gb_month: Option<Spanned<toml::Value>>,
}

/// What each unit costs under one tier for one period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prices {
    pub base_per_month: Decimal,
    pub cpu_hour: Decimal,
    pub memory_gb_hour: Decimal,
    pub network_gb: Decimal,
    /// Per executed step (a request to the executor).
    pub step: Decimal,
    pub storage_gb_month: Decimal,
}

/// A tier's prices from a day until (not including) another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    pub tier: String,
    /// Unix seconds of the first day's start, UTC.
    pub from: i64,
    /// The first day it no longer holds; `None`: until the tier's next rate, or for ever.
    pub until: Option<i64>,
    pub prices: Prices,
}

impl Rate {
    /// `YYYY-MM-DD` of its first day.
    #[must_use]
    pub fn from_day(&self) -> String {
        crate::time::rfc3339(self.from)[..10].to_owned()
    }
}

/// A validated rate card.
#[derive(Clone, Debug)]
pub struct RateCard {
    pub name: String,
    pub currency: Currency,
    pub default_tier: Option<String>,
    /// By tier, then by start.
    pub rates: Vec<Rate>,
    /// Tenant → tier.
    pub tenants: BTreeMap<String, String>,
    /// SHA-256 of the file's bytes.
    pub digest: Digest,
    pub source: SourceFile,
}

impl RateCard {
    /// The tier a tenant is on (a run without a tenant is on the default tier).
    pub fn tier_of(&self, tenant: Option<&str>) -> Result<&str, String> {
        if let Some(tier) = tenant.and_then(|tenant| self.tenants.get(tenant)) {
            return Ok(tier);
        }
        self.default_tier.as_deref().ok_or_else(|| match tenant {
            Some(tenant) => format!(
                "tenant `{tenant}` is on no tier of the rate card, and it has no `default_tier`"
            ),
            None => "the run names no tenant, and the rate card has no `default_tier`".to_owned(),
        })
    }

    /// The tier's rate in effect at `time`.
    #[must_use]
    pub fn rate_at(&self, tier: &str, time: i64) -> Option<&Rate> {
        let rates: Vec<&Rate> = self.rates.iter().filter(|rate| rate.tier == tier).collect();
        rates.iter().enumerate().find_map(|(index, rate)| {
            let end = rate
                .until
                .or_else(|| rates.get(index + 1).map(|next| next.from));
            (time >= rate.from && end.is_none_or(|end| time < end)).then_some(*rate)
        })
    }
}

/// Parses and validates a rate card; `source.path` is where it was read from.
pub fn parse(source: &SourceFile) -> Result<RateCard, Diagnostics> {
    let fail = |items| Diagnostics {
        file: source.clone(),
        items,
        more: Vec::new(),
    };
    let (wire, mut errors) =
        crate::pipeline::read_reporting_unknown::<RateCardFileWire>(&source.text);
    let Some(wire) = wire else {
        return Err(fail(errors));
    };
    let (name, currency, default_tier) = section(wire.rate_card.as_ref(), &mut errors);
    let rates = tiers(&wire.tiers, &source.text, &mut errors);
    // Every tier the file names, even one with mistakes (already reported).
    let mut known: Vec<&str> = (wire.tiers.iter())
        .filter_map(|tier| tier.get_ref().name.as_ref())
        .map(|name| name.get_ref().trim())
        .collect();
    known.sort_unstable();
    known.dedup();
    let check_tier = |tier: &Spanned<String>, errors: &mut Vec<Diagnostic>| {
        if !known.contains(&tier.get_ref().as_str()) && !known.is_empty() {
            let names = known.clone();
            errors.push(
                Diagnostic::at(format!("unknown tier `{}`", tier.get_ref()), tier.span())
                    .hint(format!("the tiers are: {}", names.join(", "))),
            );
        }
    };
    if let Some(tier) = &default_tier {
        check_tier(tier, &mut errors);
    }
    let mut tenants = BTreeMap::new();
    for (tenant, tier) in &wire.tenants {
        if tenant.get_ref().trim().is_empty() {
            errors.push(Diagnostic::at(
                "a tenant's name must not be empty",
                tenant.span(),
            ));
        }
        check_tier(tier, &mut errors);
        tenants.insert(tenant.get_ref().clone(), tier.get_ref().clone());
    }
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    Ok(RateCard {
        name,
        currency: currency.unwrap_or(Currency {
            code: "USD",
            minor: 2,
        }),
        default_tier: default_tier.map(Spanned::into_inner),
        rates,
        tenants,
        digest: Digest::of_bytes(source.text.as_bytes()),
        source: source.clone(),
    })
}

fn section(
    wire: Option<&Spanned<SectionWire>>,
    errors: &mut Vec<Diagnostic>,
) -> (String, Option<Currency>, Option<Spanned<String>>) {
    let Some(section) = wire else {
        errors.push(
            Diagnostic::new("missing `[rate_card]` table", Some(0..0))
                .hint("start the file with `[rate_card]` and `currency = \"USD\"`"),
        );
        return (String::new(), None, None);
    };
    let section = section.get_ref();
    let currency = match &section.currency {
        None => {
            errors.push(
                Diagnostic::at("the rate card names no `currency`", 0..0)
                    .hint("an ISO 4217 code, like `currency = \"USD\"`"),
            );
            None
        }
        Some(code) => {
            let currency = Currency::of(code.get_ref());
            if currency.is_none() {
                errors.push(
                    Diagnostic::at(
                        format!("unknown currency `{}`", code.get_ref()),
                        code.span(),
                    )
                    .hint("an ISO 4217 code in capitals, like `USD`, `EUR`, `JPY`"),
                );
            }
            currency
        }
    };
    let name = section
        .name
        .as_ref()
        .map(|name| name.get_ref().trim().to_owned())
        .unwrap_or_default();
    (name, currency, section.default_tier.clone())
}

/// The price keys, in the order docs/usage.md lists them.
pub const PRICE_KEYS: [&str; 6] = [
    "base_per_month",
    "cpu_hour",
    "memory_gb_hour",
    "network_gb",
    "step",
    "storage_gb_month",
];

fn tiers(wire: &[Spanned<TierWire>], text: &str, errors: &mut Vec<Diagnostic>) -> Vec<Rate> {
    if wire.is_empty() {
        errors.push(
            Diagnostic::new("the rate card has no tier", Some(0..0))
                .hint("add `[[tiers]]` with `name`, `effective_from` and the prices"),
        );
    }
    // (rate, span of its `effective_from`, the table's span) for the overlap check.
    let mut rates: Vec<(Rate, Range<usize>, bool)> = Vec::new();
    for tier in wire {
        let span = tier.span();
        let tier = tier.get_ref();
        let Some(name) = &tier.name else {
            errors.push(Diagnostic::at("a tier has no `name`", span));
            continue;
        };
        let label = name.get_ref().trim().to_owned();
        if label.is_empty() {
            errors.push(Diagnostic::at(
                "a tier's name must not be empty",
                name.span(),
            ));
        }
        let from = match &tier.effective_from {
            None => {
                errors.push(
                    Diagnostic::at(
                        format!("tier `{label}` has no `effective_from`"),
                        span.clone(),
                    )
                    .hint("the first day its prices hold, like `effective_from = 2026-01-01`"),
                );
                None
            }
            Some(value) => day(value, errors),
        };
        let until = tier
            .effective_until
            .as_ref()
            .and_then(|value| day(value, errors));
        if let (Some(from), Some(until), Some(wire_until)) = (from, until, &tier.effective_until)
            && until <= from
        {
            errors.push(Diagnostic::at(
                "`effective_until` is not after `effective_from`: the prices never hold",
                wire_until.span(),
            ));
        }
        let prices = prices(tier, &label, &span, text, errors);
        let (Some(from), Some(prices)) = (from, prices) else {
            continue;
        };
        rates.push((
            Rate {
                tier: label,
                from,
                until,
                prices,
            },
            tier.effective_from
                .as_ref()
                .map_or(span.clone(), Spanned::span),
            true,
        ));
    }
    rates.sort_by(|(a, _, _), (b, _, _)| a.tier.cmp(&b.tier).then(a.from.cmp(&b.from)));
    for pair in rates.windows(2) {
        let [(earlier, _, _), (later, later_span, _)] = pair else {
            continue;
        };
        if earlier.tier != later.tier {
            continue;
        }
        if earlier.from == later.from || earlier.until.is_some_and(|until| until > later.from) {
            let until = earlier.until.map_or_else(
                || "on".to_owned(),
                |until| format!("until {}", &crate::time::rfc3339(until)[..10]),
            );
            errors.push(
                Diagnostic::at(
                    format!(
                        "tier `{}` from {} overlaps its prices from {} {until}",
                        later.tier,
                        later.from_day(),
                        earlier.from_day()
                    ),
                    later_span.clone(),
                )
                .hint("each day has one price per tier: end the earlier prices (`effective_until`) on or before this day"),
            );
        }
    }
    rates.into_iter().map(|(rate, _, _)| rate).collect()
}

/// A tier's six prices, each mistake reported; `None` when one is missing or wrong.
fn prices(
    tier: &TierWire,
    label: &str,
    span: &Range<usize>,
    text: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<Prices> {
    let values = [
        &tier.base_per_month,
        &tier.cpu_hour,
        &tier.memory_gb_hour,
        &tier.network_gb,
        &tier.step,
        &tier.storage_gb_month,
    ];
    let mut prices = [Decimal::ZERO; 6];
    let mut complete = true;
    for ((key, value), price) in PRICE_KEYS.iter().zip(values).zip(&mut prices) {
        match value {
            None => {
                complete = false;
                errors.push(
                    Diagnostic::at(format!("tier `{label}` has no `{key}`"), span.clone()).hint(
                        format!(
                            "every tier prices all of: {}; write `{key} = 0` for free",
                            PRICE_KEYS.join(", ")
                        ),
                    ),
                );
            }
            Some(value) => match read_price(value, text) {
                Ok(read) => *price = read,
                Err(message) => {
                    complete = false;
                    errors.push(Diagnostic::at(format!("`{key}`: {message}"), value.span()));
                }
            },
        }
    }
    let [
        base_per_month,
        cpu_hour,
        memory_gb_hour,
        network_gb,
        step,
        storage_gb_month,
    ] = prices;
    complete.then_some(Prices {
        base_per_month,
        cpu_hour,
        memory_gb_hour,
        network_gb,
        step,
        storage_gb_month,
    })
}

/// A day: a TOML date (`2026-01-01`) or the same as a string.
fn day(value: &Spanned<toml::Value>, errors: &mut Vec<Diagnostic>) -> Option<i64> {
    let text = match value.get_ref() {
        toml::Value::String(text) => text.clone(),
        toml::Value::Datetime(datetime) => datetime.to_string(),
        _ => String::new(),
    };
    let parsed = crate::time::parse_date(&text);
    if parsed.is_none() {
        errors
            .push(Diagnostic::at("not a day", value.span()).hint("a date like `2026-01-01` (UTC)"));
    }
    parsed
}

/// A price: a number as written in the file (read from its text, so `0.10` stays exactly
/// ten cents) or a string holding one.
fn read_price(value: &Spanned<toml::Value>, text: &str) -> Result<Decimal, String> {
    match value.get_ref() {
        toml::Value::String(written) => money::parse_price(written),
        toml::Value::Integer(_) | toml::Value::Float(_) => {
            let written = text.get(value.span()).unwrap_or_default();
            money::parse_price(&written.replace('+', ""))
        }
        _ => Err("not a price: write a number, like `0.10`".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn source(text: &str) -> SourceFile {
        SourceFile {
            path: PathBuf::from("rates.toml"),
            text: text.into(),
        }
    }

    const PRICES: &str = "base_per_month = 50.00\ncpu_hour = 0.10\nmemory_gb_hour = 0.005\nnetwork_gb = 0.05\nstep = 0.001\nstorage_gb_month = 0.02\n";

    #[test]
    fn a_card_with_two_periods_of_one_tier() {
        let text = format!(
            "[rate_card]\ncurrency = \"EUR\"\ndefault_tier = \"basic\"\n\n[[tiers]]\nname = \"basic\"\neffective_from = 2026-01-01\neffective_until = 2026-07-01\n{PRICES}\n[[tiers]]\nname = \"basic\"\neffective_from = \"2026-07-01\"\n{}\n[tenants]\nacme = \"basic\"\n",
            PRICES.replace("0.10", "0.09")
        );
        let card = parse(&source(&text)).expect("valid");
        assert_eq!(card.currency.code, "EUR");
        assert_eq!(card.rates.len(), 2);
        let june = crate::time::parse_date("2026-06-30").expect("day");
        let july = crate::time::parse_date("2026-07-01").expect("day");
        assert_eq!(
            card.rate_at("basic", june)
                .map(|rate| rate.prices.cpu_hour.to_string()),
            Some("0.10".to_owned())
        );
        assert_eq!(
            card.rate_at("basic", july)
                .map(|rate| rate.prices.cpu_hour.to_string()),
            Some("0.09".to_owned())
        );
        assert_eq!(card.rate_at("basic", june - 200 * 86_400), None);
        assert_eq!(card.tier_of(Some("acme")), Ok("basic"));
        assert_eq!(card.tier_of(Some("other")), Ok("basic"));
    }

    #[test]
    fn every_mistake_at_its_line() {
        let text = format!(
            "[rate_card]\ncurrency = \"XYZ\"\n\n[[tiers]]\nname = \"basic\"\neffective_from = 2026-01-01\n{PRICES}\n[[tiers]]\nname = \"basic\"\neffective_from = 2026-01-01\n{PRICES}\n[[tiers]]\nname = \"pro\"\neffective_from = 2026-01-01\n{}\n[tenants]\nacme = \"gold\"\n",
            PRICES
                .replace("cpu_hour = 0.10", "cpu_hour = -0.10")
                .replace("step = 0.001\n", "")
        );
        let errors = parse(&source(&text)).expect_err("invalid");
        let rendered = errors.render();
        for expected in [
            "rates.toml:2:12: error: unknown currency `XYZ`",
            "rates.toml:16:18: error: tier `basic` from 2026-01-01 overlaps its prices from 2026-01-01 on",
            "rates.toml:28:12: error: `cpu_hour`: `-0.10` is negative",
            "rates.toml:24:1: error: tier `pro` has no `step`",
            "rates.toml:34:8: error: unknown tier `gold`",
        ] {
            assert!(rendered.contains(expected), "{expected} in\n{rendered}");
        }
    }
}
