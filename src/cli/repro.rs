//! `gantry repro FILE`: rebuild from scratch in varied surroundings and check every output
//! against a run's attestations.

use std::fmt::Write as _;
use std::io::{IsTerminal, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::Environment;
use crate::cli::keys::{signer, step_keys};
use crate::error::{Error, Result};
use crate::exec::variation::parse_aspects;
use crate::keys::{EcdsaVerifier, Signer, Verifier};
use crate::report::Reporter;
use crate::repro::{self, ReproOptions, ReproReport};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The pipeline file.
    file: PathBuf,
    /// The run folder to check (default: the newest run in the attestation folder).
    #[arg(long, value_name = "RUN_FOLDER")]
    against: Option<PathBuf>,
    /// Rebuild and check only this step and the steps it depends on (repeatable).
    #[arg(long = "step", value_name = "STEP")]
    steps: Vec<String>,
    /// What to vary: `all`, `none`, or a list such as `umask,locale` or `all,-file-order`
    /// (build-path, home, tmpdir, hostname, user, umask, locale, timezone, clock, file-order).
    #[arg(long, default_value = "all")]
    vary: String,
    /// Steps to rebuild at once (default: the number of cores).
    #[arg(long, short, value_parser = crate::cli::run::jobs)]
    jobs: Option<usize>,
    /// Print the run's events and the result as JSON lines.
    #[arg(long)]
    json: bool,
    /// The attestation folder (default: `attestations/` in the root); results go to its
    /// `repro/<run-id>/`.
    #[arg(long)]
    attestations: Option<PathBuf>,
    /// Signs the reproducibility Statement (default: the development key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// PEM public key the checked run was signed with (default: that of `--key`).
    #[arg(long, value_name = "PEM")]
    public_key: Option<PathBuf>,
    /// Folder for the rebuilt steps' scratch folders (default: /dev/shm when file order
    /// varies, since tmpfs lists entries in creation order).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Also write each attestation and the Statement as a Sigstore bundle
    /// (`<name>.sigstore.json`, with a `dsseEnvelope`).
    #[arg(long)]
    bundles: bool,
    /// How long the extra rebuilds that explain a difference (standard surroundings, then one
    /// variation at a time) may take in all, such as `10m`; `0s` explains none (default: twice
    /// the first rebuild, at least a minute).
    #[arg(long, value_name = "DURATION", value_parser = budget)]
    explain_budget: Option<std::time::Duration>,
    /// The size a diffoscope report is cut at, such as `4MiB`; `none` writes whole reports
    /// (default: 1MiB).
    #[arg(long, value_name = "SIZE", value_parser = report_limit)]
    diffoscope_limit: Option<ReportLimit>,
}

/// `--diffoscope-limit`: a size, or `none`.
#[derive(Clone, Copy, Debug)]
pub(super) struct ReportLimit(Option<u64>);

fn report_limit(text: &str) -> std::result::Result<ReportLimit, String> {
    if text == "none" {
        return Ok(ReportLimit(None));
    }
    crate::pipeline::limits::parse_size(text).map(|size| ReportLimit(Some(size)))
}

fn budget(text: &str) -> std::result::Result<std::time::Duration, String> {
    crate::duration::parse(text)
}

pub(super) fn run(args: Args, environment: &Environment) -> Result<u8> {
    let pipeline = environment.load(&args.file)?;
    let aspects = parse_aspects(&args.vary).map_err(Error::Usage)?;
    let signer: Arc<dyn Signer> = Arc::new(signer(args.key.as_deref(), environment)?);
    let verifier: Box<dyn Verifier> = match &args.public_key {
        Some(path) => {
            let pem = crate::bounded::read_to_string(path, crate::bounded::Kind::Policy)
                .map_err(Error::read(path))?;
            Box::new(EcdsaVerifier::from_pem(&pem).map_err(|message| Error::Key {
                path: path.clone(),
                message,
            })?)
        }
        None => {
            Box::new(EcdsaVerifier::from_pem(signer.public_key_pem()).map_err(Error::Internal)?)
        }
    };
    let absolute = |path: PathBuf| std::path::absolute(&path).unwrap_or(path);
    let attestations = args.attestations.map_or_else(
        || pipeline.root.join(crate::run::DEFAULT_ATTESTATIONS),
        absolute,
    );
    let root = pipeline.root.clone();
    let options = options(
        &pipeline,
        environment,
        Request {
            against: args.against.map(absolute),
            steps: args.steps,
            aspects,
            attestations,
            scratch: args.scratch.map(absolute),
            jobs: args.jobs,
            json: args.json,
            bundles: args.bundles,
            explain_budget: args.explain_budget,
            diffoscope_limit: args.diffoscope_limit,
        },
        verifier,
    )?;
    let report = repro::repro(&pipeline, &signer, &options)?;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let line = serde_json::json!({
            "event": "repro_finished",
            "reproduced": report.reproduced(),
            "against": report.against.display().to_string(),
            "folder": report.folder.display().to_string(),
            "statement": report.statement.as_ref().map(|path| path.display().to_string()),
            "notes": report.notes,
            "result": report.predicate,
        });
        let _ = writeln!(stdout, "{line}");
    } else {
        let _ = write!(stdout, "{}", render(&report, &root));
    }
    Ok(match report.interrupted_by {
        Some(signal) => u8::try_from(128 + signal).unwrap_or(130),
        None if report.reproduced() => 0,
        None => 1,
    })
}

