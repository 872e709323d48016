//! Validation of `kind = "sign"` steps: a key, and inputs that each name one artifact, whose
//! signature files become the step's outputs.

use std::ops::Range;

use toml::Spanned;

use crate::diagnostic::Diagnostic;
use crate::pipeline::model::{InputPattern, KeyRef, OutputPath, SIGNATURE_SUFFIXES, SignStep};
use crate::pipeline::path;
use crate::pipeline::wire::StepWire;

/// The step keys only this kind (and the others that list them) accepts; the rest of the
/// kind-only keys are refused on a `sign` step, at their line.
pub(super) const KEYS: &[&str] = &["key"];

pub(super) fn convert(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<SignStep> {
    let before = errors.len();
    let not_here = |key: &str, span: Range<usize>, hint: &str| {
        Diagnostic::at(format!("`{key}` does not apply to sign steps"), span).hint(hint)
    };
    if let Some(first) = wire.outputs.first() {
        errors.push(not_here(
            "outputs",
            first.span(),
            "a sign step writes `ARTIFACT.sig` and `ARTIFACT.sigstore.json` beside each input",
        ));
    }
    if let Some(network) = &wire.network {
        errors.push(not_here(
            "network",
            network.span(),
            "signing never uses the network",
        ));
    }
    if let Some((name, _)) = wire.env.iter().flatten().next() {
        errors.push(not_here("env", name.span(), "a sign step runs no command"));
    }
    if wire.inputs.is_empty() {
        errors.push(
            Diagnostic::at(
                format!("sign step `{step_name}` signs nothing"),
                name_span.clone(),
            )
            .hint("list the artifacts: `inputs = [\"out/pkg.tar\"]`"),
        );
    }
    for input in &wire.inputs {
        if let Ok(normal) = path::normalize(input.get_ref())
            && (normal.directory || path::is_glob(&normal.path))
        {
            errors.push(
                Diagnostic::at("a sign step's inputs name files, one each", input.span())
                    .hint("list every artifact; a glob or folder would leave its signatures' names unknown until the run"),
            );
        }
    }
    let key = convert_key(wire.key.as_ref(), name_span, errors);
    (errors.len() == before).then_some(key).flatten()
}

fn convert_key(
    key: Option<&Spanned<String>>,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<SignStep> {
    let Some(key) = key else {
        errors.push(
            Diagnostic::at("a sign step needs a `key`", name_span)
                .hint("`key = \"env:GANTRY_SIGNING_KEY\"` (a variable holding the path) or `key = \"keys/cosign.key\"`"),
        );
        return None;
    };
    let text = key.get_ref();
    let reference = if let Some(variable) = text.strip_prefix("env:") {
        if variable.is_empty()
            || !variable
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            errors.push(Diagnostic::at(
                format!("`{variable}` is not an environment variable name"),
                key.span(),
            ));
            return None;
        }
        KeyRef::Env(variable.to_owned())
    } else {
        match path::normalize(text) {
            Ok(normal) if !normal.directory && !path::is_glob(&normal.path) => {
                KeyRef::Path(normal.path)
            }
            Ok(_) => {
                errors.push(Diagnostic::at("`key` must name one file", key.span()));
                return None;
            }
            Err(message) => {
                errors.push(
                    Diagnostic::at(format!("invalid key path: {message}"), key.span())
                        .hint("a path inside the workspace, or `env:VAR` for a key kept elsewhere"),
                );
                return None;
            }
        }
    };
    Some(SignStep {
        key: reference,
        key_span: key.span(),
    })
}

/// `ARTIFACT.sig` and `ARTIFACT.sigstore.json` for each input, pointing at the input.
pub(super) fn outputs(inputs: &[InputPattern]) -> Vec<OutputPath> {
    inputs
        .iter()
        .flat_map(|input| {
            SIGNATURE_SUFFIXES.iter().map(|suffix| OutputPath {
                path: format!("{}{suffix}", input.pattern),
                directory: false,
                span: input.span.clone(),
            })
        })
        .collect()
}
