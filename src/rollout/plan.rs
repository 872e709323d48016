//! A validated rollout: what the pipeline asks for, in the domain's types.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::http::HttpUrl;
use crate::rollout::sprt::Sprt;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RolloutStep {
    pub strategy: Strategy,
    pub traffic: TrafficSpec,
    pub health: HealthSpec,
    pub canary: CanarySpec,
    pub analysis: Sprt,
    /// Blue-green: how long the old pool stays warm (and the new one watched) after the switch.
    pub rollback_window: Duration,
    /// Roll back once on purpose, and check the weights came back, before the real rollout.
    pub rehearse: bool,
    /// Prometheus as the source of the counts (and a latency ceiling), instead of the
    /// traffic backend's own.
    pub metrics: Option<PrometheusSpec>,
    /// The policy the subject must pass before any traffic moves.
    pub verify: Option<VerifySpec>,
    /// The command that starts the new pool, run before its health is probed.
    pub start: Option<Vec<String>>,
    /// The artifact being rolled out: the attestation's subject.
    pub subject: String,
    pub output: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    Canary,
    BlueGreen,
}

impl Strategy {
    pub const NAMES: [&'static str; 2] = ["canary", "blue-green"];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::BlueGreen => "blue-green",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", rename_all_fields = "camelCase")]
pub enum TrafficSpec {
    /// HAProxy's runtime API socket (relative to the workspace root, or absolute), the
    /// backend and its two servers.
    Haproxy {
        socket: String,
        backend: String,
        stable: String,
        canary: String,
    },
    /// nginx: gantry renders the two `server` lines of an upstream file that nginx.conf
    /// includes, and runs `reload`; counts come from an access log in the `gantry` format
    /// (`$upstream_addr|$upstream_status`).
    Nginx {
        upstream: String,
        stable: String,
        canary: String,
        access_log: String,
        reload: Vec<String>,
    },
    /// Anything else: a program gantry runs with `read`, `weights STABLE CANARY`, `admit` or
    /// `drain` after its arguments (docs/rollout.md, "The command backend").
    Command { run: Vec<String> },
}

impl TrafficSpec {
    /// The backend's name for a pool, which a Prometheus query's `$pool` becomes.
    #[must_use]
    pub fn pool_names(&self) -> (&str, &str) {
        match self {
            Self::Haproxy { stable, canary, .. } | Self::Nginx { stable, canary, .. } => {
                (stable, canary)
            }
            Self::Command { .. } => ("stable", "canary"),
        }
    }
}

/// `analysis = { prometheus = { ... } }`: instant queries whose sums are cumulative counts
/// (`requests`, `errors`) and a latency in seconds, each with `$pool` standing for the pool.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrometheusSpec {
    pub url: HttpUrl,
    pub requests: String,
    pub errors: String,
    pub latency: Option<String>,
    /// The canary rolls back when its latency is above this.
    pub max_latency: Option<Duration>,
}

/// `verify = { policy = ..., attestations = [...] }`: `gantry verify` of the subject before
/// the rollout starts. Paths are relative to the workspace root; no folders means this run's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifySpec {
    pub policy: String,
    pub attestations: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthSpec {
    pub url: HttpUrl,
    pub interval: Duration,
    /// Consecutive 2xx answers before the new pool counts as healthy.
    pub healthy_after: u32,
    /// How long it may take to become healthy.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CanarySpec {
    /// Percentages of traffic to the canary, rising, the last 100.
    pub steps: Vec<u32>,
    /// Canary requests at a step before it may be accepted (a rejection needs none).
    pub min_requests: u64,
    /// How often the counts are read and the test evaluated.
    pub interval: Duration,
    /// How long a step may stay undecided before the rollout gives up and rolls back.
    pub max_wait: Duration,
}
