//! Validation of `kind = "gate"` steps: one `evidence` report and the `require`d thresholds on
//! it. The evidence (and the `subject`) become the step's inputs, the attestation its output.

use std::ops::Range;

use indexmap::IndexMap;
use toml::Spanned;

use crate::gauntlet::{Bound, EvidenceKind, Threshold};
use crate::pipeline::diagnostic::Diagnostic;
use crate::pipeline::model::{GATE_FOLDER, GateStep, InputPattern, OutputPath};
use crate::pipeline::path;
use crate::pipeline::sbom_step::{NotHere, not_here};
use crate::pipeline::wire::StepWire;

pub struct Converted {
    pub step: GateStep,
    pub inputs: Vec<InputPattern>,
    pub outputs: Vec<OutputPath>,
}

pub fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Converted> {
    let before = errors.len();
    not_here(
        wire,
        &NotHere {
            kind: "gate",
            inputs: "a gate reads its `evidence` (and `subject`); name them there",
            outputs: "a gate writes its signed verdict to `output` (default `gauntlet/STEP.intoto.json`)",
            network: "a gate judges what is on disk",
        },
        errors,
    );
    let evidence = evidence(step_name, wire, &name_span, errors);
    let thresholds = evidence.as_ref().and_then(|(kind, _, _)| {
        thresholds(step_name, *kind, wire.require.as_ref(), &name_span, errors)
    });
    let subject = wire
        .subject
        .as_ref()
        .and_then(|subject| file("subject", subject, errors));
    let output = match &wire.output {
        Some(output) => file("output", output, errors),
        None => Some((
            format!("{GATE_FOLDER}/{step_name}.intoto.json"),
            name_span.clone(),
        )),
    };
    if errors.len() > before {
        return None;
    }
    let (kind, evidence_path, evidence_span) = evidence?;
    let (output, output_span) = output?;
    let mut inputs = vec![InputPattern {
        pattern: evidence_path.clone(),
        directory: false,
        is_glob: false,
        span: evidence_span,
    }];
    if let Some((path, span)) = &subject
        && *path != evidence_path
    {
        inputs.push(InputPattern {
            pattern: path.clone(),
            directory: false,
            is_glob: false,
            span: span.clone(),
        });
    }
    for input in &inputs {
        if path::is_within(&output, &input.pattern) || path::is_within(&input.pattern, &output) {
            errors.push(Diagnostic::at(
                format!("`{}` overlaps the gate's output `{output}`", input.pattern),
                input.span.clone(),
            ));
            return None;
        }
    }
    Some(Converted {
        step: GateStep {
            stage: wire
                .stage
                .as_ref()
                .map_or_else(|| "gauntlet".to_owned(), |stage| stage.get_ref().clone()),
            evidence: kind,
            evidence_path,
            thresholds: thresholds?,
            subject: subject.map(|(path, _)| path),
            output: output.clone(),
        },
        inputs,
        outputs: vec![OutputPath {
            path: output,
            directory: false,
            span: output_span,
        }],
    })
}

