//! `gantry run FILE`.

use std::io::IsTerminal;
use std::path::PathBuf;

use crate::cli::Environment;
use crate::cli::keys::{signer, step_keys};
use crate::error::{Error, Result};
use crate::report::Reporter;
use crate::run::RunOptions;

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The pipeline file.
    file: PathBuf,
    /// After a failure, go on with every step that does not depend on it.
    #[arg(long)]
    keep_going: bool,
    /// A build parameter: every command sees `GANTRY_PARAM_NAME=VALUE`, and the provenance
    /// records it (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    parameters: Vec<String>,
    /// Use the templates `gantry.lock` pins and refuse to change it (CI; `GANTRY_LOCKED=1`
    /// does the same).
    #[arg(long)]
    locked: bool,
    #[command(flatten)]
    flags: RunFlags,
}

/// `--jobs N`: at least one.
pub(crate) fn jobs(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("give at least 1: the number of steps to run at once".to_owned()),
        Ok(jobs) => Ok(jobs),
        Err(_) => Err(format!("`{text}` is not a number of steps to run at once")),
    }
}

/// `--tenant NAME`: a tenant name.
fn tenant(text: &str) -> std::result::Result<String, String> {
    crate::pipeline::model::check_tenant(text).map(|()| text.to_owned())
}

/// What `gantry run` and `gantry release` share.
#[derive(Debug, clap::Args)]
pub(super) struct RunFlags {
    /// Steps to run at once (default: the number of cores).
    #[arg(long, short, value_parser = jobs)]
    pub jobs: Option<usize>,
    /// Print one JSON object per line (see docs/json-output.md).
    #[arg(long)]
    pub json: bool,
    /// Where to write `<run-id>/<step>.intoto.json` (default: `attestations/` in the root).
    #[arg(long)]
    pub attestations: Option<PathBuf>,
    /// Signing key for attestations: a cosign key (password from `COSIGN_PASSWORD` or asked) or
    /// a PKCS#8 PEM P-256 key (default: a development key gantry makes once).
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// The provenance's `builder.id`: who ran the build (a CI workflow's URI, say).
    #[arg(long, default_value = crate::attest::provenance::LOCAL_BUILDER_ID)]
    pub builder_id: String,
    /// Also write every attestation as a Sigstore bundle v0.3 (`<name>.sigstore.json`).
    #[arg(long)]
    pub bundles: bool,
    /// Who the run's usage is for (over the pipeline's `[pipeline] tenant`): recorded in the
    /// provenance and the usage document (docs/usage.md).
    #[arg(long, value_name = "NAME", value_parser = tenant)]
    pub tenant: Option<String>,
    /// Run exec steps on this Remote Execution API server (`grpc://HOST:PORT`) instead of the
    /// pipeline's `[executor]`.
    #[arg(long, value_name = "URL")]
    pub remote: Option<String>,
    /// The remote's instance name (with `--remote`).
    #[arg(long, value_name = "NAME", requires = "remote", default_value = "")]
    pub instance: String,
    /// A public key (PEM) whose links also vouch for cached results, besides the run's own
    /// key: for a key rotated out. Its results are signed again with the run's key. Without
    /// it, results another key signed are built again.
    #[arg(long, value_name = "PEM")]
    pub trust_cache_key: Vec<PathBuf>,
}

