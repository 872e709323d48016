//! `gantry release`: the sample project (`examples/release`, a Rust crate built with the
//! declared toolchain) goes build → tests and smoke gates → SBOMs → signature → provenance →
//! release, in a git repository of its own; `gantry release verify` and `gantry verify` with
//! its policy pass, and a tampered artifact fails both.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::attestations::{generate_key, statement};
use crate::support::{Run, Test};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/release");
/// The toolchain the sample's pipeline names under `~/.rustup/toolchains/`.
pub(crate) const TOOLCHAIN: &str = "1.95.0-x86_64-unknown-linux-gnu";

/// The Rust toolchain these tests run with (its sysroot).
pub(crate) fn sysroot() -> PathBuf {
    let output = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .expect("rustc is on PATH (the Rust toolchain gantry is built with)");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

pub(crate) fn git(root: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(root)
        .args([
            "-c",
            "user.name=Release Engineer",
            "-c",
            "user.email=release@example.org",
        ])
        .args(["-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false"])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-11-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-01T12:00:00Z")
        .output()
        .expect("git runs");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// The sample in a fresh repository: a release key (its public half in the policy), the
/// toolchain where the pipeline looks for it, `v0.1.0` tagged, then a fix and a doc commit.
fn sample() -> Test {
    let test = Test::new();
    crate::support::copy_tree(Path::new(SAMPLE), test.root());
    std::fs::create_dir_all(test.path("home/.rustup/toolchains")).expect("toolchains");
    std::os::unix::fs::symlink(
        sysroot(),
        test.path(&format!("home/.rustup/toolchains/{TOOLCHAIN}")),
    )
    .expect("toolchain link");
    repository(&test, "feat: greet the world");
    git(test.root(), &["tag", "-a", "v0.1.0", "-m", "Release 0.1.0"]);
    test.write(
        "src/main.rs",
        &(test.read("src/main.rs") + "\n// Names are trimmed.\n"),
    );
    git(
        test.root(),
        &[
            "commit",
            "-q",
            "-am",
            "fix(cli): trim names before greeting",
        ],
    );
    test.write("README.md", "greeter\n");
    git(test.root(), &["add", "README.md"]);
    git(test.root(), &["commit", "-q", "-m", "docs: a readme"]);
    test
}

/// The test's folder as a repository with one commit: a release key (its public half next to
/// the policy) and what a run writes ignored.
fn repository(test: &Test, message: &str) {
    std::fs::create_dir_all(test.path("keys")).expect("keys");
    assert!(generate_key(
        &test.path("keys/release.key"),
        "EC",
        "ec_paramgen_curve:P-256"
    ));
    std::fs::set_permissions(
        test.path("keys/release.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let public = test
        .run(["keys", "public", "--key", "keys/release.key"])
        .success();
    test.write("policies/release.pub", &public.stdout());
    test.write(
        ".gitignore",
        "/out/\n/target/\n/.gantry/\n/attestations/\n/keys/\n/home/\n",
    );
    git(test.root(), &["init", "-q", "-b", "main", "."]);
    git(test.root(), &["add", "-A"]);
    git(test.root(), &["commit", "-q", "-m", message]);
}

fn release(test: &Test, args: &[&str]) -> Run {
    let output = test
        .command()
        .env("GREETER_SIGNING_KEY", "keys/release.key")
        .arg("release")
        .args(args)
        .args(["--key", "keys/release.key"])
        .output()
        .expect("run gantry");
    Run { output }
}

/// The sample's policy without `reproduced = true`, outside the repository (`home/` is
/// ignored), for releases cut without `--reproduce`: `gantry release` checks the policy
/// before it tags.
fn without_reproduction(test: &Test) -> &'static str {
    let policy = test.read("policies/release.toml");
    assert!(policy.contains("reproduced = true"));
    test.write(
        "home/relaxed.toml",
        &(policy.lines())
            .filter(|line| !line.starts_with("reproduced"))
            .collect::<Vec<_>>()
            .join("\n")
            .replace("\"release.pub\"", "\"../policies/release.pub\""),
    );
    "home/relaxed.toml"
}

fn release_verify(test: &Test, version: &str) -> Run {
    test.run(["release", "verify", version, "--json"])
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    (report["checks"].as_array().expect("checks").iter())
        .find(|check| check["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {report:#}"))
}

fn manifest(test: &Test, version: &str) -> serde_json::Value {
    statement(&test.path(&format!(
        "attestations/releases/{version}/manifest.intoto.json"
    )))
}

#[test]
fn a_release_is_cut_tagged_and_verified_and_a_tampered_artifact_fails() {
    let test = sample();
    let head = git(test.root(), &["rev-parse", "HEAD"]);
    let cut = release(&test, &["0.2.0", "--reproduce", "--json"]).success();
    let finished: serde_json::Value = (cut.stdout().lines())
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["event"] == "release_finished")
        .expect("a release_finished event");
    assert_eq!(finished["tag"], "v0.2.0");
    assert_eq!(finished["tagged"], true);
    assert_eq!(finished["commit"], head.as_str());
    assert_eq!(finished["previous"], "v0.1.0");

    let (run_id, binary) = assert_manifest(&test, &head);
    let manifest_bytes = assert_notes_and_tag(&test, &head);
    // Verified: the release as a whole, and the artifact with the verify engine directly.
    let verified = release_verify(&test, "0.2.0").success();
    let report: serde_json::Value = serde_json::from_str(&verified.stdout()).expect("JSON report");
    assert_eq!(report["passed"], true, "{report:#}");
    for name in [
        "manifest",
        "tag",
        "documents",
        "artifacts",
        "reproducibility",
        "policy",
    ] {
        assert_eq!(check(&report, name)["passed"], true, "{name}: {report:#}");
    }
    // The reproduction: a rebuild of `build` in varied surroundings, signed, named in the
    // manifest, and what the policy's `reproduced = true` reads.
    let statement_name = finished["reproducibility"]
        .as_str()
        .expect("reproducibility");
    assert!(
        statement_name.starts_with("repro/")
            && statement_name.ends_with("/reproducibility.intoto.json"),
        "{statement_name}"
    );
    let reproduction = statement(&test.path(&format!("attestations/{statement_name}")));
    assert_eq!(
        reproduction["predicate"]["checked"]["runId"],
        run_id.as_str()
    );
    assert_eq!(reproduction["predicate"]["reproduced"], true);
    let repro_folder = format!(
        "attestations/{}",
        statement_name.trim_end_matches("/reproducibility.intoto.json")
    );
    let folder = format!("attestations/{run_id}");
    test.run([
        "verify",
        "--policy",
        "policies/release.toml",
        "--attestations",
        &folder,
        "--attestations",
        &repro_folder,
        "out/dist/greeter",
    ])
    .success();

    assert_tampering_fails(&test, &folder, &binary, &manifest_bytes);
}

/// The manifest: the release predicate, the artifact, and everything that vouches for it.
/// Returns the run's id and the artifact's bytes.
fn assert_manifest(test: &Test, head: &str) -> (String, Vec<u8>) {
    let manifest = manifest(test, "0.2.0");
    assert_eq!(
        manifest["predicateType"],
        "https://in-toto.io/attestation/release/v0.1"
    );
    let predicate = &manifest["predicate"];
    assert_eq!(predicate["purl"], "pkg:generic/greeter@0.2.0");
    assert_eq!(predicate["commit"], head);
    assert_eq!(predicate["dirty"], false);
    let artifacts = predicate["artifacts"].as_array().expect("artifacts");
    assert_eq!(
        artifacts.len(),
        1,
        "the evidence files are not artifacts: {artifacts:#?}"
    );
    let artifact = &artifacts[0];
    let binary = std::fs::read(test.path("out/dist/greeter")).expect("binary");
    assert_eq!(artifact["name"], "out/dist/greeter");
    assert_eq!(artifact["sha256"], crate::support::sha256_hex(&binary));
    assert_eq!(
        manifest["subject"][0]["digest"]["sha256"],
        artifact["sha256"]
    );
    assert_eq!(artifact["step"], "build");
    assert!(
        artifact["reproducibility"]["name"]
            .as_str()
            .is_some_and(|name| name.starts_with("repro/")),
        "{artifact:#}"
    );
    assert_eq!(artifact["sboms"].as_array().expect("sboms").len(), 2);
    let signatures: Vec<&str> = (artifact["signatures"]
        .as_array()
        .expect("signatures")
        .iter())
    .filter_map(|signature| signature["name"].as_str())
    .collect();
    assert_eq!(
        signatures,
        ["out/dist/greeter.sig", "out/dist/greeter.sigstore.json"]
    );
    let stages: Vec<&str> = (artifact["gates"].as_array().expect("gates").iter())
        .filter_map(|gate| gate["stage"].as_str())
        .collect();
    assert_eq!(stages, ["smoke", "tests"]);
    let run_id = predicate["runId"].as_str().expect("run id");
    let provenance =
        statement(&test.path(&format!("attestations/{run_id}/provenance.intoto.json")));
    assert_eq!(
        provenance["predicate"]["buildDefinition"]["externalParameters"]["release"],
        serde_json::json!({"version": "0.2.0", "tag": "v0.2.0", "allowDirty": false})
    );

    (run_id.to_owned(), binary)
}

/// The notes and the annotated tag, which names the manifest's digest; returns the manifest.
fn assert_notes_and_tag(test: &Test, head: &str) -> Vec<u8> {
    let notes = test.read("attestations/releases/0.2.0/NOTES.md");
    assert!(
        notes.starts_with("# 0.2.0\n\n2 commits since v0.1.0.\n"),
        "{notes}"
    );
    assert!(
        notes.contains("## Bug fixes\n\n- **cli:** trim names before greeting"),
        "{notes}"
    );
    assert!(notes.contains("## Documentation\n\n- a readme"), "{notes}");
    assert!(
        !notes.contains("greet the world"),
        "commits of the last release stay out: {notes}"
    );
    let manifest_bytes =
        std::fs::read(test.path("attestations/releases/0.2.0/manifest.intoto.json"))
            .expect("manifest");
    let message = git(
        test.root(),
        &["tag", "-l", "--format=%(contents)", "v0.2.0"],
    );
    assert!(
        message.contains(&format!(
            "Manifest: sha256:{}",
            crate::support::sha256_hex(&manifest_bytes)
        )),
        "{message}"
    );
    assert_eq!(git(test.root(), &["rev-parse", "v0.2.0^{commit}"]), head);
    assert_eq!(git(test.root(), &["cat-file", "-t", "v0.2.0"]), "tag");

    manifest_bytes
}

/// A tampered artifact fails both verifications; an edited manifest or SBOM fails the release's.
fn assert_tampering_fails(test: &Test, folder: &str, binary: &[u8], manifest_bytes: &[u8]) {
    let mut tampered = binary.to_vec();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    std::fs::write(test.path("out/dist/greeter"), &tampered).expect("tamper");
    let failed = release_verify(test, "0.2.0").failure(1);
    let report: serde_json::Value = serde_json::from_str(&failed.stdout()).expect("JSON report");
    assert_eq!(report["passed"], false);
    let artifacts = check(&report, "artifacts");
    assert_eq!(artifacts["passed"], false);
    assert!(
        artifacts["findings"][0]
            .as_str()
            .expect("finding")
            .contains("out/dist/greeter")
    );
    test.run([
        "verify",
        "--policy",
        "policies/release.toml",
        "--attestations",
        folder,
        "out/dist/greeter",
    ])
    .failure(1);
    std::fs::write(test.path("out/dist/greeter"), binary).expect("restore");

    // A manifest edited after the tag no longer matches the digest the tag names.
    let path = test.path("attestations/releases/0.2.0/manifest.intoto.json");
    let edited = String::from_utf8(manifest_bytes.to_vec())
        .expect("utf8")
        .replacen('\n', "\n ", 1);
    std::fs::write(&path, edited).expect("edit manifest");
    let report: serde_json::Value =
        serde_json::from_str(&release_verify(test, "0.2.0").failure(1).stdout()).expect("JSON");
    let tag = check(&report, "tag");
    assert_eq!(tag["passed"], false);
    assert!(
        tag["findings"][0]
            .as_str()
            .expect("finding")
            .contains("names manifest sha256:"),
        "{tag:#}"
    );
    std::fs::write(&path, manifest_bytes).expect("restore manifest");

    // A document the manifest names, changed: the SBOM.
    let sbom = test.path("out/dist/greeter.spdx.json");
    let original = std::fs::read_to_string(&sbom).expect("sbom");
    std::fs::write(&sbom, original.replacen("greeter", "greeter2", 1)).expect("edit sbom");
    let report: serde_json::Value =
        serde_json::from_str(&release_verify(test, "0.2.0").failure(1).stdout()).expect("JSON");
    let documents = check(&report, "documents");
    assert!(
        documents["findings"][0]
            .as_str()
            .expect("finding")
            .contains("out/dist/greeter.spdx.json")
    );
    std::fs::write(&sbom, original).expect("restore sbom");
    release_verify(test, "0.2.0").success();

    // The release key retired before the run: the manifest's signature no longer counts.
    let policy = test.read("policies/release.toml");
    test.write(
        "policies/retired.toml",
        &policy.replace(
            "steps = [\"*\"]\n",
            "steps = [\"*\"]\nnot_after = \"2020-01-01T00:00:00Z\"\n",
        ),
    );
    let report: serde_json::Value = serde_json::from_str(
        &test
            .run([
                "release",
                "verify",
                "0.2.0",
                "--policy",
                "policies/retired.toml",
                "--json",
            ])
            .failure(1)
            .stdout(),
    )
    .expect("JSON");
    let manifest = check(&report, "manifest");
    assert_eq!(manifest["passed"], false);
    assert!(
        manifest["findings"][0]
            .as_str()
            .expect("finding")
            .contains("signed by key release, which is not valid at the run's time"),
        "{manifest:#}"
    );
}

#[test]
fn a_release_is_refused_unless_clean_forward_and_new_and_dry_runs_record_dirt() {
    let test = sample();
    for (version, expected) in [
        ("0.1.0", "tag `v0.1.0` exists already"),
        ("0.0.9", "0.0.9 is not greater than the last release, 0.1.0"),
        ("0.1.0+build.1", "not greater than the last release"),
    ] {
        release(&test, &[version])
            .failure(1)
            .stderr_contains(expected);
    }
    release(&test, &["one.two"])
        .failure(2)
        .stderr_contains("is not a semantic version");

    test.write(
        "src/main.rs",
        &(test.read("src/main.rs") + "// uncommitted\n"),
    );
    release(&test, &["0.2.0"])
        .failure(1)
        .stderr_contains("the work tree differs from commit")
        .stderr_contains("src/main.rs")
        .stderr_contains("--allow-dirty");
    assert!(
        !test.path("attestations").exists(),
        "a refused release runs nothing"
    );

    let policy = without_reproduction(&test);
    let dry = release(
        &test,
        &["0.2.0", "--allow-dirty", "--dry-run", "--policy", policy],
    )
    .success();
    assert!(
        dry.stdout().contains("dry run: tag v0.2.0 not created"),
        "{}",
        dry.stdout()
    );
    assert_eq!(git(test.root(), &["tag", "-l", "v0.2.0"]), "");
    let predicate = manifest(&test, "0.2.0")["predicate"].clone();
    assert_eq!(predicate["dirty"], true);
    assert_eq!(predicate["allowDirty"], true);
    let run_id = predicate["runId"].as_str().expect("run id");
    let provenance =
        statement(&test.path(&format!("attestations/{run_id}/provenance.intoto.json")));
    assert_eq!(
        provenance["predicate"]["buildDefinition"]["externalParameters"]["release"]["allowDirty"],
        true
    );
    let git_dependency = &provenance["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(git_dependency["annotations"]["dirty"], true);
    let report: serde_json::Value =
        serde_json::from_str(&release_verify(&test, "0.2.0").failure(1).stdout()).expect("JSON");
    let tag = check(&report, "tag");
    assert!(
        tag["findings"][0]
            .as_str()
            .expect("finding")
            .contains("there is no tag `v0.2.0`")
    );
}

/// A tiny release project: `build` makes the artifact (stamped with the version and a
/// parameter) and an internal file, an SBOM describes the artifact only; its policy asks
/// for an SBOM of every artifact.
fn tiny(artifacts: &str) -> Test {
    let test = Test::new()
        .file("src.txt", "source\n")
        .file(
            "Cargo.lock",
            "version = 3\n\n[[package]]\nname = \"tiny\"\nversion = \"0.1.0\"\n",
        )
        .file(
            "pipelines/release.toml",
            &format!(
                r#"[pipeline]
name = "tiny"
{artifacts}

[steps.build]
run = "mkdir -p out && printf 'tiny %s %s\n' \"$GANTRY_RELEASE_VERSION\" \"$GANTRY_PARAM_CHANNEL\" > out/app && cat src.txt > out/internal.txt"
inputs = ["src.txt"]
outputs = ["out/app", "out/internal.txt"]

[steps.sbom]
kind = "sbom"
from = "Cargo.lock"
format = "spdx"
subject = "out/app"
output = "out/app.spdx.json"
"#
            ),
        )
        .file(
            "policies/release.toml",
            "[policy]\nname = \"tiny\"\n\n[[keys]]\nid = \"release\"\npublic = \"release.pub\"\nsteps = [\"*\"]\n\n[require]\nsteps = [\"build\", \"sbom\"]\nprovenance = true\nsbom = true\nsources = [\"src.txt\", \"Cargo.lock\"]\n",
        );
    repository(&test, "feat: tiny");
    test
}

/// `gantry release` checks the policy `release verify` will check before it tags: an output
/// no SBOM describes, shipped because nothing said it was internal, refuses the release.
/// `[pipeline] artifacts` says what ships; steps see the version being released and the
/// release's `--param`s, and a reproduction of the release run gives them the same.
#[test]
fn a_release_that_release_verify_would_refuse_is_not_tagged() {
    let test = tiny("");
    release(&test, &["0.2.0", "--param", "CHANNEL=beta"])
        .failure(1)
        .stderr_contains("the release would not pass `gantry release verify`")
        .stderr_contains("out/internal.txt")
        .stderr_contains("No tag was made");
    assert_eq!(git(test.root(), &["tag", "-l", "v0.2.0"]), "");

    // A declared artifact that no step makes is refused by `check`, at its line.
    test.write(
        "pipelines/release.toml",
        &test.read("pipelines/release.toml").replace(
            "name = \"tiny\"\n",
            "name = \"tiny\"\nartifacts = [\"out/ap\"]\n",
        ),
    );
    test.run(["check", "pipelines/release.toml"])
        .failure(1)
        .stderr_contains("artifact `out/ap` is no output of an exec or nix step")
        .stderr_contains("release.toml:3");

    test.write(
        "pipelines/release.toml",
        &test
            .read("pipelines/release.toml")
            .replace("out/ap\"", "out/app\""),
    );
    git(
        test.root(),
        &["commit", "-q", "-am", "build: only the app ships"],
    );
    let cut = release(&test, &["0.2.0", "--param", "CHANNEL=beta", "--json"]).success();
    assert!(
        cut.stdout().contains("release_finished"),
        "{}",
        cut.stdout()
    );
    assert_eq!(git(test.root(), &["tag", "-l", "v0.2.0"]), "v0.2.0");
    assert_eq!(test.read("out/app"), "tiny 0.2.0 beta\n");
    let manifest = manifest(&test, "0.2.0");
    let names: Vec<&str> = (manifest["predicate"]["artifacts"].as_array())
        .expect("artifacts")
        .iter()
        .map(|artifact| artifact["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["out/app"]);
    release_verify(&test, "0.2.0").success();

    // A reproduction of the release run gives the steps the same version and parameters.
    let repro = test
        .run([
            "repro",
            "pipelines/release.toml",
            "--key",
            "keys/release.key",
            "--json",
        ])
        .success();
    assert!(
        repro.stdout().contains("\"reproduced\":true"),
        "{}",
        repro.stdout()
    );
}

/// `--reproduce` asks for proof: an artifact whose rebuild differs refuses the release, and
/// says why, with nothing written or tagged.
#[test]
fn an_artifact_that_does_not_reproduce_refuses_the_release() {
    let test = sample();
    let pipeline = test.read("pipelines/release.toml");
    let copy = r#"cp \"$TMPDIR/target/release/greeter\" out/dist/greeter"#;
    assert!(pipeline.contains(copy));
    test.write(
        "pipelines/release.toml",
        &pipeline.replace(
            copy,
            &format!("{copy} && cat /proc/sys/kernel/random/uuid >> out/dist/greeter"),
        ),
    );
    git(
        test.root(),
        &["commit", "-q", "-am", "build: stamp the binary"],
    );
    release(&test, &["0.2.0", "--reproduce", "--vary", "none"])
        .failure(1)
        .stderr_contains("DIFFERS")
        .stderr_contains("`out/dist/greeter` did not reproduce")
        .stderr_contains("No manifest was written and no tag made");
    assert!(!test.path("attestations/releases/0.2.0").exists());
    assert_eq!(git(test.root(), &["tag", "-l", "v0.2.0"]), "");
    release(&test, &["0.2.0", "--vary", "umask"])
        .failure(2)
        .stderr_contains("--reproduce");
}

/// A Nix output is released by its out-link and NAR hash, with its store path; `release
/// verify` recomputes that NAR hash itself (equal to Nix's `narHash`, for a tree with folders,
/// an executable, a symlink and files of every padding) and follows the out-link.
#[test]
fn a_nix_output_is_released_and_verified_by_its_nar_hash() {
    crate::nix::require_nix();
    let test = Test::new()
        .file(
            "nix/flake.nix",
            r#"{
  outputs = { self }: {
    packages.x86_64-linux.tree = derivation {
      name = "tree"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "/bin/mkdir -p $out/bin $out/share/empty; echo data > $out/data; printf 12345678 > $out/eight; printf '#!/bin/sh\\necho hi\\n' > $out/bin/hi; /bin/chmod +x $out/bin/hi; /bin/ln -s ../data $out/bin/data-link" ];
    };
  };
}
"#,
        )
        .file(
            "pipelines/release.toml",
            "[pipeline]\nname = \"tree\"\n\n[steps.tree]\nkind = \"nix\"\nflake = \"./nix#tree\"\noutputs = [\"result-tree\"]\n",
        )
        .file(
            "policies/release.toml",
            "[policy]\nname = \"tree\"\n\n[[keys]]\nid = \"release\"\npublic = \"release.pub\"\nsteps = [\"*\"]\n\n[require]\nsteps = [\"tree\"]\nprovenance = true\nsources = [\"nix/*\"]\n",
        );
    // Nix writes the lock of a flake without inputs on its first evaluation: commit it.
    crate::nix::nix(&test, &["flake", "lock", "./nix"]);
    repository(&test, "feat: a tree");
    test.write(".gitignore", &(test.read(".gitignore") + "/result-*\n"));
    git(
        test.root(),
        &["commit", "-q", "-am", "chore: ignore out-links"],
    );

    release(&test, &["1.0.0"]).success();
    let store_path = std::fs::read_link(test.path("result-tree")).expect("out-link");
    let store_path = store_path.to_str().expect("utf8");
    let hashed = crate::nix::nix(
        &test,
        &["hash", "path", "--type", "sha256", "--base16", store_path],
    );
    let manifest = manifest(&test, "1.0.0");
    let artifact = &manifest["predicate"]["artifacts"][0];
    assert_eq!(artifact["name"], "result-tree");
    assert_eq!(artifact["storePath"], store_path);
    assert_eq!(artifact["sha256"], hashed.trim());

    let report: serde_json::Value =
        serde_json::from_str(&release_verify(&test, "1.0.0").success().stdout()).expect("JSON");
    assert_eq!(check(&report, "artifacts")["passed"], true, "{report:#}");
    let run_id = manifest["predicate"]["runId"].as_str().expect("run id");
    test.run([
        "verify",
        "--policy",
        "policies/release.toml",
        "--attestations",
        &format!("attestations/{run_id}"),
        "result-tree",
    ])
    .success();

    // The out-link turned to a copy of the tree: the release names the store path, so the
    // digest still holds, but the workspace no longer holds what was released.
    let copy = test.path("copy");
    let copied = Command::new("cp")
        .args(["-a", store_path])
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(copied.success());
    std::fs::remove_file(test.path("result-tree")).expect("unlink");
    std::os::unix::fs::symlink(&copy, test.path("result-tree")).expect("relink");
    let report: serde_json::Value =
        serde_json::from_str(&release_verify(&test, "1.0.0").failure(1).stdout()).expect("JSON");
    let findings = check(&report, "artifacts")["findings"].to_string();
    assert!(
        findings.contains("out-link `result-tree` points at"),
        "{findings}"
    );
}

/// Two clones of one commit, in different folders, built at different times by different
/// users (root, and uid 65534 with its own home and its own copy of the toolchain), give
/// byte-identical artifacts, SBOMs and signatures, and the same subject digests.
#[test]
fn two_clones_built_by_two_users_release_identical_bytes() {
    use std::os::unix::fs::chown;
    // SAFETY: trivial getter.
    assert!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() } == 0,
        "this test runs gantry as another user: run it as root"
    );
    let first = sample();
    let policy = without_reproduction(&first);
    release(&first, &["0.2.0", "--dry-run", "--policy", policy]).success();

    let second = Test::new();
    let clone = second.path("elsewhere/greeter");
    git(
        second.root(),
        &[
            "clone",
            "-q",
            first.root().to_str().expect("utf8"),
            clone.to_str().expect("utf8"),
        ],
    );
    std::fs::create_dir_all(clone.join("keys")).expect("keys");
    std::fs::copy(
        first.path("keys/release.key"),
        clone.join("keys/release.key"),
    )
    .expect("key");
    // The other user's own toolchain: the same files, hard-linked into their home.
    let home = second.path("home");
    std::fs::create_dir_all(home.join(".rustup/toolchains")).expect("toolchains");
    let copied = Command::new("cp")
        .arg("-al")
        .arg(sysroot())
        .arg(home.join(format!(".rustup/toolchains/{TOOLCHAIN}")))
        .status()
        .expect("cp");
    assert!(copied.success());
    std::fs::create_dir_all(clone.join("home")).expect("home");
    std::fs::copy(first.path(policy), clone.join(policy)).expect("policy");
    for entry in walkdir::WalkDir::new(second.root())
        .into_iter()
        .filter_entry(|entry| !entry.path().starts_with(home.join(".rustup")))
    {
        let entry = entry.expect("walk");
        chown(entry.path(), Some(65534), Some(65534)).expect("chown");
    }
    let output = second
        .command_for("setpriv")
        .current_dir(&clone)
        .env("HOME", &home)
        .env("GREETER_SIGNING_KEY", "keys/release.key")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            crate::support::GANTRY,
        ])
        .args(["release", "0.2.0", "--dry-run", "--key", "keys/release.key"])
        .args(["--policy", policy])
        .output()
        .expect("setpriv runs gantry");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    for file in [
        "out/dist/greeter",
        "out/dist/greeter.spdx.json",
        "out/dist/greeter.cdx.json",
        "out/dist/greeter.sig",
        "out/dist/greeter.sigstore.json",
    ] {
        let one = std::fs::read(first.path(file)).expect("first");
        let other = std::fs::read(clone.join(file)).expect("second");
        assert!(one == other, "{file} differs between the two clones");
    }
    // Everything but the vulnerability scan's statement, which holds the times it ran.
    let timeless = |subjects: &serde_json::Value| -> Vec<serde_json::Value> {
        (subjects.as_array().expect("subjects").iter())
            .filter(|subject| subject["name"] != "out/vulns/vulns.intoto.json")
            .cloned()
            .collect()
    };
    let subjects = |manifest: &serde_json::Value| timeless(&manifest["subject"]);
    let other = statement(&clone.join("attestations/releases/0.2.0/manifest.intoto.json"));
    assert_eq!(subjects(&manifest(&first, "0.2.0")), subjects(&other));
    let provenance_subjects = |root: &Path, manifest: &serde_json::Value| {
        let run_id = manifest["predicate"]["runId"]
            .as_str()
            .expect("run id")
            .to_owned();
        timeless(
            &statement(&root.join(format!("attestations/{run_id}/provenance.intoto.json")))["subject"],
        )
    };
    assert_eq!(
        provenance_subjects(first.root(), &manifest(&first, "0.2.0")),
        provenance_subjects(&clone, &other)
    );
}

