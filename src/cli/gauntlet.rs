//! `gantry gauntlet report RUN_DIR`: a run's gate verdicts by stage, as a table, `--json` or a
//! self-contained `--html` page; exit 1 when a gate failed or none is there.
//! `gantry gauntlet perturb PIPELINE --seed N --cases M`: the mutation check of the gates;
//! exit 1 when a gate did not answer a perturbation as it must. Usage errors exit 2.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::error::{Error, Result};
use crate::gauntlet::perturb;
use crate::pipeline::model::{Evidence, GateStep};
use crate::verify::evidence;
use crate::verify::gauntlet_report as report;

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Render a run's gate verdicts (`attestations/<run-id>/*.gate.intoto.json`) by stage:
    /// thresholds, measured values, verdicts. `gantry verify` checks their signatures.
    Report(ReportArgs),
    /// The mutation check of a pipeline's gates: re-judge each gate on perturbed evidence
    /// and thresholds (seeded, in parallel) and fail when one does not answer as it must.
    Perturb(PerturbArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct PerturbArgs {
    /// The pipeline whose gates to perturb; their evidence is read from its workspace (run
    /// it first: a drill's last measurement is its verdict there).
    #[arg(value_name = "PIPELINE")]
    pipeline: PathBuf,
    /// The seed: the same seed gives the same report.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How many perturbations.
    #[arg(long, default_value_t = 200)]
    cases: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct ReportArgs {
    /// The run folder (`attestations/<run-id>/`).
    #[arg(value_name = "RUN_DIR")]
    run: PathBuf,
    /// Also write the report as one self-contained HTML page.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(command: &Command) -> Result<u8> {
    match command {
        Command::Report(args) => run_report(args),
        Command::Perturb(args) => run_perturb(args),
    }
}

fn run_perturb(args: &PerturbArgs) -> Result<u8> {
    // Its templates as the lock pins them: perturbing gates never resolves anything.
    let pipeline =
        crate::pipeline::load_with(&args.pipeline, None, &crate::pipeline::TemplateMode::Locked)?;
    let mut gates = Vec::new();
    let mut skipped = Vec::new();
    for step in &pipeline.steps {
        let crate::pipeline::StepKind::Gate(spec) = &step.kind else {
            continue;
        };
        match perturb_source(&pipeline.root, spec) {
            Ok(source) => gates.push(perturb::Gate {
                step: step.name.clone(),
                kind: spec.evidence.kind(),
                source,
                thresholds: spec.thresholds.clone(),
            }),
            Err(why) => skipped.push(format!("{}: {why}", step.name)),
        }
    }
    let report = perturb::run(&gates, args.seed, args.cases, &perturb::read, skipped);
    print(args.json, &report, &report.render())?;
    Ok(u8::from(!report.holes.is_empty() || report.cases == 0))
}

/// A gate's evidence from the workspace: a report's text, criterion's estimates, or a
/// drill's last measurement from its verdict.
fn perturb_source(root: &Path, spec: &GateStep) -> std::result::Result<perturb::Source, String> {
    let missing = |path: &str, error: std::io::Error| {
        format!("cannot read `{path}` ({error}); run the pipeline first")
    };
    match &spec.evidence {
        Evidence::Report { path, .. } => {
            { crate::bounded::read_to_string(&root.join(path), crate::bounded::Kind::Evidence) }
                .map(perturb::Source::Text)
                .map_err(|error| missing(path, error))
        }
        Evidence::Criterion { folder, baseline } => {
            let base = root.join(folder);
            let mut files = Vec::new();
            for entry in walkdir::WalkDir::new(&base).sort_by_file_name() {
                let entry = entry.map_err(|error| format!("cannot read `{folder}`: {error}"))?;
                if entry.file_type().is_file() && entry.file_name() == "estimates.json" {
                    let relative = entry.path().strip_prefix(&base).unwrap_or(entry.path());
                    let text = crate::bounded::read_to_string(
                        entry.path(),
                        crate::bounded::Kind::Evidence,
                    )
                    .map_err(|error| missing(&relative.to_string_lossy(), error))?;
                    files.push((relative.to_string_lossy().into_owned(), text));
                }
            }
            Ok(perturb::Source::Criterion {
                files,
                baseline: baseline.clone(),
            })
        }
        Evidence::Drill { .. } => {
            let bytes =
                crate::bounded::read(&root.join(&spec.output), crate::bounded::Kind::Attestation)
                    .map_err(|error| missing(&spec.output, error))?;
            let file = evidence::parse(root.join(&spec.output), 0, &bytes);
            let measured = |metric: &str| {
                (file.content.as_ref().ok()).and_then(|parsed| match &parsed.kind {
                    evidence::Kind::TestResult(verdict) => (verdict.thresholds.iter())
                        .find(|threshold| threshold.metric == metric)
                        .and_then(|threshold| threshold.measured),
                    _ => None,
                })
            };
            let seconds = measured("seconds")
                .ok_or_else(|| format!("`{}` holds no measured time", spec.output))?;
            #[expect(clippy::cast_possible_truncation)]
            let exit_code = measured("exit_code").map(|code| code as i32);
            Ok(perturb::Source::Drill(crate::gauntlet::drill::Timing {
                seconds,
                exit_code,
            }))
        }
    }
}

fn run_report(args: &ReportArgs) -> Result<u8> {
    let entries = evidence::list_folder(&args.run).map_err(|error| {
        Error::Usage(format!(
            "cannot read run folder `{}`: {error}",
            args.run.display()
        ))
    })?;
    let mut files = Vec::with_capacity(entries.len());
    for entry in entries {
        let bytes = crate::bounded::read(&entry.path, crate::bounded::Kind::Attestation).map_err(
            |error| Error::Usage(format!("cannot read `{}`: {error}", entry.path.display())),
        )?;
        files.push(evidence::parse_listed(&entry, 0, &bytes));
    }
    let report = report::build(&files);
    if let Some(path) = &args.html {
        atomic::write(path, report.html().as_bytes()).map_err(Error::write(path))?;
    }
    let mut text = report.render();
    if let Some(path) = &args.html {
        let _ = writeln!(text, "html: {}", path.display());
    }
    print(args.json, &report, &text)?;
    Ok(u8::from(!report.passed))
}

/// One JSON object with `--json`, else the rendered text.
fn print(json: bool, value: &impl serde::Serialize, text: &str) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    if json {
        let line =
            serde_json::to_string(value).map_err(|error| Error::Internal(error.to_string()))?;
        let _ = writeln!(stdout, "{line}");
    } else {
        let _ = write!(stdout, "{text}");
    }
    Ok(())
}
