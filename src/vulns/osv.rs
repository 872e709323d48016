//! OSV records (<https://ossf.github.io/osv-schema/>): the fields an offline matcher reads,
//! and whether a package version is affected, by the spec's evaluation with two corrections
//! real data needs: at equal versions `introduced` is applied before `fixed` (RustSec's export
//! of RUSTSEC-2024-0399 holds the empty range `[0.23.0, 0.23.0)`), and a `GIT` range is
//! skipped rather than ending the search (its commits need the repository).

use std::cmp::Ordering;

use serde::Deserialize;

use crate::vulns::version::Ecosystem;

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Record {
    pub id: String,
    pub modified: String,
    pub published: Option<String>,
    pub withdrawn: Option<String>,
    pub aliases: Vec<String>,
    pub summary: Option<String>,
    pub severity: Vec<Severity>,
    pub affected: Vec<Affected>,
    pub database_specific: Option<Specific>,
}

/// A score by its type: `CVSS_V3` and `CVSS_V4` carry the vector.
/// The few `database_specific` fields gantry reads (GHSA's `severity` label, RustSec's
/// `informational`), each kept as any JSON so that a database writing another type there
/// does not make the record unreadable; the rest is skipped without being built.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Specific {
    pub severity: Option<serde_json::Value>,
    pub informational: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Severity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Affected {
    pub package: Package,
    pub ranges: Vec<Range>,
    pub versions: Vec<String>,
    pub severity: Vec<Severity>,
    pub database_specific: Option<Specific>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Package {
    pub ecosystem: String,
    pub name: String,
    pub purl: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Range {
    #[serde(rename = "type")]
    pub kind: String,
    pub events: Vec<Event>,
}

/// One event; OSV gives each exactly one of the four.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Event {
    pub introduced: Option<String>,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
    pub limit: Option<String>,
}

/// Whether a version is affected, or why that cannot be said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Affected,
    NotAffected,
    /// A version (the package's or an event's) that the ecosystem's order cannot read.
    Unreadable(String),
}

impl Affected {
    /// Whether `version` of this entry's package is affected: listed in `versions`, or inside
    /// a `SEMVER` or `ECOSYSTEM` range.
    #[must_use]
    pub fn verdict(&self, ecosystem: Ecosystem, version: &str) -> Verdict {
        if self.versions.iter().any(|listed| listed == version) {
            return Verdict::Affected;
        }
        if !ecosystem.parses(version) {
            return Verdict::Unreadable(version.to_owned());
        }
        for range in &self.ranges {
            if !matches!(range.kind.as_str(), "SEMVER" | "ECOSYSTEM") {
                continue;
            }
            match range.contains(ecosystem, version) {
                Verdict::NotAffected => {}
                other => return other,
            }
        }
        Verdict::NotAffected
    }
}

/// Where an event sits among others at the same version: `introduced` first.
fn rank(event: &Event) -> u8 {
    if event.introduced.is_some() {
        0
    } else if event.limit.is_some() {
        2
    } else {
        1
    }
}

fn point(event: &Event) -> Option<&str> {
    event
        .introduced
        .as_deref()
        .or(event.fixed.as_deref())
        .or(event.last_affected.as_deref())
        .or(event.limit.as_deref())
}

/// `a` against `b`, where OSV's `0` (introduced at the beginning) is below every version and
/// `*` (no limit) above.
fn compare(ecosystem: Ecosystem, a: &str, b: &str) -> Option<Ordering> {
    match (a, b) {
        ("0", "0") | ("*", "*") => Some(Ordering::Equal),
        ("0", _) | (_, "*") => Some(Ordering::Less),
        (_, "0") | ("*", _) => Some(Ordering::Greater),
        _ => ecosystem.compare(a, b),
    }
}

