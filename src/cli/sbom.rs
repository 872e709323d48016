//! `gantry sbom --from SOURCE --format spdx|cyclonedx [--subject ARTIFACT]... -o FILE`: the
//! document, then its signed attestation beside it (`FILE.intoto.json`). The options of a
//! pipeline's sbom step, on the command line: `--vendored`, `--manifest`, `--about-*`,
//! `--import`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::keys::Signer;
use crate::sbom::{self, Format, Inventory, Subject};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// What to describe: a Cargo.lock, a Nix store path or out-link (its closure), or a
    /// folder (every file).
    #[arg(long, value_name = "SOURCE")]
    from: PathBuf,
    /// The document format.
    #[arg(long, value_parser = ["spdx", "cyclonedx"], default_value = "spdx")]
    format: String,
    /// The artifact the document is for (default: the source itself); again for each other
    /// artifact it is for (several binaries of one lock).
    #[arg(long, value_name = "ARTIFACT")]
    subject: Vec<PathBuf>,
    /// A `cargo vendor --versioned-dirs` folder: each crate's licence is read there, not in
    /// the host's registry cache.
    #[arg(long, value_name = "FOLDER")]
    vendored: Option<PathBuf>,
    /// A workspace's own `Cargo.toml`, whose package licence the document takes (repeat it).
    #[arg(long = "manifest", value_name = "CARGO_TOML")]
    manifests: Vec<PathBuf>,
    /// The product the subject is: its name.
    #[arg(long, value_name = "NAME")]
    about_name: Option<String>,
    /// Its version.
    #[arg(long, value_name = "VERSION")]
    about_version: Option<String>,
    /// Its supplier, as SPDX writes one: `Organization: NAME` or `Person: NAME`.
    #[arg(long, value_name = "SUPPLIER")]
    about_supplier: Option<String>,
    /// Its licence, an SPDX expression (`MIT OR Apache-2.0`).
    #[arg(long, value_name = "EXPRESSION")]
    about_license: Option<String>,
    /// Its package URL (`pkg:cargo/hexyl@0.16.0`).
    #[arg(long, value_name = "PURL")]
    about_purl: Option<String>,
    /// `--from` is an SBOM another tool wrote (SPDX or `CycloneDX` JSON): attest it as it is,
    /// about `--subject`.
    #[arg(long, requires = "subject", conflicts_with_all = ["vendored", "manifests", "about_name", "about_version", "about_supplier", "about_license", "about_purl"])]
    import: bool,
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

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let mut format = Format::parse(&args.format)
        .ok_or_else(|| Error::Usage(format!("unknown format `{}`", args.format)))?;
    let time = creation_time(environment, &args.from)?;
    let about = about(args)?;
    let (document, inventory) = if args.import {
        let bytes = crate::bounded::read(&args.from, crate::bounded::Kind::Attestation)
            .map_err(Error::read(&args.from))?;
        format = sbom::format_of_document(&bytes).map_err(|problem| Error::Input {
            path: args.from.clone(),
            message: format!("`{}` {problem}", args.from.display()),
        })?;
        let (subject, also) = subjects(&args.subject, about)?;
        let inventory = Inventory {
            subject,
            also,
            packages: Vec::new(),
            files: Vec::new(),
            roots: Vec::new(),
        };
        (bytes, inventory)
    } else {
        let inventory = read_source(args, environment, about)?;
        (sbom::render(&inventory, format, time), inventory)
    };
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

/// `--about-*`, each checked as the pipeline's `about` is; `None` when none is given.
fn about(args: &Args) -> Result<Option<sbom::About>> {
    let check = |flag: &str, value: &Option<String>, problem: &dyn Fn(&str) -> Option<String>| {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value.trim();
        if text.is_empty() || text.contains(['\n', '\0']) {
            return Err(Error::Usage(format!("`--{flag}` must be one line of text")));
        }
        match problem(text) {
            Some(problem) => Err(Error::Usage(format!("`--{flag}`: {problem}"))),
            None => Ok(Some(text.to_owned())),
        }
    };
    let fine = |_: &str| None;
    let about = sbom::About {
        name: check("about-name", &args.about_name, &fine)?,
        version: check("about-version", &args.about_version, &fine)?,
        supplier: check(
            "about-supplier",
            &args.about_supplier,
            &sbom::About::supplier_problem,
        )?,
        license: check(
            "about-license",
            &args.about_license,
            &sbom::About::license_problem,
        )?,
        purl: check("about-purl", &args.about_purl, &sbom::About::purl_problem)?,
    };
    Ok((about != sbom::About::default()).then_some(about))
}

