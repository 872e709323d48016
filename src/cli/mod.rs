//! The command line: parse arguments, call one library operation, render its result. The
//! only place that reads the process environment and prints errors.

#![expect(
    clippy::disallowed_methods,
    reason = "the CLI is the one place that reads the process environment"
)]

mod check;
mod export;
mod gauntlet;
mod gc;
mod graph;
mod init;
mod keys;
mod log;
mod logs;
mod password;
mod release;
mod repro;
mod run;
mod sbom;
mod schema;
mod template;
mod usage;
mod verify;
mod vulns;
mod worker;

use std::ffi::OsString;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::error::Error;
use crate::pipeline::cache::ModelCache;

#[derive(Debug, Parser)]
#[command(
    name = "gantry",
    version,
    about = "Declarative build and release orchestrator: hermetic, cached, attested pipelines"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a pipeline: every step hermetically, cached by content, each signed as an in-toto link.
    Run(run::Args),
    /// Cut a tagged release: git checks, the release pipeline, a signed manifest, notes, an
    /// annotated tag. `release verify VERSION` checks one.
    Release(release::Args),
    /// Rebuild from scratch in varied surroundings and check every output against a run's
    /// attestations; sign the result.
    Repro(repro::Args),
    /// Write a pipeline, a policy and `.gitignore` lines for the project in a folder (Cargo,
    /// configure/CMake/make, npm, Python, Go, a Nix flake).
    Init(init::Args),
    /// Validate a pipeline file (exit 0 when valid, 1 with diagnostics when not).
    Check(check::Args),
    /// Print a pipeline's step graph as Graphviz dot, JSON or Mermaid.
    Graph(graph::Args),
    /// Write an SBOM (SPDX 2.3 or `CycloneDX` 1.6) of a `Cargo.lock`, a Nix closure or a folder,
    /// and its signed
    /// attestation.
    Sbom(sbom::Args),
    /// Print the JSON Schema of the pipeline language or of policies (for editor completion).
    Schema(schema::Args),
    /// Verify artifacts offline against a policy: signatures, one run, the chain of materials
    /// back to sources, required steps, SBOM, reproducibility; optionally write a signed VSA.
    Verify(verify::Args),
    /// Export a run's attestations for other tools: `export in-toto` writes legacy in-toto
    /// links and a signed layout that the reference `in-toto-verify` checks.
    #[command(subcommand)]
    Export(export::Command),
    /// The gauntlet: `gauntlet report` renders a run's gate verdicts by stage (table, JSON,
    /// HTML).
    #[command(subcommand)]
    Gauntlet(gauntlet::Command),
    /// Known vulnerabilities: `vulns scan` matches an SBOM against an advisory database on
    /// disk (OSV records, a RustSec advisory-db checkout), offline.
    #[command(subcommand)]
    Vulns(vulns::Command),
    /// What runs used, priced: `usage report` turns the runs' signed usage documents into a
    /// bill with a rate card (JSON, CSV, an invoice, HTML); `usage verify` re-checks a signed
    /// report.
    #[command(subcommand)]
    Usage(usage::Command),
    /// Remove old runs and what only they needed from the store and the attestation folder.
    Gc(gc::Args),
    /// Print what a step wrote to stdout and stderr in a run (the newest, by default).
    Logs(logs::Args),
    /// The tamper-evident run log (`.gantry/log`): verify it, show it.
    #[command(subcommand)]
    Log(log::Command),
    /// Signing keys: make a cosign-compatible pair, print a public key.
    #[command(subcommand, alias = "key")]
    Keys(keys::Command),
    /// Step templates: `template publish` signs one into a registry folder, `template update`
    /// resolves a pipeline's `uses` again into `gantry.lock`, `template yank` withdraws a
    /// version.
    #[command(subcommand)]
    Template(template::Command),
    /// Serve a Remote Execution API server as a worker (Remote Workers API): run the actions
    /// it leases in gantry's sandbox, upload their outputs, report their results.
    Worker(worker::Args),
}

/// What the CLI reads from the environment, read once.
pub struct Environment {
    pub cache_dir: Option<PathBuf>,
    pub home: Option<PathBuf>,
    pub xdg_data_home: Option<PathBuf>,
    pub xdg_cache_home: Option<PathBuf>,
    /// Passwords of encrypted keys.
    pub passwords: password::PasswordSource,
    /// `SOURCE_DATE_EPOCH`, as given.
    pub source_date_epoch: Option<String>,
    /// `CARGO_HOME`: where the registry cache with crates' manifests is.
    pub cargo_home: Option<PathBuf>,
    /// How `gantry.lock` may change (`--locked`, or `GANTRY_LOCKED=1` in CI: not at all).
    pub templates: crate::pipeline::TemplateMode,
}

