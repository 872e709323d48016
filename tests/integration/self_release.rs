//! gantry releases itself: `pipelines/release.toml` on a copy of this work tree vendors the
//! crates Cargo.lock pins (the one networked step: crates.io), builds gantry in release mode
//! offline with the declared toolchain, smoke-tests it behind a gate, writes SBOMs, signs it,
//! rebuilds it from scratch in varied surroundings (`--reproduce`: every artifact must be the
//! same bytes) and tags the release; `gantry release verify` with `policies/release.toml`
//! passes. The longest test in the suite (two release builds of gantry: minutes).

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::attestations::generate_key;
use crate::release::{TOOLCHAIN, git, sysroot};
use crate::support::Test;

const REPOSITORY: &str = env!("CARGO_MANIFEST_DIR");

/// The work tree as git sees it (tracked files and untracked ones not ignored), copied into a
/// repository of its own with one commit: what a fresh clone of this tree would hold.
fn copy_of_this_tree(test: &Test) {
    let output = Command::new("git")
        .current_dir(REPOSITORY)
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .output()
        .expect("git ls-files");
    assert!(output.status.success(), "git ls-files failed");
    for name in output.stdout.split(|byte| *byte == 0) {
        let name = String::from_utf8_lossy(name);
        let from = Path::new(REPOSITORY).join(name.as_ref());
        // A file deleted but not yet committed is listed and absent.
        if name.is_empty() || !from.exists() {
            continue;
        }
        let to = test.path(&name);
        std::fs::create_dir_all(to.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&from, &to).expect("copy");
    }
    git(test.root(), &["init", "-q", "-b", "main", "."]);
    // The test's home (the toolchain, the key) lives in the folder: excluded locally, so the
    // tree itself is as committed.
    std::fs::write(test.path(".git/info/exclude"), "/home/\n").expect("exclude");
    git(test.root(), &["add", "-A"]);
    git(
        test.root(),
        &["commit", "-q", "-m", "feat: gantry, ready for its release"],
    );
}

/// When the binary did not reproduce: the start of each diffoscope report of the rebuild
/// (the test's folder is removed when it ends, and a difference in gantry's own build is rare
/// enough that the report is what there is to go on).
fn difference(test: &Test) -> String {
    let mut text = String::new();
    let reports = walkdir::WalkDir::new(test.path("attestations/repro"))
        .into_iter()
        .flatten()
        .filter(|entry| entry.file_type().is_file())
        .filter(|entry| entry.path().to_string_lossy().contains("/diffoscope/"));
    for report in reports {
        let report_text = std::fs::read_to_string(report.path()).unwrap_or_default();
        let head: Vec<&str> = report_text.lines().take(200).collect();
        let _ = writeln!(text, "--- {}\n{}", report.path().display(), head.join("\n"));
    }
    text
}

#[test]
fn gantry_releases_itself_with_its_own_pipeline() {
    let test = Test::new();
    copy_of_this_tree(&test);
    std::fs::create_dir_all(test.path("home/.rustup/toolchains")).expect("toolchains");
    std::os::unix::fs::symlink(
        sysroot(),
        test.path(&format!("home/.rustup/toolchains/{TOOLCHAIN}")),
    )
    .expect("toolchain link");
    // The key and its public half stay out of the commit (keys/ is outside the tree; `*.pub`
    // in policies/ is ignored).
    std::fs::create_dir_all(test.path("home/keys")).expect("keys");
    let key = test.path("home/keys/release.key");
    assert!(generate_key(&key, "EC", "ec_paramgen_curve:P-256"));
    let public = test
        .run(["keys", "public", "--key", key.to_str().expect("utf8")])
        .success();
    test.write("policies/release.pub", &public.stdout());
    let status = git(test.root(), &["status", "--porcelain"]);
    assert!(status.is_empty(), "the copy is clean: {status}");

    let output = test
        .command()
        .env("GANTRY_SIGNING_KEY", &key)
        .args(["release", "0.1.0", "--reproduce", "--key"])
        .arg(&key)
        .output()
        .expect("gantry release");
    assert!(
        output.status.success(),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        difference(&test)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("out/release/gantry  sha256:"), "{text}");
    assert!(text.contains("tagged   v0.1.0"), "{text}");
    // Rebuilt from scratch with every variation (paths, user, clock, file order...): the
    // binary is the same bytes, and the signed Statement says so.
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("reproduced, see repro/"), "{text}");
    assert!(
        said.contains("build   out/release/gantry  reproduced"),
        "{said}"
    );

    // The released binary is a working gantry of this version.
    let version = Command::new(test.path("out/release/gantry"))
        .arg("--version")
        .output()
        .expect("the released gantry runs");
    assert!(
        String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        String::from_utf8_lossy(&version.stdout)
    );

    let verified = test.run(["release", "verify", "0.1.0", "--json"]);
    let report: serde_json::Value =
        serde_json::from_str(&verified.stdout()).expect("a JSON report");
    assert_eq!(report["passed"], true, "{report:#}");
    let steps = report["verification"]["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|check| check["check"] == "steps")
        .expect("the steps check")
        .clone();
    assert_eq!(steps["passed"], true, "{steps:#}");
    let manifest = crate::attestations::statement(
        &test.path("attestations/releases/0.1.0/manifest.intoto.json"),
    );
    let artifact = &manifest["predicate"]["artifacts"][0];
    assert_eq!(artifact["name"], "out/release/gantry");
    let reproducibility = artifact["reproducibility"]["name"]
        .as_str()
        .expect("the manifest names the Statement");
    let statement =
        crate::attestations::statement(&test.path("attestations").join(reproducibility));
    assert_eq!(statement["predicate"]["reproduced"], true, "{statement:#}");
    assert_eq!(
        statement["predicate"]["rebuild"]["variations"]
            .as_array()
            .map(Vec::len),
        Some(10),
        "every variation"
    );
    assert_eq!(artifact["sboms"].as_array().expect("sboms").len(), 2);
    assert_eq!(artifact["gates"][0]["stage"], "smoke");
}
