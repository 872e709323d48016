//! For a step that did not reproduce although its inputs were the same: rebuild it in the
//! standard surroundings (does it differ even then? it is not deterministic), then with one
//! variation at a time (which ones make it differ?), as reprotest's `--auto-build` does.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

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
    /// It reproduces in the standard surroundings and differs when any of `varying` vary;
    /// `untried` are the variations the budget left no time for.
    Surroundings {
        varying: Vec<Aspect>,
        untried: Vec<Aspect>,
    },
    /// It reproduces with each variation alone: only their combination changes it.
    Combination,
    /// The explanation budget ran out before the rebuilds that would explain it
    /// (`--explain-budget`): `untried` are the variations not tried; `standard`, whether it
    /// was rebuilt in the standard surroundings (and reproduced there).
    Unexplained {
        budget: Duration,
        untried: Vec<Aspect>,
        standard: bool,
    },
}

impl Attribution {
    /// Not even the rebuild in the standard surroundings fitted the budget.
    fn unexplained(budget: Duration, untried: &[Aspect]) -> Self {
        Self::Unexplained {
            budget,
            untried: untried.to_vec(),
            standard: false,
        }
    }

    #[must_use]
    pub fn cause(&self) -> String {
        match self {
            Self::Nondeterministic => "same inputs and command, and it differs even when rebuilt \
                                       in the standard surroundings: the step is not \
                                       deterministic (it reads the time, randomness or \
                                       something else that changes)"
                .to_owned(),
            Self::Surroundings { varying, untried } => {
                let mut cause = format!(
                    "same inputs and command; it reproduces in the standard surroundings and \
                     differs when {} varies",
                    names(varying, " or ")
                );
                if !untried.is_empty() {
                    let _ = write!(
                        cause,
                        " (not tried within the explanation budget: {})",
                        names(untried, ", ")
                    );
                }
                cause
            }
            Self::Combination => "same inputs and command; it reproduces in the standard \
                                  surroundings and with each variation alone, and differs only \
                                  when they vary together"
                .to_owned(),
            Self::Unexplained {
                budget,
                untried,
                standard,
            } => format!(
                "same inputs and command; not explained: the explanation budget of {} ran out \
                 before its rebuilds did{} (`--explain-budget` gives more, `--step` fewer steps)",
                crate::duration::humanize(*budget),
                if *standard {
                    format!(
                        "; it reproduces in the standard surroundings, not tried: {}",
                        names(untried, ", ")
                    )
                } else {
                    String::new()
                }
            ),
        }
    }
}

fn names(aspects: &[Aspect], separator: &str) -> String {
    let names: Vec<&str> = aspects.iter().map(|aspect| aspect.name()).collect();
    names.join(separator)
}

/// The order variations are tried in when the budget may not reach them all: those that most
/// often reach a build's output first (paths, then file order, then identity and clocks).
const LIKELY_FIRST: [Aspect; 10] = [
    Aspect::BuildPath,
    Aspect::Tmpdir,
    Aspect::Home,
    Aspect::FileOrder,
    Aspect::User,
    Aspect::Umask,
    Aspect::Clock,
    Aspect::Locale,
    Aspect::Timezone,
    Aspect::Hostname,
];

/// What explaining took: the Statement reports it.
#[derive(Clone, Debug, Default)]
pub struct Spent {
    pub budget: Duration,
    pub spent: Duration,
    /// Rebuilds made to explain.
    pub rebuilds: usize,
    /// Variations no rebuild tried: the next rebuild would not have fit in the budget.
    pub untried: Vec<Aspect>,
}

/// Each step's attribution, what it took, and the signal that interrupted it, if one did.
pub struct Attributed {
    pub found: BTreeMap<String, Attribution>,
    pub spent: Spent,
    pub interrupted: Option<i32>,
}

