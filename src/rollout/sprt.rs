//! Wald's sequential probability ratio test on error counts: is the canary's error rate the
//! stable's (H0: p = p0), or worse by `delta` (H1: p = p0 + delta)? After each observation
//! the log-likelihood ratio of the canary's counts is compared with Wald's boundaries:
//!
//! ```text
//! LLR   = e * ln(p1 / p0) + (n - e) * ln((1 - p1) / (1 - p0))
//! upper = ln((1 - beta) / alpha)     LLR >= upper: reject H0, roll back
//! lower = ln(beta / (1 - alpha))     LLR <= lower: accept H0, promote
//! ```
//!
//! `alpha` bounds the chance of rolling back a canary as good as the stable, `beta` the
//! chance of promoting one that is `delta` worse. `p0` is the stable's observed error rate
//! over the same interval, but never below `baseline_error_rate`: a stable with no errors
//! would otherwise make every canary error infinitely damning.

use serde::{Deserialize, Serialize};

/// The test's parameters, as the pipeline gives them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sprt {
    pub alpha: f64,
    pub beta: f64,
    pub baseline_error_rate: f64,
    pub delta: f64,
}

/// Requests and the errors among them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
}

impl Counts {
    /// The counts since `earlier` (counters only grow; a restarted counter counts from zero).
    #[must_use]
    pub fn since(self, earlier: Counts) -> Counts {
        if self.requests < earlier.requests || self.errors < earlier.errors {
            return self;
        }
        Counts {
            requests: self.requests - earlier.requests,
            errors: self.errors - earlier.errors,
        }
    }

    #[must_use]
    #[expect(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn rate(self) -> Option<f64> {
        (self.requests > 0).then(|| self.errors as f64 / self.requests as f64)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The canary is as good as the stable (H0 accepted).
    Accept,
    /// The canary is worse (H0 rejected).
    Reject,
    /// Not enough evidence either way yet.
    Continue,
}

/// One evaluation of the test, with everything behind it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub llr: f64,
    pub lower: f64,
    pub upper: f64,
    pub p0: f64,
    pub p1: f64,
    pub outcome: Outcome,
}

impl Sprt {
    /// Wald's boundaries `(lower, upper)` on the log-likelihood ratio.
    #[must_use]
    pub fn bounds(&self) -> (f64, f64) {
        (
            (self.beta / (1.0 - self.alpha)).ln(),
            ((1.0 - self.beta) / self.alpha).ln(),
        )
    }

    /// Tests the canary's counts against the stable's over the same interval.
    #[must_use]
    #[expect(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn evaluate(&self, canary: Counts, stable: Counts) -> Evaluation {
        let p0 = stable
            .rate()
            .unwrap_or(0.0)
            .max(self.baseline_error_rate)
            .min(1.0 - self.delta - f64::EPSILON);
        let p1 = p0 + self.delta;
        let errors = canary.errors as f64;
        let successes = canary.requests.saturating_sub(canary.errors) as f64;
        let llr = errors * (p1 / p0).ln() + successes * ((1.0 - p1) / (1.0 - p0)).ln();
        let (lower, upper) = self.bounds();
        let outcome = if llr >= upper {
            Outcome::Reject
        } else if llr <= lower {
            Outcome::Accept
        } else {
            Outcome::Continue
        };
        Evaluation {
            llr,
            lower,
            upper,
            p0,
            p1,
            outcome,
        }
    }

    /// The parameters' own constraints, as a sentence for the one that fails.
    pub fn check(&self) -> Result<(), String> {
        let open = |value: f64| value > 0.0 && value < 1.0;
        if !open(self.alpha) || !open(self.beta) || self.alpha + self.beta >= 1.0 {
            return Err(format!(
                "`alpha` and `beta` are error probabilities in (0, 1) with alpha + beta < 1, not {} and {}",
                self.alpha, self.beta
            ));
        }
        if !open(self.baseline_error_rate) {
            return Err(format!(
                "`baseline_error_rate` is a rate in (0, 1), not {}",
                self.baseline_error_rate
            ));
        }
        if !(self.delta > 0.0 && self.baseline_error_rate + self.delta < 1.0) {
            return Err(format!(
                "`delta` is how much worse a bad canary is: positive, with baseline_error_rate + delta < 1, not {}",
                self.delta
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE: Sprt = Sprt {
        alpha: 0.05,
        beta: 0.05,
        baseline_error_rate: 0.01,
        delta: 0.03,
    };

    fn counts(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors }
    }

    #[test]
    fn wald_s_boundaries() {
        let (lower, upper) = ISSUE.bounds();
        assert!((upper - 19f64.ln()).abs() < 1e-12);
        assert!((lower + 19f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn a_clean_canary_is_accepted_after_enough_requests() {
        // Each success moves the LLR by ln(0.96 / 0.99) = -0.03077: 96 of them reach -ln 19.
        assert_eq!(
            ISSUE.evaluate(counts(95, 0), counts(1000, 0)).outcome,
            Outcome::Continue
        );
        let accepted = ISSUE.evaluate(counts(96, 0), counts(1000, 0));
        assert_eq!(accepted.outcome, Outcome::Accept);
        assert!((accepted.p0 - 0.01).abs() < 1e-12 && (accepted.p1 - 0.04).abs() < 1e-12);
    }

    #[test]
    fn errors_reject_the_canary() {
        // Each error moves it by ln 4 = 1.386: three errors in a few requests cross ln 19.
        assert_eq!(
            ISSUE.evaluate(counts(3, 3), counts(1000, 0)).outcome,
            Outcome::Reject
        );
        assert_eq!(
            ISSUE.evaluate(counts(2, 2), counts(1000, 0)).outcome,
            Outcome::Continue
        );
        // 5% errors over 400 requests: 20 * ln 4 + 380 * ln(0.96/0.99) = 16.0 > 2.94.
        assert_eq!(
            ISSUE.evaluate(counts(400, 20), counts(4000, 0)).outcome,
            Outcome::Reject
        );
    }

    #[test]
    fn the_stable_s_own_error_rate_raises_the_bar() {
        // 5% errors in the canary is no worse than a stable failing 5% too.
        let both_bad = ISSUE.evaluate(counts(400, 20), counts(4000, 200));
        assert!((both_bad.p0 - 0.05).abs() < 1e-12);
        assert_ne!(both_bad.outcome, Outcome::Reject);
    }

    #[test]
    fn counters_since_a_sample_survive_a_restart() {
        assert_eq!(counts(150, 3).since(counts(100, 1)), counts(50, 2));
        assert_eq!(counts(20, 0).since(counts(100, 1)), counts(20, 0));
        assert_eq!(counts(0, 0).rate(), None);
    }

    #[test]
    fn parameters_are_checked() {
        assert!(ISSUE.check().is_ok());
        for bad in [
            Sprt {
                alpha: 0.0,
                ..ISSUE
            },
            Sprt {
                alpha: 0.6,
                beta: 0.5,
                ..ISSUE
            },
            Sprt {
                baseline_error_rate: 1.0,
                ..ISSUE
            },
            Sprt {
                delta: 0.0,
                ..ISSUE
            },
            Sprt {
                delta: 0.99,
                ..ISSUE
            },
            Sprt {
                alpha: f64::NAN,
                ..ISSUE
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
