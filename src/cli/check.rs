//! `gantry check FILE`.

use std::path::PathBuf;

use crate::error::Result;
use crate::exec;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The pipeline file.
    file: PathBuf,
}

pub(super) fn run(args: &Args, environment: &crate::cli::Environment) -> Result<u8> {
    let pipeline = environment.load(&args.file)?;
    let graph = crate::run::plan(&pipeline, &[])?;
    let keys = crate::cli::keys::key_files(&pipeline, environment);
    exec::tools::Tools::new(&pipeline.tools, environment.home.clone(), keys)
        .check()
        .map_err(|message| crate::error::Error::Input {
            path: args.file.clone(),
            message,
        })?;
    eprintln!(
        "{}: ok: pipeline `{}`, {} steps, {} edges",
        args.file.display(),
        pipeline.name,
        pipeline.steps.len(),
        graph.dependencies.iter().map(Vec::len).sum::<usize>()
    );
    Ok(0)
}
