//! `gantry verify`: a real run's attestations pass under a policy, and every one of more than
//! a hundred mutations of them, of the artifact or of the policy is rejected with its reason.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::attestations::{generate_key, openssl_verifies, statement};
use crate::support::Test;

const PIPELINE: &str = r#"
[steps.build]
run = "cat src/a.txt src/b.txt > out/ab.txt"
inputs = ["src/*.txt"]
outputs = ["out/ab.txt"]

[steps.package]
run = "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf out/pkg.tar out/ab.txt"
inputs = ["out/ab.txt"]
outputs = ["out/pkg.tar"]

[steps.docs]
run = "cp src/a.txt out/readme.txt"
inputs = ["src/a.txt"]
outputs = ["out/readme.txt"]

[steps.sbom]
kind = "sbom"
from = "Cargo.lock"
subject = "out/pkg.tar"
output = "out/pkg.spdx.json"
"#;

const LOCK: &str = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
"#;

fn policy(keys: &str, require: &str) -> String {
    format!(
        "[policy]\nname = \"release\"\n\n[[keys]]\nid = \"release\"\npublic = \"release.pub\"\n{keys}\n\n[require]\n{require}\n"
    )
}

const KEYS: &str = "steps = [\"*\"]\nnot_before = \"2020-01-01T00:00:00Z\"";
const REQUIRE: &str = "steps = [\"build\", \"package\", \"sbom\"]\nprovenance = true\nsbom = true\nsources = [\"src/*.txt\", \"Cargo.lock\"]";

/// A workspace run twice with the release key (`src/b.txt` changed in between): the first
/// run's folder is a source of replays, the second is the evidence.
struct Fixture {
    test: Test,
    run: PathBuf,
    old_run: PathBuf,
    key: PathBuf,
}

/// A new P-256 release key in `test`'s folder (`release.pem`) with its public half beside it
/// (`release.pub`, as the policies name it).
fn release_key(test: &Test) -> PathBuf {
    let key = test.path("release.pem");
    assert!(generate_key(&key, "EC", "ec_paramgen_curve:P-256"));
    let key_arg = key.to_str().expect("utf-8");
    fs::write(
        test.path("release.pub"),
        test.run(["keys", "public", "--key", key_arg])
            .success()
            .stdout(),
    )
    .expect("public key");
    key
}

fn fixture() -> Fixture {
    let test = Test::new()
        .file("src/a.txt", "a\n")
        .file("src/b.txt", "b\n")
        .file("Cargo.lock", LOCK)
        .pipeline(PIPELINE);
    let key = release_key(&test);
    let key_arg = key.to_str().expect("utf-8");
    let old_run = test.gantry_run(&["--key", key_arg]).success().run_dir();
    fs::copy(test.path("out/pkg.tar"), test.path("old-pkg.tar")).expect("keep");
    test.write("src/b.txt", "b, changed\n");
    let run = test.gantry_run(&["--key", key_arg]).success().run_dir();
    // The tampering cases edit, copy and remove single files of a run: in the layout before
    // the attestation store, where each run folder held every file (which still verifies).
    crate::support::flatten_run(&old_run);
    crate::support::flatten_run(&run);
    Fixture {
        test,
        run,
        old_run,
        key,
    }
}

struct Verdict {
    code: i32,
    report: serde_json::Value,
}

impl Verdict {
    fn reasons(&self) -> Vec<String> {
        self.report["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .flat_map(|check| check["failures"].as_array().cloned().unwrap_or_default())
            .map(|failure| failure["reason"].as_str().expect("reason").to_owned())
            .collect()
    }
}

fn verify(test: &Test, folder: &Path, policy_text: &str, artifact: &Path) -> Verdict {
    verify_with(test, folder, policy_text, artifact, &[])
}

fn verify_with(
    test: &Test,
    folder: &Path,
    policy_text: &str,
    artifact: &Path,
    extra: &[&str],
) -> Verdict {
    fs::write(test.path("policy.toml"), policy_text).expect("policy");
    let output = test
        .command()
        .args([
            "verify",
            "--json",
            "--policy",
            "policy.toml",
            "--attestations",
        ])
        .arg(folder)
        .arg(artifact)
        .args(extra)
        .output()
        .expect("gantry verify");
    let code = output.status.code().unwrap_or(-1);
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "verify printed no report ({error}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    Verdict { code, report }
}

#[test]
fn a_real_run_passes_and_the_vsa_is_signed() {
    let fixture = fixture();
    let test = &fixture.test;
    let artifact = test.path("out/pkg.tar");
    let verdict = verify(test, &fixture.run, &policy(KEYS, REQUIRE), &artifact);
    assert_eq!(verdict.code, 0, "{:#}", verdict.report);
    assert_eq!(verdict.report["passed"], true);
    let checks: Vec<&str> = verdict.report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|check| check["check"].as_str().expect("name"))
        .collect();
    assert_eq!(
        checks,
        [
            "format",
            "signatures",
            "run",
            "subject",
            "chain",
            "steps",
            "gates",
            "sbom",
            "reproduced",
            "rollout",
            "vulns",
            "templates"
        ]
    );

