//! The last provenance a pipeline's runs wrote, for the next run to name instead of writing
//! the same again: a run that executed nothing and whose provenance would differ from that
//! one only in its id and times names it in its run-log record (docs/provenance.md). Kept
//! beside the pipeline's index, signed by the run key like it: a file that does not verify
//! with this run's key, or whose run folder changed, is not used.

use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::exec::context::Context;
use crate::keys::Signer;

/// A run whose provenance a later run may name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastRun {
    pub run_id: String,
    pub folder: PathBuf,
    /// Its provenance's path and digest.
    pub provenance: (PathBuf, Digest),
    /// The digest of its `SHA256SUMS`.
    pub sums: Digest,
    /// What its provenance says but for its id and times (`records::fingerprint`).
    pub fingerprint: Digest,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Wire {
    #[serde(rename = "_type")]
    kind: String,
    run_id: String,
    folder: PathBuf,
    provenance: PathBuf,
    provenance_sha256: String,
    sums_sha256: String,
    fingerprint: String,
}

const KIND: &str = "gantry-last-run/1";

/// The file that records `index`'s pipeline's last provenance: beside the index.
#[must_use]
pub fn file_for(index: &Path) -> PathBuf {
    let mut name = index.as_os_str().to_owned();
    name.push(".last");
    PathBuf::from(name)
}

/// Records `last`, signed.
pub fn save(path: &Path, last: &LastRun, signer: &dyn Signer) -> std::io::Result<()> {
    let wire = Wire {
        kind: KIND.to_owned(),
        run_id: last.run_id.clone(),
        folder: last.folder.clone(),
        provenance: last.provenance.0.clone(),
        provenance_sha256: last.provenance.1.hex(),
        sums_sha256: last.sums.hex(),
        fingerprint: last.fingerprint.hex(),
    };
    let body = serde_json::to_vec(&wire).map_err(std::io::Error::other)?;
    let signature = signer.sign(&body);
    crate::atomic::write(path, &crate::store::index_file::seal(body, &signature))
}

/// The recorded run, when the file verifies with `verifier`.
fn load(path: &Path, verifier: &dyn crate::keys::Verifier) -> Option<LastRun> {
    let bytes = crate::bounded::read(path, crate::bounded::Kind::Policy).ok()?;
    let (body, signature) = crate::store::index_file::unseal(&bytes)?;
    if !verifier.verify(body, signature) {
        return None;
    }
    let wire: Wire = serde_json::from_slice(body).ok()?;
    (wire.kind == KIND).then_some(())?;
    Some(LastRun {
        run_id: wire.run_id,
        folder: wire.folder,
        provenance: (wire.provenance, Digest::from_hex(&wire.provenance_sha256)?),
        sums: Digest::from_hex(&wire.sums_sha256)?,
        fingerprint: Digest::from_hex(&wire.fingerprint)?,
    })
}

/// The last run, when it is still as it was written: the record verifies with this run's key,
/// the run folder is one of this run's attestations folder, and its provenance and
/// `SHA256SUMS` have the recorded digests. Not yet compared with this run.
pub fn intact(context: &Context, path: &Path) -> Option<LastRun> {
    let verifier = crate::keys::EcdsaVerifier::from_pem(context.signer.public_key_pem()).ok()?;
    let last = load(path, &verifier)?;
    let same_folder = last.folder.parent() == context.run_dir.parent()
        && last.folder != context.run_dir
        && (last.folder.file_name().and_then(|name| name.to_str()))
            .is_some_and(crate::attest::run_folder::looks_like_run_id);
    let expected = last.folder.join(crate::attest::run_folder::PROVENANCE);
    if !same_folder || last.provenance.0 != expected {
        return None;
    }
    let digest_of = |path: &Path| {
        crate::bounded::read(path, crate::bounded::Kind::Attestation)
            .ok()
            .map(|bytes| Digest::of_bytes(&bytes))
    };
    let sums = last.folder.join(crate::attest::run_folder::SUMS);
    (digest_of(&expected) == Some(last.provenance.1) && digest_of(&sums) == Some(last.sums))
        .then_some(last)
}
