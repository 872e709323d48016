//! Step kinds: one file each, holding how that kind's step is turned into work.

pub mod exec;
pub mod gate;
mod in_process;
pub mod nix;
pub mod rollout;
pub mod sbom;
pub mod sign;
