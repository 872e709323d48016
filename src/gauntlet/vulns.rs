//! A vulnerability scan as a gate's evidence: the in-toto vulns statement a `vulns` step or
//! `gantry vulns scan --attest` writes (the DSSE envelope, or the bare Statement), counted by
//! severity. Warnings (informational advisories) and what the scan's own allow-list let
//! through are counted apart; a vulnerability of unknown severity is counted as `unknown`.

use crate::attest::predicate::vulns::{URI, Vulns};
use crate::gauntlet::Reading;
use crate::vulns::severity::Level;
use crate::vulns::statement::{level, marked};

/// The metrics, as a gate names them.
pub const METRICS: &[&str] = &[
    "vulnerabilities",
    "critical",
    "high",
    "medium",
    "low",
    "unknown",
    "warnings",
    "allowed",
];

pub fn read(text: &str) -> Result<Reading, String> {
    let vulns: Vulns = crate::gauntlet::predicate(text, URI, "the vulns predicate")?;
    let mut counts = [0usize; 5];
    let (mut unknown, mut warnings, mut allowed) = (0, 0, 0);
    let mut failed = Vec::new();
    for result in &vulns.scanner.result {
        if marked(result, "informational") {
            warnings += 1;
        } else if marked(result, "allowed") {
            allowed += 1;
        } else {
            match level(result) {
                Some(level) => counts[level as usize] += 1,
                None => unknown += 1,
            }
            failed.push(result.id.clone());
        }
    }
    let mut reading = Reading::default();
    reading.set("vulnerabilities", failed.len());
    for level in [Level::Critical, Level::High, Level::Medium, Level::Low] {
        reading.set(level.name(), counts[level as usize]);
    }
    reading.set("unknown", unknown);
    reading.set("warnings", warnings);
    reading.set("allowed", allowed);
    reading.failed = failed;
    Ok(reading)
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    fn statement(results: &serde_json::Value) -> String {
        serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "app", "digest": {"sha256": "00"}}],
            "predicateType": super::URI,
            "predicate": {"scanner": {"uri": "x", "db": {"lastUpdate": ""}, "result": results},
                          "metadata": {"scanStartedOn": "", "scanFinishedOn": ""}}
        })
        .to_string()
    }

    #[test]
    fn counts_by_severity_with_warnings_and_allowances_apart() {
        let results = serde_json::json!([
            {"id": "A", "severity": [{"method": "CVSS:3.1", "score": "9.8"}]},
            {"id": "B", "severity": [{"method": "label", "score": "moderate"}]},
            {"id": "C", "severity": []},
            {"id": "D", "severity": [], "annotations": [{"informational": "unmaintained"}]},
            {"id": "E", "severity": [{"method": "CVSS:3.1", "score": "7.5"}], "annotations": [{"allowed": true}]},
            {"id": "F", "severity": [{"method": "CVSS:3.1", "score": "2.0"}], "annotations": [{"level": "high"}]}
        ]);
        let text = statement(&results);
        let envelope = serde_json::json!({
            "payloadType": "application/vnd.in-toto+json",
            "payload": base64::engine::general_purpose::STANDARD.encode(&text),
            "signatures": []
        })
        .to_string();
        for form in [text, envelope] {
            let reading = super::read(&form).expect("read");
            let counts: Vec<(&str, f64)> = (reading.values.iter())
                .map(|(name, value)| (name.as_str(), *value))
                .collect();
            assert_eq!(
                format!("{counts:?}"),
                r#"[("allowed", 1.0), ("critical", 1.0), ("high", 1.0), ("low", 0.0), ("medium", 1.0), ("unknown", 1.0), ("vulnerabilities", 4.0), ("warnings", 1.0)]"#
            );
            assert_eq!(reading.failed, ["A", "B", "C", "F"]);
        }
        let other = statement(&serde_json::json!([])).replace(super::URI, "https://example.org/x");
        assert!(super::read(&other).is_err());
        assert!(super::read("{").is_err());
    }
}
