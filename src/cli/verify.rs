//! `gantry verify --policy P --attestations DIR ARTIFACT...`: the offline verdict, as a report
//! (`--json` for machines) and, with `--vsa FILE`, a signed SLSA Verification Summary.
//! Exit 0 when every check holds, 1 when one fails, 2 on a usage error (a bad policy too).

use std::io::Write as _;
use std::path::PathBuf;

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::error::{Error, Result};
use crate::store::atomic;
use crate::verify::{self, gather};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The policy (TOML; `gantry schema policy` prints its schema).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// A folder of attestations: a run's folder, a `gantry repro` folder. Repeatable.
    #[arg(long = "attestations", value_name = "DIR", required = true)]
    attestations: Vec<PathBuf>,
    /// Write a signed SLSA Verification Summary Attestation (passing or not).
    #[arg(long, value_name = "FILE")]
    vsa: Option<PathBuf>,
    /// Signs the VSA (default: the development key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Check every attestation's own signature, also of the files that a verified
    /// provenance lists byte for byte and that name its key (slower; the same verdict).
    #[arg(long)]
    every_signature: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// The artifacts to verify.
    #[arg(required = true, value_name = "ARTIFACT")]
    artifacts: Vec<PathBuf>,
}

pub fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let artifacts = (args.artifacts.iter())
        .map(|path| gather::artifact(path))
        .collect::<Result<Vec<_>>>()?;
    let now = crate::exec::run::unix_now();
    let signatures = if args.every_signature {
        verify::Signatures::Every
    } else {
        verify::Signatures::ThroughProvenance
    };
    let report = gather::verify_files(
        &args.policy,
        &args.attestations,
        &artifacts,
        now,
        signatures,
    )?;
    if let Some(path) = &args.vsa {
        let signer = signer(args.key.as_deref(), environment)?;
        let bytes = verify::vsa::write(&report, now, &signer).map_err(Error::Internal)?;
        atomic::write(path, &bytes).map_err(Error::write(path))?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let text =
            serde_json::to_string(&report).map_err(|error| Error::Internal(error.to_string()))?;
        let _ = writeln!(stdout, "{text}");
    } else {
        let _ = write!(stdout, "{}", report.render());
        if let Some(path) = &args.vsa {
            let _ = writeln!(stdout, "verification summary: {}", path.display());
        }
    }
    Ok(u8::from(!report.passed))
}
