//! `gantry schema [pipeline|policy|usage|rate-card]`: the JSON Schema of a file gantry reads,
//! or of the usage predicate it writes.

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Which file's schema.
    #[arg(value_parser = ["pipeline", "policy", "usage", "rate-card"], default_value = "pipeline")]
    of: String,
}

pub(super) const PIPELINE_SCHEMA: &str = include_str!("../../docs/pipeline.schema.json");
pub(super) const POLICY_SCHEMA: &str = include_str!("../../docs/policy.schema.json");
pub(super) const USAGE_SCHEMA: &str = include_str!("../../docs/usage.schema.json");
pub(super) const RATE_CARD_SCHEMA: &str = include_str!("../../docs/rate-card.schema.json");

#[expect(clippy::unnecessary_wraps, reason = "every command returns a Result")]
pub(super) fn run(args: &Args) -> crate::error::Result<u8> {
    print!(
        "{}",
        match args.of.as_str() {
            "policy" => POLICY_SCHEMA,
            "usage" => USAGE_SCHEMA,
            "rate-card" => RATE_CARD_SCHEMA,
            _ => PIPELINE_SCHEMA,
        }
    );
    Ok(0)
}
