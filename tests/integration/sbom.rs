//! `gantry sbom`: SPDX 2.3 and `CycloneDX` 1.6 documents that the reference validators accept,
//! exact (a lock's packages, no more, no fewer), byte-for-byte reproducible, and attested.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::attestations::{openssl_verifies, statement};
use crate::signing::sigstore_verifies;
use crate::support::{Run, Test, sha256_hex};

const EPOCH: &str = "1700000000";

fn oracle() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/sbom")
}

/// Runs the reference validators (`tests/oracles/sbom/validate.py`); true when valid.
fn valid(format: &str, document: &Path) -> bool {
    let python = oracle().join(".venv/bin/python");
    assert!(
        python.exists(),
        "the SBOM tests need the validators' venv at {}: bash scripts/test.sh installs it",
        python.display()
    );
    let output = Command::new(python)
        .arg(oracle().join("validate.py"))
        .arg(format)
        .arg(document)
        .output()
        .expect("run the validators");
    if !output.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&output.stdout));
    }
    output.status.success()
}

fn sbom(test: &Test, args: &[&str]) -> Run {
    let output = test
        .command()
        .env("SOURCE_DATE_EPOCH", EPOCH)
        .arg("sbom")
        .args(args)
        .output()
        .expect("run gantry");
    Run { output }
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&fs::read_to_string(path).expect("read")).expect("json")
}

fn lock_packages(text: &str) -> BTreeSet<(String, String)> {
    let lock: toml::Value = toml::from_str(text).expect("lock");
    lock["package"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| {
            (
                package["name"].as_str().expect("name").to_owned(),
                package["version"].as_str().expect("version").to_owned(),
            )
        })
        .collect()
}

fn public_key(test: &Test) -> PathBuf {
    let path = test.path("public.pem");
    fs::write(&path, test.run(["key", "public"]).success().stdout()).expect("write");
    path
}

#[test]
fn sboms_of_gantry_s_own_lock_pass_the_validators_and_list_exactly_its_packages() {
    let lock_text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("gantry's Cargo.lock");
    let test = Test::new().file("Cargo.lock", &lock_text);
    let expected = lock_packages(&lock_text);
    let public = public_key(&test);
    for format in ["spdx", "cyclonedx"] {
        let output = format!("{format}.json");
        let run = sbom(
            &test,
            &[
                "--from",
                "Cargo.lock",
                "--format",
                format,
                "-o",
                &output,
                "--json",
            ],
        )
        .success();
        let line: serde_json::Value = serde_json::from_str(run.stdout().trim()).expect("json");
        assert_eq!(line["packages"], expected.len());
        assert_eq!(line["created"], "2023-11-14T22:13:20Z");
        let document = test.path(&output);
        assert!(valid(format, &document), "{format} is valid");
        let listed: BTreeSet<(String, String)> = if format == "spdx" {
            json(&document)["packages"]
                .as_array()
                .expect("packages")
                .iter()
                .filter(|package| package.get("versionInfo").is_some())
                .map(|package| {
                    (
                        package["name"].as_str().expect("name").to_owned(),
                        package["versionInfo"].as_str().expect("version").to_owned(),
                    )
                })
                .collect()
        } else {
            json(&document)["components"]
                .as_array()
                .expect("components")
                .iter()
                .map(|component| {
                    (
                        component["name"].as_str().expect("name").to_owned(),
                        component["version"].as_str().expect("version").to_owned(),
                    )
                })
                .collect()
        };
        assert_eq!(listed, expected, "{format}: exactly the lock's packages");
        // The attestation: a signed Statement about the lock, the document as its predicate.
        let attestation = test.path(&format!("{output}.intoto.json"));
        assert!(openssl_verifies(&attestation, &public, test.root()));
        let statement = statement(&attestation);
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        let predicate_type = if format == "spdx" {
            "https://spdx.dev/Document"
        } else {
            "https://cyclonedx.org/bom"
        };
        assert_eq!(statement["predicateType"], predicate_type);
        assert_eq!(statement["subject"][0]["name"], "Cargo.lock");
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"],
            sha256_hex(lock_text.as_bytes()).as_str()
        );
        assert_eq!(statement["predicate"], json(&document));
    }
}

