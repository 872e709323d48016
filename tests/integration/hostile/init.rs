//! `gantry init` on a repository an attacker wrote: it reads only files the folder itself
//! lists and follows no link, so nothing outside the folder reaches what it prints or writes.

use crate::support::Test;

#[test]
fn init_reads_nothing_outside_the_project() {
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(
        outside.path().join("shadow"),
        "root:SECRET-HASH:19000::::::\n",
    )
    .expect("secret");
    std::fs::write(
        outside.path().join("Cargo.toml"),
        "[package]\nname = \"SECRET-NAME\"\nversion = \"1.0.0\"\n",
    )
    .expect("manifest");

    // The manifest is a link to a secret file.
    let linked = Test::new();
    std::os::unix::fs::symlink(outside.path().join("shadow"), linked.path("Cargo.toml"))
        .expect("link");
    let run = linked.run(["init"]).failure(1);
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(!said.contains("SECRET"), "{said}");
    assert!(!linked.path("pipeline.toml").exists());

    // A workspace member outside the folder is not read.
    let member = format!(
        "../{}",
        outside.path().file_name().expect("name").to_string_lossy()
    );
    let workspace = Test::new().file(
        "Cargo.toml",
        &format!("[workspace]\nmembers = [\"{member}\"]\n"),
    );
    let run = workspace.run(["init"]).failure(1);
    let said = format!("{}{}", run.stdout(), run.stderr());
    assert!(!said.contains("SECRET"), "{said}");
    assert!(
        said.contains("neither [package] nor workspace members"),
        "{said}"
    );
}
