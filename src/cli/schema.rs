//! `gantry schema`: the JSON Schema of the pipeline language.

#[derive(Debug, clap::Args)]
pub struct Args {}

pub const PIPELINE_SCHEMA: &str = include_str!("../../docs/pipeline.schema.json");

#[expect(clippy::unnecessary_wraps, reason = "every command returns a Result")]
pub fn run(_args: &Args) -> crate::error::Result<u8> {
    print!("{PIPELINE_SCHEMA}");
    Ok(0)
}
