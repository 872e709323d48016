//! A scan as a signed statement: the in-toto vulns predicate v0.2 about the artifacts the
//! SBOM describes (by their digests in it), naming the database by its snapshot.

use crate::attest::predicate::vulns::{self, Vulns};
use crate::attest::{DigestSet, ResourceDescriptor, Statement};
use crate::vulns::components::Listed;
use crate::vulns::db::Snapshot;
use crate::vulns::scan::{Finding, Scan};
use crate::vulns::threshold::Judged;

/// What the statement names beside the scan.
pub struct Inputs<'a> {
    pub listed: &'a Listed,
    /// The database folder as given, for its URI.
    pub db: &'a str,
    pub snapshot: &'a Snapshot,
    pub scan: &'a Scan,
    pub judged: &'a Judged,
    /// RFC 3339.
    pub started: String,
    pub finished: String,
}

/// The statement; an error when the SBOM names no artifact by SHA-256.
pub fn statement(inputs: &Inputs<'_>) -> Result<Statement<Vulns>, String> {
    if inputs.listed.subjects.is_empty() {
        return Err(
            "the SBOM names no artifact by SHA-256, so the scan would be about nothing: make it with `gantry sbom --subject ARTIFACT`"
                .to_owned(),
        );
    }
    let subjects = (inputs.listed.subjects.iter())
        .map(|(name, sha256)| ResourceDescriptor {
            name: Some(name.clone()),
            digest: DigestSet::one("sha256", sha256.clone()),
            ..ResourceDescriptor::default()
        })
        .collect();
    let result = (inputs.scan.findings.iter())
        .map(|finding| result(finding, inputs.judged.allowed.contains(&finding.id)))
        .collect();
    let predicate = Vulns {
        scanner: vulns::Scanner {
            uri: "https://gantry.dev/vulns".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            db: vulns::Db {
                // An absolute folder as a file URI; a workspace folder as the relative
                // reference it is (the host's path differs on every machine).
                uri: Some(if inputs.db.starts_with('/') {
                    format!("file://{}", inputs.db)
                } else {
                    inputs.db.to_owned()
                }),
                version: Some(format!("sha256:{}", inputs.snapshot.digest)),
                last_update: inputs.snapshot.last_modified.clone(),
            },
            result,
        },
        metadata: vulns::Metadata {
            scan_started_on: inputs.started.clone(),
            scan_finished_on: inputs.finished.clone(),
        },
    };
    Ok(Statement::new(subjects, vulns::URI, predicate))
}

fn result(finding: &Finding, allowed: bool) -> vulns::Result {
    let severity = finding
        .severity
        .as_ref()
        .map(|rating| match rating.score {
            Some(score) => vulns::Severity {
                method: rating.source.split('/').next().unwrap_or("cvss").to_owned(),
                score: format!("{score:.1}"),
            },
            None => vulns::Severity {
                method: "label".to_owned(),
                score: rating.level.name().to_owned(),
            },
        })
        .into_iter()
        .collect();
    let mut annotation = serde_json::Map::new();
    annotation.insert("purl".to_owned(), finding.purl.clone().into());
    annotation.insert("aliases".to_owned(), finding.ids.clone().into());
    if let Some(rating) = &finding.severity {
        annotation.insert("level".to_owned(), rating.level.name().into());
    }
    if let Some(kind) = &finding.informational {
        annotation.insert("informational".to_owned(), kind.clone().into());
    }
    if let Some(statement) = &finding.vex {
        annotation.insert("vex".to_owned(), statement.status.name().into());
    }
    if allowed {
        annotation.insert("allowed".to_owned(), true.into());
    }
    vulns::Result {
        id: finding.id.clone(),
        severity,
        annotations: vec![annotation],
    }
}

/// A result's severity as gantry reads it back: its `level` annotation, else the highest its
/// severities give (a label, a CVSS base score); `None` when unknown.
#[must_use]
pub fn level(result: &vulns::Result) -> Option<crate::vulns::severity::Level> {
    use crate::vulns::severity::Level;
    let annotated = (result.annotations.iter())
        .find_map(|annotation| annotation.get("level")?.as_str().and_then(Level::parse));
    annotated.or_else(|| {
        (result.severity.iter())
            .filter_map(|severity| {
                Level::parse(&severity.score).or_else(|| {
                    let score: f64 = severity.score.trim().parse().ok()?;
                    (0.0..=10.0)
                        .contains(&score)
                        .then(|| Level::of_score(score))
                })
            })
            .max()
    })
}

/// Whether gantry marked the result with `key` (`informational`, `allowed`, `vex`).
#[must_use]
pub fn marked(result: &vulns::Result, key: &str) -> bool {
    (result.annotations.iter()).any(|annotation| annotation.contains_key(key))
}
