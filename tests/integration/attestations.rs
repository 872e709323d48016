//! Attestations: in-toto Statement v1 link predicates in DSSE envelopes whose ECDSA P-256
//! signatures openssl verifies; keys given with `--key` or a development key.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::support::Test;

pub(crate) fn envelope(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())),
    )
    .expect("envelope JSON")
}

pub(crate) fn statement(path: &Path) -> serde_json::Value {
    let envelope = envelope(path);
    let payload = STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&payload).expect("statement JSON")
}

/// `openssl genpkey`; true when it worked.
pub(crate) fn generate_key(path: &Path, algorithm: &str, option: &str) -> bool {
    let path = path.to_str().expect("utf8");
    openssl(&[
        "genpkey",
        "-algorithm",
        algorithm,
        "-pkeyopt",
        option,
        "-out",
        path,
    ])
    .status
    .success()
}

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl is installed (apt-get install openssl)")
}

/// Verifies the envelope's signature over the DSSE PAE with openssl.
pub(crate) fn openssl_verifies(envelope_path: &Path, public_key: &Path, scratch: &Path) -> bool {
    let envelope = envelope(envelope_path);
    let payload = STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    let payload_type = envelope["payloadType"].as_str().expect("type");
    let mut pae = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    pae.extend_from_slice(&payload);
    let signature = STANDARD
        .decode(envelope["signatures"][0]["sig"].as_str().expect("sig"))
        .expect("base64 sig");
    fs::write(scratch.join("pae.bin"), pae).expect("write");
    fs::write(scratch.join("sig.der"), signature).expect("write");
    let output = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        public_key.to_str().expect("utf8"),
        "-signature",
        scratch.join("sig.der").to_str().expect("utf8"),
        scratch.join("pae.bin").to_str().expect("utf8"),
    ]);
    output.status.success()
}

fn pipeline() -> Test {
    Test::new().file("src/in.txt", "data\n").pipeline("[steps.build]\nrun = \"sha256sum src/in.txt > out/sum.txt\"\ninputs = [\"src/in.txt\"]\noutputs = [\"out/sum.txt\"]\n")
}

#[test]
fn links_name_subjects_materials_and_command() {
    let test = pipeline();
    let run = test.gantry_run(&[]).success();
    let statement = statement(&crate::support::attested(
        &run.run_dir(),
        "build.intoto.json",
    ));
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/link/v0.3"
    );
    let output = fs::read(test.path("out/sum.txt")).expect("output");
    assert_eq!(statement["subject"][0]["name"], "out/sum.txt");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        crate::sandbox::sha256_hex(&output).as_str()
    );
    let predicate = &statement["predicate"];
    assert_eq!(predicate["name"], "build");
    assert_eq!(
        predicate["command"][2],
        "sha256sum src/in.txt > out/sum.txt"
    );
    assert_eq!(predicate["materials"][0]["name"], "src/in.txt");
    assert_eq!(
        predicate["materials"][0]["digest"]["sha256"],
        crate::sandbox::sha256_hex(b"data\n").as_str()
    );
    assert_eq!(predicate["environment"]["variables"]["TZ"], "UTC");
    assert_eq!(predicate["byproducts"]["return-value"], 0);
}

#[test]
fn openssl_verifies_signatures_made_with_a_given_key() {
    let test = pipeline();
    let key = test.path("keys/release.pem");
    fs::create_dir_all(key.parent().expect("parent")).expect("mkdir");
    assert!(generate_key(&key, "EC", "ec_paramgen_curve:P-256"));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let public = test.path("keys/release.pub");
    assert!(
        openssl(&[
            "pkey",
            "-in",
            key.to_str().expect("utf8"),
            "-pubout",
            "-out",
            public.to_str().expect("utf8")
        ])
        .status
        .success()
    );

    let run = test
        .gantry_run(&["--key", key.to_str().expect("utf8")])
        .success();
    let link = crate::support::attested(&run.run_dir(), "build.intoto.json");
    assert!(openssl_verifies(&link, &public, test.root()));

    // `gantry key public` prints the same public key openssl derives.
    let printed = test
        .run(["key", "public", "--key", key.to_str().expect("utf8")])
        .success()
        .stdout();
    assert_eq!(printed, fs::read_to_string(&public).expect("public"));

    // A tampered payload no longer verifies.
    let mut envelope = envelope(&link);
    let tampered = STANDARD.encode(b"{\"_type\":\"https://in-toto.io/Statement/v1\"}");
    envelope["payload"] = serde_json::Value::from(tampered);
    let tampered_path = test.path("tampered.json");
    fs::write(&tampered_path, serde_json::to_vec(&envelope).expect("json")).expect("write");
    assert!(!openssl_verifies(&tampered_path, &public, test.root()));

    // With another key the step runs again (a result another key signed is not trusted),
    // and its link is signed by that key; trusting the other key with `--trust-cache-key`,
    // the original key takes the other's result without running the step and signs it anew.
    let other = test.path("keys/other.pem");
    assert!(generate_key(&other, "EC", "ec_paramgen_curve:P-256"));
    fs::set_permissions(&other, fs::Permissions::from_mode(0o600)).expect("chmod");
    let other_public = test.path("keys/other.pub");
    let derived = openssl(&[
        "pkey",
        "-in",
        other.to_str().expect("utf8"),
        "-pubout",
        "-out",
        other_public.to_str().expect("utf8"),
    ]);
    assert!(derived.status.success());
    let again = test
        .gantry_run(&["--key", other.to_str().expect("utf8")])
        .success();
    assert_eq!(again.statuses()["build"], "executed");
    let link = crate::support::attested(&again.run_dir(), "build.intoto.json");
    assert!(openssl_verifies(&link, &other_public, test.root()));
    assert!(!openssl_verifies(&link, &public, test.root()));
    let again = test
        .gantry_run(&["--key", other.to_str().expect("utf8")])
        .success();
    assert_eq!(again.statuses()["build"], "cached");
    let trusted = test
        .gantry_run(&[
            "--key",
            key.to_str().expect("utf8"),
            "--trust-cache-key",
            other_public.to_str().expect("utf8"),
        ])
        .success();
    assert_eq!(trusted.statuses()["build"], "cached");
    let link = crate::support::attested(&trusted.run_dir(), "build.intoto.json");
    assert!(openssl_verifies(&link, &public, test.root()));
    assert!(!openssl_verifies(&link, &other_public, test.root()));
}

