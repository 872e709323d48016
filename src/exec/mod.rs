//! Effects of running a pipeline: the scheduler, one step's execution, the sandbox.

pub mod context;
pub mod epoch;
pub mod executor;
pub mod host;
pub mod inputs;
pub mod outputs;
pub mod placer;
pub mod provenance;
pub mod records;
pub mod run;
pub mod sandbox;
pub mod scheduler;
pub mod scratch;
pub mod step;
pub mod tools;
pub mod variation;
pub mod vouch;
pub mod warm;

pub use executor::Executor;
pub use run::{Rebuild, RunOptions, RunSummary, plan, plan_mistakes, run, run_with_executor};

#[cfg(test)]
mod scheduler_tests;