/// What a command asks of a reproduction; the rest comes from the environment.
pub(super) struct Request {
    pub against: Option<PathBuf>,
    pub steps: Vec<String>,
    pub aspects: std::collections::BTreeSet<crate::exec::variation::Aspect>,
    pub attestations: PathBuf,
    pub scratch: Option<PathBuf>,
    pub jobs: Option<usize>,
    pub json: bool,
    pub bundles: bool,
    pub explain_budget: Option<std::time::Duration>,
    pub diffoscope_limit: Option<ReportLimit>,
}

/// A reproduction's options: the request, and from the environment the cache, diffoscope,
/// the sign steps' keys, the Cargo registry and the home folder.
pub(super) fn options(
    pipeline: &crate::pipeline::Pipeline,
    environment: &Environment,
    request: Request,
    verifier: Box<dyn Verifier>,
) -> Result<ReproOptions> {
    Ok(ReproOptions {
        against: request.against,
        steps: request.steps,
        aspects: request.aspects,
        attestations: request.attestations,
        cache_dir: crate::cli::run::cache_dir(environment, pipeline),
        scratch: request.scratch,
        jobs: request.jobs.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        }),
        reporter: Reporter::new(request.json, std::io::stderr().is_terminal()),
        verifier,
        diffoscope: repro::diffoscope::locate(
            std::env::var_os("GANTRY_DIFFOSCOPE").as_deref(),
            std::env::var_os("PATH").as_deref(),
        ),
        artifact_keys: step_keys(pipeline, environment)?,
        cargo_home: environment.cargo_folder(),
        home: environment.home.clone(),
        bundles: request.bundles,
        explain_budget: request.explain_budget,
        diffoscope_limit: request
            .diffoscope_limit
            .map_or(Some(repro::DIFFOSCOPE_LIMIT), |limit| limit.0),
    })
}

