//! RustSec advisories as the advisory-db checkout holds them (`crates/NAME/RUSTSEC-*.md`, a
//! TOML front matter in a ```` ```toml ```` fence, then Markdown), and which versions they
//! affect the way `cargo audit` decides it: every `patched` and `unaffected` requirement is an
//! interval of unaffected versions (a bare version is a caret requirement; `-0` upper bounds
//! keep the next series' pre-releases out), and a version in none of them is affected.

use std::cmp::Ordering;

use serde::Deserialize;

use crate::vulns::version::SemVer;

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Advisory {
    pub advisory: Metadata,
    pub versions: Versions,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Metadata {
    pub id: String,
    pub package: String,
    /// `YYYY-MM-DD`.
    pub date: String,
    pub withdrawn: Option<String>,
    pub aliases: Vec<String>,
    pub cvss: Option<String>,
    /// `unsound`, `unmaintained` or `notice`: a warning, not a vulnerability.
    pub informational: Option<String>,
    pub url: Option<String>,
    pub license: Option<String>,
    /// A crate from another registry than crates.io.
    pub source: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Versions {
    pub patched: Vec<String>,
    pub unaffected: Vec<String>,
}

/// Reads an advisory file: the front matter and the title after it.
pub fn parse(text: &str) -> Result<(Advisory, String), String> {
    let body = text
        .strip_prefix("```toml")
        .ok_or("does not open with a ```toml front matter")?;
    let end = body
        .find("\n```")
        .ok_or("its ```toml front matter is not closed")?;
    let advisory: Advisory =
        toml::from_str(&body[..end]).map_err(|error| format!("front matter: {error}"))?;
    if advisory.advisory.id.is_empty() || advisory.advisory.package.is_empty() {
        return Err("the front matter names no `id` or `package`".to_owned());
    }
    let title = body[end + 4..]
        .lines()
        .find_map(|line| line.strip_prefix("# "))
        .unwrap_or_default()
        .trim()
        .to_owned();
    Ok((advisory, title))
}

/// A bound of an interval: the version, and whether it is in.
type Bound = Option<(SemVer, bool)>;

/// Versions between two bounds (none: unbounded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interval {
    lower: Bound,
    upper: Bound,
}

impl Interval {
    fn contains(&self, version: &SemVer) -> bool {
        let above = self
            .lower
            .as_ref()
            .is_none_or(|(bound, inclusive)| match version.cmp(bound) {
                Ordering::Greater => true,
                Ordering::Equal => *inclusive,
                Ordering::Less => false,
            });
        let below = self
            .upper
            .as_ref()
            .is_none_or(|(bound, inclusive)| match version.cmp(bound) {
                Ordering::Less => true,
                Ordering::Equal => *inclusive,
                Ordering::Greater => false,
            });
        above && below
    }
}

/// One requirement (`>= 1.2.0, < 1.3.0`, `^0.4.5`, `=0.2.1`, `0.13.10`) as an interval.
pub fn interval(requirement: &str) -> Result<Interval, String> {
    let mut lower: Bound = None;
    let mut upper: Bound = None;
    let comparators: Vec<&str> = requirement.split(',').map(str::trim).collect();
    for comparator in &comparators {
        let (operator, version) = split_operator(comparator);
        let parts: Vec<&str> = version.split('-').next().unwrap_or("").split('.').collect();
        let full = SemVer::parse(version)
            .ok_or_else(|| format!("`{requirement}`: `{version}` is not a version"))?;
        let numbers: Vec<u64> = parts.iter().filter_map(|part| part.parse().ok()).collect();
        if numbers.len() != parts.len() || numbers.is_empty() || numbers.len() > 3 {
            return Err(format!("`{requirement}`: `{version}` is not a version"));
        }
        let next = |index: usize| -> SemVer {
            // The first version of the next series at `index`, below its pre-releases.
            let mut bumped = [0u64; 3];
            bumped[..=index].copy_from_slice(&padded(&numbers)[..=index]);
            bumped[index] += 1;
            SemVer::parse(&format!("{}.{}.{}-0", bumped[0], bumped[1], bumped[2]))
                .unwrap_or_else(|| full.clone())
        };
        let alone = || {
            if comparators.len() == 1 {
                Ok(())
            } else {
                Err(format!("`{requirement}`: `{operator}` must stand alone"))
            }
        };
        match operator {
            ">=" => lower = Some((full, true)),
            ">" => lower = Some((full, false)),
            "<" => upper = Some((full, false)),
            "<=" => upper = Some((full, true)),
            "=" => {
                alone()?;
                lower = Some((full.clone(), true));
                upper = Some((full, true));
            }
            "~" => {
                alone()?;
                let index = usize::from(numbers.len() != 1);
                upper = Some((next(index), false));
                lower = Some((full, true));
            }
            "^" | "" => {
                alone()?;
                let index = numbers
                    .iter()
                    .position(|&number| number != 0)
                    .unwrap_or(numbers.len() - 1)
                    .min(numbers.len() - 1);
                upper = Some((next(index), false));
                lower = Some((full, true));
            }
            other => return Err(format!("`{requirement}`: unknown operator `{other}`")),
        }
    }
    Ok(Interval { lower, upper })
}

fn padded(numbers: &[u64]) -> [u64; 3] {
    let mut padded = [0u64; 3];
    for (slot, number) in padded.iter_mut().zip(numbers) {
        *slot = *number;
    }
    padded
}

fn split_operator(comparator: &str) -> (&str, &str) {
    for operator in [">=", "<=", ">", "<", "=", "^", "~"] {
        if let Some(version) = comparator.strip_prefix(operator) {
            return (operator, version.trim());
        }
    }
    ("", comparator)
}

impl Advisory {
    /// The intervals of versions it does not affect.
    pub fn unaffected(&self) -> Result<Vec<Interval>, String> {
        (self.versions.patched.iter())
            .chain(&self.versions.unaffected)
            .map(|requirement| interval(requirement))
            .collect()
    }
}

/// Whether `version` is affected, given the advisory's unaffected intervals; `None` when the
/// version is not SemVer.
#[must_use]
pub fn affects(unaffected: &[Interval], version: &str) -> Option<bool> {
    let version = SemVer::parse(version)?;
    Some(
        !unaffected
            .iter()
            .any(|interval| interval.contains(&version)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn affected(patched: &[&str], unaffected: &[&str], version: &str) -> bool {
        let advisory = Advisory {
            versions: Versions {
                patched: patched.iter().map(|&text| text.to_owned()).collect(),
                unaffected: unaffected.iter().map(|&text| text.to_owned()).collect(),
            },
            ..Advisory::default()
        };
        affects(&advisory.unaffected().expect("requirements"), version).expect("semver")
    }

    #[test]
    fn caret_lists_and_lower_bounds() {
        // RUSTSEC-2018-0003 (smallvec).
        let patched = [">= 0.6.3", "^0.3.4", "^0.4.5", "^0.5.1"];
        let unaffected = ["< 0.3.2"];
        for version in ["0.3.2", "0.3.3", "0.4.4", "0.5.0", "0.6.2"] {
            assert!(affected(&patched, &unaffected, version), "{version}");
        }
        for version in [
            "0.3.1", "0.3.4", "0.3.9", "0.4.5", "0.5.1", "0.6.3", "1.13.2",
        ] {
            assert!(!affected(&patched, &unaffected, version), "{version}");
        }
    }

    #[test]
    fn a_bare_version_is_caret_and_exact_versions_are_exact() {
        // RUSTSEC-2021-0020 (hyper) patched `0.13.10`; RUSTSEC-2020-0071 (time) `=0.2.6`.
        assert!(!affected(&["0.13.10"], &[], "0.13.11"));
        assert!(affected(&["0.13.10"], &[], "0.14.0"));
        assert!(!affected(&[">= 0.2.23"], &["=0.2.6"], "0.2.6"));
        assert!(affected(&[">= 0.2.23"], &["=0.2.6"], "0.2.7"));
    }

    #[test]
    fn nothing_patched_affects_every_version_and_prereleases_stay_in_their_series() {
        assert!(affected(&[], &[], "0.9.6"));
        // RUSTSEC-2026-0098 (rustls-webpki): `>= 0.103.12, < 0.104.0-alpha.1`, `>= 0.104.0-alpha.6`.
        let patched = [">= 0.103.12, < 0.104.0-alpha.1", ">= 0.104.0-alpha.6"];
        assert!(affected(&patched, &[], "0.103.11"));
        assert!(!affected(&patched, &[], "0.103.12"));
        assert!(affected(&patched, &[], "0.104.0-alpha.3"));
        assert!(!affected(&patched, &[], "0.104.0"));
        // `^1.2.3` ends below `2.0.0-0`: 2.0.0's pre-releases are not patched by it.
        assert!(affected(&["^1.2.3"], &[], "2.0.0-alpha.1"));
        assert!(!affected(&["~1.2"], &[], "1.2.9"));
        assert!(affected(&["~1.2"], &[], "1.3.0"));
        assert!(!affected(&["^0.0.3"], &[], "0.0.3"));
        assert!(affected(&["^0.0.3"], &[], "0.0.4"));
    }

    #[test]
    fn a_real_advisory_file_reads() {
        let text = "```toml\n[advisory]\nid = \"RUSTSEC-2021-0003\"\npackage = \"smallvec\"\ndate = \"2021-01-08\"\naliases = [\"CVE-2021-25900\"]\ncvss = \"CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H\"\n\n[versions]\npatched = [\"^0.6.14\", \">= 1.6.1\"]\nunaffected = [\"< 0.6.3\"]\n```\n\n# Buffer overflow in SmallVec::insert_many\n\nText.\n";
        let (advisory, title) = parse(text).expect("advisory");
        assert_eq!(advisory.advisory.id, "RUSTSEC-2021-0003");
        assert_eq!(advisory.advisory.aliases, ["CVE-2021-25900"]);
        assert_eq!(title, "Buffer overflow in SmallVec::insert_many");
        assert!(parse("# no front matter").is_err());
        assert!(parse("```toml\n[advisory]\nid = 1\n```").is_err());
    }

    #[test]
    fn malformed_requirements_are_refused() {
        for bad in ["*", ">= x", "^1.2.3, < 2", "= 1.2.3.4"] {
            assert!(interval(bad).is_err(), "{bad}");
        }
    }
}
