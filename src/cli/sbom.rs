//! `gantry sbom --from SOURCE --format spdx|cyclonedx [--subject ARTIFACT] -o FILE`: the
//! document, then its signed attestation beside it (`FILE.intoto.json`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::keys::Signer;
use crate::sbom::{self, Format, Inventory, Subject};
use crate::store::atomic;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to describe: a Cargo.lock, a Nix store path or out-link (its closure), or a
    /// folder (every file).
    #[arg(long, value_name = "SOURCE")]
    from: PathBuf,
    /// The document format.
    #[arg(long, value_parser = ["spdx", "cyclonedx"], default_value = "spdx")]
    format: String,
    /// The artifact the document is for (default: the source itself).
    #[arg(long, value_name = "ARTIFACT")]
    subject: Option<PathBuf>,
    /// Where to write the document; the attestation goes to `FILE.intoto.json`.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Signs the attestation (default: the development key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Also write the attestation as a Sigstore bundle (`FILE.sigstore.json`).
    #[arg(long)]
    bundle: bool,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let format = Format::parse(&args.format)
        .ok_or_else(|| Error::Usage(format!("unknown format `{}`", args.format)))?;
    let time = creation_time(environment, &args.from)?;
    let inventory = read_source(args, environment)?;
    let document = sbom::render(&inventory, format, time);
    let signer = signer(args.key.as_deref(), environment)?;
    let attestation =
        sbom::attest(&inventory, format, &document, &signer).map_err(Error::Internal)?;
    atomic::write(&args.output, &document).map_err(Error::write(&args.output))?;
    let attestation_path = suffixed(&args.output, ".intoto.json");
    atomic::write(&attestation_path, &attestation).map_err(Error::write(&attestation_path))?;
    let bundle_path = if args.bundle {
        let path = suffixed(&args.output, ".sigstore.json");
        write_bundle(&path, &attestation, &signer)?;
        Some(path)
    } else {
        None
    };
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let line = serde_json::json!({
            "event": "sbom_written",
            "format": format.name(),
            "document": args.output.display().to_string(),
            "attestation": attestation_path.display().to_string(),
            "bundle": bundle_path.map(|path| path.display().to_string()),
            "subject": inventory.subject.name,
            "packages": inventory.packages.len(),
            "files": inventory.files.len(),
            "created": crate::time::rfc3339(time),
        });
        let _ = writeln!(stdout, "{line}");
    } else {
        let _ = writeln!(
            stdout,
            "wrote {} ({} packages, {} files) and {}",
            args.output.display(),
            inventory.packages.len(),
            inventory.files.len(),
            attestation_path.display()
        );
    }
    Ok(0)
}

fn read_source(args: &Args, environment: &Environment) -> Result<Inventory> {
    let from = &args.from;
    let metadata = std::fs::metadata(from).map_err(Error::read(from))?;
    if let Some(store_path) = sbom::nix::store_path_of(from) {
        return nix_closure(args, &store_path);
    }
    let subject = match &args.subject {
        Some(path) => artifact(path)?,
        None if metadata.is_dir() => Subject {
            name: from.display().to_string(),
            digest: None,
            about: None,
        },
        None => artifact(from)?,
    };
    if metadata.is_dir() {
        return sbom::folder::inventory(from, subject).map_err(|message| Error::Input {
            path: from.clone(),
            message,
        });
    }
    let text = crate::bounded::read_to_string(from, crate::bounded::Kind::Lock)
        .map_err(Error::read(from))?;
    let folders = environment
        .cargo_folder()
        .as_deref()
        .map(sbom::cargo::registry_folders)
        .unwrap_or_default();
    let licence =
        |name: &str, version: &str| sbom::cargo::registry_licence(&folders, name, version);
    sbom::cargo::inventory(&text, subject, &licence).map_err(|message| Error::Input {
        path: from.clone(),
        message,
    })
}

/// A file as the subject: its path as given and its SHA-256.
fn artifact(path: &Path) -> Result<Subject> {
    Ok(Subject {
        name: path.display().to_string(),
        digest: Some(Digest::of_file(path).map_err(Error::read(path))?),
        about: None,
    })
}

/// A store path's closure, as Nix reports it.
fn nix_closure(args: &Args, store_path: &str) -> Result<Inventory> {
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let nix_error = |error: crate::nix::NixError| Error::Environment {
        message: format!("asking Nix for the closure of `{store_path}`: {error}"),
    };
    let nix = crate::nix::Nix::locate(Path::new("."), None, &cancel).map_err(nix_error)?;
    let closure = nix
        .path_info(&[store_path], false, true)
        .map_err(nix_error)?;
    let subject = match &args.subject {
        Some(path) => artifact(path)?,
        None => Subject {
            name: store_path.to_owned(),
            digest: closure
                .iter()
                .find(|info| info.path == store_path)
                .map(|info| info.nar_hash),
            about: None,
        },
    };
    sbom::nix::inventory(store_path, &closure, subject).map_err(|message| Error::Input {
        path: args.from.clone(),
        message,
    })
}

/// `SOURCE_DATE_EPOCH`, else the commit time of the git repository the source is in, else
/// the Unix epoch: never the clock, so the same inputs give the same document.
fn creation_time(environment: &Environment, from: &Path) -> Result<i64> {
    if let Some(text) = &environment.source_date_epoch {
        return text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|seconds| *seconds >= 0)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "SOURCE_DATE_EPOCH must be a number of seconds since 1970, not `{text}`"
                ))
            });
    }
    let folder = if from.is_dir() {
        from
    } else {
        from.parent().unwrap_or(Path::new("."))
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    Ok(crate::exec::run::commit_time(folder).unwrap_or(0))
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn write_bundle(path: &Path, attestation: &[u8], signer: &dyn Signer) -> Result<()> {
    let envelope: crate::attest::Envelope =
        serde_json::from_slice(attestation).map_err(|error| Error::Internal(error.to_string()))?;
    let json = crate::attest::bundle::envelope_json(&envelope, signer.public_key_pem())
        .map_err(Error::Internal)?;
    atomic::write(path, &json).map_err(Error::write(path))
}
