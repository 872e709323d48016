//! Usage reports (docs/usage.md): rate cards, the signed usage documents of runs found and
//! verified, priced exactly into lines and totals, rendered as JSON, CSV, a plain-text invoice
//! or an HTML page, and signed so that a customer can price the same documents again.

pub mod collect;
pub mod money;
pub mod price;
pub mod rate_card;
pub mod render;
pub mod report;