#[test]
fn the_development_key_is_made_once_with_mode_0600() {
    let test = pipeline();
    let run = test.run(["run", "pipeline.toml"]).success();
    assert!(run.stderr().contains("created a development signing key"));
    let key = test.path("home/.local/share/gantry/dev-signing-key.pem");
    assert_eq!(
        fs::metadata(&key).expect("key").permissions().mode() & 0o777,
        0o600
    );
    let second = test.run(["run", "pipeline.toml"]).success();
    assert!(
        !second
            .stderr()
            .contains("created a development signing key")
    );
    let public = test.path("dev.pub");
    fs::write(&public, test.run(["key", "public"]).success().stdout()).expect("write");
    let run = test.gantry_run(&[]).success();
    assert!(openssl_verifies(
        &crate::support::attested(&run.run_dir(), "build.intoto.json"),
        &public,
        test.root()
    ));
}

#[test]
fn readable_or_broken_keys_are_refused_without_leaking_them() {
    let test = pipeline();
    let key = test.path("key.pem");
    assert!(generate_key(&key, "EC", "ec_paramgen_curve:P-256"));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod");
    test.run(["run", "pipeline.toml", "--key", "key.pem"])
        .failure(1)
        .stderr_contains("chmod 600 key.pem");

    let rsa = test.path("rsa.pem");
    assert!(generate_key(&rsa, "RSA", "rsa_keygen_bits:2048"));
    fs::set_permissions(&rsa, fs::Permissions::from_mode(0o600)).expect("chmod");
    let run = test
        .run(["run", "pipeline.toml", "--key", "rsa.pem"])
        .failure(1);
    let run = run.stderr_contains("the key is RSA; gantry signs with ECDSA P-256 only");
    let secret = fs::read_to_string(&rsa).expect("rsa");
    let body_line = secret.lines().nth(1).expect("pem body");
    assert!(
        !run.stderr().contains(body_line),
        "key material leaked into the error"
    );

    fs::write(&rsa, "-----BEGIN PRIVATE KEY-----\ntruncated").expect("write");
    test.run(["run", "pipeline.toml", "--key", "rsa.pem"])
        .failure(1)
        .stderr_contains("signing key `rsa.pem`");
}

#[test]
fn cached_steps_carry_the_attestation_of_the_run_that_built_them() {
    let test = pipeline();
    let first = test.gantry_run(&[]).success();
    // Another tenant: a provenance of its own (the tenant is in it), every step cached.
    let second = test.gantry_run(&["--tenant", "other"]).success();
    assert_ne!(first.run_dir(), second.run_dir());
    assert_eq!(second.statuses()["build"], "cached");
    let built = crate::support::attested(&first.run_dir(), "build.intoto.json");
    let cached = crate::support::attested(&second.run_dir(), "build.intoto.json");
    assert_eq!(built, cached, "one stored file, named by both runs");
    assert!(
        built.starts_with(test.path("attestations/sha256")),
        "{}",
        built.display()
    );
    assert!(!second.run_dir().join("build.intoto.json").exists());
    // Nothing changed at all: the run names the provenance before it instead of another.
    let third = test.gantry_run(&["--tenant", "other"]).success();
    assert_eq!(third.finished()["reused"], second.finished()["run_id"]);
    assert_eq!(third.run_dir(), second.run_dir());
    assert!(
        !test
            .path("attestations")
            .join(third.finished()["run_id"].as_str().expect("id"))
            .exists(),
        "a run that names another's provenance leaves no folder"
    );
    assert_eq!(
        fs::read(crate::support::attested(
            &third.run_dir(),
            "build.intoto.json"
        ))
        .expect("third"),
        fs::read(&built).expect("first")
    );
}

#[test]
fn attestations_are_deterministic_for_the_same_inputs() {
    let first = pipeline();
    let second = pipeline();
    let one = first.gantry_run(&[]).success();
    let two = second.gantry_run(&[]).success();
    // Same key (same HOME layout is not shared, so sign with one explicit key).
    let _ = (one, two);
    let statement_one = statement(&crate::support::attested(
        &first.gantry_run(&[]).success().run_dir(),
        "build.intoto.json",
    ));
    let statement_two = statement(&crate::support::attested(
        &second.gantry_run(&[]).success().run_dir(),
        "build.intoto.json",
    ));
    assert_eq!(
        statement_one, statement_two,
        "two workspaces in different folders give the same statement"
    );
}

#[test]
fn huge_logs_are_capped_and_the_cap_is_recorded() {
    let test = Test::new().pipeline("[steps.chatty]\nrun = \"head -c 70000000 /dev/zero; echo done > out/x\"\noutputs = [\"out/x\"]\n");
    let run = test.gantry_run(&[]).success();
    let statement = statement(&crate::support::attested(
        &run.run_dir(),
        "chatty.intoto.json",
    ));
    assert_eq!(
        statement["predicate"]["byproducts"]["stdout"]["truncatedAt"],
        64 << 20
    );
    assert!(
        statement["predicate"]["byproducts"]["stderr"]
            .get("truncatedAt")
            .is_none()
    );
}
