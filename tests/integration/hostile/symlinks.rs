//! Property 3: no symbolic link a step makes is ever followed when its outputs are collected;
//! nothing outside the slot is read, chmod'ed or moved, and the step fails saying what it did.

use std::os::unix::fs::PermissionsExt as _;

use super::{as_nobody, says};
use crate::support::Test;

/// A host folder with a file a step would like gantry to take.
fn victim() -> (tempfile::TempDir, std::path::PathBuf) {
    let folder = tempfile::tempdir().expect("victim");
    std::fs::set_permissions(folder.path(), std::fs::Permissions::from_mode(0o755)).expect("mode");
    let file = folder.path().join("precious");
    std::fs::write(&file, "precious").expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("mode");
    (folder, file)
}

fn untouched(file: &std::path::Path) {
    assert_eq!(
        std::fs::read_to_string(file).expect("still there"),
        "precious"
    );
    let mode = std::fs::metadata(file).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the host file's mode changed");
}

#[test]
fn an_output_folder_replaced_by_a_link_is_not_followed() {
    let (folder, file) = victim();
    let test = Test::new().pipeline(&format!(
        "[steps.good]\nrun = \"echo ok > out/good\"\noutputs = [\"out/good\"]\n\n[steps.evil]\nrun = \"rm -rf e; ln -s {} e\"\noutputs = [\"e/precious\"]\n",
        folder.path().display()
    ));
    let run = test.gantry_run(&["--keep-going"]).failure(1);
    says(&run, "the step made `e` a symbolic link");
    untouched(&file);
    assert_eq!(
        test.read("out/good"),
        "ok\n",
        "the honest step next to it works"
    );
}

#[test]
fn an_output_that_is_itself_a_link_is_refused() {
    let (_folder, file) = victim();
    let test = Test::new().pipeline(&format!(
        "[steps.evil]\nrun = \"ln -s {} out/x\"\noutputs = [\"out/x\"]\n",
        file.display()
    ));
    says(&test.gantry_run(&[]).failure(1), "is not a regular file");
    untouched(&file);
}

/// A link inside a folder output that leads out of it (absolute, or up past the folder) is
/// refused, and nothing is read or moved through it; links that stay inside are outputs
/// (`cache::a_folder_output_keeps_its_links`).
#[test]
fn a_link_deep_inside_a_folder_output_is_refused() {
    let (folder, file) = victim();
    for target in [
        folder.path().display().to_string(),
        "../../../..".to_owned(),
    ] {
        let test = Test::new().pipeline(&format!(
            "[steps.evil]\nrun = \"mkdir -p out/tree/a; echo x > out/tree/a/real; ln -s {target} out/tree/a/b\"\noutputs = [\"out/tree/\"]\n",
        ));
        says(
            &test.gantry_run(&[]).failure(1),
            &format!("holds `a/b`, a symbolic link to `{target}`, outside the folder"),
        );
        untouched(&file);
    }
    let honest = Test::new().pipeline(
        "[steps.tree]\nrun = \"mkdir -p out/tree/a; echo x > out/tree/a/real\"\noutputs = [\"out/tree/\"]\n",
    );
    honest.gantry_run(&[]).success();
    assert_eq!(honest.read("out/tree/a/real"), "x\n");
}

/// Unprivileged, the same trick once moved the development signing key out of its folder.
#[test]
fn an_unprivileged_gantry_keeps_its_signing_key() {
    let test =
        Test::new().pipeline("[steps.warm]\nrun = \"echo > out/warm\"\noutputs = [\"out/warm\"]\n");
    let first = as_nobody(&test, &["run", "pipeline.toml"]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let key = test.path("home/.local/share/gantry/dev-signing-key.pem");
    let before = std::fs::read(&key).expect("the development key exists");
    test.write(
        "pipeline.toml",
        &format!(
            "[pipeline]\nname = \"test\"\nroot = \".\"\n\n[steps.evil]\nrun = \"rm -rf k; ln -s {} k\"\noutputs = [\"k/dev-signing-key.pem\"]\n",
            key.parent().expect("folder").display()
        ),
    );
    let second = as_nobody(&test, &["run", "pipeline.toml"]);
    assert_eq!(second.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("a symbolic link"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(std::fs::read(&key).expect("still there"), before);
}
