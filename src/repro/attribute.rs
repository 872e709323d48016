//! For a step that did not reproduce although its inputs were the same: rebuild it in the
//! standard surroundings (does it differ even then? it is not deterministic), then with one
//! variation at a time (which ones make it differ?), as reprotest's `--auto-build` does.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::exec::variation::{Aspect, Variation};
use crate::report::Reporter;
use crate::repro::attested::AttestedRun;
use crate::repro::compare::{self, StepComparison};
use crate::repro::note;
use crate::repro::rebuild::{Plan, Rebuilder, remove_folder, tmpfs_scratch};

/// What the output of a step with unchanged inputs depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// It differs even when rebuilt in the standard surroundings.
    Nondeterministic,
    /// It reproduces in the standard surroundings and differs when any of these vary.
    Surroundings(Vec<Aspect>),
    /// It reproduces with each variation alone: only their combination changes it.
    Combination,
    /// The explanation budget ran out before its rebuilds did (`--explain-budget`).
    Unexplained { budget: std::time::Duration },
}

impl Attribution {
    #[must_use]
    pub fn cause(&self) -> String {
        match self {
            Self::Nondeterministic => "same inputs and command, and it differs even when rebuilt \
                                       in the standard surroundings: the step is not \
                                       deterministic (it reads the time, randomness or \
                                       something else that changes)"
                .to_owned(),
            Self::Surroundings(aspects) => {
                let names: Vec<&str> = aspects.iter().map(|aspect| aspect.name()).collect();
                format!(
                    "same inputs and command; it reproduces in the standard surroundings and \
                     differs when {} varies",
                    names.join(" or ")
                )
            }
            Self::Combination => "same inputs and command; it reproduces in the standard \
                                  surroundings and with each variation alone, and differs only \
                                  when they vary together"
                .to_owned(),
            Self::Unexplained { budget } => format!(
                "same inputs and command; not explained: the explanation budget of {} ran out \
                 before its rebuilds did (`--explain-budget` gives more, `--step` fewer steps)",
                crate::duration::humanize(*budget)
            ),
        }
    }
}

/// Attributes each gantry-run step whose inputs were the same but whose outputs differed,
/// and returns the signal that interrupted it, if one did. Nix steps are left out: Nix ran
/// both builds, in surroundings gantry does not set.
pub fn attribute(
    rebuilder: &Rebuilder<'_>,
    checked: &AttestedRun,
    comparisons: &[StepComparison],
    variation: &Variation,
    reporter: &Reporter,
    budget: std::time::Duration,
) -> Result<(BTreeMap<String, Attribution>, Option<i32>)> {
    let started = std::time::Instant::now();
    let spent = || started.elapsed() >= budget;
    let candidates = same_input_differences(comparisons);
    let mut found = BTreeMap::new();
    if candidates.is_empty() {
        return Ok((found, None));
    }
    if variation.aspects.is_empty() {
        // Rebuilt in the standard surroundings already.
        for step in candidates {
            found.insert(step, Attribution::Nondeterministic);
        }
        return Ok((found, None));
    }
    if spent() {
        found.extend(unexplained(candidates, budget));
        return Ok((found, None));
    }
    note(
        reporter,
        format!(
            "explaining {}: rebuilding in the standard surroundings, then with one variation at \
             a time",
            list(&candidates)
        ),
    );
    // The steps of `only` that still differ with `variation`; Err(signal) when interrupted.
    let differing = |variation: &Variation,
                     only: &BTreeSet<String>|
     -> Result<std::result::Result<BTreeSet<String>, i32>> {
        let scratch = if variation.reverse_file_order {
            tmpfs_scratch()
        } else {
            None
        };
        let rebuilt = rebuilder.rebuild(Plan {
            variation,
            only: Some(only),
            attestations: rebuilder.private.join("attestations"),
            reporter: Reporter::quiet(),
            scratch: scratch.clone(),
            nix_check: false,
            bundles: false,
        });
        if let Some(folder) = scratch {
            remove_folder(&folder);
        }
        let rebuilt = rebuilt?;
        if let Some(signal) = rebuilt.summary.interrupted_by {
            return Ok(Err(signal));
        }
        Ok(Ok(only
            .iter()
            .filter(|step| {
                !compare::compare(step, checked.steps.get(*step), rebuilt.run.steps.get(*step))
                    .reproduced()
            })
            .cloned()
            .collect()))
    };
    let always = match differing(&Variation::none(), &candidates)? {
        Ok(steps) => steps,
        Err(signal) => return Ok((found, Some(signal))),
    };
    for step in &always {
        found.insert(step.clone(), Attribution::Nondeterministic);
    }
    let sensitive: BTreeSet<String> = candidates.difference(&always).cloned().collect();
    if sensitive.is_empty() {
        return Ok((found, None));
    }
    let mut culprits: BTreeMap<String, Vec<Aspect>> = BTreeMap::new();
    for &aspect in &variation.aspects {
        if spent() {
            found.extend(unexplained(sensitive, budget));
            return Ok((found, None));
        }
        match differing(&Variation::of(&BTreeSet::from([aspect])), &sensitive)? {
            Ok(steps) => {
                for step in steps {
                    culprits.entry(step).or_default().push(aspect);
                }
            }
            Err(signal) => return Ok((found, Some(signal))),
        }
    }
    for step in sensitive {
        let attribution = match culprits.remove(&step) {
            Some(aspects) => Attribution::Surroundings(aspects),
            None => Attribution::Combination,
        };
        found.insert(step, attribution);
    }
    Ok((found, None))
}

/// The gantry-run steps that differ although their inputs were the same.
fn same_input_differences(comparisons: &[StepComparison]) -> BTreeSet<String> {
    comparisons
        .iter()
        .filter(|comparison| {
            !comparison.reproduced()
                && comparison.attested
                && comparison.rebuilt
                && comparison.changed_inputs.is_empty()
                && !comparison.nix
        })
        .map(|comparison| comparison.step.clone())
        .collect()
}

fn unexplained(
    steps: BTreeSet<String>,
    budget: std::time::Duration,
) -> impl Iterator<Item = (String, Attribution)> {
    steps
        .into_iter()
        .map(move |step| (step, Attribution::Unexplained { budget }))
}

fn list(steps: &BTreeSet<String>) -> String {
    let names: Vec<String> = steps.iter().map(|step| format!("`{step}`")).collect();
    format!(
        "{} {}",
        if names.len() == 1 { "step" } else { "steps" },
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_name_the_variations() {
        let cause = Attribution::Surroundings(vec![Aspect::Umask, Aspect::FileOrder]).cause();
        assert!(
            cause.ends_with("differs when umask or file-order varies"),
            "{cause}"
        );
        assert!(
            Attribution::Nondeterministic
                .cause()
                .contains("not deterministic")
        );
    }
}
