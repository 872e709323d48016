//! The traffic backends a rollout moves weight with: the extension point (HAProxy, nginx and
//! a command; Prometheus wraps any of them as the source of the counts).

use crate::rollout::sprt::Counts;

/// One server (a pool) of the rollout, as the backend reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    /// Cumulative requests and errors (responses 5xx, failed connections and responses).
    pub counts: Counts,
    /// The weight the backend applies now.
    pub weight: u32,
    /// Whether the backend's own health check thinks it is up.
    pub up: bool,
    /// The pool's response time, where a metrics source reports one.
    pub latency: Option<std::time::Duration>,
}

/// The stable and the canary pools, read together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pools {
    pub stable: Pool,
    pub canary: Pool,
}

pub trait Traffic {
    /// What the rollout drives, for messages: `haproxy app/blue,green via run/haproxy.sock`.
    fn describe(&self) -> String;
    /// Reads both pools; an unreachable backend is an error that changes nothing.
    fn read(&mut self) -> Result<Pools, String>;
    /// Sends `canary` percent of new requests to the canary and the rest to the stable.
    fn set_weights(&mut self, stable: u32, canary: u32) -> Result<(), String>;
    /// Takes the canary into the pool (`ready`) before any weight reaches it.
    fn admit_canary(&mut self) -> Result<(), String>;
    /// After a promotion: the old stable takes no new connections but keeps its own.
    fn drain_stable(&mut self) -> Result<(), String>;
}
