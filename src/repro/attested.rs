//! A run's signed link attestations, read back: per step, what it produced (subjects) and
//! what it read (materials), each with its digest. Used for the run `gantry repro` checks and
//! for the rebuild it makes.

use base64::Engine as _;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::attest::{self, Envelope, LINK_PREDICATE_TYPE, Link, Statement};
use crate::digest::Digest;
use crate::keys::Verifier;

use crate::attest::run_folder::{self, StepFile};

/// One run folder's attestations, by step name.
#[derive(Clone, Debug, Default)]
pub struct AttestedRun {
    pub folder: PathBuf,
    pub steps: BTreeMap<String, AttestedStep>,
    /// What the run was started with, from its provenance.
    pub started_with: StartedWith,
}

/// A run's `--param` values and the release it was cut for: both reach every step's
/// environment, so a rebuild needs them.
#[derive(Clone, Debug, Default)]
pub struct StartedWith {
    pub parameters: BTreeMap<String, String>,
    pub release: Option<crate::attest::provenance::ReleaseParameter>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedStep {
    /// The link's `name`: the step.
    pub name: String,
    /// Digest of the envelope file, so a reproducibility statement names exactly what it
    /// checked.
    pub envelope: Digest,
    pub command: Vec<String>,
    pub subjects: Vec<Resource>,
    pub materials: Vec<Resource>,
    /// Nix outputs its rebuild found to differ without keeping a copy: no rebuilt digest.
    pub differed_without_copy: Vec<String>,
}

/// A subject or material: its name, SHA-256 and, for a Nix rebuild that differed, where Nix
/// kept the rebuilt copy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resource {
    pub name: String,
    pub digest: Digest,
    pub rebuilt_at: Option<String>,
}

/// The newest run folder under `attestations` (run ids sort by time); folders of `gantry
/// repro` live under `repro/` and are not runs.
pub fn latest_run(attestations: &Path, pipeline: &str) -> Result<PathBuf, String> {
    let entries = fs::read_dir(attestations).map_err(|error| {
        format!(
            "cannot read the attestation folder `{}`: {error}; run the pipeline first or pass \
             `--against`",
            attestations.display()
        )
    })?;
    let mut runs: Vec<(String, PathBuf)> = entries
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter_map(|entry| Some((entry.file_name().into_string().ok()?, entry.path())))
        .filter(|(name, path)| {
            run_folder::looks_like_run_id(name) && holds_attestations(path) && ran(path, pipeline)
        })
        .collect();
    // A run id tells the second a run started, then random letters: runs within one second
    // are told apart by when their provenance was written.
    let finished = |path: &Path| {
        fs::metadata(path.join(crate::attest::run_folder::PROVENANCE))
            .and_then(|metadata| metadata.modified())
            .ok()
    };
    runs.sort_by_cached_key(|(name, path)| {
        (
            name.split('-').next().unwrap_or_default().to_owned(),
            finished(path),
        )
    });
    runs.pop().map(|(_, path)| path).ok_or_else(|| {
        format!(
            "no finished run of `{pipeline}` in `{}`; run the pipeline first or pass `--against`",
            attestations.display()
        )
    })
}

/// Whether the run in `folder` ran the pipeline file `pipeline` (relative to the workspace
/// root), as its provenance says. Only a choice of folder: `read_run` verifies what it reads.
fn ran(folder: &Path, pipeline: &str) -> bool {
    let provenance = folder.join(crate::attest::run_folder::PROVENANCE);
    let Ok(bytes) = crate::bounded::read(&provenance, crate::bounded::Kind::Attestation) else {
        return false;
    };
    let Ok(envelope) = serde_json::from_slice::<Envelope>(&bytes) else {
        return false;
    };
    let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(&envelope.payload) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&payload).is_ok_and(|statement| {
        statement
            .pointer("/predicate/buildDefinition/externalParameters/pipeline/path")
            .and_then(serde_json::Value::as_str)
            == Some(pipeline)
    })
}

fn holds_attestations(folder: &Path) -> bool {
    run_folder::list(folder).is_ok_and(|entries| !entries.is_empty())
}

/// Reads and verifies every `<step>.intoto.json` in `folder`. Every envelope must verify with
/// `verifier` and hold a link Statement; anything else is an error naming the file.
pub fn read_run(folder: &Path, verifier: &dyn Verifier) -> Result<AttestedRun, String> {
    let entries = run_folder::list(folder)
        .map_err(|error| format!("cannot read `{}`: {error}", folder.display()))?;
    let mut run = AttestedRun {
        folder: folder.to_path_buf(),
        ..AttestedRun::default()
    };
    for entry in entries {
        let Some((StepFile::Link, step)) = StepFile::parse(&entry.name) else {
            continue;
        };
        let path = entry.path;
        let bytes = crate::bounded::read(&path, crate::bounded::Kind::Attestation)
            .map_err(|error| format!("cannot read `{}`: {error}", path.display()))?;
        if let Some(listed) = entry.listed
            && Digest::of_bytes(&bytes) != listed
        {
            return Err(format!(
                "attestation `{}` is not the file its run's SHA256SUMS names (changed where it is stored)",
                path.display()
            ));
        }
        let attested = read_step(&bytes, verifier)
            .map_err(|error| format!("attestation `{}`: {error}", path.display()))?;
        if attested.name != step {
            return Err(format!(
                "attestation `{}` is the link of step `{}`, not of `{step}`",
                path.display(),
                attested.name
            ));
        }
        run.steps.insert(step.to_owned(), attested);
    }
    let provenance = folder.join(crate::attest::run_folder::PROVENANCE);
    if provenance.exists() {
        let bytes = crate::bounded::read(&provenance, crate::bounded::Kind::Attestation)
            .map_err(|error| format!("cannot read `{}`: {error}", provenance.display()))?;
        let external = read_parameters(&bytes, verifier)
            .map_err(|error| format!("attestation `{}`: {error}", provenance.display()))?;
        run.started_with = StartedWith {
            parameters: external.parameters,
            release: external.release,
        };
    }
    Ok(run)
}