    // The text report names every check; the VSA is a signed Statement openssl verifies.
    let output = test
        .command()
        .args(["verify", "--policy", "policy.toml", "--attestations"])
        .arg(&fixture.run)
        .arg(&artifact)
        .args(["--vsa", "vsa.intoto.json", "--key"])
        .arg(&fixture.key)
        .output()
        .expect("gantry verify");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    for line in ["ok   chain", "ok   sbom", "skip reproduced", "PASSED"] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let vsa_path = test.path("vsa.intoto.json");
    assert!(openssl_verifies(
        &vsa_path,
        &test.path("release.pub"),
        test.root()
    ));
    let vsa = statement(&vsa_path);
    assert_eq!(
        vsa["predicateType"],
        "https://slsa.dev/verification_summary/v1"
    );
    assert_eq!(vsa["predicate"]["verificationResult"], "PASSED");
    assert_eq!(
        vsa["predicate"]["policy"]["digest"]["sha256"],
        crate::support::sha256_hex(test.read("policy.toml").as_bytes())
    );
    assert_eq!(
        vsa["subject"][0]["digest"]["sha256"],
        crate::support::sha256_hex(&fs::read(&artifact).expect("artifact"))
    );
    let inputs = vsa["predicate"]["inputAttestations"]
        .as_array()
        .expect("inputs");
    assert_eq!(inputs.len(), 7, "every attestation of the run folder");
}

#[test]
fn bad_policies_are_usage_errors_at_their_line() {
    let fixture = fixture();
    let test = &fixture.test;
    let verify_text = || {
        test.command()
            .args(["verify", "--policy", "policy.toml", "--attestations"])
            .arg(&fixture.run)
            .arg(test.path("out/pkg.tar"))
            .output()
            .expect("gantry verify")
    };
    test.write(
        "policy.toml",
        "[policy]\nname = \"p\"\n\n[[keys]]\nid = \"k\"\npublic = \"missing.pub\"\nsteps = [\"[\"]\nnot_before = \"soon\"\n",
    );
    let output = verify_text();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("policy.toml:7:10: error: invalid step name pattern `[`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("policy.toml:8:14: error: not an RFC 3339 date-time"),
        "{stderr}"
    );
    test.write(
        "policy.toml",
        &policy(KEYS, REQUIRE).replace("release.pub", "missing.pub"),
    );
    let output = verify_text();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("policy.toml:6:10: error: cannot read"),
        "one `error:`, at the line: {stderr}"
    );
    assert!(
        stderr.contains("hint: write the public half of the key that signs the runs there: `gantry keys public [--key FILE] > missing.pub`"),
        "{stderr}"
    );

    // The attestations folder itself, instead of a run's folder: said, not read as empty.
    test.write("policy.toml", &policy(KEYS, REQUIRE));
    let parent = fixture.run.parent().expect("the attestations folder");
    let output = test
        .command()
        .args(["verify", "--policy", "policy.toml", "--attestations"])
        .arg(parent)
        .arg(test.path("out/pkg.tar"))
        .output()
        .expect("gantry verify");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("holds no attestations but") && stderr.contains("pass one run's folder"),
        "{stderr}"
    );
}

/// One mutation: what to do to a copy of the run folder, the policy and the artifact, and
/// the reasons of which at least one must be given.
struct Case {
    name: String,
    folder: PathBuf,
    policy: String,
    artifact: PathBuf,
    expect: Vec<&'static str>,
}

fn envelope_of(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).expect("read")).expect("envelope")
}

fn payload_of(envelope: &serde_json::Value) -> serde_json::Value {
    serde_json::from_slice(
        &STANDARD
            .decode(envelope["payload"].as_str().expect("payload"))
            .expect("base64"),
    )
    .expect("statement")
}

