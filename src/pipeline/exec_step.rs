//! Validation of `kind = "exec"` steps (the default): `run` and `warm`.

use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::pipeline::model::{ExecStep, InputPattern, OutputPath};
use crate::pipeline::path;
use crate::pipeline::wire::{RunWire, StepWire};

/// The step keys only this kind (and the others that list them) accepts; the rest of the
/// kind-only keys are refused on a `exec` step, at their line.
pub(super) const KEYS: &[&str] = &["run", "tools", "executor", "warm"];

/// An exec step: `run` (a shell line or an argument list) and its warm folders.
pub(super) fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<ExecStep> {
    let Some(run) = &wire.run else {
        errors.push(
            Diagnostic::at(
                format!("step `{step_name}` has no `run` command"),
                name_span,
            )
            .hint("add `run = \"...\"` (run by /bin/sh -c) or `run = [\"prog\", \"arg\"]`"),
        );
        return None;
    };
    let argv = match run.get_ref() {
        RunWire::Shell(script) => {
            vec!["/bin/sh".to_owned(), "-c".to_owned(), script.clone()]
        }
        RunWire::Argv(argv) => argv.clone(),
    };
    if argv.first().is_none_or(String::is_empty) {
        errors.push(Diagnostic::at("`run` must name a program", run.span()));
        return None;
    }
    if argv.iter().any(|argument| argument.contains('\0')) {
        errors.push(Diagnostic::at(
            "`run` must not contain NUL characters",
            run.span(),
        ));
        return None;
    }
    let warm = convert_warm(wire.warm.as_ref(), errors);
    Some(ExecStep { argv, warm })
}

/// `warm = ["target"]`: folders in the step's build folder kept from one run to the next.
fn convert_warm(
    wire: Option<&Spanned<Vec<Spanned<String>>>>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut warm: Vec<String> = Vec::new();
    for entry in wire.map(Spanned::get_ref).into_iter().flatten() {
        let text = entry.get_ref();
        let normal = match path::normalize(text) {
            Ok(normal) => normal,
            Err(message) => {
                errors.push(Diagnostic::at(
                    format!("invalid warm folder: {message}"),
                    entry.span(),
                ));
                continue;
            }
        };
        if path::is_glob(&normal.path) {
            errors.push(Diagnostic::at(
                format!("warm folder `{text}` is a glob; name the folder itself"),
                entry.span(),
            ));
        } else if let Some(other) = warm.iter().find(|other| {
            path::is_within(&normal.path, other) || path::is_within(other, &normal.path)
        }) {
            errors.push(Diagnostic::at(
                format!("warm folder `{text}` overlaps warm folder `{other}`"),
                entry.span(),
            ));
        } else {
            warm.push(normal.path);
        }
    }
    warm
}

/// A warm folder is the step's own state: no input is read from it (inputs come from the
/// workspace, checked by digest) and no output is it or holds it; an output inside one (a
/// binary in `target/release/`) is collected like any other.
pub(super) fn check_warm_overlaps(
    warm: &[String],
    wire: &Spanned<Vec<Spanned<String>>>,
    inputs: &[InputPattern],
    outputs: &[OutputPath],
    errors: &mut Vec<Diagnostic>,
) {
    for folder in warm {
        let span = (wire.get_ref().iter())
            .find(|entry| {
                path::normalize(entry.get_ref()).is_ok_and(|normal| &normal.path == folder)
            })
            .map_or_else(|| wire.span(), Spanned::span);
        if let Some(input) = inputs.iter().find(|input| {
            path::is_within(&input.pattern, folder) || path::is_within(folder, &input.pattern)
        }) {
            errors.push(
                Diagnostic::at(
                    format!("warm folder `{folder}` overlaps input `{}`", input.pattern),
                    span.clone(),
                )
                .hint("a warm folder is the step's own state, not a source: keep inputs out of it"),
            );
        }
        if let Some(output) = outputs
            .iter()
            .find(|output| path::is_within(folder, &output.path))
        {
            errors.push(
                Diagnostic::at(
                    format!("warm folder `{folder}` lies in output `{}`", output.path),
                    span,
                )
                .hint(
                    "an output may lie inside a warm folder (`target/release/app`), not hold one",
                ),
            );
        }
    }
}