#[test]
fn the_same_inputs_give_the_same_bytes() {
    let lock = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["zed", "alpha"]

[[package]]
name = "zed"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "ddc6f9cc94d67c0e21aaf7eda3a010fd3af78ebf6e096aa6e2e13c79749cce4f"

[[package]]
name = "alpha"
version = "2.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "34af8d1a0e25924bc5b7c43c079c942339d8f0a8b57c39049bef581b46327404"
"#;
    // The same packages in another order, as another lock writer might list them.
    let reordered = {
        let blocks: Vec<&str> = lock.split("\n[[package]]").collect();
        format!(
            "{}\n[[package]]{}\n[[package]]{}\n[[package]]{}",
            blocks[0], blocks[3], blocks[1], blocks[2]
        )
    };
    let test = Test::new()
        .file("one/Cargo.lock", lock)
        .file("two/Cargo.lock", &reordered);
    for format in ["spdx", "cyclonedx"] {
        let first = format!("{format}-1.json");
        let second = format!("{format}-2.json");
        sbom(
            &test,
            &["--from", "one/Cargo.lock", "--format", format, "-o", &first],
        )
        .success();
        sbom(
            &test,
            &[
                "--from",
                "two/Cargo.lock",
                "--subject",
                "one/Cargo.lock",
                "--format",
                format,
                "-o",
                &second,
            ],
        )
        .success();
        let (first, second) = (test.read(&first), test.read(&second));
        // Only the subject's name differs (`one/Cargo.lock` in both): same bytes.
        assert_eq!(
            first, second,
            "{format}: package order in the lock does not matter"
        );
        assert!(valid(format, &test.path(&format!("{format}-1.json"))));
        // Another time: another timestamp, and so another namespace / serial number.
        let output = test
            .command()
            .env("SOURCE_DATE_EPOCH", "1800000000")
            .args([
                "sbom",
                "--from",
                "one/Cargo.lock",
                "--format",
                format,
                "-o",
                "later.json",
            ])
            .output()
            .expect("run");
        assert!(output.status.success());
        let later = test.read("later.json");
        assert!(later.contains("2027-01-15T08:00:00Z"), "{later}");
        let id = |text: &str| {
            let value: serde_json::Value = serde_json::from_str(text).expect("json");
            value
                .get("documentNamespace")
                .or_else(|| value.get("serialNumber"))
                .expect("an id")
                .clone()
        };
        assert_ne!(id(&first), id(&later));
    }
}