/// Signs `statement` as gantry does (DSSE PAE, ECDSA P-256 over SHA-256), with openssl.
fn signed(statement: &serde_json::Value, key: &Path, scratch: &Path) -> Vec<u8> {
    let body = serde_json::to_vec(statement).expect("json");
    let kind = "application/vnd.in-toto+json";
    let mut pae = format!("DSSEv1 {} {kind} {} ", kind.len(), body.len()).into_bytes();
    pae.extend_from_slice(&body);
    let message = scratch.join("pae.bin");
    fs::write(&message, &pae).expect("pae");
    let output = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg(&message)
        .output()
        .expect("openssl");
    assert!(output.status.success());
    serde_json::to_vec_pretty(&serde_json::json!({
        "payloadType": kind,
        "payload": STANDARD.encode(&body),
        "signatures": [{"sig": STANDARD.encode(&output.stdout)}],
    }))
    .expect("envelope")
}

fn sha256(path: &Path) -> String {
    crate::support::sha256_hex(&fs::read(path).expect("read"))
}

/// Edits the provenance with `edit`, points its byproducts at the folder's current files, and
/// signs it again: an internally consistent set, signed by the trusted key.
fn rebind(folder: &Path, key: &Path, scratch: &Path, edit: &dyn Fn(&mut serde_json::Value)) {
    let path = folder.join("provenance.intoto.json");
    let mut statement = payload_of(&envelope_of(&path));
    for byproduct in statement["predicate"]["runDetails"]["byproducts"]
        .as_array_mut()
        .expect("byproducts")
    {
        let file = folder.join(byproduct["name"].as_str().expect("name"));
        if file.exists() {
            byproduct["digest"]["sha256"] = sha256(&file).into();
        }
    }
    edit(&mut statement);
    fs::write(&path, signed(&statement, key, scratch)).expect("write");
}

fn flip_char(text: &str, at: usize) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    let index = at.min(chars.len() - 1);
    chars[index] = if chars[index] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

struct Builder<'a> {
    fixture: &'a Fixture,
    cases: Vec<Case>,
}

impl Builder<'_> {
    /// A fresh copy of the run folder for the next case.
    fn copy(&self) -> PathBuf {
        let folder = self
            .fixture
            .test
            .path(&format!("cases/{:03}", self.cases.len()));
        fs::create_dir_all(&folder).expect("mkdir");
        for entry in fs::read_dir(&self.fixture.run).expect("run folder") {
            let entry = entry.expect("entry");
            fs::copy(entry.path(), folder.join(entry.file_name())).expect("copy");
        }
        folder
    }

    fn case(
        &mut self,
        name: String,
        mutate: &dyn Fn(&Path),
        policy_text: Option<String>,
        artifact: Option<PathBuf>,
        expect: &[&'static str],
    ) {
        let folder = self.copy();
        mutate(&folder);
        self.cases.push(Case {
            name,
            folder,
            policy: policy_text.unwrap_or_else(|| policy(KEYS, REQUIRE)),
            artifact: artifact.unwrap_or_else(|| self.fixture.test.path("out/pkg.tar")),
            expect: expect.to_vec(),
        });
    }
}

const FILES: [&str; 6] = [
    "build.intoto.json",
    "package.intoto.json",
    "docs.intoto.json",
    "sbom.intoto.json",
    "sbom.sbom.intoto.json",
    "provenance.intoto.json",
];

const LINKS: [&str; 4] = [
    "build.intoto.json",
    "package.intoto.json",
    "docs.intoto.json",
    "sbom.intoto.json",
];

/// Bytes of one envelope changed: its payload, signature, type; the file cut short.
fn envelope_mutations(builder: &mut Builder<'_>) {
    for file in FILES {
        let broken: &[&str] = &["bad-signature", "not-an-attestation"];
        for fraction in [1, 3, 5, 7] {
            builder.case(
                format!("{file}: payload character {fraction}/8 changed"),
                &|folder| {
                    let path = folder.join(file);
                    let mut envelope = envelope_of(&path);
                    let payload = envelope["payload"].as_str().expect("payload").to_owned();
                    envelope["payload"] = flip_char(&payload, payload.len() * fraction / 8).into();
                    fs::write(&path, serde_json::to_vec(&envelope).expect("json")).expect("write");
                },
                None,
                None,
                broken,
            );
        }
        for at in [10, 40] {
            builder.case(
                format!("{file}: signature character {at} changed"),
                &|folder| {
                    let path = folder.join(file);
                    let mut envelope = envelope_of(&path);
                    let sig = envelope["signatures"][0]["sig"]
                        .as_str()
                        .expect("sig")
                        .to_owned();
                    envelope["signatures"][0]["sig"] = flip_char(&sig, at).into();
                    fs::write(&path, serde_json::to_vec(&envelope).expect("json")).expect("write");
                },
                None,
                None,
                &["bad-signature"],
            );
        }
        builder.case(
            format!("{file}: signatures removed"),
            &|folder| {
                let path = folder.join(file);
                let mut envelope = envelope_of(&path);
                envelope["signatures"] = serde_json::json!([]);
                fs::write(&path, serde_json::to_vec(&envelope).expect("json")).expect("write");
            },
            None,
            None,
            &["bad-signature"],
        );
        builder.case(
            format!("{file}: payload type changed"),
            &|folder| {
                let path = folder.join(file);
                let mut envelope = envelope_of(&path);
                envelope["payloadType"] = "application/json".into();
                fs::write(&path, serde_json::to_vec(&envelope).expect("json")).expect("write");
            },
            None,
            None,
            &["not-an-attestation"],
        );
        builder.case(
            format!("{file}: cut in half"),
            &|folder| {
                let path = folder.join(file);
                let bytes = fs::read(&path).expect("read");
                fs::write(&path, &bytes[..bytes.len() / 2]).expect("write");
            },
            None,
            None,
            &["not-an-attestation"],
        );
    }
}

