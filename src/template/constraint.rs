//! Version constraints on templates (docs/templates.md): SemVer 2.0.0 versions, and ranges in
//! Cargo's comparator language (`=`, `>`, `>=`, `<`, `<=`, `~`, `^`, `*`, comma-joined, a bare
//! version meaning `^`) with `||` between alternatives, as npm writes them. Pre-releases match
//! only when a comparator of the same `major.minor.patch` asks for a pre-release (SemVer's
//! advice, Cargo's and npm's rule). Build metadata never decides: two versions that differ
//! only in it are the same version to the resolver. Pure.

use std::cmp::Ordering;
use std::fmt;

use semver::{Version, VersionReq};

/// A parsed constraint: alternatives, any of which may hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    text: String,
    alternatives: Vec<VersionReq>,
}

/// Why a constraint or a version is not one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConstraintError {
    pub message: String,
}

impl Constraint {
    /// `^1.4`, `>=1.2, <2`, `~1.4.2 || ^2`, `*`, `=1.4.0-rc.1`.
    pub fn parse(text: &str) -> Result<Self, ConstraintError> {
        let error = |message: String| ConstraintError { message };
        if text.trim().is_empty() {
            return Err(error(
                "an empty constraint: write a range like `^1.4` or `*`".to_owned(),
            ));
        }
        let alternatives = text
            .split("||")
            .map(|alternative| {
                let alternative = alternative.trim();
                if alternative.is_empty() {
                    return Err(error(format!(
                        "`{text}` has an empty alternative around `||`"
                    )));
                }
                VersionReq::parse(alternative)
                    .map_err(|problem| error(format!("`{alternative}` is not a range: {problem}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: text.trim().to_owned(),
            alternatives,
        })
    }

    /// Whether `version` satisfies any alternative.
    #[must_use]
    pub fn matches(&self, version: &Version) -> bool {
        self.alternatives
            .iter()
            .any(|alternative| alternative.matches(version))
    }
}

impl fmt::Display for Constraint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.text)
    }
}

/// A strict SemVer 2.0.0 version (no `v`, no leading zeros, no missing parts).
pub fn version(text: &str) -> Result<Version, ConstraintError> {
    Version::parse(text.trim()).map_err(|problem| ConstraintError {
        message: format!("`{text}` is not a SemVer 2.0.0 version: {problem}"),
    })
}

/// SemVer's precedence (§11): build metadata ignored.
#[must_use]
pub fn precedence(a: &Version, b: &Version) -> Ordering {
    a.cmp_precedence(b)
}

/// One published version as the resolver sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub version: Version,
    pub yanked: bool,
}

/// What the resolver could not do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unresolved {
    /// No version was ever published.
    NoVersions,
    /// No version satisfies every constraint; what each constraint allows on its own.
    Conflict(Vec<(String, Option<Version>)>),
}

