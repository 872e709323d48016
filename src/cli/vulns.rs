//! `gantry vulns scan SBOM --db DIR`: the SBOM's components against an advisory database on
//! disk (OSV records, a RustSec advisory-db checkout), offline. Exit 0 when the thresholds
//! hold (by default: no known vulnerability; warnings, such as an unmaintained crate, never
//! count), 1 when they do not, 2 on a usage error.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::error::{Error, Result};
use crate::vulns::components;
use crate::vulns::db::{Database, Snapshot};
use crate::vulns::scan::{self, Scan};
use crate::vulns::severity::Level;
use crate::vulns::statement;
use crate::vulns::threshold::{self, Allowance, Judged, Thresholds};
use crate::vulns::vex;

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Match an SBOM (SPDX 2.3 or `CycloneDX` JSON, gantry's or another tool's) against an
    /// advisory database on disk.
    Scan(ScanArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct ScanArgs {
    /// The SBOM.
    #[arg(value_name = "SBOM")]
    sbom: PathBuf,
    /// The advisory database: a folder of OSV records (`*.json`) and/or a RustSec
    /// advisory-db checkout (`crates/NAME/RUSTSEC-*.md`).
    #[arg(long, value_name = "DIR")]
    db: PathBuf,
    /// A VEX document (OpenVEX 0.2 or `CycloneDX` VEX): a finding it says the product is
    /// `not_affected` by, or `fixed`, no longer counts (it is listed as suppressed). Repeat it
    /// for several.
    #[arg(long, value_name = "FILE")]
    vex: Vec<PathBuf>,
    /// Fail only on a vulnerability above this severity (`none`, `low`, `medium`, `high`,
    /// `critical`; one of unknown severity counts as `high`). Without any threshold, every
    /// known vulnerability fails the scan.
    #[arg(long, value_name = "LEVEL", value_parser = Level::NAMES)]
    max_severity: Option<String>,
    /// Fail on more than this many vulnerabilities.
    #[arg(long, value_name = "N")]
    max_count: Option<usize>,
    /// Let this vulnerability (any of its ids) through, until the day given if one is:
    /// `ID` or `ID@YYYY-MM-DD`. Repeat it.
    #[arg(long, value_name = "ID[@DATE]")]
    allow: Vec<String>,
    /// Also write the scan as a signed in-toto Statement (the vulns predicate v0.2) about
    /// the artifacts the SBOM describes, to FILE (written even when the thresholds fail: the
    /// auditor sees the failing scan).
    #[arg(long, value_name = "FILE")]
    attest: Option<PathBuf>,
    /// Signs the statement (default: the development key).
    #[arg(long, requires = "attest")]
    key: Option<PathBuf>,
    /// What to print: `text`, `json` (one object) or `sarif` (a SARIF 2.1.0 log, for
    /// code-scanning dashboards and SARIF gates).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

pub(super) fn run(command: &Command, environment: &Environment) -> Result<u8> {
    match command {
        Command::Scan(args) => run_scan(args, environment),
    }
}

#[derive(serde::Serialize)]
struct Report<'a> {
    sbom: String,
    format: &'a str,
    components: usize,
    unmatched: usize,
    database: &'a Snapshot,
    #[serde(flatten)]
    scan: &'a Scan,
    judged: &'a Judged,
}

fn run_scan(args: &ScanArgs, environment: &Environment) -> Result<u8> {
    let started = crate::time::rfc3339(crate::time::unix_now());
    let bytes = crate::bounded::read(&args.sbom, crate::bounded::Kind::Attestation)
        .map_err(Error::read(&args.sbom))?;
    let listed = components::read(&bytes).map_err(|message| Error::Input {
        path: args.sbom.clone(),
        message: format!("not an SBOM gantry reads: {message}"),
    })?;
    let database = Database::open(&args.db).map_err(Error::Usage)?;
    for (path, problem) in &database.unreadable {
        eprintln!(
            "warning: skipped `{}`: {}",
            crate::report::escape::controls(&path.display().to_string()),
            crate::report::escape::controls(problem)
        );
    }
    let mut statements = Vec::new();
    for path in &args.vex {
        let bytes =
            crate::bounded::read(path, crate::bounded::Kind::Policy).map_err(Error::read(path))?;
        statements.extend(
            vex::read(&bytes, &path.display().to_string()).map_err(|message| Error::Input {
                path: path.clone(),
                message: format!("not a VEX document gantry reads: {message}"),
            })?,
        );
    }
    let scan = scan::scan(&database, &listed.components, &statements);
    let mut thresholds = Thresholds {
        max_severity: args.max_severity.as_deref().and_then(Level::parse),
        max_count: args.max_count,
        allow: (args.allow.iter())
            .map(|text| Allowance::parse(text))
            .collect::<std::result::Result<_, _>>()
            .map_err(Error::Usage)?,
    };
    if thresholds.max_severity.is_none() && thresholds.max_count.is_none() {
        thresholds.max_count = Some(0);
    }
    let finished = crate::time::rfc3339(crate::time::unix_now());
    let judged = threshold::judge(&scan, &thresholds, &finished[..10]);
    if let Some(path) = &args.attest {
        let inputs = statement::Inputs {
            listed: &listed,
            db: &args.db.display().to_string(),
            snapshot: &database.snapshot,
            scan: &scan,
            judged: &judged,
            started,
            finished,
        };
        write_statement(args, path, &inputs, environment)?;
    }
    let mut stdout = std::io::stdout().lock();
    let format = if args.json { Format::Json } else { args.format };
    if format == Format::Sarif {
        let log = crate::vulns::sarif::log(&scan, &args.sbom.display().to_string());
        let text = serde_json::to_string_pretty(&log)
            .map_err(|error| Error::Internal(error.to_string()))?;
        let _ = writeln!(stdout, "{text}");
    } else if format == Format::Json {
        let report = Report {
            sbom: args.sbom.display().to_string(),
            format: &listed.format,
            components: listed.components.len(),
            unmatched: listed.unmatched,
            database: &database.snapshot,
            scan: &scan,
            judged: &judged,
        };
        let text =
            serde_json::to_string(&report).map_err(|error| Error::Internal(error.to_string()))?;
        let _ = writeln!(stdout, "{text}");
    } else {
        let _ = write!(
            stdout,
            "{}",
            // An advisory database is somebody else's text: no control character of it
            // reaches the terminal.
            crate::report::escape::controls(&render(args, &listed, &database.snapshot, &scan))
        );
        let _ = write!(
            stdout,
            "{}",
            crate::report::escape::controls(&render_judged(&judged))
        );
    }
    Ok(u8::from(!judged.passed))
}

/// Signs the scan as an in-toto vulns statement and writes it to `path` (its folder made).
fn write_statement(
    args: &ScanArgs,
    path: &std::path::Path,
    inputs: &statement::Inputs<'_>,
    environment: &Environment,
) -> Result<()> {
    let statement = statement::statement(inputs).map_err(|message| Error::Input {
        path: args.sbom.clone(),
        message,
    })?;
    let signer = signer(args.key.as_deref(), environment)?;
    let body =
        serde_json::to_vec(&statement).map_err(|error| Error::Internal(error.to_string()))?;
    let envelope = crate::attest::dsse::sign(crate::attest::PAYLOAD_TYPE, &body, &signer);
    let mut bytes =
        serde_json::to_vec_pretty(&envelope).map_err(|error| Error::Internal(error.to_string()))?;
    bytes.push(b'\n');
    if let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent).map_err(Error::write(parent))?;
    }
    crate::atomic::write(path, &bytes).map_err(Error::write(path))
}

