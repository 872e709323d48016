//! Validation of `kind = "vulns"` steps: an `sbom` file, an advisory database folder `db`,
//! `vex` documents (all three the step's inputs), thresholds in `require` and an `allow`
//! list; the signed statement at `output` is its output.

use std::ops::Range;

use indexmap::IndexMap;
use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::pipeline::convert::{Converted, NotHere, file, not_here};
use crate::pipeline::model::{InputPattern, OutputPath, VULNS_FOLDER, VulnsStep};
use crate::pipeline::path;
use crate::pipeline::wire::StepWire;
use crate::vulns::severity::Level;
use crate::vulns::threshold::{Allowance, Thresholds};

const VULNS_NOT_HERE: NotHere = NotHere {
    kind: "vulns",
    inputs: "a vulns step reads its `sbom`, `db` and `vex`; name them there",
    outputs: "a vulns step writes its signed statement to `output` (default `out/vulns/STEP.intoto.json`)",
    network: "a scan reads its advisory database from disk; fetch it in a step of its own",
};

/// The step keys only this kind (and the others that list them) accepts; the rest of the
/// kind-only keys are refused on a `vulns` step, at their line.
pub(super) const KEYS: &[&str] = &["sbom", "db", "vex", "require", "allow", "output"];

pub(super) fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Converted<VulnsStep>> {
    let before = errors.len();
    not_here(wire, &VULNS_NOT_HERE, errors);
    let sbom = if let Some(sbom) = &wire.sbom {
        file("sbom", sbom, errors)
    } else {
        errors.push(
            Diagnostic::at(
                format!("vulns step `{step_name}` needs `sbom`"),
                name_span.clone(),
            )
            .hint("the SBOM to scan, like `sbom = \"out/app.spdx.json\"` (a sbom step's `output`)"),
        );
        None
    };
    let db = if let Some(db) = &wire.db {
        folder(db, errors)
    } else {
        errors.push(
                Diagnostic::at(format!("vulns step `{step_name}` needs `db`"), name_span.clone())
                    .hint("the advisory database's folder in the workspace, like `db = \"advisories/\"` (OSV records or a RustSec advisory-db checkout)"),
            );
        None
    };
    let vex: Vec<(String, Range<usize>)> = (wire.vex.iter())
        .flat_map(Spanned::get_ref)
        .filter_map(|document| file("vex", document, errors))
        .collect();
    let mut thresholds = thresholds(wire.require.as_ref(), errors);
    if let Some(allow) = &wire.allow {
        for entry in allow.get_ref() {
            match Allowance::parse(entry.get_ref()) {
                Ok(allowance) => thresholds.allow.push(allowance),
                Err(message) => errors.push(Diagnostic::at(message, entry.span()).hint(
                    "`\"ID\"`, or `\"ID@YYYY-MM-DD\"` to allow it until that day (inclusive)",
                )),
            }
        }
    }
    let output = match &wire.output {
        Some(output) => file("output", output, errors),
        None => Some((
            format!("{VULNS_FOLDER}/{step_name}.intoto.json"),
            name_span.clone(),
        )),
    };
    if errors.len() > before {
        return None;
    }
    let ((sbom, sbom_span), (db, db_span), (output, output_span)) = (sbom?, db?, output?);
    let mut inputs = vec![
        InputPattern {
            pattern: sbom.clone(),
            directory: false,
            is_glob: false,
            span: sbom_span,
        },
        InputPattern {
            pattern: db.clone(),
            directory: true,
            is_glob: false,
            span: db_span,
        },
    ];
    inputs.extend(vex.iter().map(|(path, span)| InputPattern {
        pattern: path.clone(),
        directory: false,
        is_glob: false,
        span: span.clone(),
    }));
    if !super::convert::output_apart(&inputs, &output, "the vulns step's", errors) {
        return None;
    }
    Some(Converted {
        step: VulnsStep {
            sbom,
            db,
            vex: vex.into_iter().map(|(path, _)| path).collect(),
            thresholds,
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

/// The database: a folder of the workspace (a step's folder output, or files kept in it).
fn folder(value: &Spanned<String>, errors: &mut Vec<Diagnostic>) -> Option<(String, Range<usize>)> {
    match path::normalize(value.get_ref()) {
        Ok(normal) if path::is_glob(&normal.path) => {
            errors.push(Diagnostic::at(
                "`db` names a folder, not a glob",
                value.span(),
            ));
            None
        }
        Ok(normal) => Some((normal.path, value.span())),
        Err(message) => {
            errors.push(
                Diagnostic::at(format!("invalid `db`: {message}"), value.span())
                    .hint("a folder inside the workspace, like `db = \"advisories/\"`"),
            );
            None
        }
    }
}

/// `require = { max_severity = "medium", max_count = 3 }`; without either, no known
/// vulnerability passes (as `gantry vulns scan` without thresholds).
fn thresholds(
    require: Option<&Spanned<IndexMap<Spanned<String>, Spanned<toml::Value>>>>,
    errors: &mut Vec<Diagnostic>,
) -> Thresholds {
    let mut thresholds = Thresholds::default();
    for (key, value) in require.iter().flat_map(|require| require.get_ref()) {
        match key.get_ref().as_str() {
            "max_severity" => {
                match value.get_ref().as_str().and_then(Level::parse) {
                    Some(level) => thresholds.max_severity = Some(level),
                    None => errors.push(
                        Diagnostic::at("`max_severity` is a severity", value.span())
                            .hint(format!("one of {}", Level::NAMES.join(", "))),
                    ),
                }
            }
            "max_count" => match value.get_ref().as_integer().map(usize::try_from) {
                Some(Ok(count)) => thresholds.max_count = Some(count),
                _ => errors.push(Diagnostic::at(
                    "`max_count` is a whole number, 0 or more",
                    value.span(),
                )),
            },
            other => errors.push(
                Diagnostic::at(format!("unknown threshold `{other}`"), key.span())
                    .hint("a vulns step requires `max_severity` (none, low, medium, high, critical) and/or `max_count`; `allow` lists exceptions"),
            ),
        }
    }
    if thresholds.max_severity.is_none() && thresholds.max_count.is_none() {
        thresholds.max_count = Some(0);
    }
    thresholds
}