/// Files removed, duplicated, replayed from another run, swapped.
fn set_mutations(builder: &mut Builder<'_>) {
    let old_run = builder.fixture.old_run.clone();
    for file in FILES {
        let removed: &[&str] = match file {
            "provenance.intoto.json" => &["no-provenance"],
            "sbom.sbom.intoto.json" => &["sbom-missing"],
            _ => &["missing"],
        };
        let duplicated: &[&str] = if file == "provenance.intoto.json" {
            &["mixed-runs"]
        } else {
            &["not-in-run"]
        };
        builder.case(
            format!("{file}: removed"),
            &|folder| fs::remove_file(folder.join(file)).expect("remove"),
            None,
            None,
            removed,
        );
        builder.case(
            format!("{file}: duplicated"),
            &|folder| {
                let copy = file.replace(".intoto.json", "-copy.intoto.json");
                fs::copy(folder.join(file), folder.join(copy)).expect("copy");
            },
            None,
            None,
            duplicated,
        );
        if fs::read(old_run.join(file)).ok() != fs::read(builder.fixture.run.join(file)).ok() {
            let replayed: &[&str] = if file == "provenance.intoto.json" {
                &["not-a-subject", "digest-mismatch"]
            } else {
                &["digest-mismatch", "not-in-run"]
            };
            builder.case(
                format!("{file}: replayed from the previous run"),
                &|folder| {
                    fs::copy(old_run.join(file), folder.join(file)).expect("replay");
                },
                None,
                None,
                replayed,
            );
        }
    }
    for (index, first) in FILES.iter().enumerate() {
        for second in &FILES[index + 1..] {
            builder.case(
                format!("{first} and {second} swapped"),
                &|folder| {
                    let (a, b) = (folder.join(first), folder.join(second));
                    let (bytes_a, bytes_b) = (fs::read(&a).expect("a"), fs::read(&b).expect("b"));
                    fs::write(&a, bytes_b).expect("write");
                    fs::write(&b, bytes_a).expect("write");
                },
                None,
                None,
                &[
                    "digest-mismatch",
                    "no-provenance",
                    "mixed-runs",
                    "not-a-subject",
                    "not-in-run",
                    "misnamed",
                ],
            );
        }
    }
}

/// Edits of a link's statement without signing it again: the signature must break.
fn payload_edits(builder: &mut Builder<'_>) {
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 6] = [
        ("subject renamed", |statement| {
            statement["subject"][0]["name"] = "out/other".into();
        }),
        ("subject digest changed", |statement| {
            statement["subject"][0]["digest"]["sha256"] = "00".repeat(32).into();
        }),
        ("material digest changed", |statement| {
            statement["predicate"]["materials"][0]["digest"]["sha256"] = "11".repeat(32).into();
        }),
        ("material removed", |statement| {
            statement["predicate"]["materials"]
                .as_array_mut()
                .expect("materials")
                .remove(0);
        }),
        ("step renamed", |statement| {
            statement["predicate"]["name"] = "deploy".into();
        }),
        ("command changed", |statement| {
            statement["predicate"]["command"] = serde_json::json!(["true"]);
        }),
    ];
    for file in LINKS {
        for (what, edit) in edits {
            builder.case(
                format!("{file}: {what}, not signed again"),
                &|folder| {
                    let path = folder.join(file);
                    let mut envelope = envelope_of(&path);
                    let mut statement = payload_of(&envelope);
                    edit(&mut statement);
                    envelope["payload"] = STANDARD
                        .encode(serde_json::to_vec(&statement).expect("json"))
                        .into();
                    fs::write(&path, serde_json::to_vec(&envelope).expect("json")).expect("write");
                },
                None,
                None,
                &["bad-signature"],
            );
        }
    }
}

