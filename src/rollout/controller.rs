//! The rollout's decisions: health first, then weights step by step with the sequential test
//! at each, and a rollback to the weights it found as soon as anything is wrong. Effects come
//! in through [`Traffic`], a probe and a [`Clock`], so the decisions are tested without a
//! proxy or a clock; every decision is recorded for the signed attestation.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::http::HttpUrl;
use crate::rollout::plan::{RolloutStep, Strategy};
use crate::rollout::sprt::{Counts, Evaluation, Outcome};
use crate::rollout::traffic::{Pools, Traffic};

pub trait Clock {
    fn elapsed(&self) -> Duration;
    fn sleep(&self, duration: Duration);
}

/// The real clock, from the rollout's start.
pub struct Wall(pub Instant);

impl Clock for Wall {
    fn elapsed(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&self, duration: Duration) {
        std::thread::sleep(duration);
    }
}

pub type Probe<'a> = &'a dyn Fn(&HttpUrl, Duration) -> Result<u16, String>;

/// One decision, when it was taken (milliseconds from the start).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub at_ms: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// What the backend said before anything changed.
    Found {
        stable_weight: u32,
        canary_weight: u32,
        stable_up: bool,
        canary_up: bool,
    },
    /// The `start` command ran (its last output line, if any).
    Started {
        said: String,
    },
    Healthy {
        probes: u32,
    },
    Weights {
        stable: u32,
        canary: u32,
        why: String,
    },
    Analysis {
        weight: u32,
        canary: Counts,
        stable: Counts,
        #[serde(flatten)]
        evaluation: Evaluation,
        /// The canary's latency, where the metrics source gives one.
        #[serde(skip_serializing_if = "Option::is_none")]
        canary_latency_ms: Option<f64>,
    },
    Rehearsed {
        restored: bool,
    },
    Promoted,
    RolledBack {
        reason: String,
        stable: u32,
        canary: u32,
    },
}

impl Event {
    /// The decision as a progress line.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Found {
                stable_weight,
                canary_weight,
                stable_up,
                canary_up,
            } => {
                let state = |up: bool| if up { "up" } else { "down" };
                format!(
                    "found weights {stable_weight}/{canary_weight} (stable {}, canary {})",
                    state(*stable_up),
                    state(*canary_up)
                )
            }
            Self::Started { said } if said.is_empty() => "started the new pool".to_owned(),
            Self::Started { said } => format!("started the new pool: {said}"),
            Self::Healthy { probes } => format!("the new pool is healthy ({probes} probes)"),
            Self::Weights {
                stable,
                canary,
                why,
            } => format!("weights {stable}/{canary} ({why})"),
            Self::Analysis {
                weight,
                canary,
                stable,
                evaluation,
                canary_latency_ms,
            } => {
                let latency = canary_latency_ms
                    .map(|ms| format!(", latency {ms:.1} ms"))
                    .unwrap_or_default();
                format!(
                    "at {weight}%: canary {} errors in {} requests, stable {} in {}{latency}; LLR {:.3} in ({:.3}, {:.3}): {}",
                    canary.errors,
                    canary.requests,
                    stable.errors,
                    stable.requests,
                    evaluation.llr,
                    evaluation.lower,
                    evaluation.upper,
                    match evaluation.outcome {
                        Outcome::Accept => "accept",
                        Outcome::Reject => "reject",
                        Outcome::Continue => "continue",
                    }
                )
            }
            Self::Rehearsed { restored } => {
                if *restored {
                    "rehearsed a rollback: the weights came back".to_owned()
                } else {
                    "rehearsed a rollback: the weights did NOT come back".to_owned()
                }
            }
            Self::Promoted => "promoted".to_owned(),
            Self::RolledBack {
                reason,
                stable,
                canary,
            } => format!("rolling back to weights {stable}/{canary}: {reason}"),
        }
    }
}

/// How the rollout ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub promoted: bool,
    /// Why it rolled back (or could not).
    pub reason: Option<String>,
    /// Canary requests between its first weight and the decision.
    pub canary_requests: u64,
    pub records: Vec<Record>,
}

/// Told of every decision as it is taken: the run's progress lines.
pub type Progress<'a> = &'a dyn Fn(&Record);

/// Starts the new pool (the step's `start` command); what it said last.
pub type Start<'a> = &'a dyn Fn() -> Result<String, String>;

