//! The store is untrusted storage: an action cache entry that names other outputs than its
//! step declares, or a folder listing with a path out of its folder, is never restored.

use crate::support::Test;

/// The one action cache entry of a one-step workspace.
fn entry(test: &Test) -> std::path::PathBuf {
    walkdir::WalkDir::new(test.path(".gantry/ac"))
        .into_iter()
        .flatten()
        .find(|entry| entry.file_type().is_file())
        .expect("an action cache entry")
        .into_path()
}

#[test]
fn an_entry_naming_a_path_outside_its_outputs_is_ignored() {
    let test =
        Test::new().pipeline("[steps.a]\nrun = \"echo real > out/a\"\noutputs = [\"out/a\"]\n");
    test.gantry_run(&[]).success();
    let path = entry(&test);
    let text = std::fs::read_to_string(&path).expect("entry");
    assert!(text.contains("\"out/a\""), "{text}");
    let forged = text.replace("\"out/a\"", "\"../escaped\"");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("mode");
    std::fs::write(&path, forged).expect("forge");
    std::fs::remove_file(test.path("out/a")).expect("remove");
    // The index of the last run would short-cut the entry; a forger edits both, so drop it.
    let _ = std::fs::remove_dir_all(test.path(".gantry/index"));
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 1, "the step ran again");
    assert!(
        !test
            .root()
            .parent()
            .expect("parent")
            .join("escaped")
            .exists()
    );
    assert_eq!(test.read("out/a"), "real\n");
}

#[test]
fn a_folder_listing_with_a_path_out_of_its_folder_is_never_restored() {
    let test = Test::new().pipeline(
        "[steps.a]\nrun = \"mkdir -p out/d; echo real > out/d/f\"\noutputs = [\"out/d/\"]\n",
    );
    test.gantry_run(&[]).success();
    // Forge a listing whose one file escapes, store it under its own digest, and point the
    // entry at it.
    let listing = test.path(".gantry/forged.json");
    let blob = walkdir::WalkDir::new(test.path(".gantry/cas"))
        .into_iter()
        .flatten()
        .find(|entry| {
            entry.file_type().is_file()
                && std::fs::read_to_string(entry.path())
                    .is_ok_and(|text| text.starts_with("{\"files\""))
        })
        .expect("the folder listing")
        .into_path();
    let original = std::fs::read_to_string(&blob).expect("listing");
    let forged = original.replace("\"f\"", "\"../../../escaped\"");
    std::fs::write(&listing, &forged).expect("write");
    let digest = crate::support::sha256_hex(forged.as_bytes());
    let target = test.path(&format!(".gantry/cas/{}/{digest}", &digest[..2]));
    std::fs::rename(&listing, &target).expect("store");
    let path = entry(&test);
    let old_digest = blob
        .file_name()
        .expect("name")
        .to_str()
        .expect("utf-8")
        .to_owned();
    let text = std::fs::read_to_string(&path)
        .expect("entry")
        .replace(&old_digest, &digest);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("mode");
    std::fs::write(&path, text).expect("forge");
    let _ = std::fs::remove_dir_all(test.path(".gantry/index"));
    std::fs::remove_dir_all(test.path("out")).expect("remove");
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 1, "the step ran again");
    assert!(
        !test.root().join("escaped").exists()
            && !test
                .root()
                .parent()
                .expect("parent")
                .join("escaped")
                .exists()
    );
    assert_eq!(test.read("out/d/f"), "real\n");
}

/// The forgery that once passed: a new blob, the entry pointed at it, and the index edited to
/// match. The entry's link does not list the forged bytes, so the step runs again and the
/// provenance names what it really made.
#[test]
fn a_consistent_forgery_of_blob_entry_and_index_is_not_restored() {
    let test =
        Test::new().pipeline("[steps.a]\nrun = \"echo real > out/a\"\noutputs = [\"out/a\"]\n");
    test.gantry_run(&[]).success();
    let real = crate::support::sha256_hex(b"real\n");
    let forged_bytes = b"forged\n";
    let forged = crate::support::sha256_hex(forged_bytes);
    std::fs::write(
        test.path(&format!(".gantry/cas/{}/{forged}", &forged[..2])),
        forged_bytes,
    )
    .expect("plant");
    let path = entry(&test);
    let text = std::fs::read_to_string(&path)
        .expect("entry")
        .replace(&real, &forged);
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("mode");
    std::fs::write(&path, text).expect("forge entry");
    let index = walkdir::WalkDir::new(test.path(".gantry/index"))
        .into_iter()
        .flatten()
        .find(|entry| entry.file_type().is_file() && entry.path().extension().is_none())
        .expect("index")
        .into_path();
    let mut bytes = std::fs::read(&index).expect("index");
    let (from, to) = (hex(&real), hex(&forged));
    let at = bytes
        .windows(32)
        .position(|window| window == from.as_slice())
        .expect("the output's digest is in the index");
    bytes[at..at + 32].copy_from_slice(&to);
    std::fs::write(&index, bytes).expect("forge index");
    std::fs::remove_file(test.path("out/a")).expect("remove");

    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 1, "the step ran again");
    super::says(&run, "is not vouched for");
    assert_eq!(test.read("out/a"), "real\n");
    let provenance =
        std::fs::read_to_string(run.run_dir().join("provenance.intoto.json")).expect("provenance");
    assert!(!provenance.contains(&forged));
}

/// Results signed by another key (an attacker's, or a key rotated out) are built again, unless
/// that key is trusted with `--trust-cache-key`.
#[test]
fn a_result_another_key_signed_is_built_again() {
    let test = Test::new().pipeline(
        "[steps.a]\nrun = \"head -c 16 /dev/urandom | od -x > out/a\"\noutputs = [\"out/a\"]\n",
    );
    let other = test.path("other.pem");
    assert!(crate::attestations::generate_key(
        &other,
        "EC",
        "ec_paramgen_curve:P-256"
    ));
    std::fs::set_permissions(&other, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("mode");
    let other = other.to_str().expect("utf-8").to_owned();
    test.gantry_run(&["--key", &other]).success();
    let planted = test.read("out/a");
    let run = test.gantry_run(&[]).success();
    assert_eq!(
        run.finished()["executed"],
        1,
        "the other key's result was not taken"
    );
    assert_ne!(test.read("out/a"), planted);
}

fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(&text[at..at + 2], 16).expect("hex"))
        .collect()
}
