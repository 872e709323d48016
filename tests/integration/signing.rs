//! Signing: cosign-compatible keys (`gantry keys generate`, keys cosign wrote), `kind = "sign"`
//! steps whose `.sig` openssl verifies and whose `.sigstore.json` sigstore-js verifies.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support::{Test, require_tool};

const PASSWORD: &str = "correct horse battery staple";

/// The repository's Sigstore verifier (`@sigstore/verify`, installed by `scripts/test.sh`).
fn sigstore_oracle() -> PathBuf {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/sigstore");
    require_tool("node", "--version", "apt-get install nodejs npm");
    assert!(
        folder.join("node_modules/@sigstore/verify").is_dir(),
        "these tests need @sigstore/verify: run `npm ci --prefix tests/oracles/sigstore` (scripts/test.sh does)"
    );
    folder.join("verify.mjs")
}

/// `node verify.mjs BUNDLE KEY [ARTIFACT]`: true when sigstore-js accepts the bundle.
pub(crate) fn sigstore_verifies(bundle: &Path, public_key: &Path, artifact: Option<&Path>) -> bool {
    let mut command = Command::new("node");
    command.arg(sigstore_oracle()).arg(bundle).arg(public_key);
    if let Some(artifact) = artifact {
        command.arg(artifact);
    }
    let output = command.output().expect("run node");
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    }
    output.status.success()
}

/// `openssl dgst -sha256 -verify KEY -signature SIG ARTIFACT` over a cosign `.sig` file.
fn openssl_verifies_blob(signature_b64: &Path, public_key: &Path, artifact: &Path) -> bool {
    let der = STANDARD
        .decode(fs::read(signature_b64).expect("signature"))
        .expect("base64 signature");
    let der_path = signature_b64.with_extension("der");
    fs::write(&der_path, der).expect("write");
    Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public_key)
        .arg("-signature")
        .arg(&der_path)
        .arg(artifact)
        .output()
        .expect("openssl is installed (apt-get install openssl)")
        .status
        .success()
}

fn signing_pipeline(key: &str) -> String {
    format!(
        r#"[steps.package]
run = "mkdir -p out && printf 'release payload\n' > out/pkg.tar && printf 'notes\n' > out/notes.txt"
outputs = ["out/pkg.tar", "out/notes.txt"]

[steps.sign]
kind = "sign"
inputs = ["out/pkg.tar", "out/notes.txt"]
key = "{key}"
"#
    )
}

