//! The mutation check of the gates: each case perturbs one gate's evidence (a test added,
//! removed, failing, timing out or killed by a resource limit; coverage, findings, metrics or
//! benchmark times moved; a drill slower, timed out or killed) or one of its thresholds
//! (relaxed, tightened), then compares two verdicts: the one a model of the perturbation
//! predicts from the unperturbed reading, and the one the gate's real reader gives on the
//! perturbed report. A perturbation that should flip the verdict and does not (or flips
//! what it should not) is a hole in the gate. Seeded: case `i` draws from its own stream,
//! so cases run in parallel and the same seed gives the same report.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::drill::Timing;
use super::{Bound, EvidenceKind, Reading, Threshold, judge};

/// A gate's evidence as the check perturbs it.
#[derive(Clone, Debug)]
pub enum Source {
    /// A report's text (JUnit, LCOV, SARIF, a metrics file).
    Text(String),
    /// Criterion's files (path under the folder, text) and the baseline's name.
    Criterion {
        files: Vec<(String, String)>,
        baseline: String,
    },
    /// A drill's last measurement.
    Drill(Timing),
}

/// One gate to perturb.
#[derive(Clone, Debug)]
pub struct Gate {
    pub step: String,
    pub kind: EvidenceKind,
    pub source: Source,
    pub thresholds: Vec<Threshold>,
}

/// What a case did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mutation {
    ThresholdRelaxed,
    ThresholdTightened,
    MetricNoise,
    TestAdded,
    TestRemoved,
    FailureInjected,
    Timeout,
    ResourceLimit,
}

impl Mutation {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ThresholdRelaxed => "threshold-relaxed",
            Self::ThresholdTightened => "threshold-tightened",
            Self::MetricNoise => "metric-noise",
            Self::TestAdded => "test-added",
            Self::TestRemoved => "test-removed",
            Self::FailureInjected => "failure-injected",
            Self::Timeout => "timeout",
            Self::ResourceLimit => "resource-limit",
        }
    }

    fn for_kind(kind: EvidenceKind) -> &'static [Self] {
        use Mutation::{
            FailureInjected, MetricNoise, ResourceLimit, TestAdded, TestRemoved, ThresholdRelaxed,
            ThresholdTightened, Timeout,
        };
        match kind {
            EvidenceKind::Junit => &[
                ThresholdRelaxed,
                ThresholdTightened,
                TestAdded,
                TestRemoved,
                FailureInjected,
                Timeout,
                ResourceLimit,
            ],
            EvidenceKind::Drill => &[
                ThresholdRelaxed,
                ThresholdTightened,
                MetricNoise,
                Timeout,
                ResourceLimit,
            ],
            EvidenceKind::Lcov
            | EvidenceKind::Sarif
            | EvidenceKind::Metrics
            | EvidenceKind::Criterion => &[ThresholdRelaxed, ThresholdTightened, MetricNoise],
            // Cobertura's totals are attributes of its root, and a scan's statement and a
            // run's usage are signed (changing them would forge them): only thresholds move.
            EvidenceKind::Cobertura | EvidenceKind::Vulns | EvidenceKind::Usage => {
                &[ThresholdRelaxed, ThresholdTightened]
            }
        }
    }
}

/// One case's outcome.
#[derive(Clone, Debug, Serialize)]
pub struct Case {
    pub index: usize,
    pub gate: String,
    pub mutation: Mutation,
    pub detail: String,
    /// The gate's verdict before, predicted after, and given after.
    pub before: bool,
    pub expected: bool,
    pub actual: bool,
}

impl Case {
    /// The perturbation should flip the verdict.
    #[must_use]
    pub fn should_flip(&self) -> bool {
        self.expected != self.before
    }

