//! Validation of `kind = "nix"` steps: what to build (a flake, an expression, a file), the
//! builders, and the Nix file a `file = ...` build reads as an input.

use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::nix::Installable;
use crate::pipeline::convert::{Converted, convert_input, convert_outputs};
use crate::pipeline::model::{InputPattern, NixStep};
use crate::pipeline::path;
use crate::pipeline::wire::StepWire;

/// The step keys only this kind (and the others that list them) accepts; the rest of the
/// kind-only keys are refused on a `nix` step, at their line.
pub(super) const KEYS: &[&str] = &["flake", "expr", "file", "attr", "builders"];

/// A nix step, with its inputs: the declared ones and the Nix file a `file = ...` build
/// evaluates.
pub(super) fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Converted<NixStep>> {
    convert_nix(step_name, wire, name_span, errors).map(|nix| {
        // The Nix file a `file = ...` build evaluates is a source it reads, like any input.
        let mut inputs: Vec<InputPattern> = (wire.inputs.iter())
            .filter_map(|input| convert_input(input, errors))
            .collect();
        if let (Installable::File { file, .. }, Some(written)) = (&nix.installable, &wire.file)
            && !inputs.iter().any(|input| input.pattern == *file)
        {
            inputs.push(InputPattern {
                pattern: file.clone(),
                directory: false,
                is_glob: false,
                span: written.span(),
            });
        }
        Converted {
            outputs: convert_outputs(&wire.outputs, errors),
            inputs,
            step: nix,
        }
    })
}

fn convert_nix(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<NixStep> {
    let given: Vec<(&str, &Spanned<String>)> = [
        ("flake", &wire.flake),
        ("expr", &wire.expr),
        ("file", &wire.file),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|value| (key, value)))
    .collect();
    let before = errors.len();
    if let Some(network) = &wire.network {
        errors.push(
            Diagnostic::at("`network` does not apply to nix steps", network.span())
                .hint("Nix's own settings decide a build's network (fixed-output derivations)"),
        );
    }
    for output in &wire.outputs {
        if output.get_ref().ends_with('/') {
            errors.push(
                Diagnostic::at(
                    "a nix step's outputs are out-links, not folders",
                    output.span(),
                )
                .hint("name the link without a trailing `/`, like `result-hello`"),
            );
        }
    }
    if let Some(attr) = &wire.attr
        && wire.file.is_none()
    {
        errors.push(
            Diagnostic::at("`attr` goes with `file`", attr.span())
                .hint("a flake names its attribute after `#`: `flake = \"./nix#hello\"`"),
        );
    }
    let installable = match given.as_slice() {
        [] => {
            errors.push(
                Diagnostic::at(format!("nix step `{step_name}` builds nothing"), name_span).hint(
                    "add `flake = \"./nix#hello\"`, `expr = \"...\"` or `file = \"default.nix\"`",
                ),
            );
            return None;
        }
        [(_, value)] if value.get_ref().trim().is_empty() => {
            errors.push(Diagnostic::at("must not be empty", value.span()));
            return None;
        }
        [("flake", value)] => Installable::Flake(value.get_ref().clone()),
        [("expr", value)] => Installable::Expr(value.get_ref().clone()),
        [(_, value)] => match path::normalize(value.get_ref()) {
            Ok(normal) if !normal.directory && !path::is_glob(&normal.path) => Installable::File {
                file: normal.path,
                attr: wire.attr.as_ref().map(|attr| attr.get_ref().clone()),
            },
            Ok(_) => {
                errors.push(Diagnostic::at("`file` must name one file", value.span()));
                return None;
            }
            Err(message) => {
                errors.push(Diagnostic::at(message, value.span()));
                return None;
            }
        },
        [_, (second, value), ..] => {
            errors.push(
                Diagnostic::at(
                    format!("a nix step builds one thing; `{second}` is a second"),
                    value.span(),
                )
                .hint("keep one of `flake`, `expr` and `file`"),
            );
            return None;
        }
    };
    if let Some(folder) = installable.local_flake()
        && folder != "."
        && let Err(message) = path::normalize(folder)
        && let Some(value) = &wire.flake
    {
        errors.push(
            Diagnostic::at(
                format!("the flake must be inside the workspace: {message}"),
                value.span(),
            )
            .hint("write it relative to the workspace root, like `./nix#hello`"),
        );
    }
    let builders = convert_builders(wire.builders.as_ref(), errors);
    (errors.len() == before).then_some(NixStep {
        installable,
        builders,
    })
}

/// Nix machine specifications (`URI SYSTEM KEY JOBS ...`), one per builder; they are joined
/// with `;` for `--builders`, so none may hold one.
fn convert_builders(
    wire: Option<&Spanned<Vec<Spanned<String>>>>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut builders = Vec::new();
    for builder in wire.map(Spanned::get_ref).into_iter().flatten() {
        let text = builder.get_ref().trim();
        let uri = text.split_whitespace().next().unwrap_or_default();
        if text.contains([';', '\n']) {
            errors.push(
                Diagnostic::at("one builder per string", builder.span())
                    .hint("list each machine as its own string: `builders = [\"ssh://a x86_64-linux\", \"ssh://b\"]`"),
            );
        } else if !(uri.starts_with("ssh://") || uri.starts_with("ssh-ng://")) {
            errors.push(
                Diagnostic::at(
                    format!("`{uri}` is not a Nix remote builder"),
                    builder.span(),
                )
                .hint("a builder is `ssh://USER@HOST` or `ssh-ng://USER@HOST`, then optionally its system, SSH key, jobs, speed factor and features, as in Nix's `builders`"),
            );
        } else {
            builders.push(text.to_owned());
        }
    }
    builders
}