#[test]
fn a_folder_sbom_lists_every_file_with_its_digests() {
    let test = Test::new()
        .file("dist/bin/app", "#!/bin/sh\necho app\n")
        .file("dist/share/doc/README", "read me\n")
        .file("dist/LICENSE", "MIT\n")
        .file("out/pkg.tar", "pretend tarball\n");
    for format in ["spdx", "cyclonedx"] {
        let output = format!("dist.{format}.json");
        sbom(
            &test,
            &["--from", "dist", "--format", format, "-o", &output],
        )
        .success();
        assert!(valid(format, &test.path(&output)), "{format}");
        let document = json(&test.path(&output));
        let names: Vec<String> = if format == "spdx" {
            document["files"]
                .as_array()
                .expect("files")
                .iter()
                .map(|file| file["fileName"].as_str().expect("name").to_owned())
                .collect()
        } else {
            document["components"]
                .as_array()
                .expect("components")
                .iter()
                .map(|file| file["name"].as_str().expect("name").to_owned())
                .collect()
        };
        let expected: Vec<String> = if format == "spdx" {
            vec![
                "./LICENSE".into(),
                "./bin/app".into(),
                "./share/doc/README".into(),
            ]
        } else {
            vec![
                "LICENSE".into(),
                "bin/app".into(),
                "share/doc/README".into(),
            ]
        };
        assert_eq!(names, expected);
        assert!(
            fs::read_to_string(test.path(&output))
                .expect("read")
                .contains(&sha256_hex(b"#!/bin/sh\necho app\n"))
        );
        // Without a subject, the attestation names each file of the folder.
        let statement = statement(&test.path(&format!("{output}.intoto.json")));
        let subjects: Vec<&str> = statement["subject"]
            .as_array()
            .expect("subjects")
            .iter()
            .map(|subject| subject["name"].as_str().expect("name"))
            .collect();
        assert_eq!(
            subjects,
            ["dist/LICENSE", "dist/bin/app", "dist/share/doc/README"]
        );
    }
    // With one, the document and the attestation are about the artifact; `--bundle` adds a
    // Sigstore bundle that sigstore-js verifies.
    sbom(
        &test,
        &[
            "--from",
            "dist",
            "--subject",
            "out/pkg.tar",
            "--format",
            "spdx",
            "-o",
            "pkg.spdx.json",
            "--bundle",
        ],
    )
    .success();
    assert!(valid("spdx", &test.path("pkg.spdx.json")));
    let statement = statement(&test.path("pkg.spdx.json.intoto.json"));
    assert_eq!(statement["subject"][0]["name"], "out/pkg.tar");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        sha256_hex(b"pretend tarball\n").as_str()
    );
    assert!(sigstore_verifies(
        &test.path("pkg.spdx.json.sigstore.json"),
        &public_key(&test),
        None
    ));
}

