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
use crate::cli::run::{Execution, RunFlags, cache_dir, execute, exit_code};
use crate::error::{Error, Result};
use crate::keys::{EcdsaVerifier, Signer};
use crate::release::{check, cut};

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
            parameters: crate::cli::run::parameters(&args.parameters)?,
            release: Some(plan.parameter()),
        },
    )?;
    if summary.interrupted_by.is_some() {
        return Ok(exit_code(&summary));
    }
    let mut built = cut::built(&pipeline, &summary)?;
    if args.reproduce {
        let request = repro::Request {
            against: Some(summary.run_dir.clone()),
            steps: built.steps(),
            aspects,
            attestations: attestations.clone(),
            scratch: None,
            jobs: args.flags.jobs,
            json: args.flags.json,
            bundles: args.flags.bundles,
            explain_budget: None,
        };
        if let Some(code) = reproduce(&pipeline, environment, request, &signer, &mut built)? {
            return Ok(code);
        }
    }
    let will_pass = |version: &str| {
        will_pass(
            &pipeline,
            &attestations,
            &args.policy,
            version,
            args.flags.json,
        )
    };
    let cut = cut::finish(
        &plan,
        &pipeline,
        &summary,
        built,
        &attestations,
        signer.as_ref(),
        args.dry_run,
        &will_pass,
    )?;
    let mut stdout = std::io::stdout().lock();
    if args.flags.json {
        let mut event =
            serde_json::to_value(&cut).map_err(|error| Error::Internal(error.to_string()))?;
        event["event"] = "release_finished".into();
        let _ = writeln!(stdout, "{event}");
    } else {
        let _ = write!(stdout, "{}", render(&cut));
    }
    Ok(0)
}

/// The check `gantry release verify` will make (the tag aside), before the tag is made: the
/// failures, when there are any, as one error.
fn will_pass(
    pipeline: &crate::pipeline::Pipeline,
    attestations: &std::path::Path,
    policy_given: &std::path::Path,
    version: &str,
    json: bool,
) -> Result<()> {
    let policy = std::path::absolute(policy_given).unwrap_or_else(|_| policy_given.to_owned());
    let root = crate::pipeline::git_root(&pipeline.root).unwrap_or_else(|| pipeline.root.clone());
    let report = check::check(&check::Request {
        root: &root,
        attestations,
        version,
        policy: &policy,
        now: crate::time::unix_now(),
        tagged: false,
    })?;
    if report.passed {
        return Ok(());
    }
    if !json {
        eprint!("{}", report.render());
    }
    let mut failed: Vec<String> = (report.checks.iter())
        .filter(|check| !check.passed && check.name != "policy")
        .map(|check| format!("{}: {}", check.name, check.findings.join("; ")))
        .collect();
    if let Some(verification) = &report.verification {
        failed.extend(
            (verification.checks.iter())
                .flat_map(|check| &check.failures)
                .take(5)
                .map(|finding| finding.message.clone()),
        );
    }
    Err(Error::Release(format!(
        "the release would not pass `gantry release verify` with policy `{}`: {}. No tag was made; the manifest and notes are in `{}` for a look",
        policy_given.display(),
        failed.join("; "),
        attestations
            .join(crate::release::FOLDER)
            .join(version)
            .display()
    )))
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

/// `--reproduce`: rebuilds what made the artifacts and names the signed Statement in
/// `built`; an exit code when interrupted.
fn reproduce(
    pipeline: &crate::pipeline::Pipeline,
    environment: &Environment,
    request: repro::Request,
    signer: &Arc<crate::keys::EcdsaSigner>,
    built: &mut cut::Built,
) -> Result<Option<u8>> {
    let json = request.json;
    let attestations = request.attestations.clone();
    let verifier = EcdsaVerifier::from_pem(signer.public_key_pem()).map_err(Error::Internal)?;
    let options = repro::options(pipeline, environment, request, Box::new(verifier))?;
    let shared: Arc<dyn Signer> = Arc::clone(signer) as Arc<dyn Signer>;
    let report = crate::repro::repro(pipeline, &shared, &options)?;
    if let Some(signal) = report.interrupted_by {
        return Ok(Some(u8::try_from(128 + signal).unwrap_or(130)));
    }
    if !json {
        eprint!("{}", repro::render(&report, &pipeline.root));
    }
    let (Some(statement), Some(predicate)) = (&report.statement, &report.predicate) else {
        return Err(Error::Internal(
            "the reproduction signed no Statement".to_owned(),
        ));
    };
    built.attach_reproducibility(statement, predicate, &attestations)?;
    Ok(None)
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
