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
    /// (size, mtime ns, ctime ns, inode) of the provenance and of `SHA256SUMS` as written.
    stats: [[i64; 4]; 2],
}

const KIND: &str = "gantry-last-run/2";

/// What a stat says of a file: any write, rename over it or `touch` changes it (ctime cannot be
/// set back), the same rule the stat cache trusts a source's digest by.
fn stat_of(path: &Path) -> Option<[i64; 4]> {
    let [size, mtime, ctime, inode, mode] = crate::run::settled::stat_of(path)?;
    (mode & 0o170_000 == 0o100_000).then_some([size, mtime, ctime, inode])
}

/// The file that records `index`'s pipeline's last provenance: beside the index.
#[must_use]
pub fn file_for(index: &Path) -> PathBuf {
    let mut name = index.as_os_str().to_owned();
    name.push(".last");
    PathBuf::from(name)
}

/// Records `last`, signed, with what its files' stats are now.
pub fn save(path: &Path, last: &LastRun, signer: &dyn Signer) -> std::io::Result<()> {
    let sums = last.folder.join(crate::attest::run_folder::SUMS);
    let (Some(provenance_stat), Some(sums_stat)) = (stat_of(&last.provenance.0), stat_of(&sums))
    else {
        return Err(std::io::Error::other("the run's files cannot be read"));
    };
    let wire = Wire {
        stats: [provenance_stat, sums_stat],
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

/// The recorded run and its files' stats, when the file verifies with `verifier`.
fn load(path: &Path, verifier: &dyn crate::keys::Verifier) -> Option<(LastRun, [[i64; 4]; 2])> {
    let bytes = crate::bounded::read(path, crate::bounded::Kind::Policy).ok()?;
    let (body, signature) = crate::store::index_file::unseal(&bytes)?;
    if !verifier.verify(body, signature) {
        return None;
    }
    let wire: Wire = serde_json::from_slice(body).ok()?;
    (wire.kind == KIND).then_some(())?;
    let last = LastRun {
        run_id: wire.run_id,
        folder: wire.folder,
        provenance: (wire.provenance, Digest::from_hex(&wire.provenance_sha256)?),
        sums: Digest::from_hex(&wire.sums_sha256)?,
        fingerprint: Digest::from_hex(&wire.fingerprint)?,
    };
    Some((last, wire.stats))
}

/// The last run, when it is still as it was written: the record verifies with this run's key,
/// the run folder is one of this run's attestations folder, and its provenance and
/// `SHA256SUMS` are the files that were written (their stats unchanged: size, times, inode).
/// Not yet compared with this run.
pub fn intact(context: &Context, path: &Path) -> Option<LastRun> {
    let verifier = crate::keys::EcdsaVerifier::from_pem(context.signer.public_key_pem()).ok()?;
    let (last, stats) = load(path, &verifier)?;
    let same_folder = last.folder.parent() == context.run_dir.parent()
        && last.folder != context.run_dir
        && (last.folder.file_name().and_then(|name| name.to_str()))
            .is_some_and(crate::attest::run_folder::looks_like_run_id);
    let expected = last.folder.join(crate::attest::run_folder::PROVENANCE);
    if !same_folder || last.provenance.0 != expected {
        return None;
    }
    let sums = last.folder.join(crate::attest::run_folder::SUMS);
    (stat_of(&expected) == Some(stats[0]) && stat_of(&sums) == Some(stats[1])).then_some(last)
}
