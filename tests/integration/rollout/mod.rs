//! Rollouts through real proxies on loopback (HAProxy's runtime API, nginx reloads, a
//! command), under load from wrk, judged from the proxies' own counts or from a real
//! Prometheus, and verified against a policy first.

mod command;
mod haproxy;
mod nginx;
mod prometheus;
mod site;
mod validation;
mod verify;
