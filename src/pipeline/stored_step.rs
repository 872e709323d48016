//! A step as read, kept with only the keys it has until it is converted. [`StepWire`] holds
//! a place for every key any kind accepts (about 2.2 KB, nearly all of it empty); 50,000 of
//! them read at once were 112 MB of the 180 MB a 50,000-step pipeline's first run peaked at.
//! Read through [`StepWire`] (the same keys, the same errors at the same lines), each step is
//! kept as the list of the keys it has (a trivial step: three, under 300 bytes) and made a
//! [`StepWire`] again only while it is converted, one at a time.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer};
use toml::Spanned;

use crate::pipeline::wire::{
    AboutWire, AnalysisWire, CanaryWire, HealthWire, LimitsWire, RetryWire, RunWire, StepWire,
    SubjectWire, TrafficWire, VerifyWire,
};

/// The keys one step has.
#[derive(Debug)]
pub struct StoredStep(Box<[Key]>);

impl<'de> Deserialize<'de> for StoredStep {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        StepWire::deserialize(deserializer).map(Self::from)
    }
}

impl StoredStep {
    /// `uses`: a template's steps instead of the step's own.
    #[must_use]
    pub fn uses(&self) -> Option<&Spanned<String>> {
        self.0.iter().find_map(|key| match key {
            Key::uses(uses) => Some(uses),
            _ => None,
        })
    }
}

/// Each `Option` field of [`StepWire`] (`options`) and each list that defaults to empty
/// (`lists`): the destructuring in `From<StepWire>` names every field, so a key added to
/// [`StepWire`] and not here does not compile.
macro_rules! stored_keys {
    (options { $($option:ident: $option_type:ty),* $(,)? } lists { $($list:ident),* $(,)? }) => {
        /// One key of a step with its value, as [`StepWire`] read it.
        #[expect(non_camel_case_types)]
        #[derive(Debug)]
        enum Key {
            $($option($option_type),)*
            $($list(Vec<Spanned<String>>),)*
        }

        impl From<StepWire> for StoredStep {
            fn from(wire: StepWire) -> Self {
                let StepWire { $($option,)* $($list,)* } = wire;
                let mut keys = Vec::new();
                $(if let Some(value) = $option {
                    keys.push(Key::$option(value));
                })*
                $(if !$list.is_empty() {
                    keys.push(Key::$list($list));
                })*
                Self(keys.into_boxed_slice())
            }
        }

        impl StoredStep {
            /// The step as read.
            #[must_use]
            pub fn into_wire(self) -> StepWire {
                $(let mut $option = None;)*
                $(let mut $list = Vec::new();)*
                for key in self.0 {
                    match key {
                        $(Key::$option(value) => $option = Some(value),)*
                        $(Key::$list(value) => $list = value,)*
                    }
                }
                StepWire { $($option,)* $($list,)* }
            }
        }
    };
}

type Strings = Spanned<Vec<Spanned<String>>>;

stored_keys! {
    options {
        kind: Spanned<String>,
        description: String,
        run: Spanned<RunWire>,
        flake: Spanned<String>,
        expr: Spanned<String>,
        file: Spanned<String>,
        attr: Spanned<String>,
        builders: Strings,
        key: Spanned<String>,
        from: Spanned<String>,
        format: Spanned<String>,
        subject: Spanned<SubjectWire>,
        vendored: Spanned<String>,
        manifests: Strings,
        about: Spanned<AboutWire>,
        import: Spanned<bool>,
        output: Spanned<String>,
        stage: Spanned<String>,
        baseline: Spanned<String>,
        evidence: Spanned<IndexMap<Spanned<String>, Spanned<String>>>,
        require: Spanned<IndexMap<Spanned<String>, Spanned<toml::Value>>>,
        strategy: Spanned<String>,
        traffic: Spanned<Box<TrafficWire>>,
        health: Spanned<Box<HealthWire>>,
        canary: Spanned<Box<CanaryWire>>,
        analysis: Spanned<Box<AnalysisWire>>,
        rollback_window: Spanned<String>,
        rehearse: Spanned<bool>,
        verify: Spanned<Box<VerifyWire>>,
        start: Strings,
        tools: Strings,
        executor: Spanned<String>,
        warm: Strings,
        sbom: Spanned<String>,
        db: Spanned<String>,
        vex: Strings,
        allow: Strings,
        env: IndexMap<Spanned<String>, Spanned<String>>,
        network: Spanned<bool>,
        timeout: Spanned<String>,
        retry: Spanned<RetryWire>,
        publish: Spanned<bool>,
        limits: Spanned<LimitsWire>,
        uses: Spanned<String>,
        with: Spanned<IndexMap<Spanned<String>, Spanned<toml::Value>>>,
    }
    lists { inputs, outputs, needs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_comes_back_as_it_was_read() {
        let text = "kind = \"exec\"\nrun = \"touch out/a\"\noutputs = [\"out/a\"]\nneeds = [\"b\"]\nenv = { A = \"1\" }\nuses = \"p/t@1\"\n";
        let stored: StoredStep = toml::from_str(text).expect("a step");
        assert_eq!(stored.0.len(), 6);
        assert_eq!(
            stored.uses().map(Spanned::get_ref).map(String::as_str),
            Some("p/t@1")
        );
        let wire = stored.into_wire();
        assert_eq!(
            wire.kind.as_ref().map(Spanned::get_ref).map(String::as_str),
            Some("exec")
        );
        assert_eq!(wire.outputs.len(), 1);
        assert_eq!(
            wire.outputs[0].span(),
            toml::from_str::<StepWire>(text).expect("a step").outputs[0].span()
        );
        assert_eq!(wire.needs[0].get_ref(), "b");
        assert!(wire.inputs.is_empty() && wire.flake.is_none());
        assert_eq!(wire.env.map(|env| env.len()), Some(1));
    }

    #[test]
    fn an_unknown_key_is_refused_as_before() {
        let error = toml::from_str::<StoredStep>("rnu = \"x\"\n").expect_err("unknown key");
        assert!(
            error.message().starts_with("unknown field `rnu`"),
            "{error}"
        );
    }
}
