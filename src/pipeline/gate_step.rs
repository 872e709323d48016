//! Validation of `kind = "gate"` steps: one `evidence` report and the `require`d thresholds on
//! it. The evidence (and the `subject`) become the step's inputs, the attestation its output.

use std::ops::Range;

use indexmap::IndexMap;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::gauntlet::{Bound, EvidenceKind, Threshold};
use crate::pipeline::convert::{Converted, NotHere, file, not_here};
use crate::pipeline::model::{Evidence, GATE_FOLDER, GateStep, InputPattern, OutputPath};
use crate::pipeline::path;
use crate::pipeline::wire::{StepWire, SubjectWire};

/// The step keys only this kind (and the others that list them) accepts; the rest of the
/// kind-only keys are refused on a `gate` step, at their line.
pub(super) const KEYS: &[&str] = &[
    "subject", "output", "stage", "baseline", "evidence", "require", "tools",
];

pub(super) fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Converted<GateStep>> {
    let before = errors.len();
    let evidence = evidence(step_name, wire, &name_span, errors);
    let is_drill = matches!(evidence, Some((Evidence::Drill { .. }, _)));
    refuse_keys(wire, is_drill, errors);
    let thresholds = evidence.as_ref().and_then(|(evidence, _)| {
        thresholds(
            step_name,
            evidence.kind(),
            wire.require.as_ref(),
            &name_span,
            errors,
        )
    });
    let subject = (wire.subject.as_ref())
        .and_then(|subject| SubjectWire::one(subject, "gate", errors))
        .and_then(|subject| file("subject", &subject, errors));
    let output = match &wire.output {
        Some(output) => file("output", output, errors),
        None => Some((
            format!("{GATE_FOLDER}/{step_name}.intoto.json"),
            name_span.clone(),
        )),
    };
    let mut inputs: Vec<InputPattern> = if is_drill {
        (wire.inputs.iter())
            .filter_map(|input| super::convert::convert_input(input, errors))
            .collect()
    } else {
        Vec::new()
    };
    if errors.len() > before {
        return None;
    }
    let (evidence, evidence_input) = evidence?;
    let (output, output_span) = output?;
    inputs.extend(evidence_input);
    if let Some((path, span)) = &subject
        && !inputs.iter().any(|input| input.pattern == *path)
    {
        inputs.push(InputPattern {
            pattern: path.clone(),
            directory: false,
            is_glob: false,
            span: span.clone(),
        });
    }
    if !super::convert::output_apart(&inputs, &output, "the gate's", errors) {
        return None;
    }
    let mut thresholds = thresholds?;
    // A drill that does not finish well has not rehearsed anything, whatever its time.
    if is_drill
        && !thresholds
            .iter()
            .any(|threshold| threshold.metric == "exit_code")
    {
        thresholds.push(Threshold {
            metric: "exit_code".to_owned(),
            bound: Bound::Max,
            limit: 0.0,
        });
    }
    Some(Converted {
        step: GateStep {
            stage: wire
                .stage
                .as_ref()
                .map_or_else(|| "gauntlet".to_owned(), |stage| stage.get_ref().clone()),
            evidence,
            thresholds,
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

/// A drill runs a command, so it has `inputs`, `network` and `env`; other gates only read.
fn refuse_keys(wire: &StepWire, is_drill: bool, errors: &mut Vec<Diagnostic>) {
    if is_drill {
        if let Some(first) = wire.outputs.first() {
            errors.push(
                Diagnostic::at("`outputs` does not apply to gate steps", first.span())
                    .hint("a drill is judged by its time and exit code; its files are not kept"),
            );
        }
    } else {
        not_here(
            wire,
            &NotHere {
                kind: "gate",
                inputs: "a gate reads its `evidence` (and `subject`); name them there (only a drill has `inputs`)",
                outputs: "a gate writes its signed verdict to `output` (default `out/gauntlet/STEP.intoto.json`)",
                network: "a gate judges what is on disk (only a drill runs a command)",
            },
            errors,
        );
    }
}

/// `evidence = { junit = "out/junit.xml" }`: exactly one report, of a known kind, and the
/// input that reads it (none for a drill).
fn evidence(
    step_name: &str,
    wire: &StepWire,
    name_span: &Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<(Evidence, Option<InputPattern>)> {
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
    let Some(kind) = EvidenceKind::from_name(kind.get_ref()) else {
        errors.push(
            Diagnostic::at(
                format!("unknown evidence `{}`", kind.get_ref()),
                kind.span(),
            )
            .hint(format!("one of: {kinds}")),
        );
        return None;
    };
    if let Some(baseline) = &wire.baseline
        && kind != EvidenceKind::Criterion
    {
        errors.push(
            Diagnostic::at("`baseline` goes with criterion evidence", baseline.span()).hint(
                "like `evidence = { criterion = \"target/criterion\" }` and `baseline = \"main\"`",
            ),
        );
        return None;
    }
    match kind {
        EvidenceKind::Drill => drill(report, errors).map(|argv| (Evidence::Drill { argv }, None)),
        EvidenceKind::Criterion => {
            let folder = folder(report, errors)?;
            let baseline = criterion_baseline(wire.baseline.as_ref(), errors)?;
            let input = InputPattern {
                pattern: folder.clone(),
                directory: true,
                is_glob: false,
                span: report.span(),
            };
            Some((Evidence::Criterion { folder, baseline }, Some(input)))
        }
        _ => {
            let (path, span) = file("evidence", report, errors)?;
            let input = InputPattern {
                pattern: path.clone(),
                directory: false,
                is_glob: false,
                span,
            };
            Some((Evidence::Report { kind, path }, Some(input)))
        }
    }
}

/// `drill = "scripts/restore.sh"`: run by `/bin/sh -c`, like a string `run`.
fn drill(command: &Spanned<String>, errors: &mut Vec<Diagnostic>) -> Option<Vec<String>> {
    let text = command.get_ref();
    if text.trim().is_empty() || text.contains('\0') {
        errors.push(
            Diagnostic::at("a drill is a command", command.span())
                .hint("like `evidence = { drill = \"sh scripts/restore.sh\" }`, run by /bin/sh -c with the gate's `inputs`"),
        );
        return None;
    }
    Some(vec!["/bin/sh".to_owned(), "-c".to_owned(), text.clone()])
}

/// Criterion's output folder (`target/criterion`, or one benchmark's folder in it).
fn folder(value: &Spanned<String>, errors: &mut Vec<Diagnostic>) -> Option<String> {
    match path::normalize(value.get_ref()) {
        Ok(normal) if path::is_glob(&normal.path) => {
            errors.push(Diagnostic::at(
                "criterion evidence names a folder, not a glob",
                value.span(),
            ));
            None
        }
        Ok(normal) => Some(normal.path),
        Err(message) => {
            errors.push(Diagnostic::at(
                format!("invalid criterion folder: {message}"),
                value.span(),
            ));
            None
        }
    }
}

/// The saved baseline the last run is compared with: criterion's `base` (the run before)
/// unless named (`--save-baseline NAME`).
fn criterion_baseline(
    value: Option<&Spanned<String>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<String> {
    let Some(value) = value else {
        return Some("base".to_owned());
    };
    let name = value.get_ref();
    let valid = !name.is_empty()
        && name != "new"
        && name != "change"
        && !name.starts_with('.')
        && !name.contains('/');
    if valid {
        Some(name.clone())
    } else {
        errors.push(
            Diagnostic::at(format!("`{name}` is not a baseline name"), value.span())
                .hint("the NAME of `cargo bench -- --save-baseline NAME` (a folder beside `new`)"),
        );
        None
    }
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
    if metric == "regression" && !(-1.0..=1.0).contains(&limit) {
        errors.push(
            Diagnostic::at(format!("`{text}` is a fraction"), value.span())
                .hint(format!("a {limit}% slowdown is written {}", limit / 100.0)),
        );
        return None;
    }
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

#[expect(clippy::cast_precision_loss)]
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
