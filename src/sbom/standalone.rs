//! `gantry sbom` outside a pipeline, as one flow: read the source (a Cargo.lock, a folder, a
//! Nix store path's closure, or another tool's document), render the document, sign its
//! attestation, write both (and a Sigstore bundle when asked) atomically. The CLI checks the
//! arguments, finds the creation time and renders what this returns.

use std::path::{Path, PathBuf};

use crate::atomic;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::keys::Signer;
use crate::sbom::{self, About, Format, Inventory, Subject};

pub struct Request {
    /// A Cargo.lock, a Nix store path or out-link, a folder, or (with `import`) a document.
    pub from: PathBuf,
    /// Rendered in, unless `import` (then the document's own format, detected).
    pub format: Format,
    /// The artifacts the document is for (default: the source itself).
    pub subjects: Vec<PathBuf>,
    pub about: Option<About>,
    /// `from` is another tool's SBOM: attest it as it is.
    pub import: bool,
    /// A `cargo vendor --versioned-dirs` folder the crates' licences are read in.
    pub vendored: Option<PathBuf>,
    /// The workspace's own `Cargo.toml` files.
    pub manifests: Vec<PathBuf>,
    /// Cargo's home, whose registry cache holds the crates' licences otherwise.
    pub cargo_home: Option<PathBuf>,
    /// The document's creation time (never the clock: the same inputs give the same bytes).
    pub time: i64,
    pub output: PathBuf,
    /// Also write the attestation as a Sigstore bundle.
    pub bundle: bool,
}

/// What was written.
pub struct Written {
    pub format: Format,
    pub document: PathBuf,
    pub attestation: PathBuf,
    pub bundle: Option<PathBuf>,
    pub inventory: Inventory,
}

pub fn write(request: &Request, signer: &dyn Signer) -> Result<Written> {
    let mut format = request.format;
    let (document, inventory) = if request.import {
        let bytes = crate::bounded::read(&request.from, crate::bounded::Kind::Attestation)
            .map_err(Error::read(&request.from))?;
        format = sbom::format_of_document(&bytes).map_err(|problem| Error::Input {
            path: request.from.clone(),
            message: format!("`{}` {problem}", request.from.display()),
        })?;
        let (subject, also) = subjects(&request.subjects, request.about.clone())?;
        let inventory = Inventory {
            subject,
            also,
            packages: Vec::new(),
            files: Vec::new(),
            roots: Vec::new(),
        };
        (bytes, inventory)
    } else {
        let inventory = read_source(request)?;
        (sbom::render(&inventory, format, request.time), inventory)
    };
    let attestation =
        sbom::attest(&inventory, format, &document, signer).map_err(Error::Internal)?;
    atomic::write(&request.output, &document).map_err(Error::write(&request.output))?;
    let attestation_path = suffixed(&request.output, ".intoto.json");
    atomic::write(&attestation_path, &attestation).map_err(Error::write(&attestation_path))?;
    let bundle = if request.bundle {
        let path = suffixed(&request.output, ".sigstore.json");
        write_bundle(&path, &attestation, signer)?;
        Some(path)
    } else {
        None
    };
    Ok(Written {
        format,
        document: request.output.clone(),
        attestation: attestation_path,
        bundle,
        inventory,
    })
}

/// The named subjects by their digests, the first carrying `about`.
fn subjects(paths: &[PathBuf], about: Option<About>) -> Result<(Subject, Vec<Subject>)> {
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

fn read_source(request: &Request) -> Result<Inventory> {
    let from = &request.from;
    let about = request.about.clone();
    let metadata = std::fs::metadata(from).map_err(Error::read(from))?;
    if let Some(store_path) = sbom::nix::store_path_of(from) {
        return nix_closure(request, &store_path);
    }
    let (subject, also) = if !request.subjects.is_empty() {
        subjects(&request.subjects, about)?
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
    let folders = (request.cargo_home.as_deref())
        .map(sbom::cargo::registry_folders)
        .unwrap_or_default();
    let in_vendored = |manifest: &str| Some(request.vendored.as_ref()?.join(manifest));
    let licences = sbom::cargo::Licences {
        own: sbom::cargo::Licences::own_from(request.manifests.iter().cloned()),
        vendored: request
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
fn nix_closure(request: &Request, store_path: &str) -> Result<Inventory> {
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let nix_error = |error: crate::nix::NixError| Error::Environment {
        message: format!("asking Nix for the closure of `{store_path}`: {error}"),
    };
    let nix = crate::nix::Nix::locate(Path::new("."), None, &cancel).map_err(nix_error)?;
    let closure = nix
        .path_info(&[store_path], false, true)
        .map_err(nix_error)?;
    let (subject, also) = if request.subjects.is_empty() {
        let subject = Subject {
            name: store_path.to_owned(),
            digest: closure
                .iter()
                .find(|info| info.path == store_path)
                .map(|info| info.nar_hash),
            about: request.about.clone(),
        };
        (subject, Vec::new())
    } else {
        subjects(&request.subjects, request.about.clone())?
    };
    let inventory =
        sbom::nix::inventory(store_path, &closure, subject).map_err(|message| Error::Input {
            path: request.from.clone(),
            message,
        })?;
    Ok(Inventory { also, ..inventory })
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
