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
