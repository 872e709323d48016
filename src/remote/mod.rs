//! Remote execution over the Remote Execution API v2 (REAPI) and the Remote Workers API
//! v1test2: the input root as a Merkle tree of `Directory` messages, a CAS client that uploads
//! only what is missing, and the protocol messages the `bazel-remote-apis` crate does not ship
//! (the Bots API, for `gantry worker`). See docs/remote.md and ARCHITECTURE.md.

pub mod action;
pub mod blob;
pub mod bots;
pub mod cas;
pub mod executor;
pub mod job;
pub mod stash;
pub mod tree;
pub mod worker;

pub use bazel_remote_apis::build::bazel::remote::execution::v2 as reapi;
