//! The run layer, above the kinds: a pipeline's run (`flow`: plan, the store lock, the
//! executor), the scheduler that starts ready steps in parallel, and what a run leaves
//! behind (`records`: the run folder, its index and log; `provenance`: the signed SLSA
//! provenance).

pub mod budget;
pub mod flow;
pub mod gc;
pub mod last_run;
pub mod provenance;
pub mod records;
pub mod scheduler;
pub mod settled;
pub mod signed_file;
pub mod usage;

pub use flow::{
    DEFAULT_ATTESTATIONS, Rebuild, RunOptions, RunSummary, lock, plan, plan_mistakes, run,
    run_with_executor,
};

#[cfg(test)]
mod scheduler_tests;