/// Splits a shell command line into words: quotes and backslashes as sh reads them, enough
/// for the CI examples (no expansions; `$VAR` stays as written).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    let mut characters = line.chars();
    while let Some(character) = characters.next() {
        match (quote, character) {
            (None, ' ' | '\t' | '\n') => words.extend(word.take()),
            (None, '\'' | '"') => {
                quote = Some(character);
                word.get_or_insert_with(String::new);
            }
            (Some(open), _) if open == character => quote = None,
            (None | Some('"'), '\\') => {
                if let Some(next) = characters.next().filter(|next| *next != '\n') {
                    word.get_or_insert_with(String::new).push(next);
                }
            }
            _ => word.get_or_insert_with(String::new).push(character),
        }
    }
    words.extend(word);
    words
}

/// Every string under `run` (GitHub Actions steps) or `script` (GitLab jobs), anywhere.
fn commands(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("run" | "script" | "before_script", serde_json::Value::String(text)) => {
                        found.push(text.clone());
                    }
                    ("script" | "before_script", serde_json::Value::Array(lines)) => {
                        found.extend(
                            lines
                                .iter()
                                .filter_map(|line| line.as_str().map(str::to_owned)),
                        );
                    }
                    _ => commands(value, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| commands(item, found)),
        _ => {}
    }
}

