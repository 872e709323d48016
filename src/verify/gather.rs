//! What an offline verification reads from disk: the policy and its keys, every attestation
//! in the folders given, the approved pipeline and the artifacts' digests; then the pure
//! check. `gantry verify` and a rollout's `verify` both come through here.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::SourceFile;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::verify::{self, Artifact, Report, evidence, policy};

/// Verifies `artifacts` against the policy at `policy_path` with the attestations in
/// `folders`, at `now`. A policy, folder or pipeline that cannot be read is an error; a
/// failed check is a report that did not pass.
pub fn verify_files(
    policy_path: &Path,
    folders: &[PathBuf],
    artifacts: &[Artifact],
    now: i64,
    signatures: verify::Signatures,
) -> Result<Report> {
    let (policy, keys) = policy_and_keys(policy_path)?;
    let files = read_folders(folders, &keys, signatures)?;
    let approved = policy
        .require
        .pipeline
        .as_deref()
        .map(approved_pipeline)
        .transpose()?;
    Ok(verify::verify(&verify::Input {
        policy: &policy,
        keys: &keys,
        evidence: &files,
        artifacts,
        approved: approved.as_ref(),
        now,
    }))
}

/// Every attestation in `folders` (each a run folder, a folder of attestations, or an
/// in-toto bundle file, `*.intoto.jsonl`), read and parsed on every core, signatures checked
/// against `keys` (none: parsed only).
pub fn read_folders(
    folders: &[PathBuf],
    keys: &[policy::TrustedKey],
    signatures: verify::Signatures,
) -> Result<Vec<evidence::EvidenceFile>> {
    let mut listed = Vec::new();
    let mut bundled = Vec::new();
    for (folder, path) in folders.iter().enumerate() {
        if path.is_file() {
            let files = read_bundle(path)?;
            bundled.extend(files.into_iter().map(|file| {
                let mut parsed = evidence::parse(path.join(&file.name), folder, &file.bytes);
                parsed.name = file.name;
                parsed
            }));
            continue;
        }
        let found = evidence::list_folder(path).map_err(|error| {
            Error::Usage(format!(
                "cannot read attestations `{}`: {error}",
                path.display()
            ))
        })?;
        if found.is_empty() {
            return Err(Error::Usage(empty_folder(path)));
        }
        listed.extend(found.into_iter().map(|file| (file, folder)));
    }
    let mut files = crate::parallel::map(&listed, |(entry, folder)| {
        crate::bounded::read(&entry.path, crate::bounded::Kind::Attestation)
            .map(|bytes| evidence::parse_listed(entry, *folder, &bytes))
            .map_err(|error| Error::Usage(unreadable(&folders[*folder], entry, &error)))
    })
    .into_iter()
    .collect::<Result<Vec<_>>>()?;
    files.extend(bundled);
    verify::signed::check(&mut files, keys, signatures);
    Ok(files)
}

/// The files of an in-toto bundle (`gantry export bundle`), named as in the run they came
/// from (`attest::jsonl`).
fn read_bundle(path: &Path) -> Result<Vec<crate::attest::jsonl::Named>> {
    let bytes = crate::bounded::read(path, crate::bounded::Kind::Attestation).map_err(|error| {
        Error::Usage(format!(
            "cannot read attestations `{}`: {error}",
            path.display()
        ))
    })?;
    let stem = (path.file_name())
        .map(|name| {
            name.to_string_lossy()
                .trim_end_matches(".intoto.jsonl")
                .to_owned()
        })
        .unwrap_or_default();
    let files = crate::attest::jsonl::read(&bytes, &stem).map_err(|error| {
        Error::Usage(format!(
            "`{}` is not an attestation bundle: {error}",
            path.display()
        ))
    })?;
    if files.is_empty() {
        return Err(Error::Usage(format!(
            "`{}` holds no attestations",
            path.display()
        )));
    }
    Ok(files)
}

/// Why a listed attestation cannot be read: a run folder copied without the attestation
/// store beside it says so.
fn unreadable(
    folder: &Path,
    entry: &crate::attest::run_folder::Entry,
    error: &std::io::Error,
) -> String {
    let stored = !entry.path.starts_with(folder);
    if stored && error.kind() == std::io::ErrorKind::NotFound {
        format!(
            "`{}` names the attestation `{}`, which is not in the attestation store beside it (`{}`): keep a run folder with the attestations folder that holds it, or hand over `gantry export bundle`",
            folder.display(),
            entry.name,
            entry.path.display()
        )
    } else {
        format!(
            "cannot read attestation `{}` (`{}`): {error}",
            entry.name,
            entry.path.display()
        )
    }
}

/// Why a folder given as attestations holds none: it holds run folders (the attestations
/// folder itself was given), or nothing at all.
fn empty_folder(path: &Path) -> String {
    let mut runs: Vec<String> = std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| {
                    entry
                        .path()
                        .join(crate::attest::run_folder::PROVENANCE)
                        .is_file()
                })
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    runs.sort();
    match runs.last() {
        Some(newest) => format!(
            "`{}` holds no attestations but {} run folder(s): pass one run's folder, such as `{}`",
            path.display(),
            runs.len(),
            path.join(newest).display()
        ),
        None => format!("`{}` holds no attestations", path.display()),
    }
}

/// The policy at `path` and the public keys it names.
pub fn policy_and_keys(path: &Path) -> Result<(policy::Policy, Vec<policy::TrustedKey>)> {
    let policy = load_policy(path)?;
    let keys = policy::load_keys(&policy, &|path: &Path| {
        crate::bounded::read_to_string(path, crate::bounded::Kind::Policy)
    })
    .map_err(|diagnostics| Error::Policy(Box::new(diagnostics)))?;
    Ok((policy, keys))
}

/// An artifact on disk, named as given.
pub fn artifact(path: &Path) -> Result<Artifact> {
    let digest = artifact_digest(path).map_err(|error| {
        Error::Usage(format!(
            "cannot read artifact `{}`: {error}",
            path.display()
        ))
    })?;
    Ok(Artifact {
        name: path.display().to_string(),
        digest,
    })
}

/// What an artifact is attested by: a Nix output (a store path, or an out-link to one) by
/// its NAR hash, as the nix step recorded it; anything else by the SHA-256 of its bytes.
pub fn artifact_digest(path: &Path) -> std::io::Result<Digest> {
    let store_path = if path.starts_with(STORE) {
        Some(path.to_path_buf())
    } else {
        std::fs::read_link(path)
            .ok()
            .filter(|target| target.starts_with(STORE))
    };
    match store_path {
        Some(store_path) => crate::nix::nar::hash_path(&store_path),
        None => Digest::of_reader(crate::bounded::open_regular(path, "an artifact")?.0),
    }
}

const STORE: &str = "/nix/store/";

fn load_policy(path: &Path) -> Result<policy::Policy> {
    let text =
        crate::bounded::read_to_string(path, crate::bounded::Kind::Policy).map_err(|error| {
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
    // Its templates as its lock pins them: verification never changes a lock.
    let pipeline = crate::pipeline::load_with(path, None, &crate::pipeline::TemplateMode::Locked)?;
    let templates = (pipeline.steps.iter())
        .filter_map(|step| step.template.as_ref())
        .map(|used| {
            (
                used.pin.name.clone(),
                (used.pin.version.clone(), used.pin.digest.hex()),
            )
        })
        .collect();
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
        templates,
    })
}
