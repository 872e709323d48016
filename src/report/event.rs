//! Run events. Serialized as one JSON object per line by `gantry run --json`; the shape is
//! documented in docs/json-output.md and kept stable.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Executed,
    Cached,
    Failed,
    /// Not run: a step it depends on failed, or the run stopped first.
    Skipped,
}

/// Whose a step's failure is to fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureCategory {
    /// The step did its work and it said no: a command's exit status, a gate's threshold, a
    /// rollback.
    Step,
    /// What the step was given: a missing or malformed input, an output it did not make.
    Input,
    /// The machine: permissions, missing tools, a full disk, an unreachable executor.
    Environment,
    /// A bug in gantry.
    Internal,
}

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        pipeline: String,
        steps: usize,
        jobs: usize,
    },
    StepStarted {
        step: String,
    },
    StepFinished {
        step: String,
        status: StepStatus,
        duration_ms: u64,
        #[serde(skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
        /// Failed steps: whose the failure is to fix.
        #[serde(skip_serializing_if = "Option::is_none")]
        category: Option<FailureCategory>,
        #[serde(skip_serializing_if = "Option::is_none")]
        attestation: Option<String>,
        /// Attempts made (more than 1 when `retry` was used).
        #[serde(skip_serializing_if = "is_one")]
        attempts: u32,
        /// What running it used (docs/usage.md); for a cached step, what the execution that
        /// made the cache entry used: what the cache saved.
        #[serde(skip_serializing_if = "Option::is_none")]
        usage: Option<Box<crate::store::Usage>>,
        /// Failed steps: the command and the last lines of its stderr.
        #[serde(skip)]
        detail: Option<FailureDetail>,
    },
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        message: String,
    },
    /// What a long step is doing now (a rollout moving weights, judging the canary).
    Progress {
        step: String,
        message: String,
    },
    /// Progress of work around runs (`gantry repro` explaining a difference).
    Note {
        message: String,
    },
    RunFinished {
        run_id: String,
        executed: usize,
        cached: usize,
        failed: usize,
        skipped: usize,
        attestations: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        provenance: Option<String>,
        duration_ms: u64,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        cancelled: bool,
        /// Why the run is over its `[budget]` (it failed, its documents kept).
        #[serde(skip_serializing_if = "Option::is_none")]
        over_budget: Option<String>,
        /// The run whose provenance this one names: it executed nothing and would have
        /// written the same (`attestations` and `provenance` are that run's).
        #[serde(skip_serializing_if = "Option::is_none")]
        reused: Option<String>,
        /// The run found every step's key and outputs as the last run left them without
        /// planning a step (`run::settled`): a stat a file.
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        settled: bool,
    },
}

#[expect(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_one(value: &u32) -> bool {
    *value == 1
}

#[derive(Clone, Debug, Default)]
pub struct FailureDetail {
    pub command: Vec<String>,
    pub stderr_tail: String,
    /// What the failed attempt used, when it ran and was measured.
    pub usage: Option<Box<crate::store::Usage>>,
}
