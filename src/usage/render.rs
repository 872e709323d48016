//! A report as CSV (one row per line, then the total), a plain-text invoice, and one
//! self-contained HTML page (a table and two bar charts drawn in inline SVG: no network, no
//! script). Pure: a report in, text out.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;

use crate::report::escape::html as escape;
use crate::usage::report::{Line, Report};

const CSV_HEADER: &str =
    "group,tenant,tier,rate_from,month,charge,measured,quantity,unit,unit_price,amount,currency";

/// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. A field
/// a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first) gets a `'` before it.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

#[must_use]
pub fn csv(report: &Report) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str("\r\n");
    for line in &report.lines {
        let fields = [
            &line.group,
            &line.tenant,
            &line.tier,
            &line.rate_from,
            &line.month,
            &line.charge,
            &line.measured,
            &line.quantity,
            &line.unit,
            &line.unit_price,
            &line.amount,
            &report.currency,
        ];
        let row: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&row.join(","));
        out.push_str("\r\n");
    }
    let _ = write!(
        out,
        "total,,,,,,,,,,{},{}\r\n",
        report.total,
        csv_field(&report.currency)
    );
    out
}

/// Strips control characters (a tenant or pipeline name is somebody else's text).
fn clean(text: &str) -> String {
    text.chars()
        .filter(|&character| !crate::report::escape::invisible(character))
        .collect()
}

#[must_use]
pub fn invoice(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "USAGE INVOICE");
    let _ = writeln!(
        out,
        "Period:     {} to {} (UTC, both days included)",
        report.period.since, report.period.until
    );
    if let Some(tenant) = &report.tenant {
        let _ = writeln!(out, "Tenant:     {}", clean(tenant));
    }
    let card = if report.rate_card.name.is_empty() {
        String::new()
    } else {
        format!("{} ", clean(&report.rate_card.name))
    };
    let _ = writeln!(
        out,
        "Rate card:  {card}(sha256 {})",
        report.rate_card.sha256
    );
    let _ = writeln!(out, "Currency:   {}", report.currency);
    let _ = writeln!(out, "Issued:     {}", report.generated_on);
    let _ = writeln!(out);
    let (table, rule) = invoice_table(report);
    out.push_str(&table);
    for subtotal in &report.tenants {
        let _ = writeln!(
            out,
            "{:>width$}",
            format!(
                "Subtotal {}: {} {}",
                clean(&subtotal.name),
                subtotal.amount,
                report.currency
            ),
            width = rule.len()
        );
    }
    let _ = writeln!(
        out,
        "{:>width$}",
        format!("TOTAL: {} {}", report.total, report.currency),
        width = rule.len()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Cache hits saved {} CPU-hours over {} steps ({} {}, not charged).",
        report.saved.cpu_hours, report.saved.steps, report.saved.amount, report.currency
    );
    let _ = writeln!(
        out,
        "Each line is rounded half to even to the currency's minor unit; the total is the sum of the lines."
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Runs covered ({}), by provenance SHA-256 (a failed run has none):",
        report.runs.len()
    );
    for run in &report.runs {
        let _ = writeln!(
            out,
            "  {}  {}  {}",
            clean(&run.run_id),
            clean(&run.pipeline),
            if run.provenance.is_empty() {
                clean(&run.result)
            } else {
                clean(&run.provenance)
            }
        );
    }
    if !report.refused.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Not counted ({}):", report.refused.len());
        for refused in &report.refused {
            let _ = writeln!(
                out,
                "  {}: {}",
                clean(&refused.file),
                clean(&refused.reason)
            );
        }
    }
    out
}

/// The invoice's lines as aligned columns, and the rule under them.
fn invoice_table(report: &Report) -> (String, String) {
    let mut out = String::new();
    let rows: Vec<[String; 5]> = report
        .lines
        .iter()
        .map(|line| {
            [
                clean(&line.group),
                describe(line),
                format!("{} {}", line.quantity, line.unit),
                line.unit_price.clone(),
                line.amount.clone(),
            ]
        })
        .collect();
    let headers = ["Item", "Charge", "Quantity", "Unit price", "Amount"];
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line_of = |cells: [&str; 5]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index >= 2 {
                let _ = write!(text, "  {cell:>width$}");
            } else if index == 0 {
                let _ = write!(text, "{cell:<width$}");
            } else {
                let _ = write!(text, "  {cell:<width$}");
            }
        }
        text.trim_end().to_owned()
    };
    let rule = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1));
    let _ = writeln!(out, "{}", line_of(headers));
    let _ = writeln!(out, "{rule}");
    for row in &rows {
        let cells = [
            row[0].as_str(),
            row[1].as_str(),
            row[2].as_str(),
            row[3].as_str(),
            row[4].as_str(),
        ];
        let _ = writeln!(out, "{}", line_of(cells));
    }
    let _ = writeln!(out, "{rule}");
    (out, rule)
}

fn describe(line: &Line) -> String {
    let mut text = format!(
        "{} ({}, from {})",
        line.charge,
        clean(&line.tier),
        line.rate_from
    );
    if !line.month.is_empty() {
        let _ = write!(text, " {}", line.month);
    }
    text
}

