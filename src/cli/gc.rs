//! `gantry gc FILE`: the store and the attestation folder trimmed to the newest runs.

use std::path::PathBuf;

use crate::cli::Environment;
use crate::error::{Error, Result};
use crate::run::gc;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The pipeline file (its root holds the store and the attestations).
    file: PathBuf,
    /// Run folders to keep, the newest (and as many `gantry repro` folders); a run a release
    /// names is always kept.
    #[arg(long, default_value_t = 10)]
    keep: usize,
    /// Also remove the warm folders (`warm = [...]`): the next runs of those steps start cold.
    #[arg(long)]
    warm: bool,
    /// Say what would be removed; remove nothing.
    #[arg(long)]
    dry_run: bool,
    /// The attestation folder (default: `attestations/` in the root).
    #[arg(long)]
    attestations: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let pipeline = environment.load(&args.file)?;
    let store = crate::cli::run::cache_dir(environment, &pipeline);
    let attestations = args.attestations.clone().map_or_else(
        || pipeline.root.join(crate::run::DEFAULT_ATTESTATIONS),
        |path| std::path::absolute(&path).unwrap_or(path),
    );
    if !store.is_dir() {
        return Err(Error::Usage(format!(
            "`{}` holds no store: nothing to collect",
            store.display()
        )));
    }
    // No run may add to the store while its unused part is removed.
    let _lock = crate::run::lock(&store)?;
    let options = gc::Options {
        keep_runs: args.keep,
        warm: args.warm,
        dry_run: args.dry_run,
    };
    let freed = gc::collect(&store, &attestations, &options).map_err(Error::write(&store))?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "dry_run": args.dry_run,
                "runs": freed.runs,
                "repros": freed.repros,
                "cache_entries": freed.entries,
                "blobs": freed.blobs,
                "bytes": freed.bytes,
                "kept_runs": freed.kept_runs,
                "attestations": freed.attestations,
            })
        );
    } else {
        println!(
            "gantry gc: {verb} {} run folders, {} repro folders, {} stored attestations, {} cache entries and {} blobs ({}); kept {} runs",
            freed.runs,
            freed.repros,
            freed.attestations,
            freed.entries,
            freed.blobs,
            crate::pipeline::limits::show_size(freed.bytes),
            freed.kept_runs
        );
    }
    Ok(0)
}
