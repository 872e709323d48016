//! Parameters filled into a template's steps: `${{ name }}` in a string becomes the value's
//! text; a string that is only `${{ name }}` becomes the value itself (an integer, a bool;
//! in an array, whose elements are strings in the pipeline language, its text);
//! an array element that is only `${{ list }}` becomes the list's items. Every filled value
//! keeps the place of what it replaced, so a later mistake points at the template's line.
//!
//! A parameter may not appear in shell text (`run = "..."`): a value would be read by the
//! shell as commands (the script injection GitHub Actions users know). The argv form
//! (`run = [...]`) and `env` take values as data. Pure.

use std::ops::Range;

use indexmap::IndexMap;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue};

use super::manifest::Value;
use crate::diagnostic::Diagnostic;

/// The values a template is filled with, by parameter name, with each integer and number
/// written out once (a filled one borrows its text from here).
pub struct Values {
    values: IndexMap<String, Value>,
    integers: IndexMap<String, String>,
}

impl Values {
    #[must_use]
    pub fn new(values: IndexMap<String, Value>) -> Self {
        let integers = (values.iter())
            .filter_map(|(name, value)| match value {
                Value::Integer(number) => Some((name.clone(), number.to_string())),
                Value::Number(number) => Some((name.clone(), number.clone())),
                _ => None,
            })
            .collect();
        Self { values, integers }
    }

    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }
}

/// Fills every step of `steps` (the template's `[steps]` table); a diagnostic for each
/// reference that cannot be filled.
pub fn fill<'a>(steps: &mut DeTable<'a>, values: &'a Values) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    for (_, step) in steps.iter_mut() {
        let DeValue::Table(step) = step.get_mut() else {
            continue;
        };
        for (key, value) in step.iter_mut() {
            if let Some(span) = code_with_reference(key.get_ref(), value) {
                errors.push(
                    Diagnostic::at(
                        "a parameter in shell text (or Nix code) would be read as commands",
                        span,
                    )
                    .hint("pass it as an argument (`run = [\"tool\", \"${{ name }}\"]`, or after the script: `[\"sh\", \"-c\", \"tool \\\"$1\\\"\", \"sh\", \"${{ name }}\"]`) or through `env` and write \"$NAME\" in the script"),
                );
                continue;
            }
            fill_value(value, values, false, &mut errors);
        }
    }
    errors
}

/// Where a step's key holds code that a reference would be pasted into: `run` as shell text,
/// the script after `-c` in an argv `run`, a Nix `expr`, a gate's `drill` command.
fn code_with_reference(key: &str, value: &Spanned<DeValue<'_>>) -> Option<Range<usize>> {
    let referenced = |value: &Spanned<DeValue<'_>>| {
        matches!(value.get_ref(), DeValue::String(text) if text.contains("${{"))
            .then(|| value.span())
    };
    match (key, value.get_ref()) {
        ("run" | "expr", DeValue::String(_)) => referenced(value),
        ("run", DeValue::Array(items)) => (items.iter())
            .zip(items.iter().skip(1))
            .filter(|(flag, _)| matches!(flag.get_ref(), DeValue::String(text) if text == "-c"))
            .find_map(|(_, script)| referenced(script)),
        ("evidence", DeValue::Table(evidence)) => evidence.get("drill").and_then(referenced),
        _ => None,
    }
}

/// Fills one value; `in_array`: an element of an array, where every value is text (the
/// pipeline language's arrays hold strings).
fn fill_value<'a>(
    value: &mut Spanned<DeValue<'a>>,
    values: &'a Values,
    in_array: bool,
    errors: &mut Vec<Diagnostic>,
) {
    let span = value.span();
    if let DeValue::String(text) = value.get_ref()
        && text.contains("${{")
    {
        let named = whole(text).and_then(|name| values.get(name).map(|found| (name, found)));
        let replaced = match named {
            Some((name, found)) if !in_array => {
                typed(name, found, values).ok_or_else(|| list_in_string(name, span.clone()))
            }
            Some((name, Value::List(_))) => Err(list_in_string(name, span.clone())),
            Some((_, found)) => Ok(DeValue::String(found.text().into())),
            None => interpolate(text, values)
                .map(|filled| DeValue::String(filled.into()))
                .map_err(|message| Diagnostic::at(message, span.clone())),
        };
        match replaced {
            Ok(filled) => *value = Spanned::new(span, filled),
            Err(error) => errors.push(error),
        }
        return;
    }
    match value.get_mut() {
        DeValue::Array(items) => {
            let splices = items
                .iter()
                .any(|item| list_reference(item, values).is_some());
            if splices {
                let taken = std::mem::replace(items, DeArray::new());
                let mut filled = DeArray::new();
                for mut item in taken {
                    if let Some(list) = list_reference(&item, values) {
                        for entry in list {
                            filled.push(Spanned::new(
                                item.span(),
                                DeValue::String(entry.as_str().into()),
                            ));
                        }
                    } else {
                        fill_value(&mut item, values, true, errors);
                        filled.push(item);
                    }
                }
                *items = filled;
            } else {
                for item in items.iter_mut() {
                    fill_value(item, values, true, errors);
                }
            }
        }
        DeValue::Table(table) => {
            for (_, item) in table.iter_mut() {
                fill_value(item, values, false, errors);
            }
        }
        _ => {}
    }
}

/// The list an array element names when it is only `${{ list }}`.
fn list_reference<'v>(item: &Spanned<DeValue<'_>>, values: &'v Values) -> Option<&'v Vec<String>> {
    let DeValue::String(text) = item.get_ref() else {
        return None;
    };
    match values.get(whole(text)?)? {
        Value::List(list) => Some(list),
        _ => None,
    }
}

