//! What running an action used, as measured (docs/usage.md), remembered with its result so
//! that a cache hit can say what it saved. Times in microseconds and sizes in bytes, as
//! integers; a figure nobody measured is `None`, never zero.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Usage {
    /// How it was measured: `wait4` (the kernel's count for the sandbox's pid 1 and every
    /// descendant it reaped), `thread` (the CPU time of the gantry thread that ran an
    /// in-process step), `remote` (the time here and the worker's own timings), `wall` (the
    /// time alone: a Nix build).
    pub method: String,
    pub wall_us: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_user_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_system_us: Option<u64>,
    /// The largest resident set of any one process.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_memory_bytes: Option<u64>,
    /// Storage I/O (the page cache's hits are not I/O).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_read_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block_written_bytes: Option<u64>,
    /// The bytes of the output files the step stored (what storage is billed on).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_bytes: Option<u64>,
    /// The processes it started, its first included (threads are not processes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub processes_started: Option<u64>,
    /// A remote executor ran it: the worker and its timings (REAPI's
    /// `ExecutedActionMetadata`).
    /// Boxed: every step's usage is kept to the run's end, and few ran remotely.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote: Option<Box<Remote>>,
}

/// What a remote worker reported of an action it ran; each span only when both its
/// timestamps were given.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Remote {
    pub worker: String,
    /// The remote's action cache answered: these are the timings of the earlier execution.
    pub cache_hit: bool,
    /// From queued to the worker's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_fetch_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_us: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_upload_us: Option<u64>,
}

impl Remote {
    /// The spans after the worker and the flag, in a fixed order (the index file's).
    #[must_use]
    pub fn spans(&self) -> [Option<u64>; 4] {
        [
            self.queued_us,
            self.input_fetch_us,
            self.execution_us,
            self.output_upload_us,
        ]
    }

    /// The inverse of [`Remote::spans`].
    #[must_use]
    pub fn with_spans(worker: String, cache_hit: bool, spans: [Option<u64>; 4]) -> Self {
        let [queued_us, input_fetch_us, execution_us, output_upload_us] = spans;
        Self {
            worker,
            cache_hit,
            queued_us,
            input_fetch_us,
            execution_us,
            output_upload_us,
        }
    }
}

impl Usage {
    /// The CPU time a step is billed for: user and system as measured; a remote worker's
    /// execution time; else (a Nix build, measured by the clock alone) its wall time, one core.
    #[must_use]
    pub fn billed_cpu_us(&self) -> u64 {
        match (self.cpu_user_us, self.cpu_system_us) {
            (None, None) => self
                .remote
                .as_ref()
                .and_then(|remote| remote.execution_us)
                .unwrap_or(self.wall_us),
            (user, system) => user.unwrap_or(0).saturating_add(system.unwrap_or(0)),
        }
    }

    /// The time alone.
    #[must_use]
    pub fn wall(duration: std::time::Duration) -> Self {
        Self {
            method: "wall".to_owned(),
            wall_us: micros(duration),
            ..Self::default()
        }
    }

    /// The measured figures after the method and the wall time, in a fixed order (the
    /// index file's).
    #[must_use]
    pub fn figures(&self) -> [Option<u64>; 7] {
        [
            self.cpu_user_us,
            self.cpu_system_us,
            self.peak_memory_bytes,
            self.block_read_bytes,
            self.block_written_bytes,
            self.output_bytes,
            self.processes_started,
        ]
    }

    /// The inverse of [`Usage::figures`].
    #[must_use]
    pub fn with_figures(method: String, wall_us: u64, figures: [Option<u64>; 7]) -> Self {
        let [
            cpu_user_us,
            cpu_system_us,
            peak_memory_bytes,
            block_read_bytes,
            block_written_bytes,
            output_bytes,
            processes_started,
        ] = figures;
        Self {
            method,
            wall_us,
            cpu_user_us,
            cpu_system_us,
            peak_memory_bytes,
            block_read_bytes,
            block_written_bytes,
            output_bytes,
            processes_started,
            remote: None,
        }
    }
}

/// A duration in whole microseconds (saturating: half a million years).
#[must_use]
pub fn micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