pub struct Controller<'a> {
    spec: &'a RolloutStep,
    progress: Option<Progress<'a>>,
    start: Option<Start<'a>>,
    traffic: &'a mut dyn Traffic,
    probe: Probe<'a>,
    clock: &'a dyn Clock,
    records: Vec<Record>,
    /// The weights found, which a rollback restores.
    initial: (u32, u32),
    /// The canary's counters when it first got weight.
    canary_start: Option<Counts>,
    canary_last: Counts,
}

/// Why the rollout stops short of a promotion.
struct Stop(String);

impl<'a> Controller<'a> {
    pub fn new(
        spec: &'a RolloutStep,
        traffic: &'a mut dyn Traffic,
        probe: Probe<'a>,
        clock: &'a dyn Clock,
    ) -> Self {
        Self {
            spec,
            progress: None,
            start: None,
            traffic,
            probe,
            clock,
            records: Vec::new(),
            initial: (0, 0),
            canary_start: None,
            canary_last: Counts::default(),
        }
    }

    #[must_use]
    pub fn with_progress(mut self, progress: Progress<'a>) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Runs `start` after reading the backend and before the health probes.
    #[must_use]
    pub fn with_start(mut self, start: Start<'a>) -> Self {
        self.start = Some(start);
        self
    }

    /// Runs the rollout. `Err`: the backend could not be read, and nothing was changed.
    pub fn run(mut self) -> Result<Report, String> {
        let found = self
            .traffic
            .read()
            .map_err(|error| format!("{error}; nothing was changed"))?;
        self.initial = (found.stable.weight, found.canary.weight);
        self.record(Event::Found {
            stable_weight: found.stable.weight,
            canary_weight: found.canary.weight,
            stable_up: found.stable.up,
            canary_up: found.canary.up,
        });
        let ended = self.stages();
        let (promoted, reason) = match ended {
            Ok(()) => {
                self.record(Event::Promoted);
                (true, None)
            }
            Err(Stop(reason)) => (false, Some(self.roll_back(&reason))),
        };
        Ok(Report {
            promoted,
            reason,
            canary_requests: self
                .canary_start
                .map_or(0, |start| self.canary_last.since(start).requests),
            records: self.records,
        })
    }

    fn stages(&mut self) -> Result<(), Stop> {
        if let Some(start) = self.start {
            let said =
                start().map_err(|error| Stop(format!("cannot start the new pool: {error}")))?;
            self.record(Event::Started { said });
        }
        self.wait_healthy()?;
        self.traffic.admit_canary().map_err(Stop)?;
        if self.spec.rehearse {
            self.rehearse()?;
        }
        match self.spec.strategy {
            Strategy::Canary => self.canary()?,
            Strategy::BlueGreen => self.blue_green()?,
        }
        // The old pool keeps the connections it has and takes no new ones.
        self.traffic.drain_stable().map_err(Stop)
    }

    fn record(&mut self, event: Event) {
        let at_ms = u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX);
        let record = Record { at_ms, event };
        if let Some(progress) = self.progress {
            progress(&record);
        }
        self.records.push(record);
    }

    fn wait_healthy(&mut self) -> Result<(), Stop> {
        let health = &self.spec.health;
        let mut streak = 0;
        let mut probes = 0;
        let mut last = String::from("no probe yet");
        loop {
            probes += 1;
            match (self.probe)(&health.url, health.interval.max(Duration::from_secs(1))) {
                Ok(status) if (200..300).contains(&status) => streak += 1,
                Ok(status) => {
                    streak = 0;
                    last = format!("answered {status}");
                }
                Err(error) => {
                    streak = 0;
                    last = error;
                }
            }
            if streak >= health.healthy_after {
                self.record(Event::Healthy { probes });
                return Ok(());
            }
            if self.clock.elapsed() >= health.timeout {
                return Err(Stop(format!(
                    "the new pool never became healthy: {} did not answer 2xx {} times in a row within {:?} (last: {last})",
                    health.url, health.healthy_after, health.timeout
                )));
            }
            self.clock.sleep(health.interval);
        }
    }

    fn set(&mut self, stable: u32, canary: u32, why: &str) -> Result<Pools, Stop> {
        self.traffic.set_weights(stable, canary).map_err(Stop)?;
        self.record(Event::Weights {
            stable,
            canary,
            why: why.to_owned(),
        });
        let pools = self.read()?;
        if canary > 0 && self.canary_start.is_none() {
            self.canary_start = Some(pools.canary.counts);
        }
        Ok(pools)
    }

