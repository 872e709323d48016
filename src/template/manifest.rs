//! `template.toml`: what a template is (name, version, the gantry versions it works with), the
//! parameters it takes and the steps it adds, read into a [`Manifest`] with a diagnostic at
//! the template file's line for each mistake. The steps stay text here: the pipeline language
//! reads them once their parameters are filled in (`pipeline::uses`). Pure.

use std::collections::BTreeMap;
use std::ops::Range;

use indexmap::IndexMap;
use semver::Version;
use serde::Deserialize;
use toml::Spanned;

use super::constraint::{self, Constraint};
use crate::diagnostic::Diagnostic;

/// The longest publisher or template name.
const LONGEST_NAME: usize = 64;

/// A parsed, checked `template.toml`.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub name: Name,
    pub version: Version,
    pub description: String,
    /// The gantry versions the template works with.
    pub gantry: Constraint,
    pub parameters: IndexMap<String, Parameter>,
    /// Each step's name (as the template writes it) and its outputs as written.
    pub steps: IndexMap<String, Vec<String>>,
}

/// `publisher/name`: lowercase letters, digits and `-`, each part starting with a letter or
/// digit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name {
    pub publisher: String,
    pub name: String,
}

impl Name {
    /// Reads `publisher/name`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (publisher, name) = text.split_once('/').ok_or_else(|| {
            format!("`{text}` is not `publisher/name`: a template is named by who publishes it")
        })?;
        for part in [publisher, name] {
            let first_ok = part
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_lowercase() || first.is_ascii_digit());
            let rest_ok = part
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !first_ok || !rest_ok || part.len() > LONGEST_NAME {
                return Err(format!(
                    "`{text}`: `{part}` may hold lowercase letters, digits and `-` (not first), at most {LONGEST_NAME}"
                ));
            }
        }
        Ok(Self {
            publisher: publisher.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}/{}", self.publisher, self.name)
    }
}

/// One parameter a template takes.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameter {
    pub kind: Kind,
    /// `None`: the pipeline must give it.
    pub default: Option<Value>,
    pub description: String,
}

/// A parameter's type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    String,
    Integer,
    /// A number with a fraction (a coverage threshold, a ratio).
    Number,
    Bool,
    /// A list of strings.
    List,
    /// A relative path inside the workspace, without `..`.
    Path,
}

impl Kind {
    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "string" => Self::String,
            "integer" => Self::Integer,
            "number" => Self::Number,
            "bool" => Self::Bool,
            "list" => Self::List,
            "path" => Self::Path,
            _ => return None,
        })
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Integer => "integer",
            Self::Number => "number",
            Self::Bool => "bool",
            Self::List => "list",
            Self::Path => "path",
        }
    }
}

/// A parameter's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    String(String),
    Integer(i64),
    /// As TOML writes it (a finite float or an integer).
    Number(String),
    Bool(bool),
    List(Vec<String>),
}

impl Value {
    /// A TOML value as a parameter of `kind`, or why it is not one.
    pub fn of(kind: Kind, value: &toml::Value) -> Result<Self, String> {
        let found = value.type_str();
        match (kind, value) {
            (Kind::String, toml::Value::String(text)) => Ok(Self::String(text.clone())),
            (Kind::Path, toml::Value::String(text)) => check_path(text).map(Self::String),
            (Kind::Integer, toml::Value::Integer(number)) => Ok(Self::Integer(*number)),
            (Kind::Number, toml::Value::Integer(number)) => Ok(Self::Number(number.to_string())),
            (Kind::Number, toml::Value::Float(number)) if number.is_finite() => {
                Ok(Self::Number(format!("{number:?}")))
            }
            (Kind::Bool, toml::Value::Boolean(flag)) => Ok(Self::Bool(*flag)),
            (Kind::List, toml::Value::Array(items)) => items
                .iter()
                .map(|item| {
                    item.as_str().map(str::to_owned).ok_or_else(|| {
                        format!("a list parameter holds strings, not {}", item.type_str())
                    })
                })
                .collect::<Result<_, _>>()
                .map(Self::List),
            _ => Err(format!("expected {}, found {found}", kind.name())),
        }
    }