/// Attributes each gantry-run step whose inputs were the same but whose outputs differed.
/// Nix steps are left out: Nix ran both builds, in surroundings gantry does not set.
///
/// A rebuild is started only when it is expected to end within `budget`: the first is
/// expected to take `first_estimate` (the main rebuild's time), each later one as long as the
/// longest of them so far. Builds that take minutes so try the likeliest variations and leave the
/// rest untried, which the Statement says, rather than running past the budget.
pub fn attribute(
    rebuilder: &Rebuilder<'_>,
    checked: &AttestedRun,
    comparisons: &[StepComparison],
    variation: &Variation,
    reporter: &Reporter,
    budget: Duration,
    first_estimate: Duration,
) -> Result<Attributed> {
    let started = Instant::now();
    let mut attributed = Attributed {
        found: BTreeMap::new(),
        spent: Spent {
            budget,
            ..Spent::default()
        },
        interrupted: None,
    };
    let candidates = same_input_differences(comparisons);
    if candidates.is_empty() {
        return Ok(attributed);
    }
    let varied: Vec<Aspect> = (LIKELY_FIRST.iter())
        .copied()
        .filter(|aspect| variation.aspects.contains(aspect))
        .collect();
    if varied.is_empty() {
        // Rebuilt in the standard surroundings already.
        for step in candidates {
            attributed.found.insert(step, Attribution::Nondeterministic);
        }
        return Ok(attributed);
    }
    // The next rebuild is expected to take as long as the longest of them so far: they
    // rebuild only the steps that differed (and what they depend on), often much less than
    // the main rebuild, which is the estimate of the first.
    let mut longest = Duration::ZERO;
    let fits = |longest: Duration| {
        let estimate = if longest.is_zero() {
            first_estimate
        } else {
            longest
        };
        started.elapsed() + estimate <= budget
    };
    if !fits(longest) {
        attributed.found = (candidates.into_iter())
            .map(|step| (step, Attribution::unexplained(budget, &varied)))
            .collect();
        attributed.spent.untried = varied;
        return Ok(attributed);
    }
    note(
        reporter,
        format!(
            "explaining {}: rebuilding in the standard surroundings, then with one variation at \
             a time (budget {})",
            list(&candidates),
            crate::duration::humanize(budget)
        ),
    );
    let timed = |variation: &Variation, only: &BTreeSet<String>, longest: &mut Duration| {
        let began = Instant::now();
        let result = differing(rebuilder, checked, variation, only);
        *longest = (*longest).max(began.elapsed());
        result
    };
    attributed.spent.rebuilds += 1;
    let always = match timed(&Variation::none(), &candidates, &mut longest)? {
        Ok(steps) => steps,
        Err(signal) => {
            attributed.interrupted = Some(signal);
            return Ok(attributed);
        }
    };
    let sensitive: BTreeSet<String> = candidates.difference(&always).cloned().collect();
    let mut culprits: BTreeMap<String, Vec<Aspect>> = BTreeMap::new();
    let mut untried = Vec::new();
    for (number, &aspect) in varied.iter().enumerate() {
        if sensitive.is_empty() {
            break;
        }
        if !fits(longest) {
            untried = varied[number..].to_vec();
            break;
        }
        attributed.spent.rebuilds += 1;
        match timed(
            &Variation::of(&BTreeSet::from([aspect])),
            &sensitive,
            &mut longest,
        )? {
            Ok(steps) => {
                for step in steps {
                    culprits.entry(step).or_default().push(aspect);
                }
            }
            Err(signal) => {
                attributed.interrupted = Some(signal);
                return Ok(attributed);
            }
        }
    }
    for step in always {
        attributed.found.insert(step, Attribution::Nondeterministic);
    }
    for step in sensitive {
        let attribution = concluded(culprits.remove(&step), &untried, budget);
        attributed.found.insert(step, attribution);
    }
    attributed.spent.spent = started.elapsed();
    attributed.spent.untried = untried;
    Ok(attributed)
}

/// A step that reproduces in the standard surroundings, from the variations found to change
/// it alone and those not tried.
fn concluded(varying: Option<Vec<Aspect>>, untried: &[Aspect], budget: Duration) -> Attribution {
    match varying {
        Some(mut varying) => {
            varying.sort();
            Attribution::Surroundings {
                varying,
                untried: untried.to_vec(),
            }
        }
        None if untried.is_empty() => Attribution::Combination,
        None => Attribution::Unexplained {
            budget,
            untried: untried.to_vec(),
            standard: true,
        },
    }
}

/// The steps of `only` that still differ when rebuilt with `variation`; Err(signal) when
/// interrupted.
fn differing(
    rebuilder: &Rebuilder<'_>,
    checked: &AttestedRun,
    variation: &Variation,
    only: &BTreeSet<String>,
) -> Result<std::result::Result<BTreeSet<String>, i32>> {
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
    fn every_variation_is_in_the_order_they_are_tried() {
        let mut ordered = LIKELY_FIRST.to_vec();
        ordered.sort();
        assert_eq!(ordered, Aspect::ALL);
    }

    #[test]
    fn causes_name_the_variations() {
        let cause = Attribution::Surroundings {
            varying: vec![Aspect::Umask, Aspect::FileOrder],
            untried: Vec::new(),
        }
        .cause();
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
