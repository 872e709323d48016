//! Criterion's saved estimates: each benchmark's `new/estimates.json` (the last run) against
//! `<baseline>/estimates.json` (`--save-baseline NAME`, or `base`, the run before). The
//! change is the one criterion prints: the ratio of the means, less one.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::Reading;

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

/// One benchmark measured on both sides, in nanoseconds.
#[derive(Clone, Debug, PartialEq)]
pub struct Comparison {
    /// Its folder under the evidence, like `parse/small`.
    pub benchmark: String,
    pub baseline: f64,
    pub new: f64,
}

impl Comparison {
    /// `0.05`: 5% slower than the baseline; negative: faster.
    #[must_use]
    pub fn change(&self) -> f64 {
        self.new / self.baseline - 1.0
    }
}

/// The benchmarks found, compared where both sides are there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Found {
    pub compared: Vec<Comparison>,
    /// Benchmarks with only a new or only a baseline estimate.
    pub unmatched: Vec<String>,
}

/// Reads `files` (path under the evidence folder, text): only `*/new/estimates.json` and
/// `*/<baseline>/estimates.json` count.
pub fn read(files: &[(&str, &str)], baseline: &str) -> Result<Found, String> {
    let mut sides: BTreeMap<&str, [Option<f64>; 2]> = BTreeMap::new();
    for (path, text) in files {
        let Some(rest) = path.strip_suffix("/estimates.json") else {
            continue;
        };
        let (benchmark, side) = rest.rsplit_once('/').unwrap_or(("", rest));
        let index = if side == "new" {
            0
        } else if side == baseline {
            1
        } else {
            continue;
        };
        let estimates: Estimates = serde_json::from_str(text)
            .map_err(|error| format!("`{path}` is not criterion's estimates: {error}"))?;
        let mean = estimates.mean.point_estimate;
        if !(mean.is_finite() && mean > 0.0) {
            return Err(format!("`{path}` has a mean of {mean}"));
        }
        sides.entry(benchmark).or_default()[index] = Some(mean);
    }
    if sides.is_empty() {
        return Err(format!(
            "no `new/estimates.json` or `{baseline}/estimates.json` in it (run `cargo bench -- --save-baseline {baseline}` first)"
        ));
    }
    let mut found = Found::default();
    for (benchmark, side) in sides {
        let name = if benchmark.is_empty() { "." } else { benchmark };
        match side {
            [Some(new), Some(baseline)] => found.compared.push(Comparison {
                benchmark: name.to_owned(),
                baseline,
                new,
            }),
            _ => found.unmatched.push(name.to_owned()),
        }
    }
    Ok(found)
}

/// `regression`: the largest change (fails, unmeasured, when nothing was compared);
/// `benchmarks`: how many were compared; `unmatched`: how many had one side only. The
/// names of the benchmarks slower than the baseline go in `failed`, slowest first.
#[must_use]
pub fn measure(found: &Found) -> Reading {
    let mut reading = Reading::default();
    reading.set("benchmarks", found.compared.len());
    reading.set("unmatched", found.unmatched.len());
    if let Some(worst) = found
        .compared
        .iter()
        .map(Comparison::change)
        .max_by(f64::total_cmp)
    {
        reading.values.insert("regression".to_owned(), worst);
    }
    let mut slower: Vec<&Comparison> = (found.compared.iter())
        .filter(|comparison| comparison.change() > 0.0)
        .collect();
    slower.sort_by(|a, b| b.change().total_cmp(&a.change()));
    reading.failed = slower
        .into_iter()
        .map(|comparison| {
            format!(
                "{} {:+.2}%",
                comparison.benchmark,
                comparison.change() * 100.0
            )
        })
        .collect();
    reading
}