#[test]
fn licences_come_from_the_offline_registry_cache() {
    let lock = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["old", "plain", "absent"]

[[package]]
name = "old"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "ddc6f9cc94d67c0e21aaf7eda3a010fd3af78ebf6e096aa6e2e13c79749cce4f"

[[package]]
name = "plain"
version = "2.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "34af8d1a0e25924bc5b7c43c079c942339d8f0a8b57c39049bef581b46327404"

[[package]]
name = "absent"
version = "3.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3779b94aeb87e8bd4e834cee3650289ee9e0d5677f976ecdb6d219e5f4f6cd94"
"#;
    let registry = "home/.cargo/registry/src/index.crates.io-0000000000000000";
    let test = Test::new()
        .file("Cargo.lock", lock)
        .file(
            &format!("{registry}/old-1.0.0/Cargo.toml"),
            "[package]\nname = \"old\"\nversion = \"1.0.0\"\nlicense = \"MIT/Apache-2.0\"\n",
        )
        .file(
            &format!("{registry}/plain-2.0.0/Cargo.toml"),
            "[package]\nname = \"plain\"\nversion = \"2.0.0\"\nlicense = \"Zlib\"\n",
        );
    sbom(&test, &["--from", "Cargo.lock", "-o", "sbom.json"]).success();
    assert!(valid("spdx", &test.path("sbom.json")));
    let document = json(&test.path("sbom.json"));
    let licence = |name: &str| {
        document["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .find(|package| package["name"] == name)
            .expect("package")["licenseDeclared"]
            .as_str()
            .expect("licence")
            .to_owned()
    };
    assert_eq!(licence("old"), "MIT OR Apache-2.0");
    assert_eq!(licence("plain"), "Zlib");
    assert_eq!(licence("absent"), "NOASSERTION");
    sbom(
        &test,
        &[
            "--from",
            "Cargo.lock",
            "--format",
            "cyclonedx",
            "-o",
            "bom.json",
        ],
    )
    .success();
    assert!(valid("cyclonedx", &test.path("bom.json")));
    let bom = json(&test.path("bom.json"));
    let old = bom["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|component| component["name"] == "old")
        .expect("old")
        .clone();
    assert_eq!(old["licenses"][0]["expression"], "MIT OR Apache-2.0");
    assert_eq!(old["purl"], "pkg:cargo/old@1.0.0");
}

#[test]
fn bad_sources_get_a_clear_error_and_write_nothing() {
    let test = Test::new()
        .file(
            "Cargo.lock",
            "version = 4\n\n[[package]]\nname = \"a\"\nversion = 1\n",
        )
        .file(
            "dangling/Cargo.lock",
            "[[package]]\nname = \"a\"\nversion = \"1.0.0\"\ndependencies = [\"missing\"]\n",
        );
    sbom(&test, &["--from", "Cargo.lock", "-o", "out.json"])
        .failure(1)
        .stderr_contains("Cargo.lock`: TOML parse error at line 5");
    sbom(&test, &["--from", "dangling/Cargo.lock", "-o", "out.json"])
        .failure(1)
        .stderr_contains("`a 1.0.0` depends on `missing`, which the lock does not list");
    sbom(&test, &["--from", "nowhere.lock", "-o", "out.json"])
        .failure(3)
        .stderr_contains("cannot read `nowhere.lock`");
    let output = test
        .command()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .args(["sbom", "--from", "dangling", "-o", "out.json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("SOURCE_DATE_EPOCH must be a number"));
    sbom(
        &test,
        &["--from", "Cargo.lock", "--format", "swid", "-o", "out.json"],
    )
    .failure(2);
    assert!(!test.path("out.json").exists());
    assert!(!test.path("out.json.intoto.json").exists());
}

#[test]
fn a_nix_closure_lists_every_store_path_with_its_nar_hash_and_references() {
    crate::nix::require_nix();
    let test = Test::new()
        .file("nix/flake.nix", crate::nix::FLAKE)
        .file("nix/greeting.txt", "hello\n");
    crate::nix::nix(&test, &["build", "./nix#hello", "--out-link", "result"]);
    let closure: serde_json::Value = serde_json::from_str(&crate::nix::nix(
        &test,
        &["path-info", "--json", "--recursive", "./result"],
    ))
    .expect("path-info");
    // Nix 2.8 prints a list; later versions an object by path.
    let infos: Vec<serde_json::Value> = match closure {
        serde_json::Value::Array(list) => list,
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(path, mut info)| {
                info["path"] = path.into();
                info
            })
            .collect(),
        other => panic!("unexpected path-info: {other}"),
    };
    let nar = |path: &str| {
        crate::nix::hex_of_sri(
            infos
                .iter()
                .find(|info| info["path"] == path)
                .expect("in the closure")["narHash"]
                .as_str()
                .expect("narHash"),
        )
    };
    let hello = fs::canonicalize(test.path("result"))
        .expect("out-link")
        .display()
        .to_string();
    let dep = infos
        .iter()
        .map(|info| info["path"].as_str().expect("path").to_owned())
        .find(|path| path.ends_with("-dep"))
        .expect("dep is in hello's closure");
    for format in ["spdx", "cyclonedx"] {
        let output = format!("closure.{format}.json");
        sbom(
            &test,
            &["--from", "result", "--format", format, "-o", &output],
        )
        .success();
        assert!(valid(format, &test.path(&output)), "{format}");
        let document = json(&test.path(&output));
        if format == "cyclonedx" {
            let components = document["components"].as_array().expect("components");
            assert_eq!(components.len(), infos.len(), "every store path, no more");
            let by_ref = |reference: &str| {
                components
                    .iter()
                    .find(|component| component["bom-ref"] == reference)
                    .expect("component")
                    .clone()
            };
            assert_eq!(by_ref(&hello)["name"], "hello");
            assert_eq!(by_ref(&hello)["hashes"][0]["content"], nar(&hello).as_str());
            assert_eq!(by_ref(&dep)["hashes"][0]["content"], nar(&dep).as_str());
            let hello_dependencies = document["dependencies"]
                .as_array()
                .expect("dependencies")
                .iter()
                .find(|entry| entry["ref"] == hello.as_str())
                .expect("hello's entry")["dependsOn"]
                .clone();
            assert_eq!(hello_dependencies, serde_json::json!([dep]));
        }
        let statement = statement(&test.path(&format!("{output}.intoto.json")));
        assert_eq!(statement["subject"][0]["name"], hello.as_str());
        assert_eq!(
            statement["subject"][0]["digest"]["sha256"],
            nar(&hello).as_str()
        );
    }
}
