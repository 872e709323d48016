//! A rollout's record: the artifact it shipped, the plan it followed (pipeline, strategy,
//! traffic backend, canary steps, the statistical test) and every decision it took, with the
//! result. `kinds::rollout` writes it; `verify` reads which step ran and how it ended.

use serde::{Deserialize, Serialize};

use crate::attest::ResourceDescriptor;
use crate::rollout::controller::Record;
use crate::rollout::plan::TrafficSpec;

pub const URI: &str = "https://gantry.dev/attestation/rollout/v0.1";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Rollout {
    pub step: String,
    /// The pipeline file, by digest: it fixes the plan below.
    pub pipeline: ResourceDescriptor,
    pub run_id: String,
    /// `canary` or `blue-green`.
    pub strategy: String,
    pub traffic: Option<TrafficSpec>,
    pub metrics: Option<Metrics>,
    /// The subject passed `gantry verify` under this policy before anything changed.
    pub verified: Option<Verified>,
    pub health: Health,
    pub canary_steps: Vec<u32>,
    pub min_requests: u64,
    pub analysis: Analysis,
    /// The rollback was rehearsed before promoting.
    pub rehearsed: bool,
    /// The command that started the new pool.
    pub start: Option<Vec<String>>,
    /// `promoted` or `rolled-back`.
    pub result: String,
    /// Why it rolled back (or could not).
    pub reason: Option<String>,
    pub canary_requests: u64,
    pub decisions: Vec<Record>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Metrics {
    pub prometheus: Prometheus,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Prometheus {
    pub url: String,
    pub requests: String,
    pub errors: String,
    pub latency: Option<String>,
    pub max_latency_ms: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct Verified {
    pub policy: String,
    pub attestations: Vec<String>,
    pub checks: usize,
    pub passed: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Health {
    pub url: String,
    pub healthy_after: u32,
}

/// The sequential probability ratio test the canary was judged by, with its bounds on the
/// log-likelihood ratio.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Analysis {
    /// `sprt`.
    pub method: String,
    pub alpha: f64,
    pub beta: f64,
    pub baseline_error_rate: f64,
    pub delta: f64,
    pub lower: f64,
    pub upper: f64,
}
