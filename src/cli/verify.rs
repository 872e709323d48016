//! `gantry verify --policy P --attestations DIR ARTIFACT...`: the offline verdict, as a report
//! (`--json` for machines) and, with `--vsa FILE`, a signed SLSA Verification Summary.
//! Exit 0 when every check holds, 1 when one fails, 2 on a usage error (a bad policy too).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::pipeline::diagnostic::SourceFile;
use crate::store::atomic;
use crate::verify::{self, Artifact, evidence, policy};

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
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// The artifacts to verify.
    #[arg(required = true, value_name = "ARTIFACT")]
    artifacts: Vec<PathBuf>,
}

pub fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let policy = load_policy(&args.policy)?;
    let keys = policy::load_keys(&policy, &|path: &Path| std::fs::read_to_string(path))
        .map_err(|diagnostics| Error::Policy(Box::new(diagnostics)))?;
    let mut listed = Vec::new();
    for (folder, path) in args.attestations.iter().enumerate() {
        let found = evidence::list_folder(path).map_err(|error| {
            Error::Usage(format!(
                "cannot read attestations `{}`: {error}",
                path.display()
            ))
        })?;
        listed.extend(found.into_iter().map(|file| (file, folder)));
    }
    let files = crate::parallel::map(&listed, |(path, folder)| {
        std::fs::read(path)
            .map(|bytes| evidence::parse(path.clone(), *folder, &bytes, &keys))
            .map_err(|error| {
                Error::Usage(format!(
                    "cannot read attestation `{}`: {error}",
                    path.display()
                ))
            })
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    let mut artifacts = Vec::with_capacity(args.artifacts.len());
    for path in &args.artifacts {
        let digest = Digest::of_file(path).map_err(|error| {
            Error::Usage(format!(
                "cannot read artifact `{}`: {error}",
                path.display()
            ))
        })?;
        artifacts.push(Artifact {
            name: path.display().to_string(),
            digest,
        });
    }
    let approved = policy
        .require
        .pipeline
        .as_deref()
        .map(approved_pipeline)
        .transpose()?;
    let now = crate::exec::run::unix_now();
    let report = verify::verify(&verify::Input {
        policy: &policy,
        keys: &keys,
        evidence: &files,
        artifacts: &artifacts,
        approved: approved.as_ref(),
        now,
    });
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

fn load_policy(path: &Path) -> Result<policy::Policy> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Error::Usage(format!("cannot read policy `{}`: {error}", path.display()))
    })?;
    let source = SourceFile {
        path: path.to_path_buf(),
        text: Arc::from(text),
    };
    policy::parse(&source).map_err(|diagnostics| Error::Policy(Box::new(diagnostics)))
}

/// The policy's approved pipeline: its digest and each gate's thresholds. A pipeline that
/// does not validate is a usage error, shown at its line.
fn approved_pipeline(path: &Path) -> Result<verify::ApprovedPipeline> {
    let pipeline = crate::pipeline::load(path)?;
    let gates = (pipeline.steps.iter())
        .filter_map(|step| match &step.kind {
            crate::pipeline::StepKind::Gate(gate) => {
                Some((step.name.clone(), gate.thresholds.clone()))
            }
            _ => None,
        })
        .collect();
    Ok(verify::ApprovedPipeline {
        path: path.display().to_string(),
        digest: pipeline.digest,
        gates,
    })
}
