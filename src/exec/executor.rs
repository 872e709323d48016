//! Where an action runs: the extension point between the engine and the machine. The local
//! namespace sandbox is the executor today; the REAPI issue adds a remote one behind the same
//! trait; tests use a recording one that runs nothing.

use crate::exec::sandbox::{Finished, Request, Sandbox, SandboxError};

pub trait Executor: Send + Sync {
    /// Runs one action to completion (or timeout, or cancellation) and reports what happened,
    /// also when the command failed. Blocking.
    fn execute(&self, request: &Request<'_>) -> Result<Finished, SandboxError>;

    /// Recorded in each link's environment (`local`, later `remote`).
    fn name(&self) -> &'static str;
}

impl Executor for Sandbox {
    fn execute(&self, request: &Request<'_>) -> Result<Finished, SandboxError> {
        self.run(request)
    }

    fn name(&self) -> &'static str {
        "local"
    }
}
