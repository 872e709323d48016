//! `gantry log verify` and `gantry log show`: the tamper-evident run log.

use std::path::{Path, PathBuf};

use crate::cli::Environment;
use crate::cli::keys::verifier;
use crate::error::{Error, Result};
use crate::runlog::{self, LogFiles, record};

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Check every record's signature and the hash chain; name the first bad record.
    Verify {
        #[command(flatten)]
        location: Location,
        /// PEM public key the log was signed with (default: that of `--key`); repeat it for a
        /// log whose runs were signed with different keys.
        #[arg(long, value_name = "PEM")]
        public_key: Vec<PathBuf>,
        /// The signing key whose public key to check with (default: the development key).
        #[arg(long)]
        key: Option<PathBuf>,
        /// The run folders whose provenances must each have a record in the log (default:
        /// `attestations` in the workspace's root, when it exists).
        #[arg(long, value_name = "DIR")]
        attestations: Option<PathBuf>,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Print the records (without checking them; `verify` does).
    Show {
        #[command(flatten)]
        location: Location,
        /// Print the records as a JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, clap::Args)]
pub(super) struct Location {
    /// The cache folder holding `log` (default: `GANTRY_CACHE_DIR`, else `.gantry` in the root
    /// of the git work tree holding the current folder, else in the current folder).
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
}

impl Location {
    fn files(&self, environment: &Environment) -> LogFiles {
        let folder = self
            .cache
            .clone()
            .or_else(|| environment.cache_dir.clone())
            .unwrap_or_else(|| workspace_root().join(".gantry"));
        LogFiles::in_folder(&folder)
    }
}

/// The workspace a command run in one of its subfolders is about: the git work tree holding
/// the current folder, else the current folder.
fn workspace_root() -> PathBuf {
    let here = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    crate::pipeline::git_root(&here).unwrap_or(here)
}

pub(super) fn run(command: Command, environment: &Environment) -> Result<u8> {
    match command {
        Command::Verify {
            location,
            public_key,
            key,
            attestations,
            json,
        } => {
            let files = location.files(environment);
            let verifier = verifier(&public_key, key.as_deref(), environment)?;
            let (log, head) = files.read().map_err(Error::read(&files.log))?;
            let folder = attestations.unwrap_or_else(|| workspace_root().join("attestations"));
            let runs = provenances(&folder).map_err(Error::read(&folder))?;
            let outcome = runlog::verify(&log, head.as_deref(), &verifier).and_then(|records| {
                record::check_runs(&records, &runs)?;
                Ok(records)
            });
            print_verdict(&files, &outcome, json);
            Ok(u8::from(outcome.is_err()))
        }
        Command::Show { location, json } => {
            let files = location.files(environment);
            let (log, _) = files.read().map_err(Error::read(&files.log))?;
            let records = record::read_unverified(&log);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&records)
                        .map_err(|error| Error::Internal(error.to_string()))?
                );
            } else {
                print_table(&records);
            }
            Ok(0)
        }
    }
}

/// (run id, SHA-256 of its provenance) for every run folder under `folder` that has one.
fn provenances(folder: &Path) -> std::io::Result<Vec<(String, String)>> {
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(error),
    };
    let mut runs = Vec::new();
    for entry in entries {
        let entry = entry?;
        let provenance = entry.path().join(crate::attest::run_folder::PROVENANCE);
        if !entry.file_type()?.is_dir() || !provenance.is_file() {
            continue;
        }
        let digest = crate::digest::Digest::of_file(&provenance)?;
        runs.push((
            entry.file_name().to_string_lossy().into_owned(),
            digest.hex(),
        ));
    }
    runs.sort();
    Ok(runs)
}

fn print_verdict(
    files: &LogFiles,
    outcome: &Result<Vec<record::Record>, runlog::LogProblem>,
    json: bool,
) {
    let log = files.log.display();
    if json {
        let value = match outcome {
            Ok(records) => serde_json::json!({
                "valid": true,
                "log": log.to_string(),
                "records": records.len(),
                "last": records.last().map(|record| &record.run_id),
            }),
            Err(problem) => serde_json::json!({
                "valid": false,
                "log": log.to_string(),
                "problem": problem.to_string(),
                "first_bad_record": first_bad(problem),
            }),
        };
        println!("{value}");
        return;
    }
    match outcome {
        Ok(records) => match records.last() {
            Some(last) => println!(
                "{log}: {} records, every signature and link verified; the last is run {} ({}, {})",
                records.len(),
                last.run_id,
                last.time,
                last.result
            ),
            None => println!("{log}: empty"),
        },
        Err(problem) => eprintln!("{log}: {problem}"),
    }
}

/// The 1-based number of the first record the problem makes untrustworthy.
fn first_bad(problem: &runlog::LogProblem) -> Option<u64> {
    use runlog::LogProblem as P;
    match *problem {
        P::Truncated { line }
        | P::Damaged { line }
        | P::Signature { line }
        | P::Sequence { line, .. }
        | P::Chain { line, .. }
        | P::HeadMismatch { line } => Some(line),
        P::CutOff { records, .. } => Some(records + 1),
        P::HeadSignature | P::NoHead { .. } | P::Unlogged { .. } => None,
    }
}

fn print_table(records: &[Option<record::Record>]) {
    println!(
        "{:>5}  {:<20}  {:<26}  {:<11}  steps (run/cached/failed/skipped)",
        "seq", "time", "run", "result"
    );
    for (index, record) in records.iter().enumerate() {
        match record {
            Some(record) => println!(
                "{:>5}  {:<20}  {:<26}  {:<11}  {}/{}/{}/{}",
                record.seq,
                record.time,
                record.run_id,
                record.result,
                record.steps.executed,
                record.steps.cached,
                record.steps.failed,
                record.steps.skipped
            ),
            None => println!("{:>5}  (line {} does not parse)", "?", index + 1),
        }
    }
}
