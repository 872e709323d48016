//! Rollouts: traffic moved to a new release through a real proxy, watched with a sequential
//! test, rolled back by itself. `plan` is the validated step, `sprt` the statistics and
//! `controller` the decisions (pure, given their effects); `traffic`, `haproxy` and `health`
//! are the effects.

pub mod controller;
pub mod haproxy;
pub mod health;
pub mod plan;
pub mod sprt;
pub mod traffic;