/// Consistent, signed sets that still lie: the key signed them, the chain gives them away.
fn signed_link_lies(builder: &mut Builder<'_>) {
    let key = builder.fixture.key.clone();
    let scratch = builder.fixture.test.root().to_path_buf();
    let resign = |folder: &Path, file: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let path = folder.join(file);
        let mut statement = payload_of(&envelope_of(&path));
        edit(&mut statement);
        fs::write(&path, signed(&statement, &key, &scratch)).expect("write");
        rebind(folder, &key, &scratch, &|_| {});
    };
    let material = |step: &'static str, name: &'static str| {
        move |statement: &mut serde_json::Value| {
            assert_eq!(statement["predicate"]["name"], step);
            for material in statement["predicate"]["materials"]
                .as_array_mut()
                .expect("materials")
            {
                if material["name"] == name {
                    material["digest"]["sha256"] = "22".repeat(32).into();
                }
            }
        }
    };
    builder.case(
        "package read another out/ab.txt than build made".to_owned(),
        &|folder| {
            resign(
                folder,
                "package.intoto.json",
                &material("package", "out/ab.txt"),
            );
        },
        None,
        None,
        &["substituted"],
    );
    for source in ["src/a.txt", "src/b.txt"] {
        builder.case(
            format!("build read another {source} than the provenance resolved"),
            &|folder| resign(folder, "build.intoto.json", &material("build", source)),
            None,
            None,
            &["source-mismatch"],
        );
    }
    builder.case(
        "build read an undeclared file".to_owned(),
        &|folder| {
            resign(folder, "build.intoto.json", &|statement| {
                statement["predicate"]["materials"]
                    .as_array_mut()
                    .expect("materials")
                    .push(serde_json::json!({"name": "secret.txt", "digest": {"sha256": "33".repeat(32)}}));
            });
        },
        None,
        None,
        &["unattested-material"],
    );
    builder.case(
        "package's subject is another tarball".to_owned(),
        &|folder| {
            resign(folder, "package.intoto.json", &|statement| {
                statement["subject"][0]["digest"]["sha256"] = "44".repeat(32).into();
            });
        },
        None,
        None,
        &["no-producer"],
    );
}

type ProvenanceEdit = (
    &'static str,
    fn(&mut serde_json::Value),
    &'static [&'static str],
);

/// The provenance, edited and signed again over the run's own files.
fn signed_provenance_lies(builder: &mut Builder<'_>) {
    let key = builder.fixture.key.clone();
    let scratch = builder.fixture.test.root().to_path_buf();
    let provenance_edits: [ProvenanceEdit; 6] = [
        (
            "lists an attestation that is not there",
            |statement| {
                statement["predicate"]["runDetails"]["byproducts"]
                .as_array_mut()
                .expect("byproducts")
                .push(serde_json::json!({"name": "deploy.intoto.json", "digest": {"sha256": "55".repeat(32)}}));
            },
            &["missing"],
        ),
        (
            "resolves src/a.txt to other bytes",
            |statement| {
                for dependency in statement["predicate"]["buildDefinition"]["resolvedDependencies"]
                    .as_array_mut()
                    .expect("dependencies")
                {
                    if dependency["name"] == "src/a.txt" {
                        dependency["digest"]["sha256"] = "66".repeat(32).into();
                    }
                }
            },
            &["source-mismatch"],
        ),
        (
            "does not resolve Cargo.lock",
            |statement| {
                statement["predicate"]["buildDefinition"]["resolvedDependencies"]
                    .as_array_mut()
                    .expect("dependencies")
                    .retain(|dependency| dependency["name"] != "Cargo.lock");
            },
            &["source-mismatch"],
        ),
        (
            "no longer lists the artifact",
            |statement| {
                statement["subject"]
                    .as_array_mut()
                    .expect("subjects")
                    .retain(|subject| subject["name"] != "out/pkg.tar");
            },
            &["not-a-subject"],
        ),
        (
            "finished in the future",
            |statement| {
                statement["predicate"]["runDetails"]["metadata"]["finishedOn"] =
                    "2999-01-01T00:00:00Z".into();
            },
            &["time-in-future"],
        ),
        (
            "finished before the key was valid",
            |statement| {
                statement["predicate"]["runDetails"]["metadata"]["finishedOn"] =
                    "2019-06-01T00:00:00Z".into();
            },
            &["key-outside-window"],
        ),
    ];
    for (what, edit, expect) in provenance_edits {
        builder.case(
            format!("the provenance {what}"),
            &|folder| rebind(folder, &key, &scratch, &|statement| edit(statement)),
            None,
            None,
            expect,
        );
    }
    builder.case(
        "the SBOM attestation describes another artifact".to_owned(),
        &|folder| {
            let path = crate::support::attested(folder, "sbom.sbom.intoto.json");
            let mut statement = payload_of(&envelope_of(&path));
            statement["subject"][0]["digest"]["sha256"] = "77".repeat(32).into();
            fs::write(&path, signed(&statement, &key, &scratch)).expect("write");
        },
        None,
        None,
        &["not-in-run", "sbom-missing"],
    );
}