impl Environment {
    fn from_process() -> Self {
        let path = |name: &str| {
            std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .map(PathBuf::from)
        };
        Self {
            cache_dir: path("GANTRY_CACHE_DIR"),
            home: path("HOME"),
            xdg_data_home: path("XDG_DATA_HOME"),
            xdg_cache_home: path("XDG_CACHE_HOME"),
            passwords: password::PasswordSource {
                // Set but empty is a password too: cosign keys may have an empty one.
                from_environment: std::env::var("COSIGN_PASSWORD")
                    .ok()
                    .map(zeroize::Zeroizing::new),
            },
            source_date_epoch: std::env::var("SOURCE_DATE_EPOCH").ok(),
            cargo_home: path("CARGO_HOME"),
            templates: if path("GANTRY_LOCKED").is_some() {
                crate::pipeline::TemplateMode::Locked
            } else {
                crate::pipeline::TemplateMode::Use
            },
        }
    }
}

impl Environment {
    /// Where cargo keeps its registry cache (read for crates' licences): `CARGO_HOME`, else
    /// `~/.cargo`.
    #[must_use]
    pub fn cargo_folder(&self) -> Option<PathBuf> {
        self.cargo_home
            .clone()
            .or_else(|| self.home.as_ref().map(|home| home.join(".cargo")))
    }

    /// Validated pipelines are kept under `$XDG_CACHE_HOME/gantry/pipelines` (or
    /// `~/.cache/gantry/pipelines`): per user, outside every workspace.
    fn pipeline_cache(&self) -> Option<ModelCache> {
        let base = match (&self.xdg_cache_home, &self.home) {
            (Some(cache), _) if cache.is_absolute() => cache.clone(),
            (_, Some(home)) => home.join(".cache"),
            _ => return None,
        };
        Some(ModelCache::new(base.join("gantry").join("pipelines")))
    }

    /// Reads and validates a pipeline file (through the model cache).
    ///
    /// A file with mistakes reports the graph's mistakes among its valid steps with them, so
    /// that one pass shows them all.
    pub fn load(&self, file: &std::path::Path) -> crate::error::Result<crate::pipeline::Pipeline> {
        self.load_as(file, &self.templates)
    }

    /// [`Environment::load`] with the lock kept or changed as `templates` says.
    pub fn load_as(
        &self,
        file: &std::path::Path,
        templates: &crate::pipeline::TemplateMode,
    ) -> crate::error::Result<crate::pipeline::Pipeline> {
        match crate::pipeline::load_with(file, self.pipeline_cache().as_ref(), templates) {
            Err(crate::error::Error::Pipeline(mut diagnostics)) => {
                if let Ok(parsed) = crate::pipeline::load_partial(file, templates)
                    && let Some(partial) = parsed.pipeline
                {
                    diagnostics.items.extend(
                        crate::run::plan_mistakes(&partial, parsed.whole).unwrap_or_default(),
                    );
                }
                Err(crate::error::Error::Pipeline(diagnostics))
            }
            loaded => loaded,
        }
    }
}

/// Whether gantry accepts `args` (what follows `gantry`) as a command line, and if not, clap's
/// message: for tests that check the commands documentation and CI examples name.
pub fn accepts(args: &[&str]) -> Result<(), String> {
    Cli::try_parse_from(std::iter::once("gantry").chain(args.iter().copied()))
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// Runs gantry with `args`; returns the process exit code.
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return ExitCode::from(if error.use_stderr() { 2 } else { 0 });
        }
    };
    let environment = Environment::from_process();
    crate::nix::configure(
        std::env::var_os("GANTRY_NIX").map(PathBuf::from),
        std::env::var_os("PATH").as_deref(),
    );
    let result = match cli.command {
        Command::Run(args) => run::run(&args, &environment),
        Command::Release(args) => release::run(args, &environment),
        Command::Repro(args) => repro::run(args, &environment),
        Command::Init(args) => init::run(&args, &environment),
        Command::Check(args) => check::run(&args, &environment),
        Command::Graph(args) => graph::run(&args, &environment),
        Command::Sbom(args) => sbom::run(&args, &environment),
        Command::Schema(args) => schema::run(&args),
        Command::Verify(args) => verify::run(&args, &environment),
        Command::Export(command) => export::run(&command, &environment),
        Command::Keys(command) => keys::run(command, &environment),
        Command::Log(command) => log::run(command, &environment),
        Command::Logs(args) => logs::run(&args, &environment),
        Command::Gc(args) => gc::run(&args, &environment),
        Command::Gauntlet(command) => gauntlet::run(&command),
        Command::Vulns(command) => vulns::run(&command, &environment),
        Command::Usage(command) => usage::run(&command, &environment),
        Command::Template(command) => template::run(&command, &environment),
        Command::Worker(args) => worker::run(&args, &environment),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            render_error(&error);
            ExitCode::from(error.category().exit_code())
        }
    }
}

fn render_error(error: &Error) {
    let mut stderr = std::io::stderr().lock();
    let text = match error {
        Error::Pipeline(diagnostics) | Error::Policy(diagnostics) => diagnostics.render(),
        other => format!("error: {other}\n"),
    };
    let _ = write!(stderr, "{}", crate::report::escape::controls(&text));
}
