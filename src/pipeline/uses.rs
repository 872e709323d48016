//! `[steps.NAME] uses = "publisher/name@RANGE"` with `with = { ... }`: a template's steps
//! filled with the pipeline's values and added as `NAME.INNER`. A mistake in the pipeline's
//! use (an unknown parameter, a missing one, a value of the wrong type) is reported at the
//! pipeline's line; a mistake in the template's steps at the template file's line, with the
//! pipeline line that used it. The expanded steps' own places (their name, paths, `needs`)
//! become the pipeline's `[steps.NAME]`, so that a later check of the whole graph points into
//! the pipeline. Pure: the templates were read before (`template::Templates`).

use std::ops::Range;

use indexmap::IndexMap;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::pipeline::model::{Step, StepKind, TemplateUse};
use crate::pipeline::wire::StepWire;
use crate::template::fill::{self, Values};
use crate::template::manifest::{Manifest, Value};
use crate::template::{Loaded, Templates};

/// The keys a step that uses a template may hold besides `uses`.
const USE_KEYS: &[&str] = &["uses", "with", "needs", "description"];

/// The template a `uses` step names, once found; `None` (with the reason at the line) when it
/// was not.
pub(super) fn find<'a>(
    name: &Spanned<String>,
    uses: Option<&Spanned<String>>,
    templates: &'a Templates,
    source: &SourceFile,
    errors: &mut Vec<Diagnostic>,
) -> Option<&'a Loaded> {
    let uses = uses?;
    check_keys(name, source, errors);
    match templates.get(uses.get_ref()) {
        Some(Ok(loaded)) => Some(loaded),
        Some(Err(reason)) => {
            errors.push(Diagnostic::at(reason.clone(), uses.span()));
            None
        }
        None => {
            errors.push(Diagnostic::at(
                format!("`{}` was not resolved", uses.get_ref()),
                uses.span(),
            ));
            None
        }
    }
}

/// The inner step names of a use, qualified (`NAME.INNER`), before anything is converted: the
/// pipeline's steps may `needs` them.
pub(super) fn qualified_names(name: &str, loaded: &Loaded) -> Vec<String> {
    (loaded.manifest.steps.keys())
        .map(|inner| format!("{name}.{inner}"))
        .collect()
}

/// The values of `with`, checked against the template's parameters (defaults filled in); a
/// diagnostic at the pipeline's line for each mistake.
pub(super) fn values(
    name: &Spanned<String>,
    wire: &StepWire,
    loaded: &Loaded,
    errors: &mut Vec<Diagnostic>,
) -> Option<Values> {
    let manifest = &loaded.manifest;
    let before = errors.len();
    let given = wire.with.as_ref();
    let mut values = IndexMap::new();
    for (key, value) in given
        .map(|with| with.get_ref().iter())
        .into_iter()
        .flatten()
    {
        let Some(parameter) = manifest.parameters.get(key.get_ref()) else {
            let known = manifest.parameters.keys().map(String::as_str);
            let mut diagnostic = Diagnostic::at(
                format!("`{}` takes no parameter `{}`", manifest.name, key.get_ref()),
                key.span(),
            );
            diagnostic = match crate::diagnostic::closest(key.get_ref(), known) {
                Some(close) => diagnostic.hint(format!("did you mean `{close}`?")),
                None => diagnostic.hint(parameter_list(manifest)),
            };
            errors.push(diagnostic);
            continue;
        };
        match Value::of(parameter.kind, value.get_ref()) {
            Ok(checked) => {
                values.insert(key.get_ref().clone(), checked);
            }
            Err(message) => errors.push(Diagnostic::at(
                format!("`{}`: {message}", key.get_ref()),
                value.span(),
            )),
        }
    }
    for (parameter_name, parameter) in &manifest.parameters {
        if values.contains_key(parameter_name) {
            continue;
        }
        match &parameter.default {
            Some(default) => {
                values.insert(parameter_name.clone(), default.clone());
            }
            None if errors.len() == before || given.is_none() => {
                let place = given.map_or_else(|| name.span(), Spanned::span);
                errors.push(
                    Diagnostic::at(
                        format!(
                            "`{}` needs the parameter `{parameter_name}` ({})",
                            manifest.name,
                            parameter.kind.name()
                        ),
                        place,
                    )
                    .hint(format!("give it in `with = {{ {parameter_name} = ... }}`")),
                );
            }
            None => {}
        }
    }
    if loaded.files.is_some() {
        values.insert(
            crate::template::TEMPLATE_DIR.to_owned(),
            Value::String(loaded.files_mount()),
        );
    }
    (errors.len() == before).then(|| Values::new(values))
}