/// The CI examples in docs/ci parse as YAML, run gantry through the flake (`nix run .# --`),
/// and every gantry command line in them is one gantry accepts: a release and its check.
#[test]
fn the_ci_examples_parse_and_run_real_gantry_commands() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ci");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&folder)
        .expect("docs/ci")
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    let names: Vec<String> = (files.iter())
        .filter_map(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .collect();
    assert_eq!(names, ["github-release.yml", "gitlab-release.yml"]);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let document: serde_json::Value = serde_norway::from_str(&text)
            .unwrap_or_else(|error| panic!("{}: not YAML: {error}", file.display()));
        let mut found = Vec::new();
        commands(&document, &mut found);
        let mut invocations = Vec::new();
        for command in &found {
            // GitHub's expressions are filled in before the shell sees the line; GitLab's
            // variable stands for the same version.
            let mut line = command.replace("$RELEASE_VERSION", "1.4.0");
            while let Some(start) = line.find("${{") {
                let end = line[start..]
                    .find("}}")
                    .map_or(line.len(), |end| start + end + 2);
                line.replace_range(start..end, "1.4.0");
            }
            let words = shell_words(&line);
            let Some(flake) = words.iter().position(|word| word == ".#") else {
                continue;
            };
            assert_eq!(
                words[0],
                "nix",
                "{}: `{line}` runs gantry through nix",
                file.display()
            );
            assert!(words[..flake].contains(&"run".to_owned()), "{line}");
            assert_eq!(
                words.get(flake + 1).map(String::as_str),
                Some("--"),
                "{line}"
            );
            let args: Vec<&str> = words[flake + 2..].iter().map(String::as_str).collect();
            gantry::cli::accepts(&args).unwrap_or_else(|error| {
                panic!("{}: `gantry {}`: {error}", file.display(), args.join(" "))
            });
            invocations.push(
                args.iter()
                    .take(2)
                    .map(|word| (*word).to_owned())
                    .collect::<Vec<_>>(),
            );
        }
        assert_eq!(
            invocations,
            [["release", "1.4.0"], ["release", "verify"]],
            "{}",
            file.display()
        );
        // What the job keeps is what gantry's own release pipeline writes.
        let pipeline = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/release.toml"),
        )
        .expect("pipelines/release.toml");
        for line in text.lines().map(str::trim) {
            let Some(path) = line
                .strip_prefix("- out/")
                .or_else(|| line.strip_prefix("out/"))
            else {
                continue;
            };
            assert!(
                pipeline.contains(&format!("\"out/{path}")),
                "{}: uploads `out/{path}`, which pipelines/release.toml does not write",
                file.display()
            );
        }
    }
    assert!(gantry::cli::accepts(&["release", "verify", "1.4.0", "--no-such-flag"]).is_err());
}

