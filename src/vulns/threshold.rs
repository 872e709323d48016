//! Whether a scan passes: no finding above `max_severity`, at most `max_count` findings, and
//! an allow-list of ids, each until a date (an allowance that has expired allows nothing, and
//! says so). A finding of unknown severity is above every `max_severity` but `critical`: not
//! knowing is not a pass. Warnings (informational advisories) never count.

use serde::{Deserialize, Serialize};

use crate::vulns::scan::{Finding, Scan};
use crate::vulns::severity::Level;

/// One allowed vulnerability, by any of its ids, until a day (`YYYY-MM-DD`, inclusive).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allowance {
    pub id: String,
    pub until: Option<String>,
}

impl Allowance {
    /// `ID` or `ID@YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (id, until) = match text.split_once('@') {
            Some((id, until)) => (id, Some(until)),
            None => (text, None),
        };
        if id.trim().is_empty() {
            return Err(format!(
                "`{text}`: name the vulnerability (`ID` or `ID@YYYY-MM-DD`)"
            ));
        }
        if let Some(until) = until
            && crate::time::parse_rfc3339(&format!("{until}T00:00:00Z")).is_none()
        {
            return Err(format!("`{text}`: `{until}` is not a date (YYYY-MM-DD)"));
        }
        Ok(Self {
            id: id.trim().to_owned(),
            until: until.map(str::to_owned),
        })
    }

    /// Whether it still holds on `today` (`YYYY-MM-DD`).
    fn holds(&self, today: &str) -> bool {
        self.until.as_deref().is_none_or(|until| today <= until)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thresholds {
    /// The highest severity a finding may have (none: any).
    pub max_severity: Option<Level>,
    /// How many findings there may be (none: any).
    pub max_count: Option<usize>,
    pub allow: Vec<Allowance>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Judged {
    pub passed: bool,
    /// Why not, a sentence each.
    pub failures: Vec<String>,
    /// Findings an allowance let through, by id.
    pub allowed: Vec<String>,
    /// Allowances past their date that would have allowed a finding.
    pub expired: Vec<String>,
}

fn level(finding: &Finding) -> Level {
    // Unknown severity counts as high: only a `critical` ceiling lets it through.
    finding
        .severity
        .as_ref()
        .map_or(Level::High, |rating| rating.level)
}

/// Judges `scan` on `today` (`YYYY-MM-DD`).
#[must_use]
pub fn judge(scan: &Scan, thresholds: &Thresholds, today: &str) -> Judged {
    let mut judged = Judged::default();
    let mut counted: Vec<&Finding> = Vec::new();
    for finding in scan
        .findings
        .iter()
        .filter(|finding| finding.informational.is_none())
    {
        let allowance =
            (thresholds.allow.iter()).find(|allowance| finding.ids.contains(&allowance.id));
        match allowance {
            Some(allowance) if allowance.holds(today) => judged.allowed.push(finding.id.clone()),
            Some(allowance) => {
                judged.expired.push(format!(
                    "{} (allowed until {})",
                    finding.id,
                    allowance.until.as_deref().unwrap_or_default()
                ));
                counted.push(finding);
            }
            None => counted.push(finding),
        }
    }
    if let Some(ceiling) = thresholds.max_severity {
        for finding in &counted {
            let found = level(finding);
            if found > ceiling {
                judged.failures.push(format!(
                    "{} in {} {} is {}{}, above {}",
                    finding.id,
                    finding.package,
                    finding.version,
                    found.name(),
                    if finding.severity.is_none() {
                        " (its severity is unknown)"
                    } else {
                        ""
                    },
                    ceiling.name()
                ));
            }
        }
    }
    if let Some(most) = thresholds.max_count
        && counted.len() > most
    {
        const SHOWN: usize = 5;
        let mut named: Vec<&str> = (counted.iter().take(SHOWN))
            .map(|finding| finding.id.as_str())
            .collect();
        let more = counted.len().saturating_sub(SHOWN);
        let rest = format!("{more} more");
        if more > 0 {
            named.push(&rest);
        }
        judged.failures.push(format!(
            "{} known {}, more than {most}: {}",
            counted.len(),
            if counted.len() == 1 {
                "vulnerability"
            } else {
                "vulnerabilities"
            },
            named.join(", ")
        ));
    }
    judged.passed = judged.failures.is_empty();
    judged
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulns::severity::Rating;

    fn finding(id: &str, level: Option<Level>) -> Finding {
        Finding {
            id: id.to_owned(),
            ids: vec![id.to_owned(), format!("CVE-{id}")],
            purl: "pkg:cargo/a@1.0.0".to_owned(),
            package: "a".to_owned(),
            version: "1.0.0".to_owned(),
            summary: String::new(),
            vectors: Vec::new(),
            label: None,
            severity: level.map(|level| Rating {
                level,
                score: None,
                source: "label".to_owned(),
            }),
            informational: None,
            files: Vec::new(),
            vex: None,
        }
    }

    #[test]
    fn ceilings_counts_and_allowances_with_dates() {
        let scan = Scan {
            findings: vec![
                finding("A", Some(Level::Critical)),
                finding("B", Some(Level::Low)),
                finding("C", None),
            ],
            ..Scan::default()
        };
        let medium = Thresholds {
            max_severity: Some(Level::Medium),
            ..Thresholds::default()
        };
        let judged = judge(&scan, &medium, "2026-12-06");
        assert!(!judged.passed);
        assert_eq!(judged.failures.len(), 2, "{:?}", judged.failures);
        assert!(judged.failures[1].contains("its severity is unknown"));
        // Allowed by an alias until a day still to come; the other allowance has expired.
        let allowing = Thresholds {
            allow: vec![
                Allowance::parse("CVE-A@2027-01-01").expect("allowance"),
                Allowance::parse("C@2026-12-05").expect("allowance"),
            ],
            ..medium.clone()
        };
        let judged = judge(&scan, &allowing, "2026-12-06");
        assert_eq!(judged.allowed, ["A"]);
        assert_eq!(judged.expired, ["C (allowed until 2026-12-05)"]);
        assert_eq!(judged.failures.len(), 1);
        let counting = Thresholds {
            max_count: Some(2),
            allow: vec![Allowance::parse("A").expect("allowance")],
            ..Thresholds::default()
        };
        assert!(judge(&scan, &counting, "2026-12-06").passed);
        assert!(judge(&Scan::default(), &Thresholds::default(), "2026-12-06").passed);
        assert!(Allowance::parse("@2026-01-01").is_err());
        assert!(Allowance::parse("A@tomorrow").is_err());
    }
}
