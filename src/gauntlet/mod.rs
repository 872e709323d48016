//! The gauntlet: quality and safety gates. Evidence readers turn a tool's report into named
//! numbers (a [`Reading`]); a gate's thresholds are checked against them. Pure: the step kind
//! (`kinds/gate.rs`) reads the files and signs the verdict.

pub mod coverage;
pub mod criterion;
pub mod drill;
pub mod junit;
pub mod metrics;
pub mod perturb;
pub mod sarif;
pub mod usage;
pub mod vulns;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

// The verdict's types are the test-result predicate's: a verdict is a document first.
pub use crate::attest::predicate::test_result::{Bound, Verdict, number};

/// The evidence formats a gate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    Junit,
    Lcov,
    Cobertura,
    Sarif,
    Metrics,
    /// Criterion's folder: the last run against a saved baseline.
    Criterion,
    /// A command, timed.
    Drill,
    /// A vulnerability scan's signed statement (in-toto vulns v0.2).
    Vulns,
    /// A run's signed usage document (docs/usage.md).
    Usage,
}

impl EvidenceKind {
    pub const ALL: [Self; 9] = [
        Self::Junit,
        Self::Lcov,
        Self::Cobertura,
        Self::Sarif,
        Self::Metrics,
        Self::Criterion,
        Self::Drill,
        Self::Vulns,
        Self::Usage,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Junit => "junit",
            Self::Lcov => "lcov",
            Self::Cobertura => "cobertura",
            Self::Sarif => "sarif",
            Self::Metrics => "metrics",
            Self::Criterion => "criterion",
            Self::Drill => "drill",
            Self::Vulns => "vulns",
            Self::Usage => "usage",
        }
    }

    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The metrics a gate on this evidence may name; `None`: any JSON pointer (`metrics`).
    #[must_use]
    pub fn metrics(self) -> Option<&'static [&'static str]> {
        match self {
            Self::Junit => Some(&[
                "tests",
                "passed",
                "failures",
                "errors",
                "skipped",
                "pass_rate",
            ]),
            Self::Lcov => Some(&[
                "line_coverage",
                "branch_coverage",
                "function_coverage",
                "lines",
                "lines_covered",
                "branches",
                "branches_covered",
                "functions",
                "functions_covered",
            ]),
            Self::Cobertura => Some(&[
                "line_coverage",
                "branch_coverage",
                "lines",
                "lines_covered",
                "branches",
                "branches_covered",
            ]),
            Self::Sarif => Some(&["errors", "warnings", "notes", "findings", "suppressed"]),
            Self::Metrics => None,
            Self::Criterion => Some(&["regression", "benchmarks", "unmatched"]),
            Self::Drill => Some(&["seconds", "exit_code"]),
            Self::Vulns => Some(vulns::METRICS),
            Self::Usage => Some(usage::METRICS),
        }
    }

    /// Reads a report file's `text` and measures what `metrics` name (a metrics file is read
    /// only there). Criterion's folder and drills are measured by their own modules.
    pub fn read(self, text: &str, metrics: &[&str]) -> Result<Reading, String> {
        match self {
            Self::Junit => junit::read(text).map(|cases| junit::measure(&cases)),
            Self::Lcov => coverage::lcov(text).map(|found| coverage::measure(&found)),
            Self::Cobertura => coverage::cobertura(text).map(|found| coverage::measure(&found)),
            Self::Sarif => sarif::read(text).map(|found| sarif::measure(&found)),
            Self::Metrics => metrics::measure(text, metrics),
            Self::Vulns => vulns::read(text),
            Self::Usage => usage::read(text),
            Self::Criterion | Self::Drill => Err(format!("a {} is not one file", self.name())),
        }
    }
}

/// The predicate of a signed statement given as evidence (the DSSE envelope, or the bare
/// Statement), when its type is `uri`; `what` names it in errors. The gate judges what it is
/// given: whether a trusted key signed it is `gantry verify`'s business.
pub(crate) fn predicate<P: serde::de::DeserializeOwned + Default>(
    text: &str,
    uri: &str,
    what: &str,
) -> Result<P, String> {
    use base64::Engine as _;
    #[derive(Deserialize)]
    struct Envelope {
        payload: String,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Statement<P> {
        predicate_type: String,
        #[serde(default)]
        predicate: P,
    }
    let statement: Statement<P> = match serde_json::from_str::<Envelope>(text) {
        Ok(envelope) => {
            let body = base64::engine::general_purpose::STANDARD
                .decode(envelope.payload.as_bytes())
                .map_err(|_| "the envelope's payload is not base64".to_owned())?;
            serde_json::from_slice(&body)
                .map_err(|error| format!("the payload is not a Statement: {error}"))?
        }
        Err(_) => serde_json::from_str(text)
            .map_err(|error| format!("neither a DSSE envelope nor a Statement: {error}"))?,
    };
    if statement.predicate_type != uri {
        return Err(format!(
            "the predicate is `{}`, not {what} ({uri})",
            statement.predicate_type
        ));
    }
    Ok(statement.predicate)
}

/// Named numbers read from evidence, and the names of the tests that failed (JUnit).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    pub values: BTreeMap<String, f64>,
    pub failed: Vec<String>,
}

impl Reading {
    /// A count (exact up to 2^53, far beyond any report).
    #[expect(clippy::cast_precision_loss)]
    pub fn set(&mut self, name: &str, count: usize) {
        self.values.insert(name.to_owned(), count as f64);
    }

    #[expect(clippy::cast_precision_loss)]
    pub fn ratio(&mut self, name: &str, part: usize, whole: usize) {
        self.values
            .insert(name.to_owned(), part as f64 / whole as f64);
    }
}

/// One requirement of a gate: `metric` against `limit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Threshold {
    pub metric: String,
    pub bound: Bound,
    pub limit: f64,
}

/// Checks every threshold against the reading.
#[must_use]
pub fn judge(reading: &Reading, thresholds: &[Threshold]) -> Vec<Verdict> {
    thresholds
        .iter()
        .map(|threshold| {
            let measured = reading.values.get(&threshold.metric).copied();
            let passed = measured.is_some_and(|value| match threshold.bound {
                Bound::Min => value >= threshold.limit,
                Bound::Max => value <= threshold.limit,
            });
            Verdict {
                metric: threshold.metric.clone(),
                bound: threshold.bound,
                limit: threshold.limit,
                measured,
                passed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