/// Parses and verifies one envelope holding a link Statement.
/// What a run was started with, from its provenance (`externalParameters`), checked against
/// `verifier`.
fn read_parameters(bytes: &[u8], verifier: &dyn Verifier) -> Result<External, String> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    let body = attest::dsse::verify(&envelope, verifier)
        .map_err(|error| format!("{error} (key {})", verifier.key_id()))?;
    let statement: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|error| format!("not an in-toto Statement: {error}"))?;
    let external = statement
        .pointer("/predicate/buildDefinition/externalParameters")
        .cloned()
        .unwrap_or_default();
    serde_json::from_value(external)
        .map_err(|error| format!("its external parameters do not read: {error}"))
}

#[derive(serde::Deserialize)]
struct External {
    #[serde(default)]
    parameters: BTreeMap<String, String>,
    #[serde(default)]
    release: Option<crate::attest::provenance::ReleaseParameter>,
}

pub fn read_step(bytes: &[u8], verifier: &dyn Verifier) -> Result<AttestedStep, String> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    let body = attest::dsse::verify(&envelope, verifier).map_err(|error| {
        format!(
            "{error} (key {}); pass the signer's public key with `--public-key`",
            verifier.key_id()
        )
    })?;
    let statement: Statement<Link> = serde_json::from_slice(&body)
        .map_err(|error| format!("not an in-toto link Statement: {error}"))?;
    if statement.predicate_type != LINK_PREDICATE_TYPE {
        return Err(format!(
            "predicate type `{}`, expected `{LINK_PREDICATE_TYPE}`",
            statement.predicate_type
        ));
    }
    let resources = |descriptors: &[attest::ResourceDescriptor]| -> Result<Vec<Resource>, String> {
        descriptors
            .iter()
            .map(|descriptor| {
                let name = descriptor.name.clone().unwrap_or_default();
                let digest = descriptor
                    .sha256()
                    .ok_or_else(|| format!("`{name}` has no sha256 digest"))?;
                let rebuilt_at = descriptor
                    .annotations
                    .as_ref()
                    .and_then(|annotations| annotations.get("rebuiltAt"))
                    .and_then(|value| value.as_str())
                    .map(str::to_owned);
                Ok(Resource {
                    name,
                    digest,
                    rebuilt_at,
                })
            })
            .collect()
    };
    let differed_without_copy = statement
        .predicate
        .environment
        .differed_without_copy
        .clone();
    Ok(AttestedStep {
        name: statement.predicate.name.clone(),
        differed_without_copy,
        envelope: Digest::of_bytes(bytes),
        command: statement.predicate.command.clone(),
        subjects: resources(&statement.subject)?,
        materials: resources(&statement.predicate.materials)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attest::{PAYLOAD_TYPE, ResourceDescriptor};
    use crate::keys::{EcdsaSigner, Signer};
    use p256::ecdsa::SigningKey;
    use rand_core::OsRng;

    fn envelope(signer: &dyn Signer, predicate_type: &str) -> Vec<u8> {
        let link = Link {
            name: "compile".into(),
            command: vec!["sh".into()],
            materials: vec![ResourceDescriptor::named(
                "src/a.txt",
                &Digest::of_bytes(b"a"),
            )],
            byproducts: attest::link::Byproducts::default(),
            environment: attest::link::Environment::default(),
        };
        let statement = Statement::new(
            vec![ResourceDescriptor::named(
                "out/a",
                &Digest::of_bytes(b"out"),
            )],
            predicate_type,
            link,
        );
        let body = serde_json::to_vec(&statement).expect("json");
        serde_json::to_vec(&attest::dsse::sign(PAYLOAD_TYPE, &body, signer)).expect("json")
    }

    #[test]
    fn a_signed_link_is_read_and_anything_else_refused() {
        let signer = EcdsaSigner::new(&SigningKey::random(&mut OsRng)).expect("signer");
        let other = EcdsaSigner::new(&SigningKey::random(&mut OsRng)).expect("signer");
        let bytes = envelope(&signer, LINK_PREDICATE_TYPE);
        let step = read_step(&bytes, &signer.verifier()).expect("valid");
        assert_eq!(step.subjects[0].name, "out/a");
        assert_eq!(step.subjects[0].digest, Digest::of_bytes(b"out"));
        assert_eq!(step.materials[0].name, "src/a.txt");
        assert_eq!(step.envelope, Digest::of_bytes(&bytes));
        let error = read_step(&bytes, &other.verifier()).expect_err("wrong key");
        assert!(error.contains("--public-key"), "{error}");
        let error = read_step(
            &envelope(&signer, "https://example.com/x"),
            &signer.verifier(),
        )
        .expect_err("not a link");
        assert!(error.contains("predicate type"), "{error}");
        assert!(read_step(b"{", &signer.verifier()).is_err());
    }

    #[test]
    fn run_ids_are_recognised() {
        assert!(run_folder::looks_like_run_id("20261123T101010Z-0a1b2c3d"));
        assert!(!run_folder::looks_like_run_id("repro"));
        assert!(!run_folder::looks_like_run_id("README.md"));
    }
}
