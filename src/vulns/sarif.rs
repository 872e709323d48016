//! A scan as a SARIF 2.1.0 log, for code-scanning dashboards and SARIF gates: one rule per
//! vulnerability (its ids, summary and `security-severity`, the CVSS base score GitHub's code
//! scanning ranks by), one result per affected component, located in the SBOM that lists it.
//! Levels: critical, high and unknown severity are `error`, medium `warning`, low `note`; a
//! warning (an unmaintained crate) is of kind `informational` (level `none`); what a VEX statement
//! suppressed is kept, with its suppression, so a dashboard shows why it is gone.

use serde_json::{Value, json};

use crate::vulns::scan::{Finding, Scan};
use crate::vulns::severity::Level;

const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

/// The log of `scan`; `sbom` is the SBOM as given, the results' location.
#[must_use]
pub fn log(scan: &Scan, sbom: &str) -> Value {
    let findings: Vec<&Finding> = scan.findings.iter().chain(&scan.suppressed).collect();
    let mut rules: Vec<Value> = Vec::new();
    let mut rule_ids: Vec<&str> = Vec::new();
    let mut results = Vec::with_capacity(findings.len());
    for finding in findings {
        let index = if let Some(index) = rule_ids.iter().position(|id| *id == finding.id) {
            index
        } else {
            rule_ids.push(&finding.id);
            rules.push(rule(finding));
            rule_ids.len() - 1
        };
        results.push(result(finding, index, sbom));
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "gantry vulns",
                "informationUri": "https://gantry.dev/vulns",
                "semanticVersion": env!("CARGO_PKG_VERSION"),
                "rules": rules,
            }},
            "results": results,
        }],
    })
}

fn rule(finding: &Finding) -> Value {
    let mut properties = json!({"tags": ["security", "vulnerability"]});
    if let Some(score) = finding.severity.as_ref().and_then(|rating| rating.score) {
        properties["security-severity"] = json!(format!("{score:.1}"));
    } else if let Some(rating) = &finding.severity {
        // No score, a label: the middle of its CVSS band, as code scanning reads it.
        let middle = match rating.level {
            Level::Critical => "9.5",
            Level::High => "8.0",
            Level::Medium => "5.5",
            Level::Low => "2.0",
            Level::None => "0.0",
        };
        properties["security-severity"] = json!(middle);
    }
    properties["aliases"] = json!(finding.ids);
    json!({
        "id": finding.id,
        "name": finding.id,
        "shortDescription": {"text": if finding.summary.is_empty() { &finding.id } else { &finding.summary }},
        "helpUri": help_uri(&finding.id),
        "properties": properties,
    })
}

/// Where a person reads about the vulnerability: the advisory's own page for the ids whose
/// home is known, else OSV's.
fn help_uri(id: &str) -> String {
    if id.starts_with("RUSTSEC-") {
        format!("https://rustsec.org/advisories/{id}.html")
    } else {
        format!("https://osv.dev/vulnerability/{id}")
    }
}

fn level(finding: &Finding) -> &'static str {
    // SARIF: a result whose kind is not `fail` has level `none`.
    if finding.informational.is_some() {
        return "none";
    }
    match finding.severity.as_ref().map(|rating| rating.level) {
        Some(Level::Critical | Level::High) | None => "error",
        Some(Level::Medium) => "warning",
        Some(Level::Low | Level::None) => "note",
    }
}

fn result(finding: &Finding, rule_index: usize, sbom: &str) -> Value {
    let mut result = json!({
        "ruleId": finding.id,
        "ruleIndex": rule_index,
        "kind": if finding.informational.is_some() { "informational" } else { "fail" },
        "level": level(finding),
        "message": {"text": format!(
            "{} {} is affected by {}{}",
            finding.package,
            finding.version,
            finding.ids.join(", "),
            if finding.summary.is_empty() { String::new() } else { format!(": {}", finding.summary) }
        )},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": sbom}},
            "logicalLocations": [{"fullyQualifiedName": finding.purl, "kind": "module"}],
        }],
        "partialFingerprints": {"vulnerability/purl": format!("{}@{}", finding.id, finding.purl)},
        "properties": {"purl": finding.purl},
    });
    if let Some(statement) = &finding.vex {
        let suppression = json!({
            "kind": "external",
            "status": "accepted",
            "justification": format!(
                "{} in {}{}",
                statement.status.name(),
                statement.document,
                statement
                    .justification
                    .as_ref()
                    .map(|why| format!(": {why}"))
                    .unwrap_or_default()
            ),
        });
        if statement.status.suppresses() {
            result["suppressions"] = json!([suppression]);
        } else {
            result["properties"]["vex"] = json!(statement.status.name());
        }
    }
    result
}
