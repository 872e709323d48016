//! Converters every kind's validation shares: inputs, outputs, a one-file path, the keys a
//! kind has no use for, and a TOML syntax error at its place.

use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::pipeline::model::{InputPattern, OutputPath};
use crate::pipeline::path;
use crate::pipeline::wire::StepWire;

/// A kind's step and the paths it reads and writes, each with the place it was written.
pub(crate) struct Converted<Step> {
    pub step: Step,
    pub inputs: Vec<InputPattern>,
    pub outputs: Vec<OutputPath>,
}

pub(crate) fn convert_input(
    input: &Spanned<String>,
    errors: &mut Vec<Diagnostic>,
) -> Option<InputPattern> {
    let text = input.get_ref();
    match path::normalize(text) {
        Ok(normal) => {
            let is_glob = path::is_glob(&normal.path);
            if is_glob && let Err(error) = globset::Glob::new(&normal.path) {
                errors.push(Diagnostic::at(
                    format!("invalid glob `{text}`: {}", error.kind()),
                    input.span(),
                ));
                return None;
            }
            Some(InputPattern {
                pattern: normal.path,
                directory: normal.directory,
                is_glob,
                span: input.span(),
            })
        }
        Err(message) => {
            errors.push(Diagnostic::at(
                format!("invalid input: {message}"),
                input.span(),
            ));
            None
        }
    }
}

pub(crate) fn convert_outputs(
    wire: &[Spanned<String>],
    errors: &mut Vec<Diagnostic>,
) -> Vec<OutputPath> {
    // Sized exactly: the model lives for the whole run, and a vector grown by one push holds
    // room for four (9.6 MB of 50,000 steps' outputs).
    let mut outputs: Vec<OutputPath> = Vec::with_capacity(wire.len());
    for output in wire {
        let text = output.get_ref();
        let normal = match path::normalize(text) {
            Ok(normal) => normal,
            Err(message) => {
                errors.push(Diagnostic::at(
                    format!("invalid output: {message}"),
                    output.span(),
                ));
                continue;
            }
        };
        if path::is_glob(&normal.path) {
            errors.push(
                Diagnostic::at(
                    format!("output `{text}` is a glob; outputs must be exact paths"),
                    output.span(),
                )
                .hint("declare a folder output with a trailing `/` instead"),
            );
            continue;
        }
        if let Some(other) = outputs.iter().find(|other| {
            path::is_within(&normal.path, &other.path) || path::is_within(&other.path, &normal.path)
        }) {
            errors.push(Diagnostic::at(
                format!(
                    "output `{text}` overlaps output `{}` of the same step",
                    other.path
                ),
                output.span(),
            ));
            continue;
        }
        outputs.push(OutputPath {
            path: normal.path,
            directory: normal.directory,
            span: output.span(),
        });
    }
    outputs
}

/// A kind's one output must not lie in what it reads, nor hold it: the first input that
/// overlaps it is shown at its place. `owner` names the output's step, like "the gate's".
pub(crate) fn output_apart(
    inputs: &[InputPattern],
    output: &str,
    owner: &str,
    errors: &mut Vec<Diagnostic>,
) -> bool {
    let overlapping = inputs.iter().find(|input| {
        path::is_within(output, &input.pattern) || path::is_within(&input.pattern, output)
    });
    if let Some(input) = overlapping {
        errors.push(Diagnostic::at(
            format!("`{}` overlaps {owner} output `{output}`", input.pattern),
            input.span.clone(),
        ));
    }
    overlapping.is_none()
}

/// A workspace path naming one file.
pub(crate) fn file(
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

/// Why a kind that runs in gantry (sbom, gate) has no use for `inputs`, `outputs` and
/// `network`; `env` it refuses because it runs no command.
pub(crate) struct NotHere {
    pub kind: &'static str,
    pub inputs: &'static str,
    pub outputs: &'static str,
    pub network: &'static str,
}

pub(crate) fn not_here(wire: &StepWire, why: &NotHere, errors: &mut Vec<Diagnostic>) {
    let mut refuse = |key: &str, span: Range<usize>, hint: &str| {
        errors.push(
            Diagnostic::at(
                format!("`{key}` does not apply to {} steps", why.kind),
                span,
            )
            .hint(hint),
        );
    };
    if let Some(first) = wire.inputs.first() {
        refuse("inputs", first.span(), why.inputs);
    }
    if let Some(first) = wire.outputs.first() {
        refuse("outputs", first.span(), why.outputs);
    }
    if let Some(network) = &wire.network {
        refuse("network", network.span(), why.network);
    }
    if let Some((name, _)) = wire.env.iter().flatten().next() {
        let hint = format!("a {} step runs no command", why.kind);
        refuse("env", name.span(), &hint);
    }
}