/// The highest version (by precedence; of two that differ only in build metadata, the first
/// listed) that satisfies every constraint and is not yanked.
pub fn resolve(
    constraints: &[&Constraint],
    candidates: &[Candidate],
) -> Result<Version, Unresolved> {
    if candidates.is_empty() {
        return Err(Unresolved::NoVersions);
    }
    let usable = || candidates.iter().filter(|candidate| !candidate.yanked);
    let best = |allowed: &dyn Fn(&Version) -> bool| -> Option<Version> {
        usable()
            .filter(|candidate| allowed(&candidate.version))
            .map(|candidate| &candidate.version)
            .fold(None::<&Version>, |best, version| match best {
                Some(best) if precedence(version, best) != Ordering::Greater => Some(best),
                _ => Some(version),
            })
            .cloned()
    };
    best(&|version| {
        constraints
            .iter()
            .all(|constraint| constraint.matches(version))
    })
    .ok_or_else(|| {
        Unresolved::Conflict(
            constraints
                .iter()
                .map(|constraint| {
                    (
                        constraint.to_string(),
                        best(&|version| constraint.matches(version)),
                    )
                })
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Version {
        version(text).expect("version")
    }

    fn c(text: &str) -> Constraint {
        Constraint::parse(text).expect("constraint")
    }

    /// SemVer 2.0.0 §11's own example, in order, and build metadata ignored.
    #[test]
    fn precedence_follows_semver_11() {
        let ordered = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for pair in ordered.windows(2) {
            assert_eq!(
                precedence(&v(pair[0]), &v(pair[1])),
                Ordering::Less,
                "{pair:?}"
            );
        }
        assert_eq!(
            precedence(&v("1.0.0+build.1"), &v("1.0.0+build.2")),
            Ordering::Equal
        );
        assert_eq!(
            precedence(&v("1.0.0-rc.1+a"), &v("1.0.0-rc.1")),
            Ordering::Equal
        );
        for bad in [
            "1.0", "v1.0.0", "01.0.0", "1.0.0-", "1.0.0-01", "1.0.0+", "",
        ] {
            assert!(version(bad).is_err(), "{bad}");
        }
    }

    /// A table of ranges: each constraint against versions it must and must not match.
    #[test]
    fn ranges_match_as_the_table_says() {
        let table: &[(&str, &[&str], &[&str])] = &[
            (
                "^1.4",
                &["1.4.0", "1.4.7", "1.9.0"],
                &["1.3.9", "2.0.0", "1.5.0-rc.1"],
            ),
            ("1.4", &["1.4.0", "1.99.0"], &["2.0.0"]),
            ("^0.3", &["0.3.0", "0.3.9"], &["0.4.0"]),
            ("^0.0.3", &["0.0.3"], &["0.0.4"]),
            ("~1.4", &["1.4.0", "1.4.9"], &["1.5.0"]),
            ("~1.4.2", &["1.4.2", "1.4.9"], &["1.4.1", "1.5.0"]),
            ("=1.4.2", &["1.4.2", "1.4.2+build.7"], &["1.4.3"]),
            (">1.4.2", &["1.4.3", "3.0.0"], &["1.4.2"]),
            (
                ">=1.4.2, <2",
                &["1.4.2", "1.99.99"],
                &["1.4.1", "2.0.0", "2.0.0-rc.1"],
            ),
            ("<1.0.0", &["0.9.0"], &["1.0.0", "1.0.0-rc.1"]),
            ("<=1.0.0", &["1.0.0", "0.1.0"], &["1.0.1"]),
            ("*", &["0.0.1", "7.0.0"], &["7.0.0-rc.1"]),
            ("1.*", &["1.0.0", "1.9.9"], &["2.0.0"]),
            ("^1.2 || ^3", &["1.2.0", "3.4.0"], &["2.0.0", "4.0.0"]),
            // Pre-releases only when asked for, and then only of that release.
            (
                "^1.4.0-rc.1",
                &["1.4.0-rc.1", "1.4.0-rc.2", "1.4.0", "1.5.0"],
                &["1.5.0-rc.1", "1.4.0-beta"],
            ),
            ("=2.0.0-rc.1", &["2.0.0-rc.1"], &["2.0.0-rc.2", "2.0.0"]),
        ];
        for (range, yes, no) in table {
            let constraint = c(range);
            for version in *yes {
                assert!(constraint.matches(&v(version)), "{range} matches {version}");
            }
            for version in *no {
                assert!(
                    !constraint.matches(&v(version)),
                    "{range} does not match {version}"
                );
            }
        }
        for bad in ["", "||", "^1 ||", ">=x", "^1.2.3.4", "1.0 - 2.0"] {
            assert!(Constraint::parse(bad).is_err(), "{bad}");
        }
    }

    fn candidates(versions: &[&str]) -> Vec<Candidate> {
        versions
            .iter()
            .map(|text| Candidate {
                version: v(text.trim_end_matches('!')),
                yanked: text.ends_with('!'),
            })
            .collect()
    }

    /// The highest version every constraint allows; never a yanked one; a conflict names what
    /// each constraint alone would take.
    #[test]
    fn the_resolver_takes_the_highest_allowed_version_or_names_the_conflict() {
        let published = candidates(&["1.3.0", "1.4.0", "1.4.2", "1.5.0!", "1.6.0-rc.1", "2.0.0"]);
        let (caret, below) = (c("^1.4"), c("<1.5"));
        assert_eq!(resolve(&[&caret], &published), Ok(v("1.4.2")));
        assert_eq!(resolve(&[&caret, &below], &published), Ok(v("1.4.2")));
        assert_eq!(resolve(&[&c("*")], &published), Ok(v("2.0.0")));
        assert_eq!(
            resolve(&[&c("^1.6.0-rc.1")], &published),
            Ok(v("1.6.0-rc.1"))
        );
        let (old, new) = (c("~1.3"), c("^2"));
        assert_eq!(
            resolve(&[&old, &new], &published),
            Err(Unresolved::Conflict(vec![
                ("~1.3".to_owned(), Some(v("1.3.0"))),
                ("^2".to_owned(), Some(v("2.0.0"))),
            ]))
        );
        assert_eq!(
            resolve(&[&c("=1.5.0")], &published),
            Err(Unresolved::Conflict(vec![("=1.5.0".to_owned(), None)]))
        );
        assert_eq!(resolve(&[&caret], &[]), Err(Unresolved::NoVersions));
        // Build metadata does not make a version higher: the first listed of equals wins.
        let built = candidates(&["1.0.0+b", "1.0.0+a"]);
        assert_eq!(resolve(&[&c("^1")], &built), Ok(v("1.0.0+b")));
    }
}
