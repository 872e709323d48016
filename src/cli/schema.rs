//! `gantry schema [pipeline|policy]`: the JSON Schema of a file gantry reads.

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// Which file's schema.
    #[arg(value_parser = ["pipeline", "policy"], default_value = "pipeline")]
    of: String,
}

pub(super) const PIPELINE_SCHEMA: &str = include_str!("../../docs/pipeline.schema.json");
pub(super) const POLICY_SCHEMA: &str = include_str!("../../docs/policy.schema.json");

#[expect(clippy::unnecessary_wraps, reason = "every command returns a Result")]
pub(super) fn run(args: &Args) -> crate::error::Result<u8> {
    print!(
        "{}",
        if args.of == "policy" {
            POLICY_SCHEMA
        } else {
            PIPELINE_SCHEMA
        }
    );
    Ok(0)
}
