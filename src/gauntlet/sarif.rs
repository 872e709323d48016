//! SARIF 2.1.0 (CodeQL, Semgrep, Bandit, clippy-sarif, ESLint): the findings of every run, by
//! level. A result's level is its own `level`, else its rule's
//! `defaultConfiguration.level`, else `warning` (SARIF §3.27.10); a result whose `kind` is
//! not `fail` is level `none`; a suppressed result (a suppression not `rejected` or
//! `underReview`) is not counted.

use serde_json::Value;

use crate::gauntlet::Reading;

/// Findings by level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Findings {
    pub error: usize,
    pub warning: usize,
    pub note: usize,
    pub none: usize,
    pub suppressed: usize,
}

pub fn read(text: &str) -> Result<Findings, String> {
    let log: Value = serde_json::from_str(text).map_err(|error| format!("not JSON: {error}"))?;
    let runs = log["runs"]
        .as_array()
        .ok_or("no `runs` array: not a SARIF log")?;
    let mut findings = Findings::default();
    for run in runs {
        let rules = run["tool"]["driver"]["rules"].as_array();
        for result in run["results"].as_array().into_iter().flatten() {
            if suppressed(result) {
                findings.suppressed += 1;
                continue;
            }
            let kind = result["kind"].as_str().unwrap_or("fail");
            let level = if kind == "fail" {
                result["level"]
                    .as_str()
                    .or_else(|| rule_level(result, rules))
                    .unwrap_or("warning")
            } else {
                "none"
            };
            match level {
                "error" => findings.error += 1,
                "warning" => findings.warning += 1,
                "note" => findings.note += 1,
                "none" => findings.none += 1,
                other => {
                    return Err(format!(
                        "a result's level is `{other}`, not error, warning, note or none"
                    ));
                }
            }
        }
    }
    Ok(findings)
}

fn suppressed(result: &Value) -> bool {
    result["suppressions"].as_array().is_some_and(|list| {
        list.iter().any(|suppression| {
            !matches!(
                suppression["status"].as_str(),
                Some("rejected" | "underReview")
            )
        })
    })
}

/// The level configured on the result's rule, found by `ruleIndex` or by `ruleId`.
fn rule_level<'a>(result: &Value, rules: Option<&'a Vec<Value>>) -> Option<&'a str> {
    let rules = rules?;
    let rule = result["ruleIndex"]
        .as_u64()
        .and_then(|index| rules.get(usize::try_from(index).ok()?))
        .or_else(|| {
            let id = result["ruleId"].as_str()?;
            rules.iter().find(|rule| rule["id"] == id)
        })?;
    rule["defaultConfiguration"]["level"].as_str()
}

/// What a SARIF gate can require: `errors`, `warnings`, `notes` (findings at each level) and
/// `findings` (errors, warnings and notes together).
#[must_use]
pub fn measure(findings: &Findings) -> Reading {
    let mut reading = Reading::default();
    reading.set("errors", findings.error);
    reading.set("warnings", findings.warning);
    reading.set("notes", findings.note);
    reading.set(
        "findings",
        findings.error + findings.warning + findings.note,
    );
    reading.set("suppressed", findings.suppressed);
    reading
}
