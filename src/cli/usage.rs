//! `gantry usage report` and `gantry usage verify` (docs/usage.md): price the signed usage
//! documents of runs with a rate card; check a signed report against the documents.

use std::path::PathBuf;

use crate::attest::{Envelope, PAYLOAD_TYPE, ResourceDescriptor, Statement};
use crate::cli::Environment;
use crate::cli::keys::{signer, verifier};
use crate::diagnostic::SourceFile;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::keys::{Signer, Verifier};
use crate::usage::price::{self, GroupBy, Options};
use crate::usage::rate_card::{self, RateCard};
use crate::usage::report::{self, Report};
use crate::usage::{collect, render};

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Price the runs' signed usage documents with a rate card: every document verified first
    /// (one that does not is refused, never counted), each run counted once.
    Report(ReportArgs),
    /// Price the documents a signed report covered again and compare: the same totals (exit
    /// 0) or each difference named (exit 1).
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
struct Sources {
    /// A run folder, or a folder of run folders (default: `attestations` in the workspace's
    /// root); repeat it.
    #[arg(long, value_name = "DIR")]
    attestations: Vec<PathBuf>,
    /// PEM public key the usage documents (and a report) may be signed with (default: that of
    /// the development key); repeat it.
    #[arg(long, value_name = "PEM")]
    public_key: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub(super) struct ReportArgs {
    /// The rate card (TOML; `gantry schema rate-card`).
    #[arg(long, value_name = "FILE")]
    rate_card: PathBuf,
    #[command(flatten)]
    sources: Sources,
    /// Only this tenant's runs and base fee.
    #[arg(long)]
    tenant: Option<String>,
    /// A calendar month, `YYYY-MM` (UTC); default: the current month.
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["since", "until"])]
    period: Option<String>,
    /// The first day, `YYYY-MM-DD` (UTC).
    #[arg(long, value_name = "DAY", requires = "until")]
    since: Option<String>,
    /// The last day, included.
    #[arg(long, value_name = "DAY", requires = "since")]
    until: Option<String>,
    /// How use is grouped into lines.
    #[arg(long, value_name = "BY", value_parser = GroupBy::NAMES, default_value = "tenant")]
    group_by: String,
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Write the report here (atomically) instead of to standard output.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Sign the report with this key: the JSON report becomes a DSSE envelope; another
    /// format is written to `--output` and the signed report beside it, `FILE.intoto.json`.
    #[arg(long, value_name = "KEY")]
    key: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Json,
    Csv,
    Invoice,
    Html,
}

#[derive(Debug, clap::Args)]
pub(super) struct VerifyArgs {
    /// The signed report (`gantry usage report --key ...`).
    #[arg(value_name = "REPORT")]
    report: PathBuf,
    #[command(flatten)]
    sources: Sources,
    /// The development key whose public key to check with when no `--public-key` is given.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(command: &Command, environment: &Environment) -> Result<u8> {
    match command {
        Command::Report(args) => run_report(args, environment),
        Command::Verify(args) => run_verify(args, environment),
    }
}

fn run_report(args: &ReportArgs, environment: &Environment) -> Result<u8> {
    let text = crate::bounded::read_to_string(&args.rate_card, crate::bounded::Kind::Policy)
        .map_err(Error::read(&args.rate_card))?;
    let card = rate_card::parse(&SourceFile {
        path: args.rate_card.clone(),
        text: text.into(),
    })
    .map_err(|diagnostics| Error::Policy(Box::new(diagnostics)))?;
    let now = crate::time::unix_now();
    let (since, until) = period(args, now)?;
    let keys = verifier(&args.sources.public_key, args.key.as_deref(), environment)?;
    let options = Options {
        since,
        until,
        tenant: args.tenant.clone(),
        group_by: GroupBy::parse(&args.group_by).unwrap_or(GroupBy::Tenant),
        now,
        base_fees: true,
        covered: None,
    };
    let (report, runs) = make(&card, &args.sources, &keys, &options)?;
    let rendered = match args.format {
        Format::Json => None,
        Format::Csv => Some(render::csv(&report)),
        Format::Invoice => Some(render::invoice(&report)),
        Format::Html => {
            let regroup = |group_by| {
                price::price(
                    &card,
                    &runs.0,
                    runs.1.clone(),
                    &Options {
                        group_by,
                        ..options.clone()
                    },
                )
                .map_err(|problems| Error::Usage(problems.join("\n")))
            };
            Some(render::html(
                &report,
                &regroup(GroupBy::Day)?,
                &regroup(GroupBy::Pipeline)?,
            ))
        }
    };
    let signing = args
        .key
        .as_ref()
        .map(|path| signer(Some(path), environment))
        .transpose()?;
    let bytes = match (&rendered, &signing) {
        (Some(text), _) => text.clone().into_bytes(),
        (None, Some(signing)) => signed(&report, None, signing)?,
        (None, None) => pretty(&report)?,
    };
    match &args.output {
        Some(path) => {
            crate::atomic::write(path, &bytes).map_err(Error::write(path))?;
            if let (Some(_), Some(signing)) = (&rendered, &signing) {
                let beside = PathBuf::from(format!("{}.intoto.json", path.display()));
                let name = path
                    .file_name()
                    .map_or_else(String::new, |name| name.to_string_lossy().into_owned());
                let envelope = signed(&report, Some((&name, &Digest::of_bytes(&bytes))), signing)?;
                crate::atomic::write(&beside, &envelope).map_err(Error::write(&beside))?;
            }
        }
        None if rendered.is_some() && signing.is_some() => {
            return Err(Error::Usage(
                "a signed report in another format than JSON needs `--output FILE` (the signed report is written beside it)".to_owned(),
            ));
        }
        None => {
            use std::io::Write as _;
            std::io::stdout()
                .write_all(&bytes)
                .map_err(|error| Error::Internal(error.to_string()))?;
        }
    }
    for refused in &report.refused {
        eprintln!(
            "note: not counted: {}: {}",
            crate::report::escape::controls(&refused.file),
            crate::report::escape::controls(&refused.reason)
        );
    }
    Ok(0)
}

