//! Reusable step templates (docs/templates.md): versions and their constraints, resolved to
//! one version per template. Pure.

pub mod constraint;
