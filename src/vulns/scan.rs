//! Matches an SBOM's components against a database: one finding per vulnerability and
//! component, the advisories that are aliases of each other merged (every id listed), the
//! withdrawn ones left out and the informational ones (RustSec's `unsound`, `unmaintained`)
//! kept apart as warnings.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::vulns::components::Component;
use crate::vulns::db::{Advisory, Database, Matcher};
use crate::vulns::osv::Verdict;
use crate::vulns::rustsec;
use crate::vulns::severity::{Rating, rate};
use crate::vulns::vex;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    /// The advisory's own id (the first, in order, of the merged ones).
    pub id: String,
    /// Every id it goes by: the merged advisories' ids and aliases, sorted.
    pub ids: Vec<String>,
    pub purl: String,
    pub package: String,
    pub version: String,
    pub summary: String,
    /// CVSS vectors the advisories give.
    pub vectors: Vec<String>,
    /// A label an advisory gives in place of a vector (GHSA's `MODERATE`).
    pub label: Option<String>,
    /// The highest vector's base score and band, else the label's band.
    pub severity: Option<Rating>,
    /// `unsound`, `unmaintained`, `notice`: a warning rather than a vulnerability.
    pub informational: Option<String>,
    /// The advisory files matched, relative to the database.
    pub files: Vec<String>,
    /// The VEX statement that stands for it, when one applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vex: Option<vex::Statement>,
}

/// A component whose version the ecosystem's order cannot read: said, not guessed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    pub purl: String,
    pub advisory: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Scan {
    pub findings: Vec<Finding>,
    /// Findings a VEX statement says do not affect the product (`not_affected`, `fixed`).
    pub suppressed: Vec<Finding>,
    pub unreadable: Vec<Unreadable>,
}

fn affects(advisory: &Advisory, component: &Component) -> Verdict {
    match &advisory.matcher {
        Matcher::Osv(entries) => {
            let wanted = component.ecosystem.normalize_name(&component.name);
            let mut verdict = Verdict::NotAffected;
            for (ecosystem, name, affected) in entries {
                if *ecosystem != component.ecosystem || ecosystem.normalize_name(name) != wanted {
                    continue;
                }
                match affected.verdict(*ecosystem, &component.version) {
                    Verdict::Affected => return Verdict::Affected,
                    Verdict::Unreadable(version) => verdict = Verdict::Unreadable(version),
                    Verdict::NotAffected => {}
                }
            }
            verdict
        }
        Matcher::RustSec { unaffected, .. } => {
            match rustsec::affects(unaffected, &component.version) {
                Some(true) => Verdict::Affected,
                Some(false) => Verdict::NotAffected,
                None => Verdict::Unreadable(component.version.clone()),
            }
        }
    }
}

/// Every component against every advisory for its package, then the VEX statements.
#[must_use]
pub fn scan(database: &Database, components: &[Component], statements: &[vex::Statement]) -> Scan {
    let mut scan = Scan::default();
    for component in components {
        let mut matched: Vec<&Advisory> = Vec::new();
        for advisory in database.for_package(component.ecosystem, &component.name) {
            if advisory.withdrawn {
                continue;
            }
            match affects(advisory, component) {
                Verdict::Affected => matched.push(advisory),
                Verdict::NotAffected => {}
                Verdict::Unreadable(version) => scan.unreadable.push(Unreadable {
                    purl: component.purl.clone(),
                    advisory: advisory.id.clone(),
                    version,
                }),
            }
        }
        for mut finding in merge(component, &matched) {
            finding.vex = vex::applying(statements, &finding.ids, component).cloned();
            if finding
                .vex
                .as_ref()
                .is_some_and(|vex| vex.status.suppresses())
            {
                scan.suppressed.push(finding);
            } else {
                scan.findings.push(finding);
            }
        }
    }
    scan.findings
        .sort_by(|a, b| (&a.package, &a.version, &a.id).cmp(&(&b.package, &b.version, &b.id)));
    scan
}