    /// The value as text inside a longer string (a list's items joined by spaces).
    #[must_use]
    pub fn text(&self) -> String {
        match self {
            Self::String(text) => text.clone(),
            Self::Integer(number) => number.to_string(),
            Self::Number(number) => number.clone(),
            Self::Bool(flag) => flag.to_string(),
            Self::List(items) => items.join(" "),
        }
    }
}

/// A path parameter: relative, inside the workspace.
fn check_path(text: &str) -> Result<String, String> {
    let path = std::path::Path::new(text);
    let escapes = path.components().any(|part| {
        !matches!(
            part,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if text.is_empty() || escapes {
        return Err(format!(
            "`{text}` is not a path inside the workspace (relative, without `..`)"
        ));
    }
    Ok(text.to_owned())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestWire {
    template: Option<Spanned<SectionWire>>,
    #[serde(default)]
    parameters: IndexMap<Spanned<String>, Spanned<ParameterWire>>,
    #[serde(default)]
    steps: IndexMap<Spanned<String>, Spanned<StepOutlineWire>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionWire {
    name: Spanned<String>,
    version: Spanned<String>,
    description: Option<Spanned<String>>,
    gantry: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParameterWire {
    #[serde(rename = "type")]
    kind: Spanned<String>,
    description: Option<Spanned<String>>,
    default: Option<Spanned<toml::Value>>,
}

/// What the manifest reads of a step: its outputs (part of the interface). The pipeline
/// language checks the rest.
#[derive(Deserialize)]
struct StepOutlineWire {
    #[serde(default)]
    outputs: Vec<toml::Value>,
}

/// Reads `template.toml`; every mistake found, at its place in the text.
pub fn parse(text: &str) -> Result<Manifest, Vec<Diagnostic>> {
    let (wire, mut errors) = crate::diagnostic::read_reporting_unknown::<ManifestWire>(text);
    let Some(wire) = wire else {
        return Err(errors);
    };
    let Some(section) = wire.template else {
        return Err(vec![
            Diagnostic::new("missing `[template]` table", Some(0..0)).hint(
                "start with `[template]`, `name = \"publisher/name\"` and `version = \"1.0.0\"`",
            ),
        ]);
    };
    let section = section.into_inner();
    let name = at(
        Name::parse(section.name.get_ref()),
        section.name.span(),
        &mut errors,
    );
    let version = at(
        constraint::version(section.version.get_ref()).map_err(|error| error.message),
        section.version.span(),
        &mut errors,
    );
    let gantry = match &section.gantry {
        Some(range) => at(
            Constraint::parse(range.get_ref()).map_err(|error| error.message),
            range.span(),
            &mut errors,
        ),
        None => Constraint::parse("*").ok(),
    };
    let parameters = parameters(&wire.parameters, &mut errors);
    let mut steps = IndexMap::new();
    for (step, outline) in &wire.steps {
        if !inner_name(step.get_ref()) {
            errors.push(Diagnostic::at(
                format!(
                    "`{}`: a template's step is named with letters, digits, `-` and `_`",
                    step.get_ref()
                ),
                step.span(),
            ));
        }
        let outputs = (outline.get_ref().outputs.iter())
            .filter_map(|output| output.as_str().map(str::to_owned))
            .collect();
        steps.insert(step.get_ref().clone(), outputs);
    }
    if steps.is_empty() {
        errors.push(
            Diagnostic::new("the template has no steps", Some(0..0))
                .hint("add one: `[steps.build]` with `run = [...]`"),
        );
    }
    match (name, version, gantry) {
        (Some(name), Some(version), Some(gantry)) if errors.is_empty() => Ok(Manifest {
            name,
            version,
            description: section
                .description
                .map(Spanned::into_inner)
                .unwrap_or_default(),
            gantry,
            parameters,
            steps,
        }),
        _ => Err(errors),
    }
}

/// The value, or its mistake recorded at `span`.
fn at<T>(result: Result<T, String>, span: Range<usize>, errors: &mut Vec<Diagnostic>) -> Option<T> {
    result
        .map_err(|message| errors.push(Diagnostic::at(message, span)))
        .ok()
}

fn parameters(
    wire: &IndexMap<Spanned<String>, Spanned<ParameterWire>>,
    errors: &mut Vec<Diagnostic>,
) -> IndexMap<String, Parameter> {
    let mut parameters = IndexMap::new();
    for (name, parameter) in wire {
        let parameter = parameter.get_ref();
        if name.get_ref() == super::TEMPLATE_DIR {
            errors.push(Diagnostic::at(
                format!(
                    "`{}` is the folder of the template's files; name the parameter otherwise",
                    super::TEMPLATE_DIR
                ),
                name.span(),
            ));
        } else if !parameter_name(name.get_ref()) {
            errors.push(Diagnostic::at(
                format!(
                    "`{}`: a parameter is named with lowercase letters, digits and `_`, starting with a letter",
                    name.get_ref()
                ),
                name.span(),
            ));
        }
        let Some(kind) = Kind::parse(parameter.kind.get_ref()) else {
            errors.push(
                Diagnostic::at(
                    format!("unknown parameter type `{}`", parameter.kind.get_ref()),
                    parameter.kind.span(),
                )
                .hint("one of: string, integer, number, bool, list, path"),
            );
            continue;
        };
        let default = parameter.default.as_ref().and_then(|default| {
            Value::of(kind, default.get_ref())
                .map_err(|message| {
                    errors.push(Diagnostic::at(
                        format!("default of `{}`: {message}", name.get_ref()),
                        default.span(),
                    ));
                })
                .ok()
        });
        parameters.insert(
            name.get_ref().clone(),
            Parameter {
                kind,
                default,
                description: (parameter.description.as_ref())
                    .map(|text| text.get_ref().clone())
                    .unwrap_or_default(),
            },
        );
    }
    parameters
}

/// A parameter's name: `[a-z][a-z0-9_]*`.
#[must_use]
pub fn parameter_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A template step's name: no `.` (expanded steps are `USE.INNER`).
fn inner_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// What a pipeline relies on: the parameters (type, required or not), the steps (it may
/// `needs` them) and their outputs (it may read them).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(default)]
pub struct Interface {
    pub parameters: BTreeMap<String, Shape>,
    pub outputs: BTreeMap<String, Vec<String>>,
}

/// What a pipeline relies on of one parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
pub struct Shape {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub required: bool,
}

impl Manifest {
    #[must_use]
    pub fn interface(&self) -> Interface {
        Interface {
            parameters: (self.parameters.iter())
                .map(|(name, parameter)| {
                    let shape = Shape {
                        kind: parameter.kind,
                        required: parameter.default.is_none(),
                    };
                    (name.clone(), shape)
                })
                .collect(),
            outputs: (self.steps.iter())
                .map(|(step, outputs)| (step.clone(), outputs.clone()))
                .collect(),
        }
    }
}

impl Interface {
    /// Each change from `self` (the previous version) to `next` that breaks a pipeline
    /// written against `self`: those need a new major version.
    #[must_use]
    pub fn breaking_changes(&self, next: &Self) -> Vec<String> {
        let mut changes = Vec::new();
        for (name, shape) in &self.parameters {
            match next.parameters.get(name) {
                None => changes.push(format!("parameter `{name}` removed")),
                Some(new) if new.kind != shape.kind => changes.push(format!(
                    "parameter `{name}` retyped from {} to {}",
                    shape.kind.name(),
                    new.kind.name()
                )),
                Some(new) if new.required && !shape.required => {
                    changes.push(format!("parameter `{name}` now required"));
                }
                Some(_) => {}
            }
        }
        for (name, shape) in &next.parameters {
            if shape.required && !self.parameters.contains_key(name) {
                changes.push(format!("new required parameter `{name}`"));
            }
        }
        for (step, outputs) in &self.outputs {
            let Some(new_outputs) = next.outputs.get(step) else {
                changes.push(format!("step `{step}` removed"));
                continue;
            };
            for output in outputs {
                if !new_outputs.contains(output) {
                    changes.push(format!("output `{output}` of step `{step}` removed"));
                }
            }
        }
        changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = r#"[template]
name = "acme/rust-release"
version = "1.4.0"
description = "A release build"
gantry = ">=0.1"

[parameters.package]
type = "string"
description = "The crate"

[parameters.features]
type = "list"
default = []

[steps.compile]
run = ["cargo", "build", "-p", "${{ package }}"]
outputs = ["out/${{ package }}"]
"#;

    #[test]
    fn a_template_is_read_with_its_interface() {
        let manifest = parse(TEMPLATE).expect("valid");
        assert_eq!(manifest.name.to_string(), "acme/rust-release");
        assert_eq!(manifest.version.to_string(), "1.4.0");
        assert_eq!(manifest.parameters["package"].kind, Kind::String);
        assert_eq!(
            manifest.parameters["features"].default,
            Some(Value::List(vec![]))
        );
        let interface = manifest.interface();
        assert_eq!(
            interface.parameters["package"],
            Shape {
                kind: Kind::String,
                required: true
            }
        );
        assert_eq!(interface.outputs["compile"], vec!["out/${{ package }}"]);
    }

    #[test]
    fn mistakes_are_found_at_their_lines() {
        let text = TEMPLATE
            .replace("acme/rust-release", "Acme/rust")
            .replace("\"1.4.0\"", "\"1.4\"")
            .replace("type = \"list\"", "type = \"map\"");
        let errors = parse(&text).expect_err("three mistakes");
        let messages: Vec<&str> = errors.iter().map(|error| error.message.as_str()).collect();
        assert_eq!(errors.len(), 3, "{messages:?}");
        let lines: Vec<usize> = errors
            .iter()
            .map(|error| {
                text[..error.span.clone().expect("placed").start]
                    .lines()
                    .count()
            })
            .collect();
        assert_eq!(lines, vec![2, 3, 12], "{messages:?}");
    }

    #[test]
    fn breaking_changes_are_named() {
        let old = parse(TEMPLATE).expect("valid").interface();
        let text = TEMPLATE
            .replace("[parameters.features]\ntype = \"list\"\ndefault = []", "[parameters.features]\ntype = \"string\"\n\n[parameters.target]\ntype = \"string\"")
            .replace("outputs = [\"out/${{ package }}\"]", "outputs = []");
        let new = parse(&text).expect("valid").interface();
        assert_eq!(
            old.breaking_changes(&new),
            vec![
                "parameter `features` retyped from list to string",
                "new required parameter `target`",
                "output `out/${{ package }}` of step `compile` removed",
            ]
        );
        assert!(old.breaking_changes(&old).is_empty());
        let added_optional = TEMPLATE.replace(
            "[steps.compile]",
            "[parameters.jobs]\ntype = \"integer\"\ndefault = 2\n\n[steps.compile]",
        );
        assert!(
            old.breaking_changes(&parse(&added_optional).expect("valid").interface())
                .is_empty()
        );
    }

    #[test]
    fn values_are_checked_against_their_type() {
        let list = toml::Value::Array(vec![toml::Value::String("a".into())]);
        assert_eq!(
            Value::of(Kind::List, &list),
            Ok(Value::List(vec!["a".into()]))
        );
        assert!(Value::of(Kind::Integer, &toml::Value::String("2".into())).is_err());
        assert_eq!(
            Value::of(Kind::Number, &toml::Value::Float(0.9)),
            Ok(Value::Number("0.9".into()))
        );
        assert!(Value::of(Kind::Number, &toml::Value::Float(f64::INFINITY)).is_err());
        assert!(Value::of(Kind::Path, &toml::Value::String("../etc".into())).is_err());
        assert!(Value::of(Kind::Path, &toml::Value::String("/etc".into())).is_err());
        assert_eq!(
            Value::of(Kind::Path, &toml::Value::String("src/lib".into())),
            Ok(Value::String("src/lib".into()))
        );
    }
}
