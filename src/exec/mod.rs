//! Effects of running a pipeline: the scheduler, one step's execution, the sandbox.

pub mod context;
pub mod inputs;
pub mod outputs;
pub mod run;
pub mod sandbox;
pub mod scheduler;
pub mod scratch;
pub mod step;

pub use run::{RunOptions, RunSummary, plan, run};
