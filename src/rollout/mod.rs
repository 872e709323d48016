//! Rollouts: traffic moved to a new release through a real proxy, watched with a sequential
//! test, rolled back by itself. `plan` is the validated step, `sprt` the statistics and
//! `controller` the decisions (pure, given their effects); `traffic` (the trait), `haproxy`,
//! `nginx`, `command`, `prometheus`, `health` and `tool` are the effects.

pub mod command;
pub mod controller;
pub mod haproxy;
pub mod health;
pub mod nginx;
pub mod plan;
pub mod prometheus;
pub mod sprt;
pub mod tool;
pub mod traffic;