fn policy_and_artifact_mutations(builder: &mut Builder<'_>) {
    let test = &builder.fixture.test;
    let other = test.path("other.pem");
    assert!(generate_key(&other, "EC", "ec_paramgen_curve:P-256"));
    fs::write(
        test.path("other.pub"),
        test.run(["keys", "public", "--key", other.to_str().expect("utf-8")])
            .success()
            .stdout(),
    )
    .expect("other public key");
    let policies: Vec<(&str, String, &[&str])> = vec![
        (
            "another key",
            policy(KEYS, REQUIRE).replace("release.pub", "other.pub"),
            &["bad-signature"],
        ),
        (
            "the key may attest build only",
            policy("steps = [\"build\"]", REQUIRE),
            &["key-not-allowed"],
        ),
        (
            "the key may not attest provenance",
            policy(
                "steps = [\"build\", \"package\", \"docs\", \"sbom\"]",
                REQUIRE,
            ),
            &["key-not-allowed"],
        ),
        (
            "the key may not attest the SBOM",
            policy(
                "steps = [\"build\", \"package\", \"docs\", \"provenance\"]",
                REQUIRE,
            ),
            &["key-not-allowed"],
        ),
        (
            "the key expired before the run",
            policy(
                "steps = [\"*\"]\nnot_after = \"2021-01-01T00:00:00Z\"",
                REQUIRE,
            ),
            &["key-outside-window"],
        ),
        (
            "the key is not valid yet",
            policy(
                "steps = [\"*\"]\nnot_before = \"2099-01-01T00:00:00Z\"",
                REQUIRE,
            ),
            &["key-outside-window"],
        ),
        (
            "a step that did not run is required",
            policy(KEYS, &REQUIRE.replace("\"sbom\"]", "\"sbom\", \"deploy\"]")),
            &["step-missing"],
        ),
        (
            "Cargo.lock is not an allowed source",
            policy(KEYS, &REQUIRE.replace(", \"Cargo.lock\"", "")),
            &["unattested-material"],
        ),
        (
            "src/b.txt is not an allowed source",
            policy(KEYS, &REQUIRE.replace("\"src/*.txt\"", "\"src/a.txt\"")),
            &["unattested-material"],
        ),
        (
            "no sources are allowed",
            policy(
                KEYS,
                &REQUIRE.replace("sources = [\"src/*.txt\", \"Cargo.lock\"]", "sources = []"),
            ),
            &["unattested-material"],
        ),
        (
            "reproduction is required",
            policy(KEYS, &format!("{REQUIRE}\nreproduced = true")),
            &["not-reproduced"],
        ),
        (
            "only tools from elsewhere are allowed",
            policy(KEYS, &format!("{REQUIRE}\ntools = [\"/opt/**\"]")),
            &["tool-not-allowed"],
        ),
    ];
    for (what, text, expect) in policies {
        builder.case(format!("policy: {what}"), &|_| {}, Some(text), None, expect);
    }
    let artifact = test.path("out/pkg.tar");
    let bytes = fs::read(&artifact).expect("artifact");
    for position in 0..10 {
        let path = test.path(&format!("flipped-{position}.tar"));
        let mut flipped = bytes.clone();
        let at = position * bytes.len() / 10;
        flipped[at] ^= 1 << (position % 8);
        fs::write(&path, flipped).expect("write");
        builder.case(
            format!("artifact: bit {} of byte {at} flipped", position % 8),
            &|_| {},
            None,
            Some(path),
            &["not-a-subject"],
        );
    }
    builder.case(
        "artifact: the previous run's tarball".to_owned(),
        &|_| {},
        None,
        Some(test.path("old-pkg.tar")),
        &["not-a-subject"],
    );
    builder.case(
        "artifact: an intermediate file".to_owned(),
        &|_| {},
        None,
        Some(test.path("out/ab.txt")),
        &["not-a-subject"],
    );
}

