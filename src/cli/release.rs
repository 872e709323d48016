//! `gantry release VERSION` cuts a release: git checks, the release pipeline, a signed
//! manifest, notes and an annotated tag. `gantry release verify VERSION` checks one.
//! Exit 0 when the release is cut (or verified), 1 when it is refused or fails a check, 2 on
//! a usage error.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::cli::repro;
use crate::cli::run::RunFlags;
use crate::error::{Error, Result};
use crate::keys::{EcdsaVerifier, Signer};
use crate::release::check;
use crate::release::cut::{self, Plan};
use crate::release::flow::{self, Progress, Released};

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub(super) struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The version to release: semver, such as 1.4.0 or 2.0.0-rc.1 (tagged `v1.4.0`).
    #[arg(required = true)]
    version: Option<String>,
    /// The release pipeline (default: `pipelines/release.toml`, or `pipeline.toml` when there is
    /// none, as `gantry init` writes).
    #[arg(long)]
    pipeline: Option<PathBuf>,
    /// Release from a work tree that differs from HEAD (recorded in the provenance and the
    /// manifest).
    #[arg(long)]
    allow_dirty: bool,
    /// Do everything but create the tag.
    #[arg(long)]
    dry_run: bool,
    /// Rebuild the steps that made the artifacts from scratch in varied surroundings (as
    /// `gantry repro` does) and name the signed reproducibility Statement in the manifest; an
    /// artifact that does not reproduce refuses the release.
    #[arg(long)]
    reproduce: bool,
    /// With `--reproduce`: what to vary (as `gantry repro --vary`).
    #[arg(long, default_value = "all", requires = "reproduce")]
    vary: String,
    /// The policy `gantry release verify` will check the release against: checked before the
    /// tag is made, and nothing is tagged that would fail it.
    #[arg(long, default_value = "policies/release.toml")]
    policy: PathBuf,
    /// A build parameter, as for `gantry run`: every command sees `GANTRY_PARAM_NAME=VALUE`
    /// (and always `GANTRY_RELEASE_VERSION`), and the provenance records it.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
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

pub(super) fn run(args: Args, environment: &Environment) -> Result<u8> {
    match args.command {
        Some(Command::Verify(verify)) => run_verify(&verify),
        None => run_cut(args, environment),
    }
}

fn run_cut(args: Args, environment: &Environment) -> Result<u8> {
    let version = args.version.unwrap_or_default();
    let aspects = crate::exec::variation::parse_aspects(&args.vary).map_err(Error::Usage)?;
    let pipeline_file = args.pipeline.clone().unwrap_or_else(|| {
        let release = PathBuf::from("pipelines/release.toml");
        if !release.exists() && Path::new("pipeline.toml").exists() {
            PathBuf::from("pipeline.toml")
        } else {
            release
        }
    });
    let pipeline = environment.load(&pipeline_file)?;
    let parameters = crate::cli::run::parameters(&args.parameters)?;
    let options = crate::cli::run::options(&pipeline, &args.flags, environment, false, parameters)?;
    let signer = Arc::new(signer(args.flags.key.as_deref(), environment)?);
    let reproduce = if args.reproduce {
        let request = repro::Request {
            // The flow names the run and the steps that made the artifacts.
            against: None,
            steps: Vec::new(),
            aspects,
            attestations: options.attestations.clone(),
            scratch: None,
            jobs: args.flags.jobs,
            json: args.flags.json,
            bundles: args.flags.bundles,
            explain_budget: None,
            diffoscope_limit: None,
        };
        let verifier = EcdsaVerifier::from_pem(signer.public_key_pem()).map_err(Error::Internal)?;
        Some(repro::options(
            &pipeline,
            environment,
            request,
            Box::new(verifier),
        )?)
    } else {
        None
    };
    let json = args.flags.json;
    let progress = |progress: Progress<'_>| {
        if json {
            return;
        }
        match progress {
            Progress::Releasing(plan) => eprintln!("gantry: {}", releasing(plan)),
            Progress::Reproduced(report) => eprint!("{}", repro::render(report, &pipeline.root)),
            Progress::WouldNotPass(report) => eprint!("{}", report.render()),
        }
    };
    let signer: Arc<dyn Signer> = signer;
    let released = flow::release(
        &pipeline,
        flow::Request {
            version: &version,
            allow_dirty: args.allow_dirty,
            dry_run: args.dry_run,
            policy: &args.policy,
            reproduce,
        },
        options,
        &signer,
        &progress,
    )?;
    let cut = match released {
        Released::Cut(cut) => cut,
        Released::Interrupted { signal } => return Ok(u8::try_from(128 + signal).unwrap_or(130)),
    };
    let mut stdout = std::io::stdout().lock();
    if json {
        let mut event =
            serde_json::to_value(&cut).map_err(|error| Error::Internal(error.to_string()))?;
        event["event"] = "release_finished".into();
        let _ = writeln!(stdout, "{event}");
    } else {
        let _ = write!(stdout, "{}", render(&cut));
    }
    Ok(0)
}

/// The line that opens a release: what, from where, since when.
fn releasing(plan: &Plan) -> String {
    format!(
        "releasing {} from {}{}{}",
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
    )
}

/// The cut release for people: its artifacts, the manifest, the notes and the tag.
fn render(cut: &cut::Cut) -> String {
    use std::fmt::Write as _;
    let mut text = format!("release {} ({})\n", cut.version, cut.commit);
    for (name, sha256) in &cut.artifacts {
        let _ = writeln!(text, "  {name}  sha256:{sha256}");
    }
    if let Some(statement) = &cut.reproducibility {
        let _ = writeln!(text, "reproduced, see {statement}");
    }
    let _ = writeln!(
        text,
        "manifest {} (sha256:{})\nnotes    {}",
        cut.manifest.display(),
        cut.manifest_sha256,
        cut.notes.display()
    );
    if cut.tagged {
        let _ = writeln!(
            text,
            "tagged   {} (push it: git push origin {})",
            cut.tag, cut.tag
        );
    } else {
        let _ = writeln!(text, "dry run: tag {} not created", cut.tag);
    }
    text
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
        None => root.join(crate::run::DEFAULT_ATTESTATIONS),
    };
    let report = check::check(&check::Request {
        root: &root,
        attestations: &attestations,
        version: &args.version,
        policy: &args.policy,
        now: crate::time::unix_now(),
        tagged: true,
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
