//! A gate's verdict: in-toto's test-result predicate.
//! <https://github.com/in-toto/attestation/blob/main/spec/predicates/test-result.md>
//!
//! Each threshold is a test, named by its sentence. The configuration names the pipeline
//! (annotated with the gate's step: its digest fixes the thresholds) and the evidence
//! (annotated with the stage, the evidence kind and the thresholds with what was measured),
//! so an auditor can judge the verdict again from data.

use serde::{Deserialize, Serialize};

use crate::attest::{DigestSet, ResourceDescriptor};

pub const URI: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// Which side of the limit passes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    /// The value must be at least the limit.
    Min,
    /// The value must be at most the limit.
    Max,
}

impl Bound {
    #[must_use]
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Min => ">=",
            Self::Max => "<=",
        }
    }
}

/// A threshold with what was measured and whether it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub metric: String,
    pub bound: Bound,
    pub limit: f64,
    /// `None`: the evidence does not have this value (nothing coverable, nothing ran): fails.
    pub measured: Option<f64>,
    pub passed: bool,
}

impl Verdict {
    /// `line_coverage >= 0.95: 0.9712`.
    #[must_use]
    pub fn sentence(&self) -> String {
        let measured = self
            .measured
            .map_or_else(|| "not measured".to_owned(), number);
        format!(
            "{} {} {}: {measured}",
            self.metric,
            self.bound.symbol(),
            number(self.limit)
        )
    }
}

/// A number as people write it: integers without a fraction, others to four places.
#[must_use]
pub fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        let text = format!("{value:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct TestResult {
    /// `PASSED` or `FAILED`.
    pub result: String,
    pub configuration: Vec<Configuration>,
    pub passed_tests: Vec<String>,
    pub warned_tests: Vec<String>,
    pub failed_tests: Vec<String>,
}

/// A resource descriptor whose annotations gantry types.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Configuration {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "DigestSet::is_empty")]
    pub digest: DigestSet,
    #[serde(skip_serializing_if = "Annotations::is_empty")]
    pub annotations: Annotations,
}

impl Configuration {
    #[must_use]
    pub fn new(descriptor: ResourceDescriptor, annotations: Annotations) -> Self {
        Self {
            name: descriptor.name.unwrap_or_default(),
            digest: descriptor.digest,
            annotations,
        }
    }

    /// The resource without its annotations: what a gate without a `subject` attests about.
    #[must_use]
    pub fn descriptor(&self) -> ResourceDescriptor {
        ResourceDescriptor {
            name: Some(self.name.clone()),
            digest: self.digest.clone(),
            ..ResourceDescriptor::default()
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Annotations {
    /// On the pipeline's entry: the gate's step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// On the evidence's entry: the evidence kind (`junit`, `criterion`, `drill`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// Each threshold with the value measured and whether it held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Vec<Verdict>>,
    /// The first names behind a failing number (failed tests, slower benchmarks).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub failing: Vec<String>,
    /// Criterion's evidence: the baseline compared with, the files read (digest and path, one
    /// per line: the entry's digest is this listing's) and each benchmark's times.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub baseline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listing: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub benchmarks: Vec<Benchmark>,
    /// A drill's command, how long it took and how it ended.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
}

impl Annotations {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Benchmark {
    pub name: String,
    pub baseline_ns: f64,
    pub new_ns: f64,
    /// `0.05`: 5% slower than the baseline.
    pub change: f64,
}
