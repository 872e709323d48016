//! `gantry sbom`: SPDX 2.3 and `CycloneDX` 1.6 documents that the reference validators accept,
//! exact (a lock's packages, no more, no fewer), byte-for-byte reproducible, and attested.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::attestations::{generate_key, openssl_verifies, statement};
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

/// `gantry check` refuses the pipeline, saying each of `expected`.
fn check_says(test: &Test, expected: &[&str]) {
    let stderr = test.run(["check", "pipeline.toml"]).failure(1).stderr();
    for expected in expected {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
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
        // The signature is deterministic (RFC 6979): the attestations are the same bytes too.
        assert_eq!(
            test.read(&format!("{first}.intoto.json")),
            test.read(&format!("{second}.intoto.json")),
            "{format}: the attestation reproduces"
        );
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

/// A lock whose crates' licences the test's registry cache may or may not know.
const SMALL_LOCK: &str = r#"version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = ["old", "absent"]

[[package]]
name = "old"
version = "1.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "ddc6f9cc94d67c0e21aaf7eda3a010fd3af78ebf6e096aa6e2e13c79749cce4f"

[[package]]
name = "absent"
version = "3.0.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3779b94aeb87e8bd4e834cee3650289ee9e0d5677f976ecdb6d219e5f4f6cd94"
"#;

const REGISTRY: &str = "home/.cargo/registry/src/index.crates.io-0000000000000000";

const SBOM_STEPS: &str = r#"
[steps.build]
run = "mkdir -p out/dist && cp src/a.txt src/b.txt out/dist/ && tar --sort=name --mtime=@0 --owner=0 --group=0 -cf out/pkg.tar src"
inputs = ["src/*.txt"]
outputs = ["out/dist/", "out/pkg.tar"]

[steps.deps]
kind = "sbom"
from = "Cargo.lock"
format = "cyclonedx"
subject = "out/pkg.tar"
output = "out/deps.cdx.json"

[steps.files]
kind = "sbom"
from = "out/dist/"
output = "out/files.spdx.json"
"#;

fn licence_of(bom: &Path, name: &str) -> serde_json::Value {
    json(bom)["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|component| component["name"] == name)
        .expect("component")["licenses"]
        .clone()
}

fn sbom_workspace() -> Test {
    Test::new()
        .file("Cargo.lock", SMALL_LOCK)
        .file("src/a.txt", "a\n")
        .file("src/b.txt", "b\n")
        .file(
            &format!("{REGISTRY}/old-1.0.0/Cargo.toml"),
            "[package]\nname = \"old\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n",
        )
        .pipeline(SBOM_STEPS)
}

#[test]
fn sbom_steps_describe_a_lock_and_a_folder_attested_and_listed_in_provenance() {
    let test = sbom_workspace();
    let run = test.gantry_run(&[]).success();
    assert!(run.statuses().values().all(|status| status == "executed"));
    let bom = test.path("out/deps.cdx.json");
    let spdx = test.path("out/files.spdx.json");
    assert!(valid("cyclonedx", &bom));
    assert!(valid("spdx", &spdx));
    assert_eq!(licence_of(&bom, "old")[0]["expression"], "MIT");
    assert!(licence_of(&bom, "absent").is_null());
    let names: BTreeSet<String> = json(&bom)["components"]
        .as_array()
        .expect("components")
        .iter()
        .map(|component| component["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["app".into(), "old".into(), "absent".into()]),
        "exactly the lock's packages"
    );

    // Each document's attestation names the artifact it describes, signed with the run's key.
    let key = public_key(&test);
    let deps = statement(&test.path("out/deps.cdx.json.intoto.json"));
    assert_eq!(deps["predicateType"], "https://cyclonedx.org/bom");
    assert_eq!(deps["subject"][0]["name"], "out/pkg.tar");
    assert_eq!(
        deps["subject"][0]["digest"]["sha256"],
        sha256_hex(&fs::read(test.path("out/pkg.tar")).expect("pkg"))
    );
    assert_eq!(deps["predicate"], json(&bom));
    let files = statement(&test.path("out/files.spdx.json.intoto.json"));
    assert_eq!(files["predicateType"], "https://spdx.dev/Document");
    let subjects: Vec<&str> = files["subject"]
        .as_array()
        .expect("subjects")
        .iter()
        .map(|subject| subject["name"].as_str().expect("name"))
        .collect();
    assert_eq!(subjects, ["out/dist/a.txt", "out/dist/b.txt"]);
    for attestation in [
        "out/deps.cdx.json.intoto.json",
        "out/files.spdx.json.intoto.json",
    ] {
        assert!(openssl_verifies(&test.path(attestation), &key, test.root()));
    }
    let link = statement(&crate::support::attested(
        &run.run_dir(),
        "deps.intoto.json",
    ));
    let materials: Vec<&str> = link["predicate"]["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .map(|material| material["name"].as_str().expect("name"))
        .collect();
    assert_eq!(materials, ["Cargo.lock", "out/pkg.tar"]);

    // The provenance lists the described artifacts, the documents by media type and their
    // attestations by predicate type.
    let provenance = statement(&run.run_dir().join("provenance.intoto.json"));
    let subject = |name: &str| {
        provenance["subject"]
            .as_array()
            .expect("subjects")
            .iter()
            .find(|subject| subject["name"] == name)
            .unwrap_or_else(|| panic!("`{name}` is a subject of the provenance"))
            .clone()
    };
    subject("out/pkg.tar");
    subject("out/dist/a.txt");
    assert_eq!(
        subject("out/deps.cdx.json")["mediaType"],
        "application/vnd.cyclonedx+json"
    );
    assert_eq!(
        subject("out/files.spdx.json.intoto.json")["annotations"]["predicateType"],
        "https://spdx.dev/Document"
    );

    // The run folder holds each SBOM attestation too, listed in SHA256SUMS.
    assert_eq!(
        fs::read(crate::support::attested(
            &run.run_dir(),
            "deps.sbom.intoto.json"
        ))
        .expect("copy in the run folder"),
        fs::read(test.path("out/deps.cdx.json.intoto.json")).expect("attestation")
    );
    assert!(
        fs::read_to_string(run.run_dir().join("SHA256SUMS"))
            .expect("sums")
            .contains("  deps.sbom.intoto.json\n")
    );
}

#[test]
fn sbom_steps_are_cached_by_everything_their_bytes_depend_on() {
    let test = sbom_workspace();
    test.gantry_run(&[]).success();
    let bom = test.path("out/deps.cdx.json");
    let spdx = test.path("out/files.spdx.json");
    // Nothing changed: every step is served from the cache, byte for byte.
    let before = [fs::read(&bom).expect("bom"), fs::read(&spdx).expect("spdx")];
    fs::remove_file(&bom).expect("remove");
    let again = test.gantry_run(&[]).success();
    assert!(again.statuses().values().all(|status| status == "cached"));
    assert_eq!(
        [fs::read(&bom).expect("bom"), fs::read(&spdx).expect("spdx")],
        before
    );

    // Another run key that trusts the old one's results: the attestations, outputs signed
    // with the new key, are made again; nothing else. (Without `--trust-cache-key`, every
    // step would run again: a result another key signed is not taken on trust.)
    let release = test.path("release.pem");
    assert!(generate_key(&release, "EC", "ec_paramgen_curve:P-256"));
    let release = release.to_str().expect("utf-8");
    let development = test.path("development.pub");
    fs::write(&development, test.run(["key", "public"]).success().stdout()).expect("write");
    let development = development.to_str().expect("utf-8");
    let statuses = test
        .gantry_run(&["--key", release, "--trust-cache-key", development])
        .success()
        .statuses();
    assert_eq!(statuses["build"], "cached");
    assert_eq!(statuses["deps"], "executed");
    let release_public = test.path("release.pub");
    fs::write(
        &release_public,
        test.run(["key", "public", "--key", release])
            .success()
            .stdout(),
    )
    .expect("write");
    assert!(openssl_verifies(
        &test.path("out/deps.cdx.json.intoto.json"),
        &release_public,
        test.root()
    ));

    // A licence that appears in the registry cache is a new document; the folder's is not.
    test.write(
        &format!("{REGISTRY}/absent-3.0.0/Cargo.toml"),
        "[package]\nname = \"absent\"\nversion = \"3.0.0\"\nlicense = \"Zlib\"\n",
    );
    let statuses = test.gantry_run(&["--key", release]).success().statuses();
    assert_eq!(statuses["deps"], "executed");
    assert_eq!(statuses["files"], "cached");
    assert_eq!(licence_of(&bom, "absent")[0]["expression"], "Zlib");

    // A changed source changes the artifacts, and so both documents.
    test.write("src/a.txt", "a, changed\n");
    let statuses = test.gantry_run(&["--key", release]).success().statuses();
    assert_eq!(statuses["deps"], "executed");
    assert_eq!(statuses["files"], "executed");
}

#[test]
fn a_sbom_step_describes_a_nix_step_s_closure() {
    crate::nix::require_nix();
    let test = Test::new()
        .file("nix/flake.nix", crate::nix::FLAKE)
        .file("nix/greeting.txt", "hello\n")
        .pipeline(
            r#"
[steps.hello]
kind = "nix"
flake = "./nix#hello"
outputs = ["result"]

[steps.closure]
kind = "sbom"
from = "result"
output = "out/closure.spdx.json"
"#,
        );
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.statuses()["closure"], "executed");
    let document = test.path("out/closure.spdx.json");
    assert!(valid("spdx", &document));
    let hello = fs::canonicalize(test.path("result"))
        .expect("out-link")
        .display()
        .to_string();
    let names: BTreeSet<String> = json(&document)["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|package| package["name"].as_str().expect("name").to_owned())
        .collect();
    assert!(
        names.contains("hello") && names.contains("dep"),
        "{names:?}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&crate::nix::nix(&test, &["path-info", "--json", &hello]))
            .expect("path-info");
    let nar = match &info {
        serde_json::Value::Array(list) => list[0]["narHash"].clone(),
        other => other[&hello]["narHash"].clone(),
    };
    let attestation = statement(&test.path("out/closure.spdx.json.intoto.json"));
    assert_eq!(attestation["subject"][0]["name"], "result");
    assert_eq!(
        attestation["subject"][0]["digest"]["sha256"],
        crate::nix::hex_of_sri(nar.as_str().expect("narHash")).as_str()
    );
    let link = statement(&crate::support::attested(
        &run.run_dir(),
        "closure.intoto.json",
    ));
    assert_eq!(
        link["predicate"]["environment"]["storePath"],
        hello.as_str()
    );
    let again = test.gantry_run(&[]).success();
    assert_eq!(again.statuses()["closure"], "cached");
}

#[test]
fn sbom_step_mistakes_point_at_the_line() {
    let test = Test::new().file("Cargo.lock", SMALL_LOCK).pipeline(
        r#"
[steps.one]
kind = "sbom"
from = "Cargo.lock"
format = "swid"
output = "out/a.json"

[steps.two]
kind = "sbom"
from = "dist/*.tar"
outputs = ["x"]
"#,
    );
    let run = test.run(["check", "pipeline.toml"]).failure(1);
    run.stderr_contains("pipeline.toml:9:10: error: unknown SBOM format `swid`")
        .stderr_contains("pipeline.toml:14:8: error: `from` names one path, not a glob")
        .stderr_contains("pipeline.toml:15:12: error: `outputs` does not apply to sbom steps")
        .stderr_contains("error: sbom step `two` needs `output`");
}

/// `about = { ... }`: a folder's SBOM says what product its subject is (name, version,
/// supplier, licence, purl) in both formats, which the validators accept; each field is
/// checked at its line.
#[test]
fn a_folder_sbom_says_what_its_subject_is() {
    let about = r#"about = { name = "zlib", version = "1.2.13", supplier = "Organization: zlib", license = "Zlib", purl = "pkg:generic/zlib@1.2.13" }"#;
    let test = Test::new().file("src/a.txt", "a\n").pipeline(&format!(
        "[steps.dist]\nrun = \"mkdir -p out/dist && cp src/a.txt out/dist/a.txt && tar --mtime=@0 -cf out/zlib.tar out/dist\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/dist/\", \"out/zlib.tar\"]\n\n[steps.spdx]\nkind = \"sbom\"\nfrom = \"out/dist/\"\nsubject = \"out/zlib.tar\"\noutput = \"out/zlib.spdx.json\"\n{about}\n\n[steps.cdx]\nkind = \"sbom\"\nfrom = \"out/dist/\"\nformat = \"cyclonedx\"\nsubject = \"out/zlib.tar\"\noutput = \"out/zlib.cdx.json\"\n{about}\n"
    ));
    test.gantry_run(&[]).success();
    let spdx = test.path("out/zlib.spdx.json");
    let cdx = test.path("out/zlib.cdx.json");
    assert!(valid("spdx", &spdx));
    assert!(valid("cyclonedx", &cdx));
    let document = json(&spdx);
    let package = &document["packages"][0];
    assert_eq!(package["name"], "zlib");
    assert_eq!(package["versionInfo"], "1.2.13");
    assert_eq!(package["packageFileName"], "out/zlib.tar");
    assert_eq!(package["supplier"], "Organization: zlib");
    assert_eq!(package["licenseDeclared"], "Zlib");
    assert_eq!(
        package["externalRefs"][0]["referenceLocator"],
        "pkg:generic/zlib@1.2.13"
    );
    let component = &json(&cdx)["metadata"]["component"];
    assert_eq!(component["name"], "zlib");
    assert_eq!(component["version"], "1.2.13");
    assert_eq!(component["supplier"]["name"], "zlib");
    assert_eq!(component["licenses"][0]["expression"], "Zlib");
    assert_eq!(component["purl"], "pkg:generic/zlib@1.2.13");

    let wrong = Test::new().file("src/a.txt", "a\n").pipeline(
        "[steps.spdx]\nkind = \"sbom\"\nfrom = \"src/\"\noutput = \"out/a.spdx.json\"\nabout = { supplier = \"zlib\", license = \"zlib licence\", purl = \"zlib\" }\n",
    );
    check_says(
        &wrong,
        &[
            "is not a supplier as SPDX writes one",
            "is not an SPDX licence expression",
            "is not a package URL",
        ],
    );
}

/// `import = true`: another tool's SBOM becomes an attested one, byte for byte, about the
/// subject, its format read from it; what is not an SBOM is refused.
#[test]
fn another_tool_s_sbom_is_imported_and_attested() {
    let document = r#"{
  "bomFormat": "CycloneDX",
  "specVersion": "1.6",
  "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
  "version": 1,
  "components": [{ "type": "library", "name": "left-pad", "version": "1.3.0", "purl": "pkg:npm/left-pad@1.3.0" }]
}
"#;
    let test = Test::new()
        .file("third_party/left-pad.cdx.json", document)
        .file("src/a.txt", "a\n")
        .pipeline("[steps.build]\nrun = \"cp src/a.txt out.bin\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out.bin\"]\n\n[steps.sbom]\nkind = \"sbom\"\nfrom = \"third_party/left-pad.cdx.json\"\nimport = true\nsubject = \"out.bin\"\noutput = \"out/left-pad.cdx.json\"\n");
    let run = test.gantry_run(&[]).success();
    assert_eq!(
        test.read("out/left-pad.cdx.json"),
        document,
        "byte for byte"
    );
    assert!(valid("cyclonedx", &test.path("out/left-pad.cdx.json")));
    let attestation = statement(&test.path("out/left-pad.cdx.json.intoto.json"));
    assert_eq!(attestation["predicateType"], "https://cyclonedx.org/bom");
    assert_eq!(attestation["subject"][0]["name"], "out.bin");
    assert_eq!(
        attestation["subject"][0]["digest"]["sha256"],
        sha256_hex(b"a\n")
    );
    assert_eq!(
        attestation["predicate"]["components"][0]["name"],
        "left-pad"
    );
    let link = statement(&crate::support::attested(
        &run.run_dir(),
        "sbom.intoto.json",
    ));
    assert_eq!(link["predicate"]["environment"]["imported"], true);

    test.write("third_party/left-pad.cdx.json", "{\"hello\": 1}\n");
    let refused = test.gantry_run(&[]).failure(1);
    assert!(
        refused.stdout().contains("is neither an SPDX document"),
        "{}",
        refused.stdout()
    );
    let wrong = Test::new().file("a.json", "{}").pipeline(
        "[steps.sbom]\nkind = \"sbom\"\nfrom = \"a.json\"\nimport = true\nformat = \"spdx\"\noutput = \"out/a.json\"\n",
    );
    check_says(
        &wrong,
        &[
            "needs the `subject` it is about",
            "`format` does not apply to an imported SBOM",
        ],
    );
}

/// `subject = [...]`: one document for several artifacts made from one source (two binaries
/// of one lock), each an attestation subject by its digest, each described in both formats.
#[test]
fn one_sbom_is_for_several_artifacts() {
    let lock = "version = 3\n\n[[package]]\nname = \"tool\"\nversion = \"1.0.0\"\n";
    let test = Test::new()
        .file("Cargo.lock", lock)
        .file("src/a.txt", "a\n")
        .pipeline("[steps.build]\nrun = \"mkdir -p out/bin && cp src/a.txt out/bin/one && echo b > out/bin/two\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/bin/\"]\n\n[steps.spdx]\nkind = \"sbom\"\nfrom = \"Cargo.lock\"\nsubject = [\"out/bin/one\", \"out/bin/two\"]\noutput = \"out/tool.spdx.json\"\nabout = { name = \"tool\", version = \"1.0.0\" }\n\n[steps.cdx]\nkind = \"sbom\"\nfrom = \"Cargo.lock\"\nformat = \"cyclonedx\"\nsubject = [\"out/bin/one\", \"out/bin/two\"]\noutput = \"out/tool.cdx.json\"\n");
    test.gantry_run(&[]).success();
    let expected = [
        ("out/bin/one", sha256_hex(b"a\n")),
        ("out/bin/two", sha256_hex(b"b\n")),
    ];
    for document in ["out/tool.spdx.json", "out/tool.cdx.json"] {
        let attestation = statement(&test.path(&format!("{document}.intoto.json")));
        let subjects: Vec<(String, String)> =
            (attestation["subject"].as_array().expect("subjects"))
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
        let expected: Vec<(String, String)> = (expected.iter())
            .map(|(name, digest)| ((*name).to_owned(), digest.clone()))
            .collect();
        assert_eq!(subjects, expected, "{document}");
    }
    let spdx = test.path("out/tool.spdx.json");
    assert!(valid("spdx", &spdx));
    let document = json(&spdx);
    let describes: Vec<&str> = (document["relationships"].as_array().expect("relationships"))
        .iter()
        .filter(|relationship| relationship["relationshipType"] == "DESCRIBES")
        .map(|relationship| relationship["relatedSpdxElement"].as_str().expect("id"))
        .collect();
    assert_eq!(describes.len(), 2, "{document}");
    let two = (document["packages"].as_array().expect("packages"))
        .iter()
        .find(|package| package["name"] == "out/bin/two")
        .expect("the second subject is a package");
    assert_eq!(two["checksums"][0]["checksumValue"], sha256_hex(b"b\n"));
    let cdx = test.path("out/tool.cdx.json");
    assert!(valid("cyclonedx", &cdx));
    let component = &json(&cdx)["metadata"]["component"];
    assert_eq!(component["name"], "out/bin/one");
    assert_eq!(component["components"][0]["name"], "out/bin/two");

    let twice = Test::new().file("Cargo.lock", lock).pipeline(
        "[steps.spdx]\nkind = \"sbom\"\nfrom = \"Cargo.lock\"\nsubject = [\"Cargo.lock\", \"Cargo.lock\"]\noutput = \"out/a.json\"\n\n[steps.gate]\nkind = \"gate\"\nevidence = { junit = \"Cargo.lock\" }\nrequire = { failures = 0 }\nsubject = [\"a\", \"b\"]\n",
    );
    check_says(
        &twice,
        &[
            "the subject `Cargo.lock` is named twice",
            "a gate step is about one subject",
        ],
    );
}

/// `gantry sbom` takes what a sbom step takes: several subjects, licences from a vendored
/// folder and the workspace's manifests, what the product is, and another tool's document.
#[test]
fn the_command_line_takes_what_a_sbom_step_takes() {
    let lock = "version = 3\n\n[[package]]\nname = \"tool\"\nversion = \"1.0.0\"\ndependencies = [\"dep\"]\n\n[[package]]\nname = \"dep\"\nversion = \"2.0.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"0000000000000000000000000000000000000000000000000000000000000000\"\n";
    let test = Test::new()
        .file("Cargo.lock", lock)
        .file(
            "Cargo.toml",
            "[package]\nname = \"tool\"\nversion = \"1.0.0\"\nlicense = \"MIT\"\n",
        )
        .file(
            "vendor/dep-2.0.0/Cargo.toml",
            "[package]\nname = \"dep\"\nversion = \"2.0.0\"\nlicense = \"Apache-2.0\"\n",
        )
        .file("bin/one", "1\n")
        .file("bin/two", "2\n");
    sbom(
        &test,
        &[
            "--from",
            "Cargo.lock",
            "--format",
            "cyclonedx",
            "--subject",
            "bin/one",
            "--subject",
            "bin/two",
            "--vendored",
            "vendor",
            "--manifest",
            "Cargo.toml",
            "--about-name",
            "tool",
            "--about-version",
            "1.0.0",
            "--about-license",
            "MIT",
            "--about-purl",
            "pkg:cargo/tool@1.0.0",
            "-o",
            "tool.cdx.json",
        ],
    )
    .success();
    let bom_path = test.path("tool.cdx.json");
    assert!(valid("cyclonedx", &bom_path));
    assert_eq!(licence_of(&bom_path, "dep")[0]["expression"], "Apache-2.0");
    assert_eq!(licence_of(&bom_path, "tool")[0]["expression"], "MIT");
    let bom = json(&bom_path);
    assert_eq!(bom["metadata"]["component"]["name"], "tool");
    assert_eq!(bom["metadata"]["component"]["purl"], "pkg:cargo/tool@1.0.0");
    assert_eq!(
        bom["metadata"]["component"]["components"][0]["name"],
        "bin/two"
    );
    let attestation = statement(&test.path("tool.cdx.json.intoto.json"));
    assert_eq!(attestation["subject"].as_array().map(Vec::len), Some(2));

    let refused = sbom(
        &test,
        &[
            "--from",
            "Cargo.lock",
            "--about-purl",
            "tool",
            "-o",
            "x.json",
        ],
    )
    .failure(2);
    assert!(
        refused.stderr().contains("is not a package URL"),
        "{}",
        refused.stderr()
    );
    assert!(!test.path("x.json").exists());
}

#[test]
fn the_command_line_imports_another_tool_s_sbom() {
    let test = Test::new().file("bin/one", "1\n").file(
        "other.spdx.json",
        "{\"spdxVersion\": \"SPDX-2.3\", \"name\": \"theirs\"}\n",
    );
    sbom(
        &test,
        &[
            "--from",
            "other.spdx.json",
            "--import",
            "--subject",
            "bin/one",
            "-o",
            "imported.json",
        ],
    )
    .success();
    assert_eq!(test.read("imported.json"), test.read("other.spdx.json"));
    let imported = statement(&test.path("imported.json.intoto.json"));
    assert_eq!(imported["predicateType"], "https://spdx.dev/Document");
    assert_eq!(imported["subject"][0]["name"], "bin/one");
    let without = sbom(
        &test,
        &["--from", "other.spdx.json", "--import", "-o", "y.json"],
    )
    .failure(2);
    assert!(
        without.stderr().contains("--subject"),
        "{}",
        without.stderr()
    );
}
