//! Action keys: everything a step's result depends on, digested; a step whose key is in the
//! action cache is not run again. One rule for every kind: a key opens with the kind's name
//! and its format version (a kind bumps its version when what it writes changes, so that old
//! cache entries stop matching), then names each field it adds, so that no two fields can run
//! together and the code says what a key holds. Pure.

use crate::digest::{Digest, DigestBuilder};

/// What every action key is derived under; a change of the rule itself bumps it.
const DOMAIN: &str = "gantry-action/2";

pub struct ActionKey(DigestBuilder);

impl ActionKey {
    /// A key of `kind`'s results in its format `version`.
    #[must_use]
    pub fn new(kind: &str, version: u32) -> Self {
        let mut key = DigestBuilder::new(DOMAIN);
        key.str(kind).field(&version.to_le_bytes());
        Self(key)
    }

    /// A key of `kind`'s results for `step`: a step expanded from a template also names the
    /// template's pack, so a result (whose link names the template) is never served to the
    /// same step of another version.
    #[must_use]
    pub fn of_step(step: &crate::pipeline::Step, kind: &str, version: u32) -> Self {
        let mut key = Self::new(kind, version);
        key.template(step.template.as_ref().map(|template| &template.pin.digest));
        key
    }

    /// The template's pack a step was expanded from, when it was.
    pub fn template(&mut self, pack: Option<&Digest>) -> &mut Self {
        if let Some(pack) = pack {
            self.digest("template", pack);
        }
        self
    }

    /// A named text: a setting, a path, a serialised spec.
    pub fn text(&mut self, name: &str, value: &str) -> &mut Self {
        self.0.str(name).str(value);
        self
    }

    /// A named digest.
    pub fn digest(&mut self, name: &str, value: &Digest) -> &mut Self {
        self.0.str(name).field(value.as_bytes());
        self
    }

    /// A named list of texts, its length first: `["a b"]` and `["a", "b"]` differ.
    pub fn texts<'a>(
        &mut self,
        name: &str,
        values: impl IntoIterator<Item = &'a str>,
    ) -> &mut Self {
        let values: Vec<&str> = values.into_iter().collect();
        self.0.str(name).field(&(values.len() as u64).to_le_bytes());
        for value in values {
            self.0.str(value);
        }
        self
    }

    /// A file the result is made from, by its path and content.
    pub fn input(&mut self, path: &str, digest: &Digest) -> &mut Self {
        self.0.str("input").str(path).field(digest.as_bytes());
        self
    }

    #[must_use]
    pub fn finish(self) -> Digest {
        self.0.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(build: impl FnOnce(&mut ActionKey)) -> Digest {
        let mut key = ActionKey::new("exec", 1);
        build(&mut key);
        key.finish()
    }

    #[test]
    fn every_part_and_its_name_decides_the_key() {
        let a = Digest::of_bytes(b"a");
        let base = key(|key| {
            key.text("argv", "make").input("src/a.c", &a);
        });
        let other_kind = {
            let mut key = ActionKey::new("nix", 1);
            key.text("argv", "make").input("src/a.c", &a);
            key.finish()
        };
        let other_version = {
            let mut key = ActionKey::new("exec", 2);
            key.text("argv", "make").input("src/a.c", &a);
            key.finish()
        };
        let variants = [
            other_kind,
            other_version,
            key(|key| {
                key.text("program", "make").input("src/a.c", &a);
            }),
            key(|key| {
                key.text("argv", "make").input("src/b.c", &a);
            }),
            key(|key| {
                key.text("argv", "make")
                    .input("src/a.c", &Digest::of_bytes(b"b"));
            }),
            key(|key| {
                key.input("src/a.c", &a).text("argv", "make");
            }),
            key(|key| {
                key.texts("argv", ["a b"]);
            }),
            key(|key| {
                key.texts("argv", ["a", "b"]);
            }),
        ];
        let mut all = vec![base];
        for variant in variants {
            assert!(!all.contains(&variant), "two different keys collide");
            all.push(variant);
        }
        assert_eq!(
            base,
            key(|key| {
                key.text("argv", "make").input("src/a.c", &a);
            }),
            "the same parts give the same key"
        );
    }
}