/// One page: the summary, two bar charts (cost by day, cost by pipeline) and the lines.
/// `by_day` and `by_pipeline` are the same runs priced grouped that way.
#[must_use]
pub fn html(report: &Report, by_day: &Report, by_pipeline: &Report) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n<title>Usage {} to {}</title>\n<style>\nbody{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}\ntable{{border-collapse:collapse;margin:1em 0}}\nth,td{{padding:.25em .75em;border-bottom:1px solid #ddd;text-align:left}}\nthead th{{background:#e8eef7}}\ntd.n,th.n{{text-align:right;font-variant-numeric:tabular-nums}}\n.total{{font-weight:bold;font-size:1.3em}}\nsvg text{{font:12px system-ui,sans-serif}}\nsection{{display:inline-block;vertical-align:top;margin-right:3em}}\n</style>\n</head>\n<body>\n",
        escape(&report.period.since),
        escape(&report.period.until)
    );
    let _ = writeln!(
        out,
        "<h1>Usage {} to {}</h1>\n<p>Rate card {} (sha256 <code>{}</code>), grouped by {}{}. Issued {}.</p>",
        escape(&report.period.since),
        escape(&report.period.until),
        escape(&report.rate_card.name),
        escape(&report.rate_card.sha256),
        escape(&report.group_by),
        report
            .tenant
            .as_ref()
            .map(|tenant| format!(", tenant {}", escape(tenant)))
            .unwrap_or_default(),
        escape(&report.generated_on)
    );
    let _ = writeln!(
        out,
        "<p class=\"total\" id=\"total\">Total {} {}</p>\n<p>{} runs covered; cache hits saved {} CPU-hours over {} steps ({} {}, not charged).</p>",
        escape(&report.total),
        escape(&report.currency),
        report.runs.len(),
        escape(&report.saved.cpu_hours),
        report.saved.steps,
        escape(&report.saved.amount),
        escape(&report.currency)
    );
    out.push_str(&chart(
        "Cost per day",
        &usage_by_group(by_day),
        &report.currency,
    ));
    out.push_str(&chart(
        "Cost per pipeline",
        &usage_by_group(by_pipeline),
        &report.currency,
    ));
    out.push_str("<table id=\"lines\">\n<thead><tr><th>Item</th><th>Charge</th><th>Tier</th><th class=\"n\">Quantity</th><th>Unit</th><th class=\"n\">Unit price</th><th class=\"n\">Amount</th></tr></thead>\n<tbody>\n");
    for line in &report.lines {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}{}</td><td>{} (from {})</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            escape(&line.group),
            escape(&line.charge),
            if line.month.is_empty() {
                String::new()
            } else {
                format!(" {}", escape(&line.month))
            },
            escape(&line.tier),
            escape(&line.rate_from),
            escape(&line.quantity),
            escape(&line.unit),
            escape(&line.unit_price),
            escape(&line.amount)
        );
    }
    let _ = writeln!(
        out,
        "</tbody>\n<tfoot><tr><th colspan=\"6\">Total</th><th class=\"n\">{} {}</th></tr></tfoot>\n</table>",
        escape(&report.total),
        escape(&report.currency)
    );
    out.push_str("<h2>Runs covered</h2>\n<table id=\"runs\">\n<thead><tr><th>Run</th><th>Tenant</th><th>Pipeline</th><th>Started</th><th>Provenance SHA-256</th></tr></thead>\n<tbody>\n");
    for run in &report.runs {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            escape(&run.run_id),
            escape(run.tenant.as_deref().unwrap_or("")),
            escape(&run.pipeline),
            escape(&run.started_on),
            if run.provenance.is_empty() {
                escape(&run.result)
            } else {
                escape(&run.provenance)
            }
        );
    }
    out.push_str("</tbody>\n</table>\n");
    if !report.refused.is_empty() {
        out.push_str("<h2>Not counted</h2>\n<ul id=\"refused\">\n");
        for refused in &report.refused {
            let _ = writeln!(
                out,
                "<li><code>{}</code>: {}</li>",
                escape(&refused.file),
                escape(&refused.reason)
            );
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The use (no base fees) of each group, in the group's order.
fn usage_by_group(report: &Report) -> Vec<(String, Decimal)> {
    let mut sums: BTreeMap<String, Decimal> = BTreeMap::new();
    for line in report.lines.iter().filter(|line| line.charge != "base") {
        *sums.entry(line.group.clone()).or_default() +=
            line.amount.parse::<Decimal>().unwrap_or_default();
    }
    sums.into_iter().collect()
}

/// A horizontal bar chart in inline SVG.
fn chart(title: &str, bars: &[(String, Decimal)], currency: &str) -> String {
    const ROW: usize = 22;
    const LABEL: usize = 150;
    const WIDTH: usize = 320;
    let largest = bars
        .iter()
        .map(|(_, amount)| *amount)
        .max()
        .unwrap_or_default();
    let height = ROW * bars.len().max(1) + 10;
    let mut out = format!(
        "<section><h2>{}</h2>\n<svg role=\"img\" aria-label=\"{}\" width=\"{}\" height=\"{height}\" viewBox=\"0 0 {} {height}\">\n",
        escape(title),
        escape(title),
        LABEL + WIDTH + 120,
        LABEL + WIDTH + 120
    );
    if bars.is_empty() {
        out.push_str("<text x=\"0\" y=\"16\">no use in the period</text>\n");
    }
    for (index, (label, amount)) in bars.iter().enumerate() {
        let y = index * ROW + 4;
        let width = if largest.is_zero() {
            0
        } else {
            (*amount * Decimal::from(WIDTH) / largest)
                .round()
                .to_string()
                .parse::<usize>()
                .unwrap_or(0)
        };
        let _ = writeln!(
            out,
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"{LABEL}\" y=\"{y}\" width=\"{}\" height=\"{}\" fill=\"#3b7dd8\"/><text x=\"{}\" y=\"{}\">{} {}</text>",
            y + 13,
            escape(label),
            width.max(1),
            ROW - 6,
            LABEL + width + 6,
            y + 13,
            amount,
            escape(currency)
        );
    }
    out.push_str("</svg></section>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }

    #[test]
    fn html_escapes_what_it_quotes() {
        assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
    }
}