impl RunFlags {
    /// The folder holding run folders.
    #[must_use]
    pub(super) fn attestations(&self, pipeline: &crate::pipeline::Pipeline) -> PathBuf {
        match &self.attestations {
            Some(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
            None => pipeline.root.join(crate::run::DEFAULT_ATTESTATIONS),
        }
    }
}

/// The store's folder: `GANTRY_CACHE_DIR`, else `.gantry` in the root.
#[must_use]
pub(super) fn cache_dir(
    environment: &Environment,
    pipeline: &crate::pipeline::Pipeline,
) -> PathBuf {
    match &environment.cache_dir {
        Some(path) => std::path::absolute(path).unwrap_or_else(|_| path.clone()),
        None => pipeline.root.join(".gantry"),
    }
}

/// `NAME=VALUE` pairs; names as environment variable names.
pub(crate) fn parameters(given: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut parameters = std::collections::BTreeMap::new();
    for text in given {
        let (name, value) = text
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--param `{text}`: write it as NAME=VALUE")))?;
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Error::Usage(format!(
                "--param `{name}`: names use letters, digits and `_`, and do not start with a digit"
            )));
        }
        if value.contains('\0') {
            return Err(Error::Usage(format!(
                "--param `{name}`: the value contains NUL"
            )));
        }
        if parameters
            .insert(name.to_owned(), value.to_owned())
            .is_some()
        {
            return Err(Error::Usage(format!("--param `{name}` is given twice")));
        }
    }
    Ok(parameters)
}

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let parameters = parameters(&args.parameters)?;
    let templates = if args.locked {
        crate::pipeline::TemplateMode::Locked
    } else {
        environment.templates.clone()
    };
    let pipeline = environment.load_as(&args.file, &templates)?;
    let signer = signer(args.flags.key.as_deref(), environment)?;
    let options = options(
        &pipeline,
        &args.flags,
        environment,
        args.keep_going,
        parameters,
    )?;
    let summary = crate::run::run(pipeline, Box::new(signer), options)?;
    Ok(exit_code(&summary))
}

#[must_use]
pub(super) fn exit_code(summary: &crate::run::RunSummary) -> u8 {
    match summary.interrupted_by {
        Some(signal) => u8::try_from(128 + signal).unwrap_or(130),
        None if summary.success() => 0,
        None => 1,
    }
}

/// A run's options from the flags and the environment: the keys no step may read (the sign
/// steps' and the run's own), the remote executor, the caches and folders.
pub(super) fn options(
    pipeline: &crate::pipeline::Pipeline,
    flags: &RunFlags,
    environment: &Environment,
    keep_going: bool,
    parameters: std::collections::BTreeMap<String, String>,
) -> Result<RunOptions> {
    let mut artifact_keys = step_keys(pipeline, environment)?;
    if let Some(key) = &flags.key {
        artifact_keys
            .files
            .push(std::path::absolute(key).unwrap_or_else(|_| key.clone()));
    } else {
        // The development key signs this run: no tool may hold it either.
        artifact_keys.files.extend(crate::keys::default_key_path(
            environment.xdg_data_home.as_deref(),
            environment.home.as_deref(),
        ));
    }
    if let Some(url) = &flags.remote {
        crate::pipeline::executor_config::check_url(url).map_err(Error::Usage)?;
    }
    let mut trusted_cache_keys: Vec<Box<dyn crate::keys::Verifier>> = Vec::new();
    for path in &flags.trust_cache_key {
        let pem = crate::bounded::read_to_string(path, crate::bounded::Kind::Policy)
            .map_err(Error::read(path))?;
        let key = crate::keys::EcdsaVerifier::from_pem(&pem).map_err(|message| Error::Key {
            path: path.clone(),
            message,
        })?;
        trusted_cache_keys.push(Box::new(key));
    }
    let jobs = flags
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    let attestations = flags.attestations(pipeline);
    let cache_dir = cache_dir(environment, pipeline);
    let reporter = Reporter::new(flags.json, std::io::stderr().is_terminal());
    Ok(RunOptions {
        remote: flags
            .remote
            .as_ref()
            .map(|url| crate::pipeline::model::Remote {
                url: url.clone(),
                instance: flags.instance.clone(),
            }),
        jobs,
        keep_going,
        attestations,
        cache_dir,
        reporter,
        rebuild: None,
        artifact_keys,
        cargo_home: environment.cargo_folder(),
        parameters,
        builder_id: flags.builder_id.clone(),
        bundles: flags.bundles,
        home: environment.home.clone(),
        release: None,
        tenant: flags.tenant.clone(),
        trusted_cache_keys,
    })
}