#[test]
fn every_tampering_is_rejected_with_its_reason() {
    let fixture = fixture();
    let mut builder = Builder {
        fixture: &fixture,
        cases: Vec::new(),
    };
    envelope_mutations(&mut builder);
    set_mutations(&mut builder);
    payload_edits(&mut builder);
    signed_link_lies(&mut builder);
    signed_provenance_lies(&mut builder);
    policy_and_artifact_mutations(&mut builder);
    let cases = builder.cases;
    assert!(cases.len() >= 100, "only {} mutations", cases.len());
    // The untouched set passes: what fails below fails because of its mutation.
    let pristine = verify(
        &fixture.test,
        &fixture.run,
        &policy(KEYS, REQUIRE),
        &fixture.test.path("out/pkg.tar"),
    );
    assert_eq!(pristine.code, 0, "{:#}", pristine.report);
    let mut wrong = Vec::new();
    // By default a file the verified provenance lists is signed through it; with
    // `--every-signature` each file's own signature is checked. Both reject every case.
    for (case, extra) in cases
        .iter()
        .flat_map(|case| [(case, &[][..]), (case, &["--every-signature"][..])])
    {
        let verdict = verify_with(
            &fixture.test,
            &case.folder,
            &case.policy,
            &case.artifact,
            extra,
        );
        let reasons = verdict.reasons();
        if verdict.code != 1
            || !case
                .expect
                .iter()
                .any(|reason| reasons.iter().any(|got| got == reason))
        {
            wrong.push(format!(
                "{} {extra:?}: exit {}, reasons {reasons:?}, expected one of {:?}",
                case.name, verdict.code, case.expect
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} mutations not rejected as expected:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

fn signatures_summary(verdict: &Verdict) -> String {
    let checks = verdict.report["checks"].as_array().expect("checks");
    let check = (checks.iter())
        .find(|check| check["check"] == "signatures")
        .expect("signatures check");
    check.to_string()
}

/// A link's own signature is not checked when the verified provenance lists its exact bytes
/// and it names the provenance's key: the key signed those bytes through the provenance. A
/// key holder who vouches for a file with a broken signature of its own is believed by
/// default and caught by `--every-signature`; anyone else's change to the file breaks the
/// binding, and then its own signature is checked.
#[test]
fn a_file_the_signed_provenance_lists_is_signed_through_it() {
    let fixture = fixture();
    let test = &fixture.test;
    let artifact = test.path("out/pkg.tar");
    let pristine = verify(test, &fixture.run, &policy(KEYS, REQUIRE), &artifact);
    assert_eq!(pristine.code, 0, "{:#}", pristine.report);
    // The step links; the SBOM's own attestation is a product of a link, and the
    // provenance is checked itself.
    let summary = signatures_summary(&pristine);
    assert!(
        summary.contains("7 of 7 attestations signed")
            && summary.contains("4 of them by the signed provenance"),
        "{summary}"
    );

    let folder = test.path("vouched");
    fs::create_dir_all(&folder).expect("mkdir");
    for file in FILES {
        fs::copy(fixture.run.join(file), folder.join(file)).expect("copy");
    }
    let path = crate::support::attested(&folder, "build.intoto.json");
    let mut envelope = envelope_of(&path);
    let sig = envelope["signatures"][0]["sig"]
        .as_str()
        .expect("sig")
        .to_owned();
    envelope["signatures"][0]["sig"] = flip_char(&sig, 20).into();
    assert!(envelope["signatures"][0]["keyid"].is_string());
    fs::write(&path, serde_json::to_vec(&envelope).expect("json")).expect("write");
    let unbound = verify(test, &folder, &policy(KEYS, REQUIRE), &artifact);
    assert!(
        unbound.code == 1 && unbound.reasons().contains(&"bad-signature".to_owned()),
        "{:#}",
        unbound.report
    );

    rebind(&folder, &fixture.key, test.root(), &|_| {});
    let vouched = verify(test, &folder, &policy(KEYS, REQUIRE), &artifact);
    assert_eq!(vouched.code, 0, "{:#}", vouched.report);
    let every = verify_with(
        test,
        &folder,
        &policy(KEYS, REQUIRE),
        &artifact,
        &["--every-signature"],
    );
    assert!(
        every.code == 1 && every.reasons().contains(&"bad-signature".to_owned()),
        "{:#}",
        every.report
    );
}

/// The reference verifier (`PyPI` in-toto 3.1), from the test venv.
fn in_toto_verify(test: &Test, folder: &Path) -> std::process::Output {
    let program =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/sbom/.venv/bin/in-toto-verify");
    assert!(
        program.exists(),
        "the export tests need in-toto-verify at {}: bash scripts/test.sh installs it",
        program.display()
    );
    Command::new(program)
        .current_dir(test.root())
        .arg("--layout")
        .arg(folder.join("root.layout"))
        .arg("--verification-keys")
        .arg(folder.join("layout.pub"))
        .arg("--link-dir")
        .arg(folder)
        .output()
        .expect("in-toto-verify")
}

#[test]
fn the_exported_chain_passes_the_reference_in_toto_verify_and_a_broken_one_does_not() {
    let fixture = fixture();
    let test = &fixture.test;
    let layout_key = test.path("layout.pem");
    assert!(generate_key(&layout_key, "EC", "ec_paramgen_curve:P-256"));
    let export = |out: &str| {
        test.command()
            .args(["export", "in-toto", "--attestations"])
            .arg(&fixture.run)
            .arg("--layout-key")
            .arg(&layout_key)
            .arg("--key")
            .arg(&fixture.key)
            .args(["--out", out])
            .output()
            .expect("gantry export")
    };
    let output = export("intoto");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let folder = test.path("intoto");
    let links: Vec<String> = fs::read_dir(&folder)
        .expect("exported")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|name| {
            Path::new(name)
                .extension()
                .is_some_and(|extension| extension == "link")
        })
        .collect();
    assert_eq!(links.len(), 4, "{links:?}");
    let verified = in_toto_verify(test, &folder);
    assert!(
        verified.status.success(),
        "in-toto-verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );

    // A changed product digest breaks the link's signature; a missing link the layout.
    let package = links
        .iter()
        .find(|name| name.starts_with("package."))
        .expect("package link");
    let path = folder.join(package);
    let text = fs::read_to_string(&path).expect("link");
    let tar = sha256(&test.path("out/pkg.tar"));
    fs::write(&path, text.replace(&tar, &"0".repeat(64))).expect("write");
    assert_eq!(in_toto_verify(test, &folder).status.code(), Some(1));
    fs::remove_file(&path).expect("remove");
    assert_eq!(in_toto_verify(test, &folder).status.code(), Some(1));

    // Only what the run's key signed is exported.
    let output = test
        .command()
        .args(["export", "in-toto", "--attestations"])
        .arg(&fixture.run)
        .arg("--layout-key")
        .arg(&layout_key)
        .args(["--out", "elsewhere"])
        .output()
        .expect("gantry export");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("only attestations the run's key"));
}

/// A step with the network is visible to a policy: `network = [...]` names the steps allowed
/// to have had it (`[]`: none), the report lists them either way, and the provenance names what
/// such a step made as fetched (`resolvedDependencies`, `fetchedBy`).
#[test]
fn networked_steps_are_named_and_a_policy_can_refuse_them() {
    let test = Test::new().file("src/a.txt", "a\n").pipeline(
        "[steps.fetch]\nrun = \"mkdir -p out && echo fetched > out/fetched.txt\"\noutputs = [\"out/fetched.txt\"]\nnetwork = true\n\n[steps.build]\nrun = \"cat src/a.txt out/fetched.txt > out/app\"\ninputs = [\"src/a.txt\", \"out/fetched.txt\"]\noutputs = [\"out/app\"]\n",
    );
    let key = release_key(&test);
    let key_arg = key.to_str().expect("utf-8");
    let run = test.gantry_run(&["--key", key_arg]).success().run_dir();
    let provenance = crate::attestations::statement(&run.join("provenance.intoto.json"));
    let fetched: Vec<&serde_json::Value> =
        (provenance["predicate"]["buildDefinition"]["resolvedDependencies"].as_array())
            .expect("dependencies")
            .iter()
            .filter(|dependency| dependency["annotations"]["fetchedBy"] == "fetch")
            .collect();
    assert_eq!(fetched.len(), 1, "{provenance}");
    assert_eq!(fetched[0]["name"], "out/fetched.txt");

    let require = |network: &str| {
        policy(
            KEYS,
            &format!("steps = [\"build\"]\nsources = [\"src/*.txt\"]\n{network}"),
        )
    };
    let artifact = test.path("out/app");
    let open = verify(&test, &run, &require(""), &artifact);
    assert_eq!(open.code, 0, "{}", open.report);
    assert!(
        open.report
            .to_string()
            .contains("with the network: `fetch`"),
        "{}",
        open.report
    );
    let allowed = verify(&test, &run, &require("network = [\"fetch\"]"), &artifact);
    assert_eq!(allowed.code, 0, "{}", allowed.report);
    let refused = verify(&test, &run, &require("network = []"), &artifact);
    assert_eq!(refused.code, 1);
    assert_eq!(refused.reasons(), ["network-not-allowed"]);
}