fn shown(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn short(digest: Option<&crate::digest::Digest>) -> String {
    digest.map_or_else(
        || "(none)".to_owned(),
        |digest| digest.hex()[..16].to_owned(),
    )
}

/// The plain-text summary: one line per output, and under each that differs, why.
/// A step with more outputs than this lists only those that differ, one by one.
const LISTED_OUTPUTS: usize = 10;

pub(super) fn render(report: &ReproReport, root: &Path) -> String {
    let mut text = String::new();
    let _ = writeln!(
        text,
        "repro of `{}` against {}",
        report.pipeline,
        shown(&report.against, root)
    );
    if report.variation.aspects.is_empty() {
        let _ = writeln!(text, "varied: nothing (--vary none)");
    } else {
        let _ = writeln!(text, "varied:");
        for (aspect, change) in report.variation.describe() {
            let _ = writeln!(text, "  {:<11} {change}", aspect.name());
        }
    }
    if let Some(signal) = report.interrupted_by {
        let _ = writeln!(text, "interrupted by signal {signal}: nothing was compared");
        return text;
    }
    let _ = writeln!(text);
    let width = report
        .steps
        .iter()
        .map(|step| step.comparison.step.len())
        .max()
        .unwrap_or(0);
    let (mut total, mut good) = (0, 0);
    let mut differing_steps = Vec::new();
    for step in &report.steps {
        let comparison = &step.comparison;
        if comparison.outputs.is_empty() {
            if comparison.reproduced() {
                let _ = writeln!(text, "  {:<width$}  (no outputs)  ran", comparison.step);
            } else {
                let _ = writeln!(
                    text,
                    "  {:<width$}  (no outputs)  NOT CHECKED: {}",
                    comparison.step,
                    step.cause.as_deref().unwrap_or_default()
                );
                differing_steps.push(comparison.step.as_str());
            }
            continue;
        }
        // A folder of thousands of files (vendored crates) is one line when it reproduced:
        // only what differs is listed one by one (`--json` has every output).
        let many = comparison.outputs.len() > LISTED_OUTPUTS;
        let mut folded = 0;
        for output in &comparison.outputs {
            total += 1;
            let reproduced = comparison.attested && comparison.rebuilt && output.reproduced();
            if reproduced {
                good += 1;
            } else if differing_steps.last() != Some(&comparison.step.as_str()) {
                differing_steps.push(comparison.step.as_str());
            }
            if reproduced && many {
                folded += 1;
            } else {
                render_output(&mut text, report, step, output, reproduced, width, root);
            }
        }
        if folded > 0 {
            let _ = writeln!(
                text,
                "  {:<width$}  {folded} outputs reproduced",
                comparison.step
            );
        }
    }
    let _ = writeln!(text);
    for note in &report.notes {
        let _ = writeln!(text, "note: {note}");
    }
    render_spent(&mut text, &report.spent);
    if report.reproduced() {
        let _ = writeln!(text, "all {total} outputs reproduced");
    } else {
        let _ = writeln!(
            text,
            "{good} of {total} outputs reproduced; not reproduced in: {}",
            differing_steps.join(", ")
        );
    }
    if let Some(statement) = &report.statement {
        let _ = writeln!(text, "signed statement: {}", shown(statement, root));
    }
    text
}

/// What explaining took, when it rebuilt anything or left something untried.
fn render_spent(text: &mut String, spent: &repro::attribute::Spent) {
    if spent.rebuilds == 0 && spent.untried.is_empty() {
        return;
    }
    let untried: Vec<&str> = spent.untried.iter().map(|aspect| aspect.name()).collect();
    let _ = writeln!(
        text,
        "explaining: {} rebuild{} in {} of a {} budget{}",
        spent.rebuilds,
        if spent.rebuilds == 1 { "" } else { "s" },
        crate::duration::humanize(spent.spent),
        crate::duration::humanize(spent.budget),
        if untried.is_empty() {
            String::new()
        } else {
            format!(
                "; not tried, as one more rebuild would not fit: {}",
                untried.join(", ")
            )
        }
    );
}

/// One output's line, and under it (when it differs) the digests, the cause and the report.
fn render_output(
    text: &mut String,
    report: &ReproReport,
    step: &repro::StepReport,
    output: &repro::compare::OutputComparison,
    reproduced: bool,
    width: usize,
    root: &Path,
) {
    let name = &step.comparison.step;
    if reproduced {
        let _ = writeln!(text, "  {name:<width$}  {}  reproduced", output.name);
        return;
    }
    let verdict = match (output.attested, output.rebuilt) {
        (Some(_), Some(_)) => "DIFFERS",
        (Some(_), None) if output.differed_without_copy => "DIFFERS",
        (Some(_), None) => "NOT REBUILT",
        (None, _) => "NOT ATTESTED",
    };
    let pad = " ".repeat(width + 4);
    let _ = writeln!(text, "  {name:<width$}  {}  {verdict}", output.name);
    let _ = writeln!(
        text,
        "{pad}attested {}  rebuilt {}",
        short(output.attested.as_ref()),
        short(output.rebuilt.as_ref())
    );
    if let Some(cause) = &step.cause {
        let _ = writeln!(text, "{pad}why: {cause}");
    }
    let Some(explanation) = step.explanations.get(&output.name) else {
        return;
    };
    if let Some(report_path) = &explanation.report {
        let cut = match report.diffoscope_limit {
            Some(limit) if explanation.cut => format!(
                " (cut at {}; `--diffoscope-limit none` for all of it)",
                crate::pipeline::limits::show_size(limit)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            text,
            "{pad}diffoscope: {}{cut}",
            shown(&report.folder.join(report_path), root)
        );
        for line in explanation.excerpt.lines() {
            let _ = writeln!(text, "{pad}  | {line}");
        }
    }
    if let Some(missing) = &explanation.missing {
        let _ = writeln!(text, "{pad}no diffoscope report: {missing}");
    }
}
