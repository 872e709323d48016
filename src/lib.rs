//! gantry: a declarative build and release orchestrator. The crate is layered; a module
//! imports only from its own layer or a lower one (`tests/integration/layers.rs` holds it,
//! ARCHITECTURE.md explains it):
//!
//! 1. base: `hex`, `digest`, `bounded`, `duration`, `time`, `parallel`, `diagnostic`, `error`,
//!    `atomic`, `host_tool`;
//! 2. keys and the store: `keys`, `store`;
//! 3. documents and domains: `attest`, `nix`, `gauntlet`, `rollout`, `sbom`, `runlog`, `report`,
//!    `vulns`;
//! 4. the model and the auditor: `pipeline`, `git`, `workspace`, `graph`, `verify`, `init`;
//! 5. the engine: `exec`, `remote`;
//! 6. the kinds: `kinds`;
//! 7. the run: `run`;
//! 8. flows: `repro`, `release`;
//! 9. the edge: `cli`, `fuzz`.

#![cfg_attr(
    test,
    expect(
        clippy::disallowed_methods,
        reason = "unit tests write their fixtures and read their environment directly"
    )
)]

pub mod atomic;
pub mod attest;
pub mod bounded;
pub mod cli;
pub mod diagnostic;
pub mod digest;
pub mod duration;
pub mod error;
pub mod exec;
pub mod fuzz;
pub mod gauntlet;
pub mod git;
pub mod graph;
pub mod hex;
pub mod host_tool;
pub mod http;
pub mod init;
pub mod keys;
pub mod kinds;
pub mod nix;
pub mod parallel;
pub mod pipeline;
pub mod release;
pub mod remote;
pub mod report;
pub mod repro;
pub mod rollout;
pub mod run;
pub mod runlog;
pub mod sbom;
pub mod store;
pub mod template;
pub mod time;
pub mod usage;
pub mod verify;
pub mod vulns;
pub mod workspace;