fn parameter_list(manifest: &Manifest) -> String {
    if manifest.parameters.is_empty() {
        return format!("`{}` takes no parameters", manifest.name);
    }
    let names: Vec<String> = (manifest.parameters.iter())
        .map(|(name, parameter)| format!("{name} ({})", parameter.kind.name()))
        .collect();
    format!("its parameters: {}", names.join(", "))
}

/// A step that uses a template holds only [`USE_KEYS`].
fn check_keys(name: &Spanned<String>, source: &SourceFile, errors: &mut Vec<Diagnostic>) {
    let Ok(document) = DeTable::parse(&source.text) else {
        return;
    };
    let step = (document.get_ref().get("steps"))
        .and_then(|steps| steps.get_ref().as_table())
        .and_then(|steps| steps.get(name.get_ref().as_str()))
        .and_then(|step| step.get_ref().as_table());
    for (key, _) in step.into_iter().flatten() {
        if !USE_KEYS.contains(&key.get_ref().as_ref()) {
            errors.push(
                Diagnostic::at(
                    format!(
                        "`{}` in a step that uses a template: the template's steps say how they run",
                        key.get_ref()
                    ),
                    key.span(),
                )
                .hint("a step with `uses` takes `with`, `needs` and `description`; pass what varies as a parameter in `with`"),
            );
        }
    }
}

/// The template's steps read from its text once filled: `(inner name, step)` in the
/// template's order, or the template's diagnostics.
pub(super) fn inner_steps(
    loaded: &Loaded,
    values: &Values,
) -> Result<Vec<(Spanned<String>, StepWire)>, Vec<Diagnostic>> {
    #[derive(serde::Deserialize)]
    struct Steps {
        steps: IndexMap<Spanned<String>, Spanned<Box<StepWire>>>,
    }
    let mut document = DeTable::parse(&loaded.source.text)
        .map_err(|error| vec![Diagnostic::new(error.message().trim_end(), error.span())])?;
    let steps = document.get_mut().get_mut("steps");
    let Some(DeValue::Table(steps)) = steps.map(Spanned::get_mut) else {
        return Err(vec![Diagnostic::new(
            "the template has no `[steps]`",
            Some(0..0),
        )]);
    };
    let errors = fill::fill(steps, values);
    if !errors.is_empty() {
        return Err(errors);
    }
    let read: Steps = serde::Deserialize::deserialize(toml::de::Deserializer::from(document))
        .map_err(|error| {
            vec![crate::diagnostic::syntax_diagnostic(
                error.message().trim_end(),
                error.span(),
            )]
        })?;
    Ok((read.steps.into_iter())
        .map(|(name, step)| (name, *step.into_inner()))
        .collect())
}

/// The template's `needs` of its own steps, named as expanded.
pub(super) fn rename_needs(use_name: &str, wire: &mut StepWire, manifest: &Manifest) {
    for need in &mut wire.needs {
        if manifest.steps.contains_key(need.get_ref()) {
            *need = Spanned::new(need.span(), format!("{use_name}.{}", need.get_ref()));
        }
    }
}

/// An expanded step's places moved to the use's `[steps.NAME]` in the pipeline, and its
/// template named.
pub(super) fn relocate(step: &mut Step, place: &Range<usize>, template: TemplateUse) {
    step.name_span = place.clone();
    for input in &mut step.inputs {
        input.span = place.clone();
    }
    for output in &mut step.outputs {
        output.span = place.clone();
    }
    for need in &mut step.needs {
        need.span = place.clone();
    }
    if let StepKind::Sign(sign) = &mut step.kind {
        sign.key_span = place.clone();
    }
    step.template = Some(Box::new(template));
}

/// The template's diagnostics as its own file's, each saying which use led to it.
pub(super) fn in_template(
    loaded: &Loaded,
    use_name: &Spanned<String>,
    source: &SourceFile,
    items: Vec<Diagnostic>,
) -> Diagnostics {
    let (line, column) = source.line_column(use_name.span().start);
    let used = format!(
        "{}@{} used by `[steps.{}]` at {}:{line}:{column}",
        loaded.pin.name,
        loaded.pin.version,
        use_name.get_ref(),
        source.path.display()
    );
    Diagnostics {
        file: loaded.source.clone(),
        items: (items.into_iter())
            .map(|item| item.hint(used.clone()))
            .collect(),
        more: Vec::new(),
    }
}

#[cfg(test)]
#[path = "uses_tests.rs"]
mod tests;
