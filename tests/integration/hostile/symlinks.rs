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

/// A warm folder (`warm = [...]`) is the step's own from one run to the next, so a link it
/// planted there last time must lead gantry nowhere this time: no folder inside it is handed
/// to the sandbox user (a `chown` through the link would give the step a host folder), nothing
/// is collected or moved through it, and the run says what the step did.
#[test]
fn a_link_left_in_a_warm_folder_leads_nowhere() {
    use std::os::unix::fs::MetadataExt as _;
    let (folder, file) = victim();
    let inner = folder.path().join("y");
    std::fs::create_dir(&inner).expect("mkdir");
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o755)).expect("mode");
    let owner = std::fs::metadata(&inner).expect("stat").uid();
    let test = Test::new().pipeline(&format!(
        "[steps.evil]\nrun = \"[ -L state/x ] || {{ rm -rf state/x; ln -s {} state/x; }}\"\noutputs = [\"state/x/y/\"]\nwarm = [\"state\"]\n",
        folder.path().display()
    ));
    says(&test.gantry_run(&[]).failure(1), "symbolic link");
    let kept: Vec<_> = std::fs::read_dir(test.path(".gantry/warm"))
        .expect("warm folders")
        .flatten()
        .map(|entry| entry.path().join("folder/x"))
        .collect();
    assert!(kept[0].is_symlink(), "the link is kept for the next run");
    says(&test.gantry_run(&[]).failure(1), "symbolic link");
    untouched(&file);
    let inner_now = std::fs::metadata(&inner).expect("stat");
    assert_eq!(
        inner_now.uid(),
        owner,
        "a host folder was handed to the step"
    );
    assert_eq!(inner_now.permissions().mode() & 0o777, 0o755);
}
