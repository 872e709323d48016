//! The reproducibility statement of a reproduction: its report as the predicate
//! (`attest::predicate::reproducibility`), the checked run's outputs as its subjects.

use std::path::Path;

pub use crate::attest::predicate::reproducibility::Predicate;
use crate::attest::predicate::reproducibility::{
    AttributionRef, Builder, Digests, ExplanationRef, Outcome, PipelineRef, RebuildRef, RunRef,
    VariationRef,
};
use crate::attest::{ResourceDescriptor, Statement};
use crate::digest::Digest;
use crate::repro::ReproReport;
use crate::repro::attested::AttestedRun;
use crate::repro::attribute::Attribution;

impl From<&Attribution> for AttributionRef {
    fn from(attribution: &Attribution) -> Self {
        let names = |aspects: &[crate::exec::variation::Aspect]| {
            aspects
                .iter()
                .map(|aspect| aspect.name().to_owned())
                .collect()
        };
        let (kind, variations, not_tried) = match attribution {
            Attribution::Nondeterministic => ("nondeterministic", Vec::new(), Vec::new()),
            Attribution::Surroundings { varying, untried } => {
                ("surroundings", names(varying), names(untried))
            }
            Attribution::Combination => ("combination", Vec::new(), Vec::new()),
            Attribution::Unexplained { untried, .. } => ("unexplained", Vec::new(), names(untried)),
        };
        Self {
            kind: kind.to_owned(),
            variations,
            not_tried,
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
            results.push(Outcome {
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
                diffoscope_cut: explanation.is_some_and(|explanation| explanation.cut),
            });
        }
        if comparison.outputs.is_empty() && !comparison.reproduced() {
            results.push(Outcome {
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
                diffoscope_cut: false,
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
        explanation: explanation_ref(inputs.report),
    };
    Statement::new(
        subjects,
        crate::attest::predicate::REPRODUCIBILITY,
        predicate,
    )
}

/// What explaining the differences was allowed and took.
fn explanation_ref(report: &ReproReport) -> ExplanationRef {
    let milliseconds =
        |duration: std::time::Duration| u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    ExplanationRef {
        diffoscope_limit_bytes: report.diffoscope_limit,
        budget_ms: milliseconds(report.spent.budget),
        spent_ms: milliseconds(report.spent.spent),
        rebuilds: report.spent.rebuilds,
        not_tried: report
            .spent
            .untried
            .iter()
            .map(|aspect| aspect.name().to_owned())
            .collect(),
    }
}