/// The thresholds' verdict: what an allowance let through or no longer does, what failed.
fn render_judged(judged: &Judged) -> String {
    let mut text = String::new();
    for id in &judged.allowed {
        let _ = writeln!(text, "allowed {id}");
    }
    for expired in &judged.expired {
        let _ = writeln!(text, "no longer allowed: {expired}");
    }
    for failure in &judged.failures {
        let _ = writeln!(text, "FAILED: {failure}");
    }
    text
}

/// One vulnerability: its id, the component, the severity, the other ids, the summary, and
/// what a VEX statement that did not suppress it says.
fn vulnerability_line(finding: &scan::Finding) -> String {
    let others: Vec<&str> = (finding.ids.iter())
        .filter(|id| **id != finding.id)
        .map(String::as_str)
        .collect();
    let severity = finding.severity.as_ref().map_or_else(
        || " severity unknown".to_owned(),
        |rating| match rating.score {
            Some(score) => format!(" {} {score:.1}", rating.level.name()),
            None => format!(" {}", rating.level.name()),
        },
    );
    let vex = finding
        .vex
        .as_ref()
        .map(|statement| format!(" [vex: {}]", statement.status.name()))
        .unwrap_or_default();
    format!(
        "  {}  {} {}{severity}{}: {}{vex}",
        finding.id,
        finding.package,
        finding.version,
        if others.is_empty() {
            String::new()
        } else {
            format!(" ({})", others.join(", "))
        },
        finding.summary
    )
}

fn render(
    args: &ScanArgs,
    listed: &components::Listed,
    snapshot: &Snapshot,
    scan: &Scan,
) -> String {
    let mut text = format!(
        "{} ({}): {} components matched{}\n",
        args.sbom.display(),
        listed.format,
        listed.components.len(),
        if listed.unmatched == 0 {
            String::new()
        } else {
            format!(", {} without a purl gantry matches", listed.unmatched)
        }
    );
    let _ = writeln!(
        text,
        "database {}: {} advisories, newest {}, sha256 {}",
        args.db.display(),
        snapshot.advisories,
        if snapshot.last_modified.is_empty() {
            "(none)"
        } else {
            &snapshot.last_modified
        },
        snapshot.digest
    );
    let (warnings, vulnerabilities): (Vec<_>, Vec<_>) = scan
        .findings
        .iter()
        .partition(|finding| finding.informational.is_some());
    for finding in &vulnerabilities {
        let _ = writeln!(text, "{}", vulnerability_line(finding));
    }
    for finding in &warnings {
        let _ = writeln!(
            text,
            "  warning {}  {} {} ({}): {}",
            finding.id,
            finding.package,
            finding.version,
            finding.informational.as_deref().unwrap_or_default(),
            finding.summary
        );
    }
    for finding in &scan.suppressed {
        if let Some(statement) = &finding.vex {
            let _ = writeln!(
                text,
                "  vex {}  {} {}: {} in {}{}",
                finding.id,
                finding.package,
                finding.version,
                statement.status.name(),
                statement.document,
                statement
                    .justification
                    .as_ref()
                    .map(|why| format!(" ({why})"))
                    .unwrap_or_default()
            );
        }
    }
    for unreadable in &scan.unreadable {
        let _ = writeln!(
            text,
            "  unknown  {}: {} cannot order version `{}`",
            unreadable.purl, unreadable.advisory, unreadable.version
        );
    }
    if vulnerabilities.is_empty() {
        let _ = writeln!(text, "no known vulnerability");
    } else {
        let _ = writeln!(
            text,
            "{} known {}",
            vulnerabilities.len(),
            if vulnerabilities.len() == 1 {
                "vulnerability"
            } else {
                "vulnerabilities"
            }
        );
    }
    text
}