/// The named subjects by their digests, the first carrying `about`.
fn subjects(paths: &[PathBuf], about: Option<sbom::About>) -> Result<(Subject, Vec<Subject>)> {
    let mut named = paths
        .iter()
        .map(|path| artifact(path))
        .collect::<Result<Vec<_>>>()?;
    if named.is_empty() {
        return Err(Error::Usage(
            "name the artifact with `--subject`".to_owned(),
        ));
    }
    let also = named.split_off(1);
    let mut subject = named.remove(0);
    subject.about = about;
    Ok((subject, also))
}

fn read_source(
    args: &Args,
    environment: &Environment,
    about: Option<sbom::About>,
) -> Result<Inventory> {
    let from = &args.from;
    let metadata = std::fs::metadata(from).map_err(Error::read(from))?;
    if let Some(store_path) = sbom::nix::store_path_of(from) {
        return nix_closure(args, &store_path, about);
    }
    let (subject, also) = if !args.subject.is_empty() {
        subjects(&args.subject, about)?
    } else if metadata.is_dir() {
        let subject = Subject {
            name: from.display().to_string(),
            digest: None,
            about,
        };
        (subject, Vec::new())
    } else {
        subjects(std::slice::from_ref(from), about)?
    };
    if metadata.is_dir() {
        let inventory = sbom::folder::inventory(from, subject).map_err(|message| Error::Input {
            path: from.clone(),
            message,
        })?;
        return Ok(Inventory { also, ..inventory });
    }
    let text = crate::bounded::read_to_string(from, crate::bounded::Kind::Lock)
        .map_err(Error::read(from))?;
    let folders = environment
        .cargo_folder()
        .as_deref()
        .map(sbom::cargo::registry_folders)
        .unwrap_or_default();
    let in_vendored = |manifest: &str| Some(args.vendored.as_ref()?.join(manifest));
    let licences = sbom::cargo::Licences {
        own: sbom::cargo::Licences::own_from(args.manifests.iter().cloned()),
        vendored: args
            .vendored
            .is_some()
            .then_some(&in_vendored as &dyn Fn(&str) -> _),
        registry: folders,
    };
    let licence = |name: &str, version: &str| licences.of(name, version);
    let inventory =
        sbom::cargo::inventory(&text, subject, &licence).map_err(|message| Error::Input {
            path: from.clone(),
            message,
        })?;
    Ok(Inventory { also, ..inventory })
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
fn nix_closure(args: &Args, store_path: &str, about: Option<sbom::About>) -> Result<Inventory> {
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let nix_error = |error: crate::nix::NixError| Error::Environment {
        message: format!("asking Nix for the closure of `{store_path}`: {error}"),
    };
    let nix = crate::nix::Nix::locate(Path::new("."), None, &cancel).map_err(nix_error)?;
    let closure = nix
        .path_info(&[store_path], false, true)
        .map_err(nix_error)?;
    let (subject, also) = if args.subject.is_empty() {
        let subject = Subject {
            name: store_path.to_owned(),
            digest: closure
                .iter()
                .find(|info| info.path == store_path)
                .map(|info| info.nar_hash),
            about,
        };
        (subject, Vec::new())
    } else {
        subjects(&args.subject, about)?
    };
    let inventory =
        sbom::nix::inventory(store_path, &closure, subject).map_err(|message| Error::Input {
            path: args.from.clone(),
            message,
        })?;
    Ok(Inventory { also, ..inventory })
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
    Ok(crate::git::commit_time(folder).unwrap_or(0))
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
