//! `gantry verify --policy P --attestations DIR ARTIFACT...`: the offline verdict, as a report
//! (`--json` for machines) and, with `--vsa FILE`, a signed SLSA Verification Summary.
//! Exit 0 when every check holds, 1 when one fails, 2 on a usage error (a bad policy too).

use std::io::Write as _;
use std::path::PathBuf;

use crate::atomic;
use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::error::{Error, Result};
use crate::verify::{self, gather};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The policy (TOML; `gantry schema policy` prints its schema).
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// A folder of attestations: a run's folder, a `gantry repro` folder. Repeatable. Default:
    /// the newest run of the pipeline the policy approves (`[require] pipeline`).
    #[arg(long = "attestations", value_name = "DIR")]
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

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let artifacts = (args.artifacts.iter())
        .map(|path| gather::artifact(path))
        .collect::<Result<Vec<_>>>()?;
    let now = crate::time::unix_now();
    let signatures = if args.every_signature {
        verify::Signatures::Every
    } else {
        verify::Signatures::ThroughProvenance
    };
    let folders = if args.attestations.is_empty() {
        vec![newest_run(&args.policy, environment)?]
    } else {
        args.attestations.clone()
    };
    let report = gather::verify_files(&args.policy, &folders, &artifacts, now, signatures)?;
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

/// The newest run of the pipeline `policy` approves, in its root's `attestations/`.
fn newest_run(policy: &std::path::Path, environment: &Environment) -> Result<PathBuf> {
    let text = crate::bounded::read_to_string(policy, crate::bounded::Kind::Policy)
        .map_err(Error::read(policy))?;
    let source = crate::pipeline::SourceFile {
        path: policy.to_owned(),
        text: std::sync::Arc::from(text),
    };
    let parsed = crate::verify::policy::parse(&source)
        .map_err(|diagnostics| Error::Policy(Box::new(diagnostics)))?;
    let Some(file) = parsed.require.pipeline else {
        return Err(Error::Usage(format!(
            "`{}` approves no pipeline (`[require] pipeline`), so there is no newest run to take: pass --attestations attestations/<run-id>",
            policy.display()
        )));
    };
    // `policies/../pipeline.toml` is the run's `pipeline.toml`.
    let file = file.canonicalize().map_err(Error::read(&file))?;
    // Verification never changes a lock: the approved pipeline's templates are its lock's.
    let pipeline = environment.load_as(&file, &crate::pipeline::TemplateMode::Locked)?;
    let root = pipeline
        .root
        .canonicalize()
        .unwrap_or_else(|_| pipeline.root.clone());
    let relative = (file.strip_prefix(&root))
        .unwrap_or(&file)
        .to_string_lossy()
        .into_owned();
    let attestations = pipeline.root.join(crate::run::DEFAULT_ATTESTATIONS);
    let run = crate::repro::attested::latest_run(&attestations, &relative).map_err(|_| {
        Error::Usage(format!(
            "no finished run of `{relative}` in `{}`: run it first, or pass --attestations DIR",
            attestations.display()
        ))
    })?;
    eprintln!(
        "gantry: verifying {} (the newest run of {relative})",
        run.display()
    );
    Ok(run)
}