    fn read(&mut self) -> Result<Pools, Stop> {
        let pools = self
            .traffic
            .read()
            .map_err(|error| Stop(format!("lost the traffic backend: {error}")))?;
        self.canary_last = pools.canary.counts;
        Ok(pools)
    }

    /// A deliberate rollback from the first step, before the real one: the rollback path
    /// works, and gives back the weights it found.
    fn rehearse(&mut self) -> Result<(), Stop> {
        let first = match self.spec.strategy {
            Strategy::Canary => self.spec.canary.steps.first().copied().unwrap_or(100),
            Strategy::BlueGreen => 100,
        };
        self.set(100 - first, first, "rehearsal")?;
        self.clock.sleep(self.spec.canary.interval);
        let (stable, canary) = self.initial;
        self.traffic.set_weights(stable, canary).map_err(Stop)?;
        let back = self.read()?;
        let restored = (back.stable.weight, back.canary.weight) == self.initial;
        self.record(Event::Rehearsed { restored });
        if restored {
            Ok(())
        } else {
            Err(Stop(format!(
                "the rollback rehearsal left weights {}/{}, not the {stable}/{canary} it found",
                back.stable.weight, back.canary.weight
            )))
        }
    }

    fn canary(&mut self) -> Result<(), Stop> {
        let steps = self.spec.canary.steps.clone();
        for weight in steps {
            let start = self.set(100 - weight, weight, "canary step")?;
            if weight < 100 {
                self.analyse(weight, start, None)?;
            }
        }
        Ok(())
    }

    fn blue_green(&mut self) -> Result<(), Stop> {
        let start = self.set(0, 100, "switch")?;
        self.analyse(100, start, Some(self.spec.rollback_window))
    }

    /// Watches the canary from `start`: until the test accepts with enough requests (or,
    /// with `window`, until the window ends), rolling back when it rejects, when the canary
    /// goes down, or when it stays undecided too long.
    fn analyse(&mut self, weight: u32, start: Pools, window: Option<Duration>) -> Result<(), Stop> {
        let began = self.clock.elapsed();
        let mut last = None;
        loop {
            self.clock.sleep(self.spec.canary.interval);
            let now = self.read()?;
            if !now.canary.up {
                return Err(Stop(format!(
                    "the new pool went down at {weight}% (the traffic backend's health check)"
                )));
            }
            let canary = now.canary.counts.since(start.canary.counts);
            let stable = now.stable.counts.since(start.stable.counts);
            let evaluation = self.spec.analysis.evaluate(canary, stable);
            let latency = now.canary.latency;
            if last != Some((canary, stable, latency)) {
                self.record(Event::Analysis {
                    weight,
                    canary,
                    stable,
                    evaluation,
                    canary_latency_ms: latency.map(|latency| latency.as_secs_f64() * 1000.0),
                });
                last = Some((canary, stable, latency));
            }
            let ceiling = (self.spec.metrics.as_ref()).and_then(|metrics| metrics.max_latency);
            if let (Some(ceiling), Some(latency)) = (ceiling, latency)
                && latency > ceiling
            {
                return Err(Stop(format!(
                    "the canary's latency {:.1} ms is above max_latency {:.1} ms at {weight}% (Prometheus)",
                    latency.as_secs_f64() * 1000.0,
                    ceiling.as_secs_f64() * 1000.0
                )));
            }
            let waited = self.clock.elapsed().saturating_sub(began);
            match (evaluation.outcome, window) {
                (Outcome::Reject, _) => {
                    return Err(Stop(format!(
                        "the canary is worse than the stable at {weight}%: {} errors in {} requests against {} in {}; the SPRT's log-likelihood ratio {:.3} crossed {:.3} (p0 {:.4}, p1 {:.4})",
                        canary.errors,
                        canary.requests,
                        stable.errors,
                        stable.requests,
                        evaluation.llr,
                        evaluation.upper,
                        evaluation.p0,
                        evaluation.p1
                    )));
                }
                (_, Some(window)) if waited >= window => return Ok(()),
                (Outcome::Accept, None) if canary.requests >= self.spec.canary.min_requests => {
                    return Ok(());
                }
                _ if waited >= self.spec.canary.max_wait && window.is_none() => {
                    return Err(Stop(format!(
                        "undecided at {weight}% after {:?}: {} canary requests ({} needed), log-likelihood ratio {:.3} between {:.3} and {:.3}",
                        self.spec.canary.max_wait,
                        canary.requests,
                        self.spec.canary.min_requests,
                        evaluation.llr,
                        evaluation.lower,
                        evaluation.upper
                    )));
                }
                _ => {}
            }
        }
    }