/// A value standing alone for a whole string: itself; `None` for a list (it fills a whole
/// array element, nothing else).
fn typed<'a>(name: &str, value: &'a Value, values: &'a Values) -> Option<DeValue<'a>> {
    Some(match value {
        Value::String(text) => DeValue::String(text.as_str().into()),
        Value::Bool(flag) => DeValue::Boolean(*flag),
        Value::Integer(_) | Value::Number(_) => DeValue::parse(values.integers.get(name)?)
            .ok()?
            .into_inner(),
        Value::List(_) => return None,
    })
}

fn list_in_string(name: &str, span: Range<usize>) -> Diagnostic {
    Diagnostic::at(
        format!("`{name}` is a list: it fills a whole array element"),
        span,
    )
    .hint(format!(
        "write it as an element of an array: `[\"${{{{ {name} }}}}\"]`"
    ))
}

/// The parameter a string names when it is nothing but `${{ name }}`.
fn whole(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("${{")?.strip_suffix("}}")?.trim();
    (!inner.contains("}}") && !inner.contains("${{")).then_some(inner)
}

/// Each `${{ name }}` in `text` replaced by its value's text.
fn interpolate(text: &str, values: &Values) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("${{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 3..];
        let end = after
            .find("}}")
            .ok_or_else(|| format!("`${{{{` without its `}}}}` in `{text}`"))?;
        let name = after[..end].trim();
        match values.get(name) {
            Some(Value::List(_)) => {
                return Err(format!(
                    "`{name}` is a list: it fills a whole array element"
                ));
            }
            Some(value) => out.push_str(&value.text()),
            None => return Err(unknown(name, values)),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

fn unknown(name: &str, values: &Values) -> String {
    let known: Vec<&str> = values.values.keys().map(String::as_str).collect();
    match crate::diagnostic::closest(name, known.iter().copied()) {
        Some(close) => format!("no parameter `{name}` (did you mean `{close}`?)"),
        None if known.is_empty() => format!("no parameter `{name}`: the template declares none"),
        None => format!(
            "no parameter `{name}`; the template declares {}",
            known.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> Values {
        Values::new(IndexMap::from([
            ("package".to_owned(), Value::String("greeter".to_owned())),
            ("jobs".to_owned(), Value::Integer(4)),
            ("ratio".to_owned(), Value::Number("0.9".to_owned())),
            ("offline".to_owned(), Value::Bool(true)),
            (
                "features".to_owned(),
                Value::List(vec!["a".to_owned(), "b c".to_owned()]),
            ),
        ]))
    }

    fn filled(text: &str) -> Result<toml::Table, Vec<String>> {
        let values = values();
        let mut document = DeTable::parse(text).expect("toml");
        let steps = document.get_mut().get_mut("steps").expect("steps");
        let DeValue::Table(steps) = steps.get_mut() else {
            panic!("a table")
        };
        let errors = fill(steps, &values);
        if !errors.is_empty() {
            return Err(errors.into_iter().map(|error| error.message).collect());
        }
        let deserializer = toml::de::Deserializer::from(document);
        Ok(serde::Deserialize::deserialize(deserializer).expect("a table"))
    }

    #[test]
    fn values_fill_strings_whole_values_and_arrays() {
        let table = filled(
            "[steps.build]\nrun = [\"cargo\", \"build\", \"-p\", \"${{ package }}\", \"--features\", \"${{features}}\"]\noutputs = [\"out/${{ package }}-${{ jobs }}\"]\nnetwork = \"${{ offline }}\"\nlimits = { processes = \"${{ jobs }}\" }\nrequire = { line_coverage_min = \"${{ ratio }}\" }\n",
        )
        .expect("filled");
        let build = &table["steps"]["build"];
        assert_eq!(
            build["run"],
            toml::Value::Array(
                ["cargo", "build", "-p", "greeter", "--features", "a", "b c"]
                    .map(|item| toml::Value::String(item.to_owned()))
                    .to_vec()
            )
        );
        assert_eq!(build["outputs"][0].as_str(), Some("out/greeter-4"));
        assert_eq!(build["network"].as_bool(), Some(true));
        assert_eq!(build["limits"]["processes"].as_integer(), Some(4));
        assert_eq!(build["require"]["line_coverage_min"].as_float(), Some(0.9));
    }

    #[test]
    fn a_reference_inside_any_code_is_refused() {
        for step in [
            "run = [\"sh\", \"-c\", \"make ${{ package }}\"]",
            "kind = \"nix\"\nexpr = \"import ./${{ package }}.nix\"",
            "kind = \"gate\"\nevidence = { drill = \"restore ${{ package }}\" }",
        ] {
            let errors = filled(&format!("[steps.a]\n{step}\n")).expect_err(step);
            assert!(
                errors[0].contains("shell text (or Nix code)"),
                "{step}: {errors:?}"
            );
        }
        assert!(
            filled("[steps.a]\nrun = [\"sh\", \"-c\", \"make \\\"$1\\\"\", \"sh\", \"${{ package }}\"]\n").is_ok(),
            "an argument after the script is data"
        );
    }

    #[test]
    fn shell_text_unknown_names_and_misplaced_lists_are_refused() {
        let errors = filled(
            "[steps.a]\nrun = \"make ${{ package }}\"\n[steps.b]\nrun = [\"${{ packge }}\"]\nenv = { X = \"-${{ features }}\" }\noutputs = [\"out/${{ x\"]\n",
        )
        .expect_err("four mistakes");
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].contains("shell"), "{errors:?}");
        assert!(errors[1].contains("did you mean `package`"), "{errors:?}");
        assert!(errors[2].contains("is a list"), "{errors:?}");
        assert!(errors[3].contains("without its"), "{errors:?}");
    }
}
