//! Who signed each attestation. A signature check is an ECDSA P-256 verification, about 60 µs
//! here and most of a verification's time, so a run's files are not each checked by default:
//! a provenance is, and a file whose exact bytes a verified provenance lists as a byproduct,
//! and whose signature names the provenance's key, is taken as signed by that key. The key
//! signed those bytes through the provenance, and forging that takes an ECDSA forgery or a
//! SHA-256 second preimage, the same as forging the file's own signature. Any other file,
//! and every file under [`Signatures::Every`], has its own signatures checked.

use std::collections::HashMap;

use crate::keys::Verifier as _;
use crate::verify::evidence::{EvidenceFile, Kind, Parsed};
use crate::verify::policy::TrustedKey;

/// Which signatures a verification checks itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Signatures {
    /// Each provenance's, and those of any file that a verified provenance does not vouch for.
    #[default]
    ThroughProvenance,
    /// Every signature of every file (`gantry verify --every-signature`).
    Every,
}

/// Fills in `signed_by` (indices into `keys`) of every parsed file, and drops what was kept
/// to check it.
pub fn check(files: &mut [EvidenceFile], keys: &[TrustedKey], signatures: Signatures) {
    let first: Vec<usize> = (0..files.len())
        .filter(|&index| {
            signatures == Signatures::Every
                || parsed(&files[index])
                    .is_some_and(|parsed| matches!(parsed.kind, Kind::Provenance { .. }))
        })
        .collect();
    let signers = crate::parallel::map(&first, |&index| checked(&files[index], keys, &[]));
    record(files, &first, signers, false);
    if signatures == Signatures::Every {
        return;
    }
    let vouchers = vouchers(files);
    let rest: Vec<usize> = (0..files.len())
        .filter(|index| first.binary_search(index).is_err())
        .collect();
    let results = crate::parallel::map(&rest, |&index| {
        let file = &files[index];
        let vouched: Vec<usize> = (vouchers.get(file.digest.hex().as_str()))
            .into_iter()
            .flatten()
            .copied()
            .filter(|&key| {
                parsed(file)
                    .and_then(|parsed| parsed.unchecked.as_deref())
                    .is_some_and(|signed| signed.names(&keys[key]))
            })
            .collect();
        (checked(file, keys, &vouched), !vouched.is_empty())
    });
    for (&index, (signers, vouched)) in rest.iter().zip(results) {
        record(files, &[index], vec![signers], vouched);
    }
}

fn parsed(file: &EvidenceFile) -> Option<&Parsed> {
    file.content.as_ref().ok()
}

/// The keys that signed `file`: those of `vouched` that its provenance vouches for, and any
/// other key whose signature on it verifies. A signature that names a vouched key is not
/// checked again.
fn checked(file: &EvidenceFile, keys: &[TrustedKey], vouched: &[usize]) -> Vec<usize> {
    let Some(signed) = parsed(file).and_then(|parsed| parsed.unchecked.as_deref()) else {
        return Vec::new();
    };
    let vouched_ids: Vec<&str> = (vouched.iter())
        .map(|&key| keys[key].verifier.key_id())
        .collect();
    (0..keys.len())
        .filter(|key| {
            vouched.contains(key)
                || (signed.signatures.iter())
                    .filter(|(keyid, _)| !vouched_ids.contains(&keyid.as_str()))
                    .any(|(_, signature)| keys[*key].verifier.verify(&signed.message, signature))
        })
        .collect()
}

fn record(files: &mut [EvidenceFile], indices: &[usize], signers: Vec<Vec<usize>>, vouched: bool) {
    for (&index, signed_by) in indices.iter().zip(signers) {
        if let Ok(parsed) = &mut files[index].content {
            parsed.signed_by = signed_by;
            parsed.vouched = vouched && !parsed.signed_by.is_empty();
            parsed.unchecked = None;
        }
    }
}

/// For each byproduct digest (hex) of a provenance whose signature verified, the keys that
/// signed that provenance.
fn vouchers(files: &[EvidenceFile]) -> HashMap<&str, Vec<usize>> {
    let mut vouchers: HashMap<&str, Vec<usize>> = HashMap::new();
    for parsed in files.iter().filter_map(parsed) {
        let Kind::Provenance { byproducts, .. } = &parsed.kind else {
            continue;
        };
        for digest in byproducts.iter().filter_map(|item| item.sha256.as_deref()) {
            let keys = vouchers.entry(digest).or_default();
            keys.extend(&parsed.signed_by);
            keys.sort_unstable();
            keys.dedup();
        }
    }
    vouchers
}