    /// Gives back the weights found at the start, and says whether that worked.
    fn roll_back(&mut self, reason: &str) -> String {
        let (stable, canary) = self.initial;
        let restored = self
            .traffic
            .set_weights(stable, canary)
            .and_then(|()| self.traffic.read())
            .and_then(|pools| {
                let now = (pools.stable.weight, pools.canary.weight);
                if now == self.initial {
                    Ok(())
                } else {
                    Err(format!("the backend reports weights {}/{}", now.0, now.1))
                }
            });
        self.record(Event::RolledBack {
            reason: reason.to_owned(),
            stable,
            canary,
        });
        match restored {
            Ok(()) => format!("rolled back to weights {stable}/{canary}: {reason}"),
            Err(error) => format!(
                "ROLLBACK FAILED ({error}) after: {reason}; restore weights {stable}/{canary} by hand"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::rollout::plan::{CanarySpec, HealthSpec, TrafficSpec};
    use crate::rollout::sprt::Sprt;

    /// A proxy double: each read serves 1000 requests split by the weights; the canary fails
    /// one in `canary_fails_every` (0: never).
    struct Simulated {
        weights: (u32, u32),
        pools: Pools,
        canary_fails_every: u64,
        canary_up: bool,
        canary_latency: Option<Duration>,
        weight_changes: u32,
    }

    impl Simulated {
        fn new(canary_fails_every: u64) -> Self {
            Self {
                weights: (100, 0),
                pools: Pools::default(),
                canary_fails_every,
                canary_up: true,
                canary_latency: None,
                weight_changes: 0,
            }
        }
    }

    impl Traffic for Simulated {
        fn describe(&self) -> String {
            "simulated".to_owned()
        }
        fn read(&mut self) -> Result<Pools, String> {
            let (stable, canary) = self.weights;
            let total = u64::from(stable + canary).max(1);
            self.pools.stable.counts.requests += 1000 * u64::from(stable) / total;
            let served = 1000 * u64::from(canary) / total;
            self.pools.canary.counts.requests += served;
            self.pools.canary.counts.errors +=
                served.checked_div(self.canary_fails_every).unwrap_or(0);
            self.pools.stable.weight = stable;
            self.pools.canary.weight = canary;
            self.pools.stable.up = true;
            self.pools.canary.up = self.canary_up;
            self.pools.canary.latency = self.canary_latency;
            Ok(self.pools)
        }
        fn set_weights(&mut self, stable: u32, canary: u32) -> Result<(), String> {
            self.weights = (stable, canary);
            self.weight_changes += 1;
            Ok(())
        }
        fn admit_canary(&mut self) -> Result<(), String> {
            Ok(())
        }
        fn drain_stable(&mut self) -> Result<(), String> {
            Ok(())
        }
    }

    /// A clock that moves only when slept on.
    struct Fake(Cell<Duration>);

    impl Clock for Fake {
        fn elapsed(&self) -> Duration {
            self.0.get()
        }
        fn sleep(&self, duration: Duration) {
            self.0.set(self.0.get() + duration);
        }
    }

    fn spec(strategy: Strategy) -> RolloutStep {
        RolloutStep {
            strategy,
            traffic: TrafficSpec::Haproxy {
                socket: "s".into(),
                backend: "app".into(),
                stable: "blue".into(),
                canary: "green".into(),
            },
            health: HealthSpec {
                url: HttpUrl::parse("http://127.0.0.1:1/healthz").expect("url"),
                interval: Duration::from_secs(1),
                healthy_after: 2,
                timeout: Duration::from_secs(10),
            },
            canary: CanarySpec {
                steps: vec![10, 50, 100],
                min_requests: 200,
                interval: Duration::from_secs(1),
                max_wait: Duration::from_secs(30),
            },
            analysis: Sprt {
                alpha: 0.05,
                beta: 0.05,
                baseline_error_rate: 0.01,
                delta: 0.03,
            },
            rollback_window: Duration::from_secs(5),
            rehearse: false,
            metrics: None,
            verify: None,
            start: None,
            subject: "app.tar".into(),
            output: "rollout/deploy.intoto.json".into(),
        }
    }

    #[expect(clippy::unnecessary_wraps, reason = "a probe's signature")]
    fn healthy(_: &HttpUrl, _: Duration) -> Result<u16, String> {
        Ok(200)
    }

    fn run(spec: &RolloutStep, traffic: &mut Simulated, probe: Probe<'_>) -> Report {
        let clock = Fake(Cell::new(Duration::ZERO));
        Controller::new(spec, traffic, probe, &clock)
            .run()
            .expect("the backend answers")
    }

    #[test]
    fn a_good_canary_climbs_every_step() {
        let mut traffic = Simulated::new(0);
        let report = run(&spec(Strategy::Canary), &mut traffic, &healthy);
        assert!(report.promoted, "{:?}", report.reason);
        assert_eq!(traffic.weights, (0, 100));
        let steps: Vec<u32> = (report.records.iter())
            .filter_map(|record| match &record.event {
                Event::Weights { canary, .. } => Some(*canary),
                _ => None,
            })
            .collect();
        assert_eq!(steps, [10, 50, 100]);
    }

    #[test]
    fn a_bad_canary_is_rolled_back_to_the_weights_found() {
        let mut traffic = Simulated::new(10);
        let report = run(&spec(Strategy::Canary), &mut traffic, &healthy);
        assert!(!report.promoted);
        assert_eq!(traffic.weights, (100, 0));
        let reason = report.reason.expect("reason");
        assert!(reason.contains("worse than the stable at 10%"), "{reason}");
        assert_eq!(report.canary_requests, 100, "decided at the first reading");
    }

    #[test]
    fn an_undecided_step_rolls_back_after_max_wait() {
        let mut spec = spec(Strategy::Canary);
        spec.canary.min_requests = u64::MAX;
        let mut traffic = Simulated::new(0);
        let report = run(&spec, &mut traffic, &healthy);
        assert!(
            report
                .reason
                .expect("reason")
                .contains("undecided at 10% after 30s")
        );
        assert_eq!(traffic.weights, (100, 0));
    }

    #[test]
    fn an_unhealthy_pool_never_gets_traffic() {
        let mut traffic = Simulated::new(0);
        let report = run(&spec(Strategy::BlueGreen), &mut traffic, &|_, _| Ok(503));
        let reason = report.reason.expect("reason");
        assert!(
            reason.contains("never became healthy") && reason.contains("answered 503"),
            "{reason}"
        );
        // Only the rollback's restoring write: no weight ever went to the new pool.
        assert_eq!(traffic.weight_changes, 1);
        assert_eq!(traffic.weights, (100, 0));
    }

    #[test]
    fn blue_green_watches_the_whole_window_and_a_down_pool_rolls_back() {
        let mut traffic = Simulated::new(0);
        let report = run(&spec(Strategy::BlueGreen), &mut traffic, &healthy);
        assert!(report.promoted);
        assert!(report.records.last().expect("records").at_ms >= 5000);
        let mut traffic = Simulated::new(0);
        traffic.canary_up = false;
        let report = run(&spec(Strategy::BlueGreen), &mut traffic, &healthy);
        assert!(report.reason.expect("reason").contains("went down at 100%"));
        assert_eq!(traffic.weights, (100, 0));
    }

    #[test]
    fn a_slow_canary_is_rolled_back_when_metrics_set_a_ceiling() {
        let mut spec = spec(Strategy::Canary);
        spec.metrics = Some(crate::rollout::plan::PrometheusSpec {
            url: HttpUrl::parse("http://127.0.0.1:9090").expect("url"),
            requests: "r".into(),
            errors: "e".into(),
            latency: Some("l".into()),
            max_latency: Some(Duration::from_millis(250)),
        });
        let mut traffic = Simulated::new(0);
        traffic.canary_latency = Some(Duration::from_millis(100));
        assert!(run(&spec, &mut traffic, &healthy).promoted);
        let mut traffic = Simulated::new(0);
        traffic.canary_latency = Some(Duration::from_millis(300));
        let report = run(&spec, &mut traffic, &healthy);
        let reason = report.reason.expect("reason");
        assert!(
            reason.contains("latency 300.0 ms is above max_latency 250.0 ms at 10%"),
            "{reason}"
        );
        assert_eq!(traffic.weights, (100, 0));
    }

    #[test]
    fn a_rehearsal_rolls_back_first() {
        let mut spec = spec(Strategy::Canary);
        spec.rehearse = true;
        let mut traffic = Simulated::new(0);
        let report = run(&spec, &mut traffic, &healthy);
        assert!(report.promoted);
        assert!(
            report
                .records
                .iter()
                .any(|record| record.event == Event::Rehearsed { restored: true })
        );
    }
}
