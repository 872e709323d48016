//! gantry's integration tests: one binary, one module per feature. Each test runs the real
//! `gantry` binary in a fresh temporary workspace (see `support.rs`).

#![expect(
    clippy::disallowed_methods,
    reason = "tests write their fixtures and read their environment directly"
)]

mod attestations;
mod cache;
mod cli;
mod errors;
mod examples;
mod execution;
mod fuzz_corpora;
mod gates;
mod grid;
mod hostile;
mod layers;
mod nix;
mod provenance;
mod real_projects;
mod records;
mod release;
mod remote;
mod repro;
mod rollout;
mod runlog;
mod sandbox;
mod sbom;
mod self_release;
mod signing;
mod snapshots;
mod sshd;
mod support;
mod templates;
mod usage;
pub(crate) mod usage_report;
mod verify;
mod vulns;