/// `evidence = { junit = "out/junit.xml" }`: exactly one report, of a known kind.
fn evidence(
    step_name: &str,
    wire: &StepWire,
    name_span: &Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<(EvidenceKind, String, Range<usize>)> {
    let kinds = EvidenceKind::ALL.map(EvidenceKind::name).join(", ");
    let Some(table) = &wire.evidence else {
        errors.push(
            Diagnostic::at(format!("gate `{step_name}` needs `evidence`"), name_span.clone())
                .hint(format!(
                    "the report to judge, like `evidence = {{ junit = \"out/junit.xml\" }}`; kinds: {kinds}"
                )),
        );
        return None;
    };
    let mut entries = table.get_ref().iter();
    let Some((kind, report)) = entries.next() else {
        errors.push(
            Diagnostic::at("`evidence` names no report", table.span()).hint(format!(
                "like `evidence = {{ lcov = \"out/lcov.info\" }}`; kinds: {kinds}"
            )),
        );
        return None;
    };
    if let Some((extra, _)) = entries.next() {
        errors.push(
            Diagnostic::at("a gate judges one report", extra.span())
                .hint("make a gate for each report; stages group them in the report"),
        );
        return None;
    }
    let Some(evidence) = EvidenceKind::from_name(kind.get_ref()) else {
        errors.push(
            Diagnostic::at(
                format!("unknown evidence `{}`", kind.get_ref()),
                kind.span(),
            )
            .hint(format!("one of: {kinds}")),
        );
        return None;
    };
    let (path, span) = file("evidence", report, errors)?;
    Some((evidence, path, span))
}

/// `require = { failures = 0, tests_min = 1 }`: `METRIC_min`, `METRIC_max`, or `METRIC` (an
/// upper bound); for a metrics file, `"/json/pointer" = { min = 1, max = 2 }`.
fn thresholds(
    step_name: &str,
    kind: EvidenceKind,
    require: Option<&Spanned<IndexMap<Spanned<String>, Spanned<toml::Value>>>>,
    name_span: &Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Vec<Threshold>> {
    let Some(require) = require.filter(|require| !require.get_ref().is_empty()) else {
        errors.push(
            Diagnostic::at(
                format!("gate `{step_name}` requires nothing"),
                require.map_or_else(|| name_span.clone(), Spanned::span),
            )
            .hint(match kind.metrics() {
                Some(metrics) => format!(
                    "a gate with no thresholds passes anything: add `require = {{ ... }}` with some of {}",
                    metrics.join(", ")
                ),
                None => "a gate with no thresholds passes anything: add `require = { \"/latency/p95\" = { max = 250 } }`".to_owned(),
            }),
        );
        return None;
    };
    let before = errors.len();
    let mut thresholds = Vec::new();
    for (key, value) in require.get_ref() {
        match kind.metrics() {
            Some(metrics) => {
                if let Some(threshold) = named(key, value, metrics, errors) {
                    thresholds.push(threshold);
                }
            }
            None => thresholds.extend(pointer(key, value, errors)),
        }
    }
    (errors.len() == before).then_some(thresholds)
}

fn named(
    key: &Spanned<String>,
    value: &Spanned<toml::Value>,
    metrics: &[&str],
    errors: &mut Vec<Diagnostic>,
) -> Option<Threshold> {
    let text = key.get_ref();
    let (metric, bound) = if let Some(metric) = text.strip_suffix("_min") {
        (metric, Bound::Min)
    } else if let Some(metric) = text.strip_suffix("_max") {
        (metric, Bound::Max)
    } else {
        (text.as_str(), Bound::Max)
    };
    if !metrics.contains(&metric) {
        errors.push(
            Diagnostic::at(format!("unknown threshold `{text}`"), key.span()).hint(format!(
                "`METRIC_min`, `METRIC_max` or `METRIC` (at most), where METRIC is one of {}",
                metrics.join(", ")
            )),
        );
        return None;
    }
    let limit = number(value, errors)?;
    if (metric.ends_with("_coverage") || metric.ends_with("_rate")) && !(0.0..=1.0).contains(&limit)
    {
        errors.push(
            Diagnostic::at(format!("`{text}` is a fraction from 0 to 1"), value.span())
                .hint(format!("{}% is written {}", limit, limit / 100.0)),
        );
        return None;
    }
    Some(Threshold {
        metric: metric.to_owned(),
        bound,
        limit,
    })
}

fn pointer(
    key: &Spanned<String>,
    value: &Spanned<toml::Value>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Threshold> {
    let metric = key.get_ref();
    let hint = "like `\"/latency/p95\" = { max = 250 }` (a JSON pointer, and `min`, `max` or both)";
    if !metric.starts_with('/') {
        errors.push(
            Diagnostic::at(format!("`{metric}` is not a JSON pointer"), key.span()).hint(hint),
        );
        return Vec::new();
    }
    let Some(table) = value.get_ref().as_table().filter(|table| !table.is_empty()) else {
        errors.push(
            Diagnostic::at(
                format!("`{metric}` needs `min`, `max` or both"),
                value.span(),
            )
            .hint(hint),
        );
        return Vec::new();
    };
    let mut thresholds = Vec::new();
    for (name, limit) in table {
        let bound = match name.as_str() {
            "min" => Bound::Min,
            "max" => Bound::Max,
            other => {
                errors.push(
                    Diagnostic::at(
                        format!("unknown bound `{other}` for `{metric}`"),
                        value.span(),
                    )
                    .hint(hint),
                );
                continue;
            }
        };
        let spanned = Spanned::new(value.span(), limit.clone());
        if let Some(limit) = number(&spanned, errors) {
            thresholds.push(Threshold {
                metric: metric.clone(),
                bound,
                limit,
            });
        }
    }
    thresholds
}

#[allow(clippy::cast_precision_loss)]
fn number(value: &Spanned<toml::Value>, errors: &mut Vec<Diagnostic>) -> Option<f64> {
    let number = match value.get_ref() {
        toml::Value::Integer(integer) => *integer as f64,
        toml::Value::Float(float) if float.is_finite() => *float,
        other => {
            errors.push(Diagnostic::at(
                format!("a threshold is a number, not {}", other.type_str()),
                value.span(),
            ));
            return None;
        }
    };
    Some(number)
}

/// A workspace path naming one file.
fn file(
    key: &str,
    value: &Spanned<String>,
    errors: &mut Vec<Diagnostic>,
) -> Option<(String, Range<usize>)> {
    match path::normalize(value.get_ref()) {
        Ok(normal) if path::is_glob(&normal.path) || normal.directory => {
            errors.push(Diagnostic::at(
                format!("`{key}` names one file, not a folder or a glob"),
                value.span(),
            ));
            None
        }
        Ok(normal) => Some((normal.path, value.span())),
        Err(message) => {
            errors.push(Diagnostic::at(
                format!("invalid `{key}`: {message}"),
                value.span(),
            ));
            None
        }
    }
}
