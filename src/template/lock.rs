//! `gantry.lock`: each template a pipeline uses, pinned to one version and its pack's SHA-256
//! and the registry it came from. Sorted by name and written the same way every time, so it
//! diffs well and two resolutions of the same thing give the same bytes. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Deserialize;
use toml::Spanned;

use super::Pin;
use crate::diagnostic::Diagnostic;
use crate::digest::Digest;

/// The lock's file name, beside the pipeline file.
pub const FILE: &str = "gantry.lock";
const FORMAT: i64 = 1;

/// The pins, by template name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    pub pins: BTreeMap<String, Pin>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LockWire {
    version: Spanned<i64>,
    #[serde(default)]
    template: Vec<Spanned<PinWire>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinWire {
    name: Spanned<String>,
    version: Spanned<String>,
    registry: String,
    sha256: Spanned<String>,
}

/// Reads a lock; each mistake at its place.
pub fn parse(text: &str) -> Result<Lock, Vec<Diagnostic>> {
    let (wire, mut errors) = crate::diagnostic::read_reporting_unknown::<LockWire>(text);
    let Some(wire) = wire else {
        return Err(errors);
    };
    if *wire.version.get_ref() != FORMAT {
        errors.push(Diagnostic::at(
            format!(
                "lock format {} is not one this gantry reads ({FORMAT})",
                wire.version.get_ref()
            ),
            wire.version.span(),
        ));
    }
    let mut lock = Lock::default();
    for pin in wire.template {
        let span = pin.span();
        let pin = pin.into_inner();
        if super::manifest::Name::parse(pin.name.get_ref()).is_err() {
            errors.push(Diagnostic::at("not a template name", pin.name.span()));
        }
        if super::constraint::version(pin.version.get_ref()).is_err() {
            errors.push(Diagnostic::at("not a SemVer version", pin.version.span()));
        }
        let Some(digest) = Digest::from_hex(pin.sha256.get_ref()) else {
            errors.push(Diagnostic::at("not a SHA-256 in hex", pin.sha256.span()));
            continue;
        };
        let name = pin.name.into_inner();
        let pinned = Pin {
            name: name.clone(),
            version: pin.version.into_inner(),
            digest,
            registry: pin.registry,
        };
        if lock.pins.insert(name.clone(), pinned).is_some() {
            errors.push(Diagnostic::at(format!("`{name}` is pinned twice"), span));
        }
    }
    if errors.is_empty() {
        Ok(lock)
    } else {
        Err(errors)
    }
}

/// The lock's text.
#[must_use]
pub fn render(lock: &Lock) -> String {
    let mut text = String::from(
        "# gantry.lock: each template the pipeline uses, pinned to its pack's SHA-256.\n\
         # Written by gantry (`gantry template update` resolves again); commit it.\n",
    );
    let _ = writeln!(text, "version = {FORMAT}");
    let quote = |value: &str| toml::Value::String(value.to_owned()).to_string();
    for pin in lock.pins.values() {
        let _ = write!(
            text,
            "\n[[template]]\nname = {}\nversion = {}\nregistry = {}\nsha256 = {}\n",
            quote(&pin.name),
            quote(&pin.version),
            quote(&pin.registry),
            quote(&pin.digest.hex())
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_reads_back_what_was_written_in_the_same_bytes() {
        let mut lock = Lock::default();
        for (name, version) in [("zeta/b", "2.0.0"), ("acme/make", "1.2.0-rc.1")] {
            lock.pins.insert(
                name.to_owned(),
                Pin {
                    name: name.to_owned(),
                    version: version.to_owned(),
                    digest: Digest::of_bytes(name.as_bytes()),
                    registry: "main \"quoted\"".to_owned(),
                },
            );
        }
        let text = render(&lock);
        assert!(text.find("acme/make") < text.find("zeta/b"), "{text}");
        let read = parse(&text).expect("valid");
        assert_eq!(read, lock);
        assert_eq!(render(&read), text);
    }

    #[test]
    fn a_bad_lock_is_named_at_its_lines() {
        let errors = parse(
            "version = 1\n[[template]]\nname = \"acme/make\"\nversion = \"1.2\"\nregistry = \"r\"\nsha256 = \"zz\"\n",
        )
        .expect_err("two mistakes");
        let messages: Vec<&str> = errors.iter().map(|error| error.message.as_str()).collect();
        assert_eq!(messages, ["not a SemVer version", "not a SHA-256 in hex"]);
    }
}