/// The advisories of one component, merged where their ids meet (aliases are symmetric and
/// transitive).
fn merge(component: &Component, advisories: &[&Advisory]) -> Vec<Finding> {
    let names = |advisory: &Advisory| -> BTreeSet<String> {
        std::iter::once(advisory.id.clone())
            .chain(advisory.aliases.iter().cloned())
            .collect()
    };
    let mut groups: Vec<(BTreeSet<String>, Vec<&Advisory>)> = Vec::new();
    for advisory in advisories {
        let mut ids = names(advisory);
        let mut members = vec![*advisory];
        let mut index = 0;
        while index < groups.len() {
            if groups[index].0.is_disjoint(&ids) {
                index += 1;
            } else {
                let (other_ids, other_members) = groups.swap_remove(index);
                ids.extend(other_ids);
                members.extend(other_members);
            }
        }
        groups.push((ids, members));
    }
    groups
        .into_iter()
        .map(|(ids, mut members)| {
            members.sort_by(|a, b| a.id.cmp(&b.id));
            let first = members[0];
            let mut vectors: Vec<String> = members
                .iter()
                .flat_map(|member| member.vectors.clone())
                .collect();
            vectors.sort();
            vectors.dedup();
            let label = members.iter().find_map(|member| member.label.clone());
            Finding {
                severity: rate(&vectors, label.as_deref()),
                id: first.id.clone(),
                ids: ids.into_iter().collect(),
                purl: component.purl.clone(),
                package: component.name.clone(),
                version: component.version.clone(),
                summary: first.summary.clone(),
                vectors,
                label,
                // Informational only when every merged advisory is.
                informational: if members.iter().all(|member| member.informational.is_some()) {
                    first.informational.clone()
                } else {
                    None
                },
                files: members.iter().map(|member| member.file.clone()).collect(),
                vex: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vulns::components::parse_purl;

    fn database(files: &[(&str, &str)]) -> (tempfile::TempDir, Database) {
        let root = tempfile::tempdir().expect("folder");
        for (name, text) in files {
            let path = root.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            crate::atomic::write(&path, text.as_bytes()).expect("write");
        }
        let database = Database::open(root.path()).expect("database");
        (root, database)
    }

    fn rustsec(id: &str, package: &str, patched: &str, extra: &str) -> String {
        format!(
            "```toml\n[advisory]\nid = \"{id}\"\npackage = \"{package}\"\ndate = \"2021-01-01\"\n{extra}\n[versions]\npatched = [{patched}]\n```\n\n# {id}\n"
        )
    }

    #[test]
    fn aliases_merge_withdrawn_drop_and_informational_stay_apart() {
        let (_root, database) = database(&[
            (
                "crates/a/RUSTSEC-2021-0001.md",
                &rustsec(
                    "RUSTSEC-2021-0001",
                    "a",
                    "\">= 1.1.0\"",
                    "aliases = [\"CVE-2021-1\"]",
                ),
            ),
            (
                "GHSA-aaaa.json",
                r#"{"id": "GHSA-aaaa", "modified": "2021-02-01T00:00:00Z", "aliases": ["CVE-2021-1"], "affected": [{"package": {"ecosystem": "crates.io", "name": "a"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.1.0"}]}]}]}"#,
            ),
            (
                "crates/a/RUSTSEC-2021-0002.md",
                &rustsec("RUSTSEC-2021-0002", "a", "", "withdrawn = \"2021-03-01\""),
            ),
            (
                "crates/a/RUSTSEC-2021-0003.md",
                &rustsec(
                    "RUSTSEC-2021-0003",
                    "a",
                    "",
                    "informational = \"unmaintained\"",
                ),
            ),
        ]);
        let components = [parse_purl("pkg:cargo/a@1.0.0").expect("purl")];
        let scan = scan(&database, &components, &[]);
        let ids: Vec<(&str, &[String], Option<&str>)> = (scan.findings.iter())
            .map(|finding| {
                (
                    finding.id.as_str(),
                    finding.ids.as_slice(),
                    finding.informational.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            ids,
            [
                (
                    "GHSA-aaaa",
                    &[
                        "CVE-2021-1".to_owned(),
                        "GHSA-aaaa".to_owned(),
                        "RUSTSEC-2021-0001".to_owned()
                    ][..],
                    None
                ),
                (
                    "RUSTSEC-2021-0003",
                    &["RUSTSEC-2021-0003".to_owned()][..],
                    Some("unmaintained")
                ),
            ]
        );
        let fixed = [parse_purl("pkg:cargo/a@1.1.0").expect("purl")];
        assert_eq!(scan_ids(&database, &fixed), ["RUSTSEC-2021-0003"]);
    }

    fn scan_ids(database: &Database, components: &[Component]) -> Vec<String> {
        scan(database, components, &[])
            .findings
            .into_iter()
            .map(|finding| finding.id)
            .collect()
    }
}
