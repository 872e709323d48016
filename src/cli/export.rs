//! `gantry export in-toto --attestations DIR --layout-key KEY --out DIR`: a run's step links
//! as legacy in-toto links plus a signed root layout, for the reference `in-toto-verify`;
//! `gantry export bundle RUN -o FILE.intoto.jsonl`: a run as one in-toto bundle.

use std::path::PathBuf;

use crate::atomic;
use crate::cli::Environment;
use crate::cli::keys::{load, signer};
use crate::error::{Error, Result};
use crate::keys::Signer as _;
use crate::verify::evidence;
use crate::verify::legacy::{self, LegacyLink};

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Legacy in-toto metadata (`root.layout`, `<step>.<keyid>.link`) of a run's step links.
    #[command(name = "in-toto")]
    InToto(Args),
    /// A run's attestations as one in-toto bundle (`*.intoto.jsonl`: a DSSE envelope a line),
    /// self-contained for an auditor: `gantry verify --attestations FILE` reads it.
    Bundle(BundleArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct BundleArgs {
    /// The run folder (`attestations/<run-id>/`).
    run: PathBuf,
    /// The bundle to write (`.intoto.jsonl`).
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The run folder (`attestations/<run-id>/`).
    #[arg(long, value_name = "DIR")]
    attestations: PathBuf,
    /// Signs the layout (the layout owner's key).
    #[arg(long, value_name = "KEY")]
    layout_key: PathBuf,
    /// The key the run was signed with; it signs the exported links (default: the
    /// development key).
    #[arg(long, value_name = "KEY")]
    key: Option<PathBuf>,
    /// Where to write the layout and links.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// When the layout expires (RFC 3339; default: a year from now).
    #[arg(long, value_name = "TIME")]
    expires: Option<String>,
}

pub(super) fn run(command: &Command, environment: &Environment) -> Result<u8> {
    let args = match command {
        Command::InToto(args) => args,
        Command::Bundle(args) => return bundle(args),
    };
    let functionary = signer(args.key.as_deref(), environment)?;
    let layout_key = load(&args.layout_key, environment)?;
    let expires = match &args.expires {
        Some(text) => crate::time::parse_rfc3339(text).ok_or_else(|| {
            Error::Usage(format!("`--expires {text}` is not an RFC 3339 date-time"))
        })?,
        None => crate::time::unix_now() + 365 * 86_400,
    };
    let verifier = functionary.verifier();
    let files = evidence::list_folder(&args.attestations).map_err(|error| {
        Error::Usage(format!(
            "cannot read attestations `{}`: {error}",
            args.attestations.display()
        ))
    })?;
    let mut links = Vec::new();
    for entry in files {
        let path = entry.path;
        let failed = |message: String| Error::Attestation {
            path: path.clone(),
            message,
        };
        let bytes = crate::bounded::read(&path, crate::bounded::Kind::Attestation)
            .map_err(|error| failed(error.to_string()))?;
        let envelope: crate::attest::Envelope = serde_json::from_slice(&bytes)
            .map_err(|error| failed(format!("not a DSSE envelope: {error}")))?;
        let body = crate::attest::dsse::verify(&envelope, &verifier).map_err(|error| {
            failed(format!(
                "{error}: only attestations the run's key (`--key`) signed are exported"
            ))
        })?;
        let statement: serde_json::Value =
            serde_json::from_slice(&body).map_err(|error| failed(error.to_string()))?;
        if statement["predicateType"] == crate::attest::LINK_PREDICATE_TYPE {
            links.push(LegacyLink::from_statement(&statement).map_err(failed)?);
        }
    }
    if links.is_empty() {
        return Err(Error::Usage(format!(
            "`{}` holds no step links",
            args.attestations.display()
        )));
    }
    let written =
        legacy::export(&links, &functionary, &layout_key, expires).map_err(Error::Internal)?;
    std::fs::create_dir_all(&args.out).map_err(Error::write(&args.out))?;
    for (name, bytes) in &written {
        let path = args.out.join(name);
        atomic::write(&path, bytes).map_err(Error::write(&path))?;
    }
    let layout_public = args.out.join("layout.pub");
    atomic::write(&layout_public, layout_key.public_key_pem().as_bytes())
        .map_err(Error::write(&layout_public))?;
    println!(
        "wrote {} links, root.layout and layout.pub to {}",
        links.len(),
        args.out.display()
    );
    println!(
        "check: in-toto-verify --layout {0}/root.layout --verification-keys {0}/layout.pub --link-dir {0}",
        args.out.display()
    );
    Ok(0)
}

/// Writes every attestation of the run (its `SHA256SUMS`, the attestation store, what lies in
/// the folder) as one line each, sorted by name, atomically.
fn bundle(args: &BundleArgs) -> Result<u8> {
    let entries = evidence::list_folder(&args.run).map_err(|error| {
        Error::Usage(format!(
            "cannot read the run `{}`: {error}",
            args.run.display()
        ))
    })?;
    if entries.is_empty() {
        return Err(Error::Usage(format!(
            "`{}` holds no attestations",
            args.run.display()
        )));
    }
    let mut text = Vec::new();
    for entry in &entries {
        let failed = |message: String| Error::Attestation {
            path: entry.path.clone(),
            message,
        };
        let bytes = crate::bounded::read(&entry.path, crate::bounded::Kind::Attestation)
            .map_err(|error| failed(error.to_string()))?;
        if let Some(listed) = entry.listed
            && crate::digest::Digest::of_bytes(&bytes) != listed
        {
            return Err(failed(format!(
                "`{}` is not the file the run's SHA256SUMS names: it was changed where it is stored",
                entry.name
            )));
        }
        text.extend(crate::attest::jsonl::line(&bytes).map_err(failed)?);
    }
    atomic::write(&args.output, &text).map_err(Error::write(&args.output))?;
    println!(
        "wrote {} attestations to {}",
        entries.len(),
        args.output.display()
    );
    println!(
        "check: gantry verify --policy POLICY --attestations {} ARTIFACT",
        args.output.display()
    );
    Ok(0)
}