/// A dry run, then the release: the release's own run changes nothing, yet it has a run
/// folder of its own (a run that changes nothing otherwise names the last provenance), which
/// its manifest and tag name and `release verify` reads.
#[test]
fn a_release_after_its_dry_run_has_a_run_of_its_own() {
    let test = tiny("artifacts = [\"out/app\"]");
    let dry = release(&test, &["0.3.0", "--dry-run", "--json"]).success();
    assert!(
        dry.stdout().contains("release_finished"),
        "{}",
        dry.stdout()
    );
    release(&test, &["0.3.0"]).success();
    let manifest = manifest(&test, "0.3.0");
    let run_id = manifest["predicate"]["runId"]
        .as_str()
        .or_else(|| manifest["predicate"]["run_id"].as_str())
        .map(str::to_owned);
    if let Some(run_id) = run_id {
        assert!(
            test.path("attestations")
                .join(&run_id)
                .join("provenance.intoto.json")
                .is_file(),
            "the manifest's run {run_id} has its folder"
        );
    }
    let verified = release_verify(&test, "0.3.0").success();
    assert!(
        verified.stdout().contains("\"passed\":true")
            || verified.stdout().contains("VERIFIED")
            || verified.stdout().contains("\"passed\": true"),
        "{}",
        verified.stdout()
    );
}
