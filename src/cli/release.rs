//! `gantry release VERSION` cuts a release: git checks, the release pipeline, a signed
//! manifest, notes and an annotated tag. `gantry release verify VERSION` checks one.
//! Exit 0 when the release is cut (or verified), 1 when it is refused or fails a check, 2 on
//! a usage error.

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::cli::run::{Execution, RunFlags, cache_dir, execute, exit_code};
use crate::error::{Error, Result};
use crate::release::{check, cut};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The version to release: semver, such as 1.4.0 or 2.0.0-rc.1 (tagged `v1.4.0`).
    #[arg(required = true)]
    version: Option<String>,
    /// The release pipeline.
    #[arg(long, default_value = "pipelines/release.toml")]
    pipeline: PathBuf,
    /// Release from a work tree that differs from HEAD (recorded in the provenance and the
    /// manifest).
    #[arg(long)]
    allow_dirty: bool,
    /// Do everything but create the tag.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    flags: RunFlags,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Check a release: its tag, its signed manifest, every document and artifact it names,
    /// and the policy's verdict on its run.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct VerifyArgs {
    /// The version to check.
    version: String,
    /// The policy the release's run must satisfy.
    #[arg(long, default_value = "policies/release.toml")]
    policy: PathBuf,
    /// The attestations folder holding `releases/VERSION/` and the run (default:
    /// `attestations/` in the repository's root).
    #[arg(long)]
    attestations: Option<PathBuf>,
    /// The workspace the artifacts are in (default: the git work tree holding the current
    /// folder).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args, environment: &Environment) -> Result<u8> {
    match args.command {
        Some(Command::Verify(verify)) => run_verify(&verify),
        None => run_cut(args, environment),
    }
}

fn run_cut(args: Args, environment: &Environment) -> Result<u8> {
    let version = args.version.unwrap_or_default();
    let pipeline = environment.load(&args.pipeline)?;
    let attestations = args.flags.attestations(&pipeline);
    let plan = cut::plan(
        &pipeline,
        &version,
        args.allow_dirty,
        &cache_dir(environment, &pipeline),
        &attestations,
    )?;
    let signer = Arc::new(signer(args.flags.key.as_deref(), environment)?);
    if !args.flags.json {
        eprintln!(
            "gantry: releasing {} from {}{}{}",
            plan.version,
            plan.commit,
            plan.previous
                .as_ref()
                .map(|(_, tag)| format!(" (last release {tag})"))
                .unwrap_or_default(),
            if plan.dirty.is_empty() {
                String::new()
            } else {
                format!(
                    ", with {} changed path(s) (--allow-dirty)",
                    plan.dirty.len()
                )
            }
        );
    }
    let summary = execute(
        pipeline.clone(),
        &args.flags,
        environment,
        Execution {
            signer: Box::new(Arc::clone(&signer)),
            keep_going: false,
            parameters: std::collections::BTreeMap::new(),
            release: Some(plan.parameter()),
        },
    )?;
    if summary.interrupted_by.is_some() {
        return Ok(exit_code(&summary));
    }
    let cut = cut::finish(
        &plan,
        &pipeline,
        &summary,
        &attestations,
        signer.as_ref(),
        args.dry_run,
    )?;
    let mut stdout = std::io::stdout().lock();
    if args.flags.json {
        let mut event =
            serde_json::to_value(&cut).map_err(|error| Error::Internal(error.to_string()))?;
        event["event"] = "release_finished".into();
        let _ = writeln!(stdout, "{event}");
    } else {
        let _ = writeln!(stdout, "release {} ({})", cut.version, cut.commit);
        for (name, sha256) in &cut.artifacts {
            let _ = writeln!(stdout, "  {name}  sha256:{sha256}");
        }
        let _ = writeln!(
            stdout,
            "manifest {} (sha256:{})\nnotes    {}",
            cut.manifest.display(),
            cut.manifest_sha256,
            cut.notes.display()
        );
        if cut.tagged {
            let _ = writeln!(
                stdout,
                "tagged   {} (push it: git push origin {})",
                cut.tag, cut.tag
            );
        } else {
            let _ = writeln!(stdout, "dry run: tag {} not created", cut.tag);
        }
    }
    Ok(0)
}

fn run_verify(args: &VerifyArgs) -> Result<u8> {
    let root = if let Some(root) = &args.root {
        std::path::absolute(root).unwrap_or_else(|_| root.clone())
    } else {
        let here = std::env::current_dir().map_err(|error| Error::Environment {
            message: format!("cannot read the current folder: {error}"),
        })?;
        crate::pipeline::git_root(&here).unwrap_or(here)
    };
    let attestations = match &args.attestations {
        Some(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
        None => root.join(crate::exec::run::DEFAULT_ATTESTATIONS),
    };
    let report = check::check(&check::Request {
        root: &root,
        attestations: &attestations,
        version: &args.version,
        policy: &args.policy,
        now: crate::exec::run::unix_now(),
    })?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let text =
            serde_json::to_string(&report).map_err(|error| Error::Internal(error.to_string()))?;
        let _ = writeln!(stdout, "{text}");
    } else {
        let _ = write!(stdout, "{}", report.render());
    }
    Ok(u8::from(!report.passed))
}