impl Range {
    fn contains(&self, ecosystem: Ecosystem, version: &str) -> Verdict {
        let mut events: Vec<&Event> = self.events.iter().filter(|e| point(e).is_some()).collect();
        for event in &events {
            let at = point(event).unwrap_or("0");
            if compare(ecosystem, at, at).is_none() {
                return Verdict::Unreadable(at.to_owned());
            }
        }
        // Stable, by version then rank: every comparison here parses (checked above).
        events.sort_by(|a, b| {
            compare(ecosystem, point(a).unwrap_or("0"), point(b).unwrap_or("0"))
                .unwrap_or(Ordering::Equal)
                .then_with(|| rank(a).cmp(&rank(b)))
        });
        let limits: Vec<&str> = events.iter().filter_map(|e| e.limit.as_deref()).collect();
        if !limits.is_empty()
            && !limits
                .iter()
                .any(|limit| compare(ecosystem, version, limit) == Some(Ordering::Less))
        {
            return Verdict::NotAffected;
        }
        let at_least = |bound: &str| {
            matches!(
                compare(ecosystem, version, bound),
                Some(Ordering::Greater | Ordering::Equal)
            )
        };
        let mut affected = false;
        for event in events {
            if let Some(introduced) = &event.introduced {
                if at_least(introduced) {
                    affected = true;
                }
            } else if let Some(fixed) = &event.fixed {
                if at_least(fixed) {
                    affected = false;
                }
            } else if let Some(last) = &event.last_affected
                && compare(ecosystem, version, last) == Some(Ordering::Greater)
            {
                affected = false;
            }
        }
        if affected {
            Verdict::Affected
        } else {
            Verdict::NotAffected
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(events: &str) -> Affected {
        serde_json::from_str(&format!(
            r#"{{"package": {{"ecosystem": "crates.io", "name": "x"}}, "ranges": [{{"type": "SEMVER", "events": {events}}}]}}"#
        ))
        .expect("an affected entry")
    }

    fn is(entry: &Affected, version: &str) -> bool {
        entry.verdict(Ecosystem::CratesIo, version) == Verdict::Affected
    }

    #[test]
    fn introduced_and_fixed_pairs_make_half_open_ranges() {
        // RUSTSEC-2021-0020 (hyper), as RustSec exports it.
        let hyper = affected(
            r#"[{"introduced": "0.12.0"}, {"fixed": "0.12.36"}, {"introduced": "0.13.0-0"}, {"fixed": "0.13.10"}, {"introduced": "0.14.0-0"}, {"fixed": "0.14.3"}]"#,
        );
        for version in ["0.12.0", "0.12.35", "0.13.0", "0.13.9", "0.14.2"] {
            assert!(is(&hyper, version), "{version}");
        }
        for version in ["0.11.9", "0.12.36", "0.13.10", "0.14.3", "1.0.0"] {
            assert!(!is(&hyper, version), "{version}");
        }
    }

    #[test]
    fn an_empty_range_at_one_version_affects_nothing() {
        // RUSTSEC-2024-0399 (rustls): [0.23.0, 0.23.0) then [0.23.13, 0.23.18).
        let rustls = affected(
            r#"[{"introduced": "0.23.0"}, {"fixed": "0.23.0"}, {"introduced": "0.23.13"}, {"fixed": "0.23.18"}]"#,
        );
        assert!(!is(&rustls, "0.23.0"));
        assert!(is(&rustls, "0.23.13"));
        assert!(!is(&rustls, "0.23.18"));
        // Listed the other way round, the same.
        let reversed = affected(
            r#"[{"fixed": "0.23.18"}, {"introduced": "0.23.13"}, {"fixed": "0.23.0"}, {"introduced": "0.23.0"}]"#,
        );
        assert!(!is(&reversed, "0.23.0"));
        assert!(is(&reversed, "0.23.17"));
    }

    #[test]
    fn zero_last_affected_limit_and_listed_versions() {
        let open = affected(r#"[{"introduced": "0"}]"#);
        assert!(is(&open, "0.0.1") && is(&open, "99.0.0"));
        let inclusive = affected(r#"[{"introduced": "0"}, {"last_affected": "1.2.0"}]"#);
        assert!(is(&inclusive, "1.2.0") && !is(&inclusive, "1.2.1"));
        let limited = affected(r#"[{"introduced": "1.0.0"}, {"limit": "2.0.0"}]"#);
        assert!(is(&limited, "1.5.0") && !is(&limited, "2.0.0"));
        let mut listed = affected("[]");
        listed.versions = vec!["3.1.4".to_owned()];
        assert!(is(&listed, "3.1.4") && !is(&listed, "3.1.5"));
    }

    #[test]
    fn a_git_range_is_skipped_not_the_end_of_the_search() {
        let entry: Affected = serde_json::from_str(
            r#"{"package": {"ecosystem": "PyPI", "name": "x"}, "ranges": [
                {"type": "GIT", "repo": "https://example.org/x", "events": [{"introduced": "abc"}]},
                {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"fixed": "1.0.post1"}]}]}"#,
        )
        .expect("entry");
        assert_eq!(entry.verdict(Ecosystem::PyPI, "1.0"), Verdict::Affected);
        assert_eq!(
            entry.verdict(Ecosystem::PyPI, "1.0.post1"),
            Verdict::NotAffected
        );
    }

    #[test]
    fn an_unreadable_version_is_said_not_guessed() {
        let entry = affected(r#"[{"introduced": "0"}, {"fixed": "1.0.0"}]"#);
        assert_eq!(
            entry.verdict(Ecosystem::CratesIo, "latest"),
            Verdict::Unreadable("latest".to_owned())
        );
        let broken = affected(r#"[{"introduced": "0"}, {"fixed": "one"}]"#);
        assert_eq!(
            broken.verdict(Ecosystem::CratesIo, "1.0.0"),
            Verdict::Unreadable("one".to_owned())
        );
    }
}
