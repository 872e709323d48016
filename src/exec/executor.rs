//! Where an action runs: the extension point between the engine and the machine. The local
//! namespace sandbox is the executor today; the REAPI issue adds a remote one behind the same
//! trait; tests use a recording one that runs nothing.

use crate::exec::sandbox::{Finished, RemoteRun, Request, Sandbox, SandboxError};

pub trait Executor: Send + Sync {
    /// Runs one action to completion (or timeout, or cancellation) and reports what happened,
    /// also when the command failed. Blocking.
    fn execute(&self, request: &Request<'_>) -> Result<Finished, SandboxError>;

    /// Recorded in each link's environment (`local`, later `remote`).
    fn name(&self) -> &'static str;

    /// What enforces a step's memory and process limits, recorded in its link.
    fn limits_by(&self) -> &'static str {
        "the executor"
    }

    /// Gives back what the executor holds on the host (cgroups) once the run's steps are over.
    fn release(&self) {}

    /// Keeps the link gantry signed for an action this executor ran where a later run (on any
    /// machine) finds it beside the executor's cached result: a remote executor's action
    /// cache is untrusted storage, used only for what such a link vouches for.
    /// `key_id` names the key that signed it.
    fn keep_link(&self, _run: &RemoteRun, _link: &[u8], _key_id: &str) -> Result<(), String> {
        Ok(())
    }
}

impl Executor for Sandbox {
    fn execute(&self, request: &Request<'_>) -> Result<Finished, SandboxError> {
        self.run(request)
    }

    fn name(&self) -> &'static str {
        "local"
    }

    fn limits_by(&self) -> &'static str {
        Sandbox::limits_by(self)
    }

    fn release(&self) {
        Sandbox::release(self);
    }
}

type MakeExecutor = Box<dyn FnOnce() -> std::io::Result<Box<dyn Executor>> + Send>;

/// An executor made on first use: a run whose steps all come from the cache never starts a
/// sandbox (no namespace, no thread).
pub struct LazyExecutor {
    make: std::sync::Mutex<Option<MakeExecutor>>,
    made: std::sync::OnceLock<Result<Box<dyn Executor>, String>>,
}

impl LazyExecutor {
    pub fn new(make: impl FnOnce() -> std::io::Result<Box<dyn Executor>> + Send + 'static) -> Self {
        Self {
            make: std::sync::Mutex::new(Some(Box::new(make))),
            made: std::sync::OnceLock::new(),
        }
    }

    /// [`Executor::release`], when the executor was made.
    pub fn release(&self) {
        if let Some(Ok(executor)) = self.made.get() {
            executor.release();
        }
    }

    /// The executor, made now if this is the first call.
    pub fn get(&self) -> Result<&dyn Executor, String> {
        let made = self.made.get_or_init(|| {
            let make = self
                .make
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take();
            match make {
                Some(make) => {
                    make().map_err(|error| format!("cannot prepare the sandbox: {error}"))
                }
                None => Err("the executor could not be made".to_owned()),
            }
        });
        match made {
            Ok(executor) => Ok(executor.as_ref()),
            Err(message) => Err(message.clone()),
        }
    }
}
