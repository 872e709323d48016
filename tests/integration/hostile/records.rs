//! The run records' layout, attacked: a stored attestation changed in place or replaced, a
//! forged record of the last run, a provenance changed after it was written, a `SHA256SUMS`
//! naming files outside its folder, an attestation store that is a link.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;

use crate::records::{verify, workspace};

/// The stored link of `copy` in the run `folder`.
fn stored_copy(folder: &std::path::Path) -> std::path::PathBuf {
    let path = crate::support::attested(folder, "copy.intoto.json");
    assert!(
        !path.starts_with(folder),
        "stored beside the run: {}",
        path.display()
    );
    path
}

/// A signed link with one signature character changed.
fn forged(bytes: &[u8]) -> Vec<u8> {
    let mut envelope: serde_json::Value = serde_json::from_slice(bytes).expect("envelope");
    let sig = envelope["signatures"][0]["sig"]
        .as_str()
        .expect("sig")
        .to_owned();
    let flipped = if sig.starts_with('M') { "N" } else { "M" };
    envelope["signatures"][0]["sig"] = format!("{flipped}{}", &sig[1..]).into();
    serde_json::to_vec_pretty(&envelope).expect("json")
}

/// Changed in place (the same inode, which the store's blob shares): `verify` names the file
/// and why, and the next run cannot take the step from the cache, so it runs it again and
/// its new run verifies.
#[test]
fn a_stored_attestation_changed_in_place_is_named_and_its_step_runs_again() {
    let test = workspace();
    let first = test.gantry_run(&[]).success();
    let link = stored_copy(&first.run_dir());
    let bytes = fs::read(&link).expect("link");
    fs::set_permissions(&link, fs::Permissions::from_mode(0o644)).expect("chmod");
    fs::write(&link, forged(&bytes)).expect("in place");
    verify(&test, &first.run_dir())
        .failure(1)
        .stdout_contains("changed where it is stored");
    let next = test.gantry_run(&[]).success();
    assert_eq!(next.statuses()["copy"], "executed");
    assert!(next.finished().get("reused").is_none());
    verify(&test, &next.run_dir()).success();
}

/// Replaced by another file (a new inode): the store's blob is intact, so the next run puts
/// the right file back and still takes the step from the cache.
#[test]
fn a_stored_attestation_replaced_is_put_back_from_the_store() {
    let test = workspace();
    let first = test.gantry_run(&[]).success();
    let link = stored_copy(&first.run_dir());
    let bytes = fs::read(&link).expect("link");
    let forgery = link.with_extension("forged");
    fs::write(&forgery, forged(&bytes)).expect("forgery");
    fs::rename(&forgery, &link).expect("replace");
    verify(&test, &first.run_dir()).failure(1);
    let next = test.gantry_run(&[]).success();
    assert_eq!(next.statuses()["copy"], "cached");
    assert_eq!(fs::read(&link).expect("link"), bytes, "put back");
    verify(&test, &next.run_dir()).success();
}

/// The record of the last provenance is signed: edited, it is not followed; and a
/// provenance changed since it was written is never named by a later run.
#[test]
fn a_forged_last_run_record_or_a_changed_provenance_is_not_named() {
    let test = workspace();
    let first = test.gantry_run(&[]).success();
    let last = fs::read_dir(test.path(".gantry/index"))
        .expect("index folder")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.to_string_lossy().ends_with(".last"))
        .expect("the last run's record");
    let text = fs::read(&last).expect("record");
    let mut edited = text.clone();
    let at = edited
        .iter()
        .position(|&byte| byte == b'2')
        .expect("a digit of the run id");
    edited[at] = b'1';
    fs::write(&last, &edited).expect("edit");
    let second = test.gantry_run(&[]).success();
    assert!(
        second.finished().get("reused").is_none(),
        "an edited record is not followed"
    );
    assert_ne!(second.run_dir(), first.run_dir());
    // The second run's provenance, changed after the fact: the next run writes its own.
    let provenance = second.run_dir().join("provenance.intoto.json");
    let mut bytes = fs::read(&provenance).expect("provenance");
    bytes.push(b' ');
    fs::write(&provenance, &bytes).expect("append");
    let third = test.gantry_run(&[]).success();
    assert!(third.finished().get("reused").is_none());
    assert_ne!(third.run_dir(), second.run_dir());
    verify(&test, &third.run_dir()).success();
    // Untouched, the fourth names the third.
    let fourth = test.gantry_run(&[]).success();
    assert_eq!(fourth.finished()["reused"], third.finished()["run_id"]);
}

/// A `SHA256SUMS` is untrusted: a name with a folder in it, or `..`, names nothing; a stored
/// path comes from the digest's hex alone.
#[test]
fn sums_cannot_lead_a_reader_out_of_the_run_folder() {
    let test = workspace();
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    let victim = test.path("victim.intoto.json");
    fs::copy(stored_copy(&folder), &victim).expect("a valid envelope outside");
    let hex = crate::support::sha256_hex(&fs::read(&victim).expect("victim"));
    let mut sums = fs::read_to_string(folder.join("SHA256SUMS")).expect("sums");
    sums += &[
        format!("{hex}  ../../victim.intoto.json"),
        format!("{hex}  sub/victim.intoto.json"),
    ]
    .join("\n");
    sums.push('\n');
    fs::write(folder.join("SHA256SUMS"), sums).expect("sums");
    let verdict = verify(&test, &folder).success();
    assert!(!verdict.stdout().contains("victim"), "{}", verdict.stdout());
}

/// `gc` never follows an attestation store that is a link: what it points at stays.
#[test]
fn gc_deletes_nothing_through_an_attestation_store_that_is_a_link() {
    let victim = tempfile::tempdir().expect("victim");
    fs::create_dir_all(victim.path().join("ab")).expect("shard");
    fs::write(victim.path().join("ab/precious"), "precious").expect("write");
    let test = workspace();
    test.gantry_run(&[]).success();
    let store = test.path("attestations/sha256");
    fs::rename(&store, test.path("real-store")).expect("move");
    std::os::unix::fs::symlink(victim.path(), &store).expect("link");
    test.run(["gc", "pipeline.toml", "--keep", "1"]).success();
    assert_eq!(
        fs::read_to_string(victim.path().join("ab/precious")).expect("still there"),
        "precious"
    );
}

/// An attestation store planted as a link to another folder: the run refuses to write an
/// attestation through it, and nothing appears in that folder.
#[test]
fn a_run_writes_no_attestation_through_a_store_that_is_a_link() {
    let victim = tempfile::tempdir().expect("victim");
    let test = workspace();
    test.gantry_run(&[]).success();
    let store = test.path("attestations/sha256");
    fs::rename(&store, test.path("real-store")).expect("move");
    std::os::unix::fs::symlink(victim.path(), &store).expect("link");
    test.write("src/a.txt", "changed\n");
    test.gantry_run(&[]).failure(3).stderr_contains("is a link");
    assert_eq!(
        fs::read_dir(victim.path()).expect("victim").count(),
        0,
        "nothing was written through the link"
    );
}
