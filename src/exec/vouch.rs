//! Whether a cached result may be used. The store (`.gantry/`, or a cache copied from
//! elsewhere) is untrusted storage: a forger who writes a blob, points an action-cache entry
//! at it and edits the index must not get the blob restored and signed into the provenance.
//! A result is used only when it is vouched for: stored by this run, listed in an index the
//! run's key signed, or its own link verifies with a trusted key (the run's, or one given
//! with `--trust-cache-key`), names this very action key and has exactly the result's outputs
//! as its subjects. Anything else is a miss; the step runs again.

use std::collections::{BTreeSet, HashMap};

use crate::attest;
use crate::digest::Digest;
use crate::exec::context::Context;
use crate::store::{ActionResult, Tree};

/// Checks `cached` (stored under `key`, its folder listings in `trees` by output index) and
/// marks it vouched; says why not otherwise.
pub fn check<S: std::hash::BuildHasher>(
    context: &Context,
    key: &Digest,
    cached: &ActionResult,
    trees: &HashMap<usize, Tree, S>,
) -> Result<(), String> {
    if context.store.actions.vouched(key) {
        return Ok(());
    }
    let bytes = context
        .store
        .cas
        .read(&cached.attestation)
        .map_err(|error| format!("its link is unreadable ({error})"))?;
    let subjects = link_subjects(&bytes, &context.cache_verifiers, key, None)?;
    if subjects != expected_subjects(cached, trees) {
        return Err("its outputs are not the subjects of its link".to_owned());
    }
    context.store.actions.vouch(key);
    Ok(())
}

/// What a link vouches for, as (subject name, sha256): checked to be a DSSE envelope one of
/// `verifiers` signed, whose Statement names action `key` (and, when given, was made from
/// remote action `remote`, `hash/size`). The caller compares the subjects with the outputs
/// it was offered.
pub fn link_subjects(
    bytes: &[u8],
    verifiers: &[Box<dyn crate::keys::Verifier>],
    key: &Digest,
    remote: Option<&str>,
) -> Result<BTreeSet<(String, String)>, String> {
    let envelope: attest::Envelope =
        serde_json::from_slice(bytes).map_err(|_| "its link is not a DSSE envelope".to_owned())?;
    let body = verifiers
        .iter()
        .find_map(|verifier| attest::dsse::verify(&envelope, verifier.as_ref()).ok())
        .ok_or_else(|| {
            "its link is not signed by this run's key or a key given with --trust-cache-key"
                .to_owned()
        })?;
    let statement: attest::Statement<attest::Link> =
        serde_json::from_slice(&body).map_err(|_| "its link holds no link Statement".to_owned())?;
    let environment = &statement.predicate.environment;
    if environment.action_key != key.hex() {
        return Err("its link was made for another action".to_owned());
    }
    if let Some(remote) = remote {
        let named =
            (environment.sandbox.as_ref()).and_then(|sandbox| sandbox.remote_action.as_deref());
        if named != Some(remote) {
            return Err("its link was made for another remote action".to_owned());
        }
    }
    Ok(statement
        .subject
        .into_iter()
        .filter_map(|subject| {
            let sha256 = subject
                .digest
                .get(crate::digest::Digest::ALGORITHM)?
                .to_owned();
            Some((subject.name?, sha256))
        })
        .collect())
}

/// The (name, sha256) pairs a link lists for these outputs: a file by its path (a Nix
/// out-link by its store path), a folder by each of its files.
fn expected_subjects<S: std::hash::BuildHasher>(
    cached: &ActionResult,
    trees: &HashMap<usize, Tree, S>,
) -> BTreeSet<(String, String)> {
    let mut expected = BTreeSet::new();
    for (index, record) in cached.outputs.iter().enumerate() {
        if let (true, Some(tree)) = (record.directory, trees.get(&index)) {
            for file in tree.regular_files() {
                expected.insert((format!("{}/{}", record.path, file.path), file.digest.hex()));
            }
        } else {
            let name = record.link.clone().unwrap_or_else(|| record.path.clone());
            expected.insert((name, record.digest.hex()));
        }
    }
    expected
}
