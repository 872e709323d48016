//! `[budget]` (docs/usage.md): `cpu_hours` (exact, as written) and `cost` with the
//! `rate_card` that prices it. The rate card itself is read when the run starts.

use std::path::Path;

use rust_decimal::Decimal;
use toml::Spanned;

use super::model::Budget;
use super::wire::BudgetWire;
use crate::diagnostic::Diagnostic;

/// Microseconds in an hour.
const HOUR_US: u64 = 3_600_000_000;

pub(super) fn convert(
    wire: &Spanned<BudgetWire>,
    text: &str,
    root: &Path,
    errors: &mut Vec<Diagnostic>,
) -> Option<Budget> {
    let span = wire.span();
    let budget = wire.get_ref();
    let before = errors.len();
    if budget.cpu_hours.is_none() && budget.cost.is_none() {
        errors.push(
            Diagnostic::at("the budget limits nothing", span.clone())
                .hint("add `cpu_hours = 10`, or `cost = 25.00` with `rate_card = \"rates.toml\"`"),
        );
    }
    let cpu = budget.cpu_hours.as_ref().and_then(|value| {
        let amount = decimal(value, text, "cpu_hours", errors)?;
        let micros = amount
            .checked_mul(Decimal::from(HOUR_US))
            .map(|micros| micros.round())
            .and_then(|micros| u64::try_from(micros).ok());
        if micros.is_none() {
            errors.push(Diagnostic::at("`cpu_hours` is too large", value.span()));
        }
        Some((micros?, amount.normalize().to_string()))
    });
    let cost = (budget.cost.as_ref())
        .and_then(|value| decimal(value, text, "cost", errors))
        .map(|amount| amount.to_string());
    match (&budget.cost, &budget.rate_card) {
        (Some(cost), None) => errors.push(
            Diagnostic::at("a `cost` needs the `rate_card` that prices it", cost.span())
                .hint("add `rate_card = \"rates.toml\"` (a path from the workspace's root; `gantry schema rate-card`)"),
        ),
        (None, Some(card)) => errors.push(
            Diagnostic::at("a `rate_card` prices a `cost`, and there is none", card.span())
                .hint("add `cost = 25.00`, or remove `rate_card`"),
        ),
        _ => {}
    }
    let rate_card = budget.rate_card.as_ref().and_then(|card| {
        let relative = card.get_ref();
        if relative.trim().is_empty()
            || Path::new(relative).is_absolute()
            || relative.contains("..")
        {
            errors.push(
                Diagnostic::at(
                    "`rate_card` is a path inside the workspace, from its root",
                    card.span(),
                )
                .hint("like `rate_card = \"billing/rates.toml\"`"),
            );
            return None;
        }
        Some(root.join(relative))
    });
    (errors.len() == before).then(|| Budget {
        cpu_us: cpu.as_ref().map(|(micros, _)| *micros),
        cpu_hours: cpu.map(|(_, written)| written),
        cost,
        rate_card,
    })
}

/// A positive number as written (read from its text, never through a float).
fn decimal(
    value: &Spanned<toml::Value>,
    text: &str,
    key: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<Decimal> {
    let written = match value.get_ref() {
        toml::Value::String(written) => written.clone(),
        toml::Value::Integer(_) | toml::Value::Float(_) => {
            text.get(value.span()).unwrap_or_default().replace('+', "")
        }
        _ => String::new(),
    };
    let plain = !written.is_empty()
        && written
            .bytes()
            .all(|byte| byte.is_ascii_digit() || byte == b'.')
        && written.matches('.').count() <= 1
        && !written.starts_with('.')
        && !written.ends_with('.');
    let parsed = written.parse::<Decimal>().ok().filter(|_| plain);
    match parsed {
        Some(amount) if amount > Decimal::ZERO => Some(amount),
        _ => {
            errors.push(
                Diagnostic::at(format!("`{key}` must be a number above zero"), value.span())
                    .hint(format!("like `{key} = 2.5`")),
            );
            None
        }
    }
}