    /// The gate did not answer as the model says it must.
    #[must_use]
    pub fn hole(&self) -> bool {
        self.actual != self.expected
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GateScore {
    pub cases: usize,
    /// Cases that should flip the verdict, and those that did.
    pub should_flip: usize,
    pub caught: usize,
    /// Which mutations it caught and missed, by name.
    pub caught_by: BTreeMap<String, usize>,
    pub missed_by: BTreeMap<String, usize>,
    /// `caught / should_flip`; `None` when nothing should have flipped it.
    pub score: Option<f64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub seed: u64,
    pub cases: usize,
    pub gates: BTreeMap<String, GateScore>,
    /// Overall `caught / should_flip`.
    pub score: Option<f64>,
    /// Cases where the gate answered otherwise than it must: the check fails.
    pub holes: Vec<Case>,
    /// Gates not perturbed, with why (no evidence on disk, ...).
    pub skipped: Vec<String>,
}

/// Reads perturbed evidence into a reading: the real readers, or a test's.
pub type Reader<'a> = dyn Fn(&Gate, &Source) -> Result<Reading, String> + Sync + 'a;

/// The gates' own readers.
pub fn read(gate: &Gate, source: &Source) -> Result<Reading, String> {
    let metrics: Vec<&str> = gate.thresholds.iter().map(|t| t.metric.as_str()).collect();
    match source {
        Source::Text(text) => gate.kind.read(text, &metrics),
        Source::Criterion { files, baseline } => {
            let files: Vec<(&str, &str)> = (files.iter())
                .map(|(path, text)| (path.as_str(), text.as_str()))
                .collect();
            super::criterion::read(&files, baseline).map(|found| super::criterion::measure(&found))
        }
        Source::Drill(timing) => Ok(super::drill::measure(*timing)),
    }
}

/// Runs `cases` cases over `gates` (each case picks its gate and mutation from its stream).
#[must_use]
pub fn run(
    gates: &[Gate],
    seed: u64,
    cases: usize,
    reader: &Reader<'_>,
    mut skipped: Vec<String>,
) -> Report {
    let baselines: Vec<Option<Reading>> = gates
        .iter()
        .map(|gate| reader(gate, &gate.source).ok())
        .collect();
    skipped.extend(
        (gates.iter().zip(&baselines))
            .filter(|(_, baseline)| baseline.is_none())
            .map(|(gate, _)| format!("{}: its evidence cannot be read", gate.step)),
    );
    let usable: Vec<usize> = (0..gates.len())
        .filter(|&index| baselines[index].is_some())
        .collect();
    let indices: Vec<usize> = (0..cases).collect();
    let results = crate::parallel::map(&indices, |&index| {
        let mut rng = Stream::new(seed, index as u64);
        let chosen = *rng.pick(&usable)?;
        let baseline = baselines[chosen].as_ref()?;
        one(index, &gates[chosen], baseline, &mut rng, reader)
    });
    let done: Vec<Case> = results.into_iter().flatten().collect();
    if usable.is_empty() {
        skipped.push("no gate could be perturbed".to_owned());
    }
    summarize(seed, &done, skipped)
}

fn summarize(seed: u64, done: &[Case], skipped: Vec<String>) -> Report {
    let mut scores: BTreeMap<String, GateScore> = BTreeMap::new();
    for case in done {
        let score = scores.entry(case.gate.clone()).or_default();
        score.cases += 1;
        if case.should_flip() {
            score.should_flip += 1;
            let name = case.mutation.name().to_owned();
            if case.actual == case.expected {
                score.caught += 1;
                *score.caught_by.entry(name).or_default() += 1;
            } else {
                *score.missed_by.entry(name).or_default() += 1;
            }
        }
    }
    let ratio = |caught: usize, total: usize| {
        #[expect(clippy::cast_precision_loss)]
        (total > 0).then(|| caught as f64 / total as f64)
    };
    for score in scores.values_mut() {
        score.score = ratio(score.caught, score.should_flip);
    }
    let (caught, total) = scores.values().fold((0, 0), |(caught, total), score| {
        (caught + score.caught, total + score.should_flip)
    });
    Report {
        seed,
        cases: done.len(),
        score: ratio(caught, total),
        gates: scores,
        holes: done.iter().filter(|case| case.hole()).cloned().collect(),
        skipped,
    }
}

/// One case: a mutation of `gate`, the model's verdict and the reader's.
fn one(
    index: usize,
    gate: &Gate,
    baseline: &Reading,
    rng: &mut Stream,
    reader: &Reader<'_>,
) -> Option<Case> {
    let before = passes(baseline, &gate.thresholds);
    let mutation = *rng.pick(Mutation::for_kind(gate.kind))?;
    let mut thresholds = gate.thresholds.clone();
    let (source, model, detail) = match mutation {
        Mutation::ThresholdRelaxed | Mutation::ThresholdTightened => {
            let at = rng.below(thresholds.len())?;
            let threshold = &mut thresholds[at];
            let measured = baseline.values.get(&threshold.metric).copied();
            let scale = threshold
                .limit
                .abs()
                .max(measured.map_or(0.0, f64::abs))
                .max(1e-3);
            let step = rng.fraction(0.01, 0.5) * scale;
            let looser = matches!(
                (mutation, threshold.bound),
                (Mutation::ThresholdRelaxed, Bound::Max)
                    | (Mutation::ThresholdTightened, Bound::Min)
            );
            let old = threshold.limit;
            threshold.limit += if looser { step } else { -step };
            let detail = format!(
                "{} {} {} -> {}",
                threshold.metric,
                threshold.bound.symbol(),
                super::number(old),
                super::number(threshold.limit)
            );
            (gate.source.clone(), baseline.values.clone(), detail)
        }
        _ => evidence(gate, baseline, mutation, rng)?,
    };
    let expected = passes(
        &Reading {
            values: model,
            failed: Vec::new(),
        },
        &thresholds,
    );
    let actual = reader(gate, &source).is_ok_and(|reading| passes(&reading, &thresholds));
    Some(Case {
        index,
        gate: gate.step.clone(),
        mutation,
        detail,
        before,
        expected,
        actual,
    })
}

fn passes(reading: &Reading, thresholds: &[Threshold]) -> bool {
    judge(reading, thresholds)
        .iter()
        .all(|verdict| verdict.passed)
}

type Perturbed = (Source, BTreeMap<String, f64>, String);

/// Perturbs the evidence itself, and models what its reading becomes.
fn evidence(
    gate: &Gate,
    baseline: &Reading,
    mutation: Mutation,
    rng: &mut Stream,
) -> Option<Perturbed> {
    let mut model = baseline.values.clone();
    match (&gate.source, gate.kind) {
        (Source::Text(text), EvidenceKind::Junit) => junit(text, mutation, &mut model, rng)
            .map(|(text, detail)| (Source::Text(text), model, detail)),
        (Source::Text(text), EvidenceKind::Lcov) => {
            let lines = 1 + rng.below(50)?;
            let covered = if rng.below(2)? == 0 { 0 } else { lines };
            let mut text = text.clone();
            text.push_str("\nSF:gantry-perturb.c\n");
            for line in 1..=lines {
                let _ = writeln!(text, "DA:{line},{}", usize::from(covered > 0));
            }
            let _ = write!(text, "LF:{lines}\nLH:{covered}\nend_of_record\n");
            let total = model.get("lines").copied().unwrap_or(0.0) + count(lines);
            let hit = model.get("lines_covered").copied().unwrap_or(0.0) + count(covered);
            model.insert("lines".into(), total);
            model.insert("lines_covered".into(), hit);
            model.insert("line_coverage".into(), hit / total);
            Some((
                Source::Text(text),
                model,
                format!("{lines} lines, {covered} covered, added"),
            ))
        }
        (Source::Text(text), EvidenceKind::Sarif) => {
            let mut document: serde_json::Value = serde_json::from_str(text).ok()?;
            let level = *rng.pick(&["error", "warning", "note"])?;
            document
                .pointer_mut("/runs/0/results")?
                .as_array_mut()?
                .push(serde_json::json!({
                    "ruleId": "gantry-perturb",
                    "level": level,
                    "message": { "text": "injected by gantry gauntlet perturb" },
                }));
            let plural = format!("{level}s");
            for name in [plural.as_str(), "findings"] {
                *model.entry(name.to_owned()).or_insert(0.0) += 1.0;
            }
            Some((
                Source::Text(document.to_string()),
                model,
                format!("a finding of level {level} added"),
            ))
        }
        (Source::Text(text), EvidenceKind::Metrics) => {
            let mut document: serde_json::Value = serde_json::from_str(text).ok()?;
            let threshold = rng.pick(&gate.thresholds)?;
            let factor = noise(rng);
            let slot = document.pointer_mut(&threshold.metric)?;
            let value = slot.as_f64()? * factor;
            *slot = serde_json::Value::from(value);
            model.insert(threshold.metric.clone(), value);
            Some((
                Source::Text(document.to_string()),
                model,
                format!("{} x{factor:.3}", threshold.metric),
            ))
        }
        (
            Source::Criterion {
                files,
                baseline: name,
            },
            EvidenceKind::Criterion,
        ) => criterion(files, name, &mut model, rng).map(|(files, detail)| {
            (
                Source::Criterion {
                    files,
                    baseline: name.clone(),
                },
                model,
                detail,
            )
        }),
        (Source::Drill(timing), EvidenceKind::Drill) => {
            let mut timing = *timing;
            let detail = match mutation {
                Mutation::Timeout => {
                    timing.exit_code = None;
                    model.remove("exit_code");
                    "timed out".to_owned()
                }
                Mutation::ResourceLimit => {
                    timing.exit_code = Some(137);
                    model.insert("exit_code".into(), 137.0);
                    "killed by a memory limit (exit 137)".to_owned()
                }
                _ => {
                    let factor = noise(rng);
                    timing.seconds *= factor;
                    format!("x{factor:.3} slower")
                }
            };
            model.insert("seconds".into(), timing.seconds);
            Some((Source::Drill(timing), model, detail))
        }
        _ => None,
    }
}

/// A factor of 0.5 to 2, as often below 1 as above.
fn noise(rng: &mut Stream) -> f64 {
    let up = rng.fraction(1.0, 2.0);
    if rng.below(2) == Some(0) {
        up
    } else {
        1.0 / up
    }
}

#[expect(clippy::cast_precision_loss)]
fn count(value: usize) -> f64 {
    value as f64
}

/// A test case added (passing, failing, erroring) or a passing one removed, in the XML.
fn junit(
    text: &str,
    mutation: Mutation,
    model: &mut BTreeMap<String, f64>,
    rng: &mut Stream,
) -> Option<(String, String)> {
    let mut add = |name: &str, delta: f64| *model.entry(name.to_owned()).or_insert(0.0) += delta;
    let (text, detail) = if mutation == Mutation::TestRemoved {
        let document = roxmltree::Document::parse(text).ok()?;
        let passing: Vec<roxmltree::Node> = (document.descendants())
            .filter(|node| {
                node.has_tag_name("testcase") && !node.children().any(|child| child.is_element())
            })
            .collect();
        let node = rng.pick(&passing)?;
        let range = node.range();
        add("tests", -1.0);
        add("passed", -1.0);
        let name = node.attribute("name").unwrap_or("?").to_owned();
        (
            format!("{}{}", &text[..range.start], &text[range.end..]),
            format!("passing test `{name}` removed"),
        )
    } else {
        let (inner, detail) = match mutation {
            Mutation::FailureInjected => {
                add("failures", 1.0);
                (
                    "<failure message=\"injected by gantry gauntlet perturb\"/>",
                    "a failing test added",
                )
            }
            Mutation::Timeout => {
                add("errors", 1.0);
                (
                    "<error message=\"timed out after 60 s\"/>",
                    "a test timing out added",
                )
            }
            Mutation::ResourceLimit => {
                add("errors", 1.0);
                (
                    "<error message=\"killed: memory limit exceeded\"/>",
                    "a test killed by a memory limit added",
                )
            }
            _ => {
                add("passed", 1.0);
                ("", "a passing test added")
            }
        };
        add("tests", 1.0);
        let at = text.rfind("</testsuite>")?;
        (
            format!(
                "{}<testcase classname=\"gantry.perturb\" name=\"case\" time=\"0.001\">{inner}</testcase>{}",
                &text[..at],
                &text[at..]
            ),
            detail.to_owned(),
        )
    };
    let tests = model.get("tests").copied().unwrap_or(0.0);
    let skipped = model.get("skipped").copied().unwrap_or(0.0);
    let passed = model.get("passed").copied().unwrap_or(0.0);
    if tests - skipped > 0.0 {
        model.insert("pass_rate".into(), passed / (tests - skipped));
    } else {
        model.remove("pass_rate");
    }
    Some((text, detail))
}

/// One benchmark's new mean moved by a factor.
fn criterion(
    files: &[(String, String)],
    baseline: &str,
    model: &mut BTreeMap<String, f64>,
    rng: &mut Stream,
) -> Option<(Vec<(String, String)>, String)> {
    let borrowed: Vec<(&str, &str)> = (files.iter())
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    let found = super::criterion::read(&borrowed, baseline).ok()?;
    let target = rng.pick(&found.compared)?.clone();
    let factor = noise(rng);
    // A benchmark at the folder's root is named `.`.
    let path = if target.benchmark == "." {
        "new/estimates.json".to_owned()
    } else {
        format!("{}/new/estimates.json", target.benchmark)
    };
    let mut changed = files.to_vec();
    let (_, text) = changed.iter_mut().find(|(p, _)| *p == path)?;
    let mut document: serde_json::Value = serde_json::from_str(text).ok()?;
    let slot = document.pointer_mut("/mean/point_estimate")?;
    let new = slot.as_f64()? * factor;
    *slot = serde_json::Value::from(new);
    *text = document.to_string();
    let worst = (found.compared.iter())
        .map(|comparison| {
            if comparison.benchmark == target.benchmark {
                new / comparison.baseline - 1.0
            } else {
                comparison.change()
            }
        })
        .fold(f64::NEG_INFINITY, f64::max);
    model.insert("regression".into(), worst);
    Some((changed, format!("{} x{factor:.3}", target.benchmark)))
}

/// `SplitMix64` over (seed, case): each case its own reproducible stream.
struct Stream(u64);

impl Stream {
    fn new(seed: u64, case: u64) -> Self {
        let mut stream = Self(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        stream.next();
        stream
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: usize) -> Option<usize> {
        (bound > 0).then(|| usize::try_from(self.next() % bound as u64).unwrap_or(0))
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len())?)
    }

    /// Uniform in `[low, high)`.
    #[expect(clippy::cast_precision_loss)]
    fn fraction(&mut self, low: f64, high: f64) -> f64 {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        low + unit * (high - low)
    }
}

impl Report {
    /// The score by gate, the holes, what was skipped.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let score =
            |score: Option<f64>| score.map_or_else(|| "-".to_owned(), |s| format!("{s:.2}"));
        let (caught, total) = self.gates.values().fold((0, 0), |(c, t), gate| {
            (c + gate.caught, t + gate.should_flip)
        });
        let _ = writeln!(
            out,
            "{} cases (seed {}): mutation score {} ({caught} of {total} verdict flips caught)",
            self.cases,
            self.seed,
            score(self.score)
        );
        let width = self.gates.keys().map(String::len).max().unwrap_or(0);
        for (name, gate) in &self.gates {
            let caught: Vec<String> = (gate.caught_by.iter())
                .map(|(mutation, count)| format!("{mutation} {count}"))
                .collect();
            let _ = writeln!(
                out,
                "  {name:<width$}  {:>4} cases  {:>4} should flip  {:>4} caught  score {}{}",
                gate.cases,
                gate.should_flip,
                gate.caught,
                score(gate.score),
                if caught.is_empty() {
                    "  (no perturbation flipped it: are its thresholds too loose?)".to_owned()
                } else {
                    format!("  by {}", caught.join(", "))
                }
            );
        }
        for case in &self.holes {
            let verdict = |pass: bool| if pass { "pass" } else { "fail" };
            let _ = writeln!(
                out,
                "HOLE case {} on `{}`, {}: {}: should {}, the gate said {}",
                case.index,
                case.gate,
                case.mutation.name(),
                case.detail,
                verdict(case.expected),
                verdict(case.actual)
            );
        }
        for line in &self.skipped {
            let _ = writeln!(out, "skipped {line}");
        }
        let _ = writeln!(
            out,
            "{}",
            if self.holes.is_empty() && self.cases > 0 {
                "PASSED: every gate answered every perturbation as it must".to_owned()
            } else if self.cases == 0 {
                "FAILED: nothing was perturbed".to_owned()
            } else {
                format!(
                    "FAILED: {} perturbations not answered as they must be",
                    self.holes.len()
                )
            }
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JUNIT: &str = r#"<testsuites><testsuite name="s"><testcase name="a"/><testcase name="b"/><testcase name="c"/></testsuite></testsuites>"#;

    fn gates() -> Vec<Gate> {
        vec![Gate {
            step: "tests".into(),
            kind: EvidenceKind::Junit,
            source: Source::Text(JUNIT.into()),
            thresholds: vec![
                Threshold {
                    metric: "failures".into(),
                    bound: Bound::Max,
                    limit: 0.0,
                },
                Threshold {
                    metric: "tests".into(),
                    bound: Bound::Min,
                    limit: 3.0,
                },
            ],
        }]
    }

    #[test]
    fn the_real_reader_answers_every_perturbation_and_a_seed_repeats() {
        let first = run(&gates(), 7, 300, &read, Vec::new());
        assert!(first.holes.is_empty(), "{}", first.render());
        assert_eq!(first.cases, 300);
        let tests = &first.gates["tests"];
        assert!(tests.should_flip > 0 && tests.caught == tests.should_flip);
        assert!(tests.caught_by.contains_key("failure-injected"));
        assert!(tests.caught_by.contains_key("test-removed"));
        assert_eq!(
            first.render(),
            run(&gates(), 7, 300, &read, Vec::new()).render()
        );
        assert_ne!(
            first.render(),
            run(&gates(), 8, 300, &read, Vec::new()).render()
        );
    }

    #[test]
    fn a_reader_blind_to_failures_is_a_hole() {
        // A test double: counts cases but never failures.
        let blind = |gate: &Gate, source: &Source| {
            read(gate, source).map(|mut reading| {
                reading.values.insert("failures".into(), 0.0);
                reading
            })
        };
        let report = run(&gates(), 7, 300, &blind, Vec::new());
        assert!(
            report
                .holes
                .iter()
                .any(|case| case.mutation == Mutation::FailureInjected),
            "{}",
            report.render()
        );
        assert!(report.render().contains("FAILED"));
    }
}