fn generate(test: &Test, folder: &str) {
    let output = test
        .command()
        .env("COSIGN_PASSWORD", PASSWORD)
        .args(["keys", "generate", "--output-dir", folder])
        .output()
        .expect("gantry keys generate");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn generated_keys_sign_artifacts_that_openssl_and_sigstore_verify() {
    let test = Test::new().pipeline(&signing_pipeline("env:GANTRY_SIGNING_KEY"));
    generate(&test, "keys");
    let private = test.read("keys/cosign.key");
    assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
    let mode = fs::metadata(test.path("keys/cosign.key"))
        .expect("key")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        test.read("keys/cosign.pub")
            .starts_with("-----BEGIN PUBLIC KEY-----\n")
    );
    // No password and no terminal to ask: a usage error (2), naming what to set.
    test.run(["keys", "public", "--key", "keys/cosign.key"])
        .failure(2)
        .stderr_contains("set COSIGN_PASSWORD");
    let run = |test: &Test| {
        let output = test
            .command()
            .env("COSIGN_PASSWORD", PASSWORD)
            .env("GANTRY_SIGNING_KEY", "keys/cosign.key")
            .args(["run", "pipeline.toml", "--json"])
            .output()
            .expect("gantry run");
        crate::support::Run { output }
    };
    let first = run(&test).success();
    assert_eq!(first.statuses()["sign"], "executed");
    let public = test.path("keys/cosign.pub");
    for artifact in ["out/pkg.tar", "out/notes.txt"] {
        let path = test.path(artifact);
        let signature = test.path(&format!("{artifact}.sig"));
        let bundle = test.path(&format!("{artifact}.sigstore.json"));
        assert!(
            openssl_verifies_blob(&signature, &public, &path),
            "{artifact}"
        );
        assert!(
            sigstore_verifies(&bundle, &public, Some(&path)),
            "{artifact}"
        );
    }
    // A changed artifact fails both verifiers.
    let changed = test.path("changed.tar");
    fs::write(&changed, "release payload, edited\n").expect("write");
    assert!(!openssl_verifies_blob(
        &test.path("out/pkg.tar.sig"),
        &public,
        &changed
    ));
    assert!(!sigstore_verifies(
        &test.path("out/pkg.tar.sigstore.json"),
        &public,
        Some(&changed)
    ));
    // The signature is deterministic and cached: a second run changes nothing.
    let signature = test.read("out/pkg.tar.sig");
    let second = run(&test).success();
    assert_eq!(second.statuses()["sign"], "cached");
    assert_eq!(test.read("out/pkg.tar.sig"), signature);
    // The sign step's link names the artifacts as materials and the signatures as subjects,
    // and carries the public key but nothing of the private one.
    let link_path = crate::support::attested(&first.run_dir(), "sign.intoto.json");
    let link = fs::read_to_string(&link_path).expect("link");
    assert!(!link.contains("ENCRYPTED"));
    let statement = crate::attestations::statement(&link_path);
    let names = |field: &serde_json::Value| -> Vec<String> {
        field
            .as_array()
            .expect("list")
            .iter()
            .map(|item| item["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(
        names(&statement["predicate"]["materials"]),
        ["out/pkg.tar", "out/notes.txt"]
    );
    assert_eq!(
        names(&statement["subject"]),
        [
            "out/pkg.tar.sig",
            "out/pkg.tar.sigstore.json",
            "out/notes.txt.sig",
            "out/notes.txt.sigstore.json"
        ]
    );
    assert_eq!(
        statement["predicate"]["environment"]["signer"]["publicKey"],
        test.read("keys/cosign.pub")
    );
}

/// A copy of the cosign-made fixture key with mode 0600 (git keeps no permissions).
fn cosign_fixture(test: &Test) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/cosign/cosign-generated-empty-password.key");
    let target = test.path("cosign.key");
    fs::copy(source, &target).expect("copy fixture");
    fs::set_permissions(&target, fs::Permissions::from_mode(0o600)).expect("chmod");
    target
}

#[test]
fn keys_that_cosign_wrote_are_read_and_bad_ones_get_a_clear_error() {
    let test = Test::new();
    let key = cosign_fixture(&test);
    let public = |password: Option<&str>, key: &Path| {
        let mut command = test.command();
        if let Some(password) = password {
            command.env("COSIGN_PASSWORD", password);
        }
        let output = command
            .args(["keys", "public", "--key"])
            .arg(key)
            .output()
            .expect("gantry keys public");
        crate::support::Run { output }
    };
    let run = public(Some(""), &key).success();
    assert!(run.stdout().starts_with("-----BEGIN PUBLIC KEY-----\n"));
    public(Some("not the password"), &key)
        .failure(1)
        .stderr_contains("wrong password");
    public(None, &key)
        .failure(2)
        .stderr_contains("set COSIGN_PASSWORD");
    let text = fs::read_to_string(&key).expect("key");
    let truncated = test.path("truncated.key");
    fs::write(&truncated, &text[..text.len() / 2]).expect("write");
    fs::set_permissions(&truncated, fs::Permissions::from_mode(0o600)).expect("chmod");
    public(Some(""), &truncated)
        .failure(1)
        .stderr_contains("truncated");
    // The key cosign wrote signs a sign step, and its public key verifies the result.
    fs::write(test.path("cosign.pub"), run.stdout()).expect("write");
    let test = test.pipeline(&signing_pipeline("cosign.key"));
    let output = test
        .command()
        .env("COSIGN_PASSWORD", "")
        .args(["run", "pipeline.toml"])
        .output()
        .expect("gantry run");
    crate::support::Run { output }.success();
    assert!(openssl_verifies_blob(
        &test.path("out/pkg.tar.sig"),
        &test.path("cosign.pub"),
        &test.path("out/pkg.tar")
    ));
}

#[test]
fn sign_steps_report_mistakes_at_their_line() {
    let test = Test::new().pipeline(&signing_pipeline("env:GANTRY_TEST_UNSET_KEY"));
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("`GANTRY_TEST_UNSET_KEY` is not set")
        .stderr_contains("pipeline.toml:12:7");
    let test = Test::new().pipeline(
        "[steps.sign]\nkind = \"sign\"\ninputs = [\"out/*.tar\"]\nkey = \"k.key\"\noutputs = [\"x.sig\"]\n",
    );
    test.run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains("a sign step's inputs name files, one each")
        .stderr_contains("`outputs` does not apply to sign steps");
    let test = Test::new()
        .file("dist/a.txt", "a\n")
        .pipeline("[steps.sign]\nkind = \"sign\"\ninputs = [\"dist/a.txt\"]\n");
    test.run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains("a sign step needs a `key`");
    // A key other users can read is refused, with the fix.
    let test = Test::new()
        .file("dist/a.txt", "a\n")
        .pipeline(&signing_pipeline("keys/cosign.key"));
    generate(&test, "keys");
    fs::set_permissions(
        test.path("keys/cosign.key"),
        fs::Permissions::from_mode(0o644),
    )
    .expect("chmod");
    let output = test
        .command()
        .env("COSIGN_PASSWORD", PASSWORD)
        .args(["run", "pipeline.toml"])
        .output()
        .expect("gantry run");
    crate::support::Run { output }
        .failure(1)
        .stderr_contains("chmod 600");
}

#[test]
fn key_files_never_reach_a_step() {
    let test = Test::new().file("src/a.txt", "a\n").pipeline(
        r#"[steps.look]
run = "find . -type f | sort > out/seen.txt"
inputs = ["src/*", "keys/*"]
outputs = ["out/seen.txt"]

[steps.sign]
kind = "sign"
inputs = ["out/seen.txt"]
key = "keys/cosign.key"
"#,
    );
    generate(&test, "keys");
    let output = test
        .command()
        .env("COSIGN_PASSWORD", PASSWORD)
        .args(["run", "pipeline.toml"])
        .output()
        .expect("gantry run");
    crate::support::Run { output }.success();
    let seen = test.read("out/seen.txt");
    assert!(
        seen.contains("src/a.txt") && seen.contains("keys/cosign.pub"),
        "{seen}"
    );
    assert!(!seen.contains("cosign.key"), "{seen}");
}
