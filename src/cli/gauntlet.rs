//! `gantry gauntlet report RUN_DIR`: a run's gate verdicts by stage, as a table, `--json` or a
//! self-contained `--html` page. Exit 0 when every gate passed, 1 when one failed or none is
//! there, 2 on a usage error.

use std::io::Write as _;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::gauntlet::report;
use crate::store::atomic;
use crate::verify::evidence;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Render a run's gate verdicts (`attestations/<run-id>/*.gate.intoto.json`) by stage:
    /// thresholds, measured values, verdicts. `gantry verify` checks their signatures.
    Report(ReportArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
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

pub fn run(command: &Command) -> Result<u8> {
    match command {
        Command::Report(args) => run_report(args),
    }
}

fn run_report(args: &ReportArgs) -> Result<u8> {
    let paths = evidence::list_folder(&args.run).map_err(|error| {
        Error::Usage(format!(
            "cannot read run folder `{}`: {error}",
            args.run.display()
        ))
    })?;
    let mut files = Vec::with_capacity(paths.len());
    for path in paths {
        let bytes = std::fs::read(&path)
            .map_err(|error| Error::Usage(format!("cannot read `{}`: {error}", path.display())))?;
        files.push(evidence::parse(path, 0, &bytes, &[]));
    }
    let report = report::build(&files);
    if let Some(path) = &args.html {
        atomic::write(path, report.html().as_bytes()).map_err(Error::write(path))?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let text =
            serde_json::to_string(&report).map_err(|error| Error::Internal(error.to_string()))?;
        let _ = writeln!(stdout, "{text}");
    } else {
        let _ = write!(stdout, "{}", report.render());
        if let Some(path) = &args.html {
            let _ = writeln!(stdout, "html: {}", path.display());
        }
    }
    Ok(u8::from(!report.passed))
}
