//! SLSA provenance v1: one signed Statement per successful run, its fields checked against the
//! specification (<https://slsa.dev/spec/v1.0/provenance>), and Sigstore bundles of every
//! attestation that sigstore-js verifies.

use std::fs;
use std::process::Command;

use crate::attestations::{openssl_verifies, statement};
use crate::signing::sigstore_verifies;
use crate::support::Test;

use crate::support::sha256_hex as sha256;

fn git(test: &Test, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(test.root())
        .args(["-c", "user.email=ci@example.org", "-c", "user.name=CI"])
        .args(args)
        .output()
        .expect("git is installed (apt-get install git)");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

const PIPELINE: &str = r#"[pipeline]
name = "release"
root = "."

[steps.compile]
run = "mkdir -p out && cat src/a.txt > out/app && printf '%s\n' \"$GANTRY_PARAM_VERSION\" > out/version"
inputs = ["src/a.txt"]
outputs = ["out/app", "out/version"]
publish = true

[steps.package]
run = "tar --sort=name --mtime=@0 --owner=0 --group=0 -cf out/pkg.tar out/app"
inputs = ["out/app"]
outputs = ["out/pkg.tar"]

[steps.docs]
run = "mkdir -p out/docs && cp src/a.txt out/docs/a.txt"
inputs = ["src/a.txt"]
outputs = ["out/docs/"]
"#;

/// A committed workspace, with gantry's own folders ignored as a project would.
fn workspace() -> Test {
    let test = Test::new()
        .file("src/a.txt", "alpha\n")
        .file(".gitignore", "/home/\n")
        .file("pipeline.toml", PIPELINE);
    git(&test, &["init", "-q", "-b", "main"]);
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "release"]);
    test
}

#[test]
fn provenance_records_what_the_spec_asks_and_verifies() {
    let test = workspace();
    let key = test.path("home/release.pem");
    assert!(
        Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "EC",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-out"
            ])
            .arg(&key)
            .status()
            .expect("openssl")
            .success()
    );
    fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
    let public = test.path("home/release.pub");
    assert!(
        Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .status()
            .expect("openssl")
            .success()
    );
    let run = test
        .gantry_run(&[
            "--key",
            "home/release.pem",
            "--param",
            "VERSION=1.4.0",
            "--builder-id",
            "https://ci.example.org/release@v1",
            "--bundles",
        ])
        .success();
    let run_dir = run.run_dir();
    let path = run_dir.join("provenance.intoto.json");
    assert_eq!(
        run.finished()["provenance"].as_str(),
        Some(path.to_str().expect("utf8"))
    );
    assert!(openssl_verifies(&path, &public, test.root()));
    let statement = statement(&path);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(statement["predicateType"], "https://slsa.dev/provenance/v1");
    check_subjects(&test, &statement);
    check_build_definition(&test, &statement["predicate"]["buildDefinition"]);
    check_run_details(&run, &statement["predicate"]["runDetails"]);
    check_bundles_and_sums(&test, &run_dir, &public);
}

