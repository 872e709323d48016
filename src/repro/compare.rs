//! Attested against rebuilt, step by step: which outputs reproduced, and for those that did
//! not, the evidence for why (inputs that differed, or none: the step is not deterministic).
//! Pure.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::repro::attested::{AttestedStep, Resource};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepComparison {
    pub step: String,
    /// The checked run attested this step.
    pub attested: bool,
    /// The rebuild finished this step (it failed or was skipped otherwise).
    pub rebuilt: bool,
    pub outputs: Vec<OutputComparison>,
    /// Materials whose digest differs between the two (or that only one of them read).
    pub changed_inputs: Vec<ChangedInput>,
    /// A Nix step: Nix, not gantry, ran both builds.
    pub nix: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputComparison {
    pub name: String,
    pub attested: Option<Digest>,
    pub rebuilt: Option<Digest>,
    /// A Nix output that differed: where Nix kept the rebuilt copy (`<path>.check`).
    pub rebuilt_at: Option<String>,
    /// A Nix output Nix found to differ without keeping a copy: no rebuilt digest.
    pub differed_without_copy: bool,
}

impl OutputComparison {
    #[must_use]
    pub fn reproduced(&self) -> bool {
        self.attested.is_some() && self.attested == self.rebuilt
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangedInput {
    pub name: String,
    pub attested: Option<Digest>,
    pub rebuilt: Option<Digest>,
}

impl StepComparison {
    /// Both sides exist and every output matches; a step without outputs (a test, a lint)
    /// has nothing to compare and passes once it ran.
    #[must_use]
    pub fn reproduced(&self) -> bool {
        self.attested && self.rebuilt && self.outputs.iter().all(OutputComparison::reproduced)
    }
}

/// Compares one step's attestation in the checked run with the rebuild's.
#[must_use]
pub fn compare(
    step: &str,
    attested: Option<&AttestedStep>,
    rebuilt: Option<&AttestedStep>,
) -> StepComparison {
    fn by_name(resources: Option<&Vec<Resource>>) -> BTreeMap<String, &Resource> {
        resources
            .into_iter()
            .flatten()
            .map(|resource| (resource.name.clone(), resource))
            .collect()
    }
    let rebuilt_step = rebuilt;
    let attested_outputs = by_name(attested.map(|step| &step.subjects));
    let rebuilt_outputs = by_name(rebuilt.map(|step| &step.subjects));
    let mut names: Vec<&String> = attested_outputs.keys().collect();
    names.extend(
        rebuilt_outputs
            .keys()
            .filter(|name| !attested_outputs.contains_key(*name)),
    );
    let outputs = names
        .into_iter()
        .map(|name| {
            let rebuilt = rebuilt_outputs.get(name);
            OutputComparison {
                name: name.clone(),
                attested: attested_outputs.get(name).map(|resource| resource.digest),
                rebuilt: rebuilt.map(|resource| resource.digest),
                rebuilt_at: rebuilt.and_then(|resource| resource.rebuilt_at.clone()),
                differed_without_copy: rebuilt_step
                    .is_some_and(|step| step.differed_without_copy.contains(name)),
            }
        })
        .collect();
    let mut changed_inputs = Vec::new();
    if let (Some(attested), Some(rebuilt)) = (attested, rebuilt) {
        let before = by_name(Some(&attested.materials));
        let after = by_name(Some(&rebuilt.materials));
        for (name, resource) in &before {
            let now = after.get(name).map(|resource| resource.digest);
            if now != Some(resource.digest) {
                changed_inputs.push(ChangedInput {
                    name: name.clone(),
                    attested: Some(resource.digest),
                    rebuilt: now,
                });
            }
        }
        for (name, resource) in &after {
            if !before.contains_key(name) {
                changed_inputs.push(ChangedInput {
                    name: name.clone(),
                    attested: None,
                    rebuilt: Some(resource.digest),
                });
            }
        }
    }
    StepComparison {
        step: step.to_owned(),
        attested: attested.is_some(),
        rebuilt: rebuilt.is_some(),
        outputs,
        changed_inputs,
        nix: rebuilt
            .or(attested)
            .is_some_and(|step| step.command.first().is_some_and(|program| program == "nix")),
    }
}

/// Why a step did not reproduce, in a sentence.
#[must_use]
pub fn cause(comparison: &StepComparison, producers: &BTreeMap<String, (String, bool)>) -> String {
    if !comparison.attested {
        return "the checked run has no attestation of this step".to_owned();
    }
    if !comparison.rebuilt {
        return "the rebuild of this step failed or was skipped (see above)".to_owned();
    }
    if comparison.changed_inputs.is_empty() && comparison.nix {
        let checked_here = comparison
            .outputs
            .iter()
            .any(|output| output.rebuilt_at.is_some() || output.differed_without_copy);
        return if checked_here {
            "Nix built the same derivation twice and got different bytes: its builder is not \
             deterministic"
        } else {
            "Nix rebuilt this derivation identically to this machine's store, whose copy differs \
             from the attested one: the checked run was built elsewhere or by another builder"
        }
        .to_owned();
    }
    if comparison.changed_inputs.is_empty() {
        return "same inputs and command: the step's output depends on something else (the \
                time, randomness, or the varied surroundings)"
            .to_owned();
    }
    let mut parts: Vec<String> = comparison
        .changed_inputs
        .iter()
        .take(5)
        .map(|input| match producers.get(&input.name) {
            Some((step, false)) => format!("{} (from step `{step}`, not reproduced)", input.name),
            Some((step, true)) => format!("{} (from step `{step}`)", input.name),
            None if input.attested.is_none() => format!("{} (new)", input.name),
            None if input.rebuilt.is_none() => format!("{} (no longer read)", input.name),
            None => input.name.clone(),
        })
        .collect();
    if comparison.changed_inputs.len() > 5 {
        parts.push(format!("and {} more", comparison.changed_inputs.len() - 5));
    }
    format!("inputs differ: {}", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(name: &str, content: &str) -> Resource {
        Resource {
            name: name.to_owned(),
            digest: Digest::of_bytes(content.as_bytes()),
            rebuilt_at: None,
        }
    }

    fn step(subjects: &[(&str, &str)], materials: &[(&str, &str)]) -> AttestedStep {
        AttestedStep {
            subjects: subjects.iter().map(|(n, c)| resource(n, c)).collect(),
            materials: materials.iter().map(|(n, c)| resource(n, c)).collect(),
            envelope: Digest::of_bytes(b""),
            command: Vec::new(),
            name: String::new(),
            differed_without_copy: Vec::new(),
        }
    }

    #[test]
    fn identical_outputs_reproduce() {
        let a = step(&[("out/a", "1")], &[("src/a", "x")]);
        let comparison = compare("a", Some(&a), Some(&a.clone()));
        assert!(comparison.reproduced());
        assert!(comparison.changed_inputs.is_empty());
    }

    #[test]
    fn a_differing_output_with_the_same_inputs_is_the_step_itself() {
        let before = step(&[("out/t", "1"), ("out/same", "s")], &[("src/a", "x")]);
        let after = step(&[("out/t", "2"), ("out/same", "s")], &[("src/a", "x")]);
        let comparison = compare("t", Some(&before), Some(&after));
        assert!(!comparison.reproduced());
        let differing: Vec<&str> = comparison
            .outputs
            .iter()
            .filter(|output| !output.reproduced())
            .map(|output| output.name.as_str())
            .collect();
        assert_eq!(differing, ["out/t"]);
        assert!(cause(&comparison, &BTreeMap::new()).starts_with("same inputs"));
    }

    #[test]
    fn changed_inputs_name_their_producer() {
        let before = step(&[("out/p", "1")], &[("out/t", "1"), ("src/a", "x")]);
        let after = step(&[("out/p", "2")], &[("out/t", "2"), ("src/b", "y")]);
        let comparison = compare("p", Some(&before), Some(&after));
        let names: Vec<&str> = comparison
            .changed_inputs
            .iter()
            .map(|input| input.name.as_str())
            .collect();
        assert_eq!(names, ["out/t", "src/a", "src/b"]);
        let producers = BTreeMap::from([("out/t".to_owned(), ("t".to_owned(), false))]);
        assert_eq!(
            cause(&comparison, &producers),
            "inputs differ: out/t (from step `t`, not reproduced), src/a (no longer read), \
             src/b (new)"
        );
    }

    #[test]
    fn a_nix_difference_without_a_kept_copy_never_passes() {
        let mut before = step(&[("/nix/store/x-clock", "1")], &[("/nix/store/x.drv", "d")]);
        before.command = vec!["nix".to_owned()];
        let mut after = before.clone();
        after.subjects.clear();
        after.differed_without_copy = vec!["/nix/store/x-clock".to_owned()];
        let comparison = compare("clock", Some(&before), Some(&after));
        assert!(!comparison.reproduced());
        assert!(comparison.outputs[0].differed_without_copy);
        assert!(cause(&comparison, &BTreeMap::new()).starts_with("Nix built the same derivation"));
    }

    #[test]
    fn a_step_without_outputs_passes_once_both_sides_ran() {
        let empty = step(&[], &[("src/a", "x")]);
        assert!(compare("lint", Some(&empty), Some(&empty.clone())).reproduced());
        assert!(!compare("lint", Some(&empty), None).reproduced());
    }

    #[test]
    fn missing_sides_never_reproduce() {
        let a = step(&[("out/a", "1")], &[]);
        assert!(!compare("a", Some(&a), None).reproduced());
        assert!(!compare("a", None, Some(&a)).reproduced());
        let extra = compare(
            "a",
            Some(&a),
            Some(&step(&[("out/a", "1"), ("out/b", "2")], &[])),
        );
        assert!(
            !extra.reproduced(),
            "an output the checked run never attested"
        );
    }
}