type Found = (Vec<price::MeteredRun>, Vec<report::Refused>);

/// The verified documents and the report priced from them.
fn make(
    card: &RateCard,
    sources: &Sources,
    keys: &dyn Verifier,
    options: &Options,
) -> Result<(Report, Found)> {
    let places = if sources.attestations.is_empty() {
        vec![workspace_root().join("attestations")]
    } else {
        sources.attestations.clone()
    };
    let files = collect::find(&places).map_err(|error| Error::Read {
        path: places.first().cloned().unwrap_or_default(),
        source: error,
    })?;
    let (runs, refused) = collect::check(&files, keys);
    let report =
        price::price(card, &runs, refused.clone(), options).map_err(|problems| Error::Input {
            path: card.source.path.clone(),
            message: format!("cannot price every run:\n  {}", problems.join("\n  ")),
        })?;
    Ok((report, (runs, refused)))
}

/// `[since, until)` in Unix seconds.
fn period(args: &ReportArgs, now: i64) -> Result<(i64, i64)> {
    if let (Some(since), Some(until)) = (&args.since, &args.until) {
        let day = |text: &str| {
            crate::time::parse_date(text)
                .ok_or_else(|| Error::Usage(format!("`{text}` is not a day (`YYYY-MM-DD`)")))
        };
        let (since, until) = (day(since)?, day(until)? + 86_400);
        if until <= since {
            return Err(Error::Usage("`--until` is before `--since`".to_owned()));
        }
        return Ok((since, until));
    }
    let month = args
        .period
        .clone()
        .unwrap_or_else(|| crate::time::rfc3339(now)[..7].to_owned());
    let since = crate::time::parse_date(&format!("{month}-01"))
        .ok_or_else(|| Error::Usage(format!("`{month}` is not a month (`YYYY-MM`)")))?;
    let (year, number, _, _, _, _) = crate::time::civil(since);
    let until = since + 86_400 * crate::time::days_in_month(year, number);
    Ok((since, until))
}