fn check_subjects(test: &Test, statement: &serde_json::Value) {
    // Subjects: outputs nothing reads (the tarball, the version file, each file of the docs
    // folder) and the published step's outputs even though `package` reads one.
    let subjects: Vec<(String, String)> = statement["subject"]
        .as_array()
        .expect("subjects")
        .iter()
        .map(|subject| {
            (
                subject["name"].as_str().expect("name").to_owned(),
                subject["digest"]["sha256"]
                    .as_str()
                    .expect("digest")
                    .to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = subjects.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        ["out/app", "out/version", "out/pkg.tar", "out/docs/a.txt"]
    );
    for (name, digest) in &subjects {
        assert_eq!(
            *digest,
            sha256(&fs::read(test.path(name)).expect("artifact")),
            "{name}"
        );
    }
}

fn check_build_definition(test: &Test, definition: &serde_json::Value) {
    assert_eq!(
        definition["buildType"],
        "https://gantry.dev/provenance/pipeline/v1"
    );
    let external = &definition["externalParameters"];
    assert_eq!(external["pipeline"]["path"], "pipeline.toml");
    assert_eq!(external["pipeline"]["name"], "release");
    assert_eq!(
        external["pipeline"]["digest"]["sha256"],
        sha256(PIPELINE.as_bytes())
    );
    assert_eq!(
        external["steps"],
        serde_json::json!(["compile", "package", "docs"])
    );
    assert_eq!(
        external["parameters"],
        serde_json::json!({"VERSION": "1.4.0"})
    );
    assert_eq!(test.read("out/version"), "1.4.0\n");
    let internal = &definition["internalParameters"];
    assert!(
        internal["sandbox"]
            .as_str()
            .expect("sandbox")
            .starts_with("gantry-sandbox/")
    );
    assert!(internal["sourceDateEpoch"].is_i64());
    let dependencies = definition["resolvedDependencies"].as_array().expect("deps");
    let head = git(test, &["rev-parse", "HEAD"]);
    let root = fs::canonicalize(test.root()).expect("root");
    assert_eq!(
        dependencies[0]["uri"],
        format!("git+file://{}", root.display())
    );
    assert_eq!(dependencies[0]["digest"]["gitCommit"], head);
    assert_eq!(dependencies[0]["annotations"]["dirty"], false);
    assert_eq!(dependencies[0]["annotations"]["ref"], "refs/heads/main");
    assert_eq!(dependencies[1]["name"], "src/a.txt");
    assert_eq!(dependencies[1]["digest"]["sha256"], sha256(b"alpha\n"));
}

fn check_run_details(run: &crate::support::Run, details: &serde_json::Value) {
    let run_dir = run.run_dir();
    assert_eq!(
        details["builder"]["id"],
        "https://ci.example.org/release@v1"
    );
    assert_eq!(
        details["builder"]["version"]["gantry"],
        env!("CARGO_PKG_VERSION")
    );
    let metadata = &details["metadata"];
    assert_eq!(metadata["invocationId"], run.finished()["run_id"]);
    let started = metadata["startedOn"].as_str().expect("startedOn");
    let finished = metadata["finishedOn"].as_str().expect("finishedOn");
    assert!(started.len() == 20 && started.ends_with('Z') && started <= finished);
    // Byproducts: every step's link, by the digest of its file in the attestation store.
    let byproducts = details["byproducts"].as_array().expect("byproducts");
    assert_eq!(byproducts.len(), 3);
    for byproduct in byproducts {
        let name = byproduct["name"].as_str().expect("name");
        let hex = byproduct["digest"]["sha256"].as_str().expect("sha256");
        let stored = run_dir
            .parent()
            .expect("attestations")
            .join(format!("sha256/{}/{hex}.intoto.json", &hex[..2]));
        assert_eq!(stored, crate::support::attested(&run_dir, name));
        assert_eq!(hex, sha256(&fs::read(&stored).expect("link")));
    }
}

/// Every attestation is also a Sigstore bundle that sigstore-js verifies with the key, and
/// SHA256SUMS lists every file of the run folder.
fn check_bundles_and_sums(test: &Test, run_dir: &std::path::Path, public: &std::path::Path) {
    for name in ["compile", "package", "docs", "provenance"] {
        let bundle = run_dir.join(format!("{name}.sigstore.json"));
        assert!(sigstore_verifies(&bundle, public, None), "{name}");
    }
    let sums = fs::read_to_string(run_dir.join("SHA256SUMS")).expect("sums");
    // Four links, the provenance, the usage document and a bundle of each.
    assert_eq!(sums.lines().count(), 10);
    // Each line names a file of the run: in its folder, or (a step's link) in the
    // attestation store beside it.
    for line in sums.lines() {
        let (digest, name) = line.split_once("  ").expect("sha256sum format");
        let path = crate::support::attested(run_dir, name);
        assert_eq!(digest, sha256(&fs::read(&path).expect("file")), "{name}");
        if name.ends_with(".intoto.json")
            && !name.starts_with("provenance")
            && !name.starts_with("usage")
        {
            assert!(
                !run_dir.join(name).exists(),
                "{name} is stored once, by content"
            );
        }
    }
    // A bundle whose statement was changed fails sigstore-js.
    let bundle_path = run_dir.join("provenance.sigstore.json");
    let mut bundle: serde_json::Value =
        serde_json::from_slice(&fs::read(&bundle_path).expect("bundle")).expect("json");
    let payload = bundle["dsseEnvelope"]["payload"]
        .as_str()
        .expect("payload")
        .to_owned();
    bundle["dsseEnvelope"]["payload"] = payload.replacen('A', "B", 1).into();
    let tampered = test.path("home/tampered.sigstore.json");
    fs::write(&tampered, serde_json::to_vec(&bundle).expect("json")).expect("write");
    assert!(!sigstore_verifies(&tampered, public, None));
}

#[test]
fn a_failed_run_writes_no_provenance_and_a_dirty_tree_is_recorded() {
    let test = workspace();
    test.write("src/untracked.txt", "new\n");
    let run = test.gantry_run(&[]).success();
    let statement = statement(&run.run_dir().join("provenance.intoto.json"));
    let git = &statement["predicate"]["buildDefinition"]["resolvedDependencies"][0];
    assert_eq!(git["annotations"]["dirty"], true);

    let test = Test::new().pipeline("[steps.fail]\nrun = \"exit 3\"\n");
    let run = test.gantry_run(&[]).failure(1);
    assert!(!run.run_dir().join("provenance.intoto.json").exists());
    assert!(run.finished().get("provenance").is_none());
    assert!(run.run_dir().join("SHA256SUMS").exists());
}

#[test]
fn the_step_name_provenance_is_reserved() {
    Test::new()
        .pipeline("[steps.provenance]\nrun = \"true\"\n")
        .run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains("the step name `provenance` is reserved");
}
