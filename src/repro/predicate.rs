//! The reproducibility predicate (docs/reproducibility.md): an in-toto Statement v1 whose
//! subjects are the checked run's outputs and whose predicate says, for each, the digest the
//! rebuild produced, whether it reproduced, and why not.

use std::path::Path;

use serde::Serialize;

use crate::attest::{ResourceDescriptor, Statement};
use crate::digest::Digest;
use crate::repro::ReproReport;
use crate::repro::attested::AttestedRun;
use crate::repro::attribute::Attribution;

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Predicate {
    pub pipeline: PipelineRef,
    /// The run whose attestations were checked.
    pub checked: RunRef,
    pub rebuild: RebuildRef,
    pub results: Vec<Result>,
    /// True when every result reproduced.
    pub reproduced: bool,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineRef {
    pub name: String,
    /// Relative to the workspace root.
    pub file: String,
    pub digest: Digests,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    pub run_id: String,
    /// Each step's attestation file with the digest of its bytes.
    pub attestations: Vec<ResourceDescriptor>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuildRef {
    pub run_id: String,
    pub attestations: Vec<ResourceDescriptor>,
    /// What was varied and how.
    pub variations: Vec<VariationRef>,
    pub builder: Builder,
    pub started_on: String,
    pub finished_on: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct VariationRef {
    pub aspect: String,
    pub change: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Builder {
    pub id: String,
    pub version: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Result {
    pub step: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attested: Option<Digests>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rebuilt: Option<Digests>,
    pub reproduced: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// For a step whose inputs were the same: `nondeterministic`, `surroundings` (with the
    /// variations that change it) or `combination`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<AttributionRef>,
    /// Materials whose digest changed between the two builds of the step.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changed_inputs: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diffoscope: Option<ResourceDescriptor>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unexplained: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct AttributionRef {
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub variations: Vec<&'static str>,
}

impl From<&Attribution> for AttributionRef {
    fn from(attribution: &Attribution) -> Self {
        match attribution {
            Attribution::Nondeterministic => Self {
                kind: "nondeterministic",
                variations: Vec::new(),
            },
            Attribution::Surroundings(aspects) => Self {
                kind: "surroundings",
                variations: aspects.iter().map(|aspect| aspect.name()).collect(),
            },
            Attribution::Combination => Self {
                kind: "combination",
                variations: Vec::new(),
            },
            Attribution::Unexplained { .. } => Self {
                kind: "unexplained",
                variations: Vec::new(),
            },
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Digests {
    pub sha256: String,
}

impl From<&Digest> for Digests {
    fn from(digest: &Digest) -> Self {
        Self {
            sha256: digest.hex(),
        }
    }
}

pub struct Inputs<'a> {
    pub pipeline: &'a str,
    pub pipeline_file: &'a Path,
    pub pipeline_digest: &'a Digest,
    pub root: &'a Path,
    pub checked: &'a AttestedRun,
    pub rebuilt: &'a AttestedRun,
    pub report: &'a ReproReport,
    pub started_on: i64,
    pub finished_on: i64,
}

fn run_ref(run: &AttestedRun) -> RunRef {
    RunRef {
        run_id: run
            .folder
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default(),
        attestations: run
            .steps
            .iter()
            .map(|(step, attested)| {
                ResourceDescriptor::named(
                    crate::attest::run_folder::StepFile::Link.name(step),
                    &attested.envelope,
                )
            })
            .collect(),
    }
}

#[must_use]
pub fn statement(inputs: &Inputs<'_>) -> Statement<Predicate> {
    let mut subjects = Vec::new();
    let mut results = Vec::new();
    for step in &inputs.report.steps {
        let comparison = &step.comparison;
        for output in &comparison.outputs {
            if let Some(digest) = &output.attested {
                subjects.push(ResourceDescriptor::named(output.name.clone(), digest));
            }
            let explanation = step.explanations.get(&output.name);
            let reproduced = comparison.attested && comparison.rebuilt && output.reproduced();
            results.push(Result {
                step: comparison.step.clone(),
                name: output.name.clone(),
                attested: output.attested.as_ref().map(Digests::from),
                rebuilt: output.rebuilt.as_ref().map(Digests::from),
                reproduced,
                cause: if reproduced { None } else { step.cause.clone() },
                attribution: if reproduced {
                    None
                } else {
                    step.attribution.as_ref().map(AttributionRef::from)
                },
                changed_inputs: if reproduced {
                    Vec::new()
                } else {
                    comparison
                        .changed_inputs
                        .iter()
                        .map(|input| input.name.clone())
                        .collect()
                },
                diffoscope: explanation.and_then(|explanation| {
                    Some(ResourceDescriptor::named(
                        explanation.report.clone()?,
                        explanation.report_digest.as_ref()?,
                    ))
                }),
                unexplained: explanation.and_then(|explanation| explanation.missing.clone()),
            });
        }
        if comparison.outputs.is_empty() && !comparison.reproduced() {
            results.push(Result {
                step: comparison.step.clone(),
                name: String::new(),
                attested: None,
                rebuilt: None,
                reproduced: false,
                cause: step.cause.clone(),
                attribution: None,
                changed_inputs: Vec::new(),
                diffoscope: None,
                unexplained: None,
            });
        }
    }
    let file = inputs
        .pipeline_file
        .strip_prefix(inputs.root)
        .unwrap_or(inputs.pipeline_file);
    let rebuilt = run_ref(inputs.rebuilt);
    let predicate = Predicate {
        pipeline: PipelineRef {
            name: inputs.pipeline.to_owned(),
            file: file.to_string_lossy().into_owned(),
            digest: inputs.pipeline_digest.into(),
        },
        checked: run_ref(inputs.checked),
        rebuild: RebuildRef {
            run_id: rebuilt.run_id,
            attestations: rebuilt.attestations,
            variations: inputs
                .report
                .variation
                .describe()
                .into_iter()
                .map(|(aspect, change)| VariationRef {
                    aspect: aspect.name().to_owned(),
                    change,
                })
                .collect(),
            builder: Builder {
                id: "https://gantry.dev/repro".to_owned(),
                version: env!("CARGO_PKG_VERSION").to_owned(),
            },
            started_on: crate::time::rfc3339(inputs.started_on),
            finished_on: crate::time::rfc3339(inputs.finished_on),
        },
        reproduced: inputs.report.reproduced(),
        results,
    };
    Statement::new(
        subjects,
        crate::attest::predicate::REPRODUCIBILITY,
        predicate,
    )
}
