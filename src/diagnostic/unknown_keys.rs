//! TOML into wire structs with every unknown key reported, not only the first: serde stops at
//! the first one, so each is reported, blanked out of the text (its key and value replaced
//! by spaces, every other byte where it was, so later spans still point at the file), and the
//! text read again.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::Diagnostic;
use super::closest::syntax_diagnostic;

/// Unknown keys reported in one file; a file over a MiB gets only its first (each one more
/// costs two more readings of the whole text).
const MOST: usize = 100;
const LARGE: usize = 1 << 20;

/// The wire value (when the text holds one once its unknown keys are gone) and a diagnostic
/// for each unknown key and for any other error.
#[must_use]
pub fn read<T: DeserializeOwned>(text: &str) -> (Option<T>, Vec<Diagnostic>) {
    let most = if text.len() > LARGE { 1 } else { MOST };
    let mut text = text.to_owned();
    let mut found = Vec::new();
    loop {
        let error = match toml::from_str::<T>(&text) {
            Ok(wire) => return (Some(wire), found),
            Err(error) => error,
        };
        let message = error.message().trim_end();
        let diagnostic = syntax_diagnostic(message, error.span());
        let unknown = message.starts_with("unknown field `");
        let extent = (error.span())
            .filter(|_| unknown && found.len() + 1 < most)
            .and_then(|key| entry(&text, &key).map(|end| key.start..end));
        found.push(diagnostic);
        match extent {
            Some(extent) => blank(&mut text, extent),
            None => return (None, found),
        }
    }
}

/// Where the value of the key written at `key` ends.
fn entry(text: &str, key: &Range<usize>) -> Option<usize> {
    let document = DeTable::parse(text).ok()?;
    in_table(document.get_ref(), key)
}

fn in_table(table: &DeTable<'_>, key: &Range<usize>) -> Option<usize> {
    table.iter().find_map(|(name, value)| {
        if name.span() == *key {
            Some(value.span().end)
        } else {
            in_value(value, key)
        }
    })
}

fn in_value(value: &Spanned<DeValue<'_>>, key: &Range<usize>) -> Option<usize> {
    match value.get_ref() {
        DeValue::Table(table) => in_table(table, key),
        DeValue::Array(items) => items.iter().find_map(|item| in_value(item, key)),
        _ => None,
    }
}

/// Spaces over `range`, newlines kept: the text reads as if the entry were not there.
fn blank(text: &mut String, range: Range<usize>) {
    let mut bytes = std::mem::take(text).into_bytes();
    for byte in bytes.get_mut(range).into_iter().flatten() {
        if *byte != b'\n' {
            *byte = b' ';
        }
    }
    // Whole characters were replaced (spans fall on character boundaries), so this holds.
    *text = String::from_utf8(bytes).unwrap_or_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Wire {
        name: String,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        #[serde(default)]
        size: i64,
    }

    #[test]
    fn every_unknown_key_is_reported_and_the_rest_is_read() {
        let text = "name = \"x\"\nnmae = \"y\"\n[inner]\nsize = 3\nsise = [\n  1,\n  2,\n]\n";
        let (wire, found) = read::<Wire>(text);
        let wire = wire.expect("read once the unknown keys are gone");
        assert_eq!(wire.name, "x");
        assert_eq!(wire.inner.expect("inner").size, 3);
        let messages: Vec<String> = found
            .iter()
            .map(|diagnostic| format!("{diagnostic:?}"))
            .collect();
        assert_eq!(found.len(), 2, "{messages:?}");
        assert!(
            messages[0].contains("nmae") && messages[1].contains("sise"),
            "{messages:?}"
        );
    }

    #[test]
    fn a_syntax_error_ends_the_reading() {
        let (wire, found) = read::<Wire>("name = \"x\"\nbad = \nnmae = 1\n");
        assert!(wire.is_none());
        assert_eq!(found.len(), 1);
    }
}