fn pretty(report: &Report) -> Result<Vec<u8>> {
    let mut bytes =
        serde_json::to_vec_pretty(report).map_err(|error| Error::Internal(error.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// The report as a signed in-toto Statement about every usage document it counted (and the
/// rendered file, when there is one).
fn signed(
    report: &Report,
    rendered: Option<(&str, &Digest)>,
    signer: &dyn Signer,
) -> Result<Vec<u8>> {
    let mut subject: Vec<ResourceDescriptor> = (report.runs.iter())
        .filter_map(|run| {
            let digest = Digest::from_hex(&run.usage)?;
            Some(ResourceDescriptor::named(
                format!("{}/{}", run.run_id, crate::attest::run_folder::USAGE),
                &digest,
            ))
        })
        .collect();
    if let Some((name, digest)) = rendered {
        subject.push(ResourceDescriptor::named(name, digest));
    }
    let statement = Statement::new(subject, report::URI, report);
    let body =
        serde_json::to_vec(&statement).map_err(|error| Error::Internal(error.to_string()))?;
    let envelope = crate::attest::dsse::sign(PAYLOAD_TYPE, &body, signer);
    let mut bytes =
        serde_json::to_vec_pretty(&envelope).map_err(|error| Error::Internal(error.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn run_verify(args: &VerifyArgs, environment: &Environment) -> Result<u8> {
    let attestation = |message: String| Error::Attestation {
        path: args.report.clone(),
        message,
    };
    let keys = verifier(&args.sources.public_key, args.key.as_deref(), environment)?;
    let bytes = crate::bounded::read(&args.report, crate::bounded::Kind::Attestation)
        .map_err(Error::read(&args.report))?;
    let envelope: Envelope = serde_json::from_slice(&bytes)
        .map_err(|error| attestation(format!("not a signed report (a DSSE envelope): {error}")))?;
    let body = crate::attest::dsse::verify(&envelope, &keys)
        .map_err(|error| attestation(format!("the report's signature does not verify: {error}")))?;
    let statement: Statement<Report> = serde_json::from_slice(&body)
        .map_err(|error| attestation(format!("not a usage report: {error}")))?;
    if statement.predicate_type != report::URI {
        return Err(attestation(format!(
            "its predicate is `{}`, not a usage report",
            statement.predicate_type
        )));
    }
    let rendered = rendered_differences(&args.report, &statement.subject);
    let claimed = statement.predicate;
    let text = claimed.rate_card.text.clone();
    if Digest::of_bytes(text.as_bytes()).hex() != claimed.rate_card.sha256 {
        return Err(attestation(
            "its rate card does not match its digest".to_owned(),
        ));
    }
    let card = rate_card::parse(&SourceFile {
        path: PathBuf::from(format!("{}#rateCard", args.report.display())),
        text: text.into(),
    })
    .map_err(|diagnostics| Error::Policy(Box::new(diagnostics)))?;
    let day = |text: &str| {
        crate::time::parse_date(text).ok_or_else(|| attestation(format!("`{text}` is not a day")))
    };
    let options = Options {
        since: day(&claimed.period.since)?,
        until: day(&claimed.period.until)? + 86_400,
        tenant: claimed.tenant.clone(),
        group_by: GroupBy::parse(&claimed.group_by)
            .ok_or_else(|| attestation(format!("unknown grouping `{}`", claimed.group_by)))?,
        now: crate::time::parse_rfc3339(&claimed.generated_on)
            .ok_or_else(|| attestation("its `generatedOn` is not a time".to_owned()))?,
        base_fees: true,
        covered: Some(claimed.runs.iter().map(|run| run.usage.clone()).collect()),
    };
    let (again, _) = make(&card, &args.sources, &keys, &options)?;
    let mut differences = report::differences(&claimed, &again);
    differences.extend(rendered);
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "report": args.report.display().to_string(),
                "same": differences.is_empty(),
                "total": claimed.total,
                "recomputed": again.total,
                "currency": claimed.currency,
                "runs": again.runs.len(),
                "differences": differences,
            })
        );
    } else if differences.is_empty() {
        println!(
            "ok: {} runs give the report's total, {} {}",
            again.runs.len(),
            claimed.total,
            claimed.currency
        );
    } else {
        println!("differs: {} difference(s)", differences.len());
        for difference in &differences {
            println!("  {}", crate::report::escape::controls(difference));
        }
    }
    Ok(u8::from(!differences.is_empty()))
}

/// A signed report beside a rendered one (`report.html.intoto.json`) names the rendered file
/// by digest: the file beside it must be those bytes. A file that is not there is not checked
/// (said on standard error).
fn rendered_differences(report: &std::path::Path, subjects: &[ResourceDescriptor]) -> Vec<String> {
    let folder = report.parent().unwrap_or_else(|| std::path::Path::new("."));
    let mut found = Vec::new();
    for subject in subjects {
        let Some(name) = subject.name.as_deref() else {
            continue;
        };
        // The usage documents are `RUN/usage.intoto.json`; a rendered file is a bare name.
        if name.contains('/') || name.is_empty() || name == ".." || name == "." {
            continue;
        }
        let path = folder.join(name);
        match Digest::of_file(&path) {
            Ok(digest) if Some(digest) == subject.sha256() => {}
            Ok(_) => found.push(format!(
                "`{}` is not the rendered report that was signed (its SHA-256 differs)",
                path.display()
            )),
            Err(_) => eprintln!(
                "note: the rendered report `{}` is not beside the signed one; not checked",
                path.display()
            ),
        }
    }
    found
}

/// The git work tree holding the current folder, else the current folder.
fn workspace_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    crate::pipeline::git_root(&here).unwrap_or(here)
}
