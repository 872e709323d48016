//! Usage reports (issue 32): signed usage documents priced with a rate card, matched to the
//! cent against a table worked out by hand, in every format; a duplicate counted once, a
//! tampered, a future-dated and an out-of-period document each refused with its reason; a
//! signed report re-checked by `gantry usage verify`, and a difference named.
//!
//! The hand computation (tests/fixtures/usage/rate-card.toml, November 2026, 30 days):
//!
//! | run | tenant (tier) | what | priced |
//! |---|---|---|---|
//! | R1 11-03 | acme (professional, from 01-01) | build: 10 h CPU, 4 GB for 5 h; test: 2.5 h CPU (no peak); lint cached (1 h) | CPU 12.5 h × 0.08 = 1.00; memory 20 GB-h × 0.004 = 0.08; 2 steps × 0.0008 = 0.0016 → 0.00 |
//! | R2 11-20 | acme (professional, from 11-16) | build: 4 h CPU, 1 GB for 4 h | CPU 4 h × 0.07 = 0.28; memory 4 GB-h × 0.004 = 0.016 → 0.02; 1 step → 0.00 |
//! | R3 11-05 | globex (basic) | deploy: Nix, wall 2 h (billed as CPU), 1.5 GB for 2 h; remote: 0.5 h on the worker | CPU 2.5 h × 0.10 = 0.25; memory 3 GB-h × 0.005 = 0.015 → 0.02 (half to even); 2 steps → 0.00 |
//! | R4 11-30 | initech (enterprise) | etl: 100 h CPU | 6.00; 1 step × 0.0005 → 0.00 (half to even) |
//! | R5 11-10 | none (default: basic) | one step: 1 h CPU, 1 GB for 1 h | 0.10; memory 0.005 → 0.00 (half to even); 1 step → 0.00 |
//!
//! Base fees, the whole month, each day at its day's rate: acme 100.00 + 100.00 (its two
//! periods, 15 days each), globex 50.00, initech 500.00 (no tenant: none).
//! Subtotals: acme 201.38, globex 50.27, initech 506.00, no tenant 0.10; total 757.75.
//! Cache hits saved 1 CPU-hour, priced 0.08. From 16 to 30 November (15 of 30 days): base
//! fees 100.00 + 25.00 + 250.00, R2 0.30, R4 6.00: 381.30.

use std::path::Path;

use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};

use gantry::keys::Signer as _;

use crate::support::Test;

pub(crate) const HOUR: u64 = 3_600_000_000;

pub(crate) struct Fixture {
    pub(crate) test: Test,
    signer: gantry::keys::EcdsaSigner,
}

impl Fixture {
    pub(crate) fn new() -> Self {
        let test = Test::new();
        let key = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("key");
        let signer = gantry::keys::EcdsaSigner::new(&key).expect("signer");
        let pem = key.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).expect("pem");
        test.write("keys/farm.key", &pem);
        set_private(&test.path("keys/farm.key"));
        test.write("keys/farm.pub", signer.public_key_pem());
        test.write(
            "rate-card.toml",
            &std::fs::read_to_string(
                Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/usage/rate-card.toml"),
            )
            .expect("rate card"),
        );
        Self { test, signer }
    }

    /// Signs a usage document for a run and writes it to `attestations/RUN/`.
    pub(crate) fn run(
        &self,
        run_id: &str,
        tenant: Option<&str>,
        pipeline: &str,
        started: &str,
        steps: &Value,
    ) {
        let mut predicate = json!({
            "runId": run_id,
            "pipeline": {"name": pipeline, "path": "pipeline.toml", "sha256": "0".repeat(64)},
            "machine": {"cores": 2},
            "startedOn": started,
            "finishedOn": started,
            "steps": steps,
        });
        if let Some(tenant) = tenant {
            predicate["tenant"] = json!(tenant);
        }
        let statement = json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "provenance.intoto.json", "digest": {"sha256": crate::support::sha256_hex(run_id.as_bytes())}}],
            "predicateType": "https://gantry.dev/attestation/usage/v0.1",
            "predicate": predicate,
        });
        let body = serde_json::to_vec(&statement).expect("json");
        let envelope =
            gantry::attest::dsse::sign("application/vnd.in-toto+json", &body, &self.signer);
        self.test.write(
            &format!("attestations/{run_id}/usage.intoto.json"),
            &serde_json::to_string_pretty(&envelope).expect("json"),
        );
    }

    pub(crate) fn report(&self, extra: &[&str]) -> crate::support::Run {
        let output = self
            .test
            .command()
            .args([
                "usage",
                "report",
                "--rate-card",
                "rate-card.toml",
                "--public-key",
                "keys/farm.pub",
            ])
            .args(extra)
            .output()
            .expect("gantry");
        crate::support::Run { output }
    }
}

/// `gantry usage verify REPORT` with the farm's key.
fn verify_report(test: &crate::support::Test, report: &str, extra: &[&str]) -> crate::support::Run {
    let output = test
        .command()
        .args(["usage", "verify", report, "--public-key", "keys/farm.pub"])
        .args(extra)
        .output()
        .expect("gantry");
    crate::support::Run { output }
}

fn set_private(path: &Path) {
    let mut permissions = std::fs::metadata(path).expect("key").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o600);
    std::fs::set_permissions(path, permissions).expect("chmod");
}

pub(crate) fn executed(step: &str, usage: &Value) -> Value {
    json!({"step": step, "status": "executed", "usage": usage})
}

/// The five runs of the table above.
fn november() -> Fixture {
    let fixture = Fixture::new();
    fixture.run(
        "20261103T100000Z-00000001",
        Some("acme"),
        "app",
        "2026-11-03T10:00:00Z",
        &json!([
            executed("build", &json!({"method": "wait4", "wallUs": 5 * HOUR, "cpuUserUs": 9 * HOUR, "cpuSystemUs": HOUR, "peakMemoryBytes": 4_000_000_000u64})),
            executed("test", &json!({"method": "wait4", "wallUs": 3 * HOUR, "cpuUserUs": 5 * HOUR / 2})),
            {"step": "lint", "status": "cached", "usage": {"method": "wait4", "wallUs": HOUR, "cpuUserUs": HOUR, "cpuSystemUs": 0}},
        ]),
    );
    fixture.run(
        "20261120T080000Z-00000002",
        Some("acme"),
        "app",
        "2026-11-20T08:00:00Z",
        &json!([executed("build", &json!({"method": "wait4", "wallUs": 4 * HOUR, "cpuUserUs": 4 * HOUR, "peakMemoryBytes": 1_000_000_000u64}))]),
    );
    fixture.run(
        "20261105T120000Z-00000003",
        Some("globex"),
        "site",
        "2026-11-05T12:00:00Z",
        &json!([
            executed("deploy", &json!({"method": "wall", "wallUs": 2 * HOUR, "peakMemoryBytes": 1_500_000_000u64})),
            executed("remote", &json!({"method": "remote", "wallUs": HOUR, "remote": {"worker": "w1", "cacheHit": false, "executionUs": HOUR / 2}})),
        ]),
    );
    fixture.run(
        "20261130T230000Z-00000004",
        Some("initech"),
        "etl",
        "2026-11-30T23:00:00Z",
        &json!([executed(
            "etl",
            &json!({"method": "wait4", "wallUs": 50 * HOUR, "cpuUserUs": 100 * HOUR})
        )]),
    );
    fixture.run(
        "20261110T090000Z-00000005",
        None,
        "app",
        "2026-11-10T09:00:00Z",
        &json!([executed("build", &json!({"method": "wait4", "wallUs": HOUR, "cpuUserUs": HOUR, "peakMemoryBytes": 1_000_000_000u64}))]),
    );
    fixture
}

fn amounts(report: &Value) -> Vec<(String, String, String, String)> {
    report["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .map(|line| {
            (
                line["group"].as_str().unwrap_or_default().to_owned(),
                line["charge"].as_str().unwrap_or_default().to_owned(),
                line["rateFrom"].as_str().unwrap_or_default().to_owned(),
                line["amount"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// The hand-computed table, to the cent, in JSON, CSV (read back by Python's csv module), the
/// invoice and the HTML page.
#[test]
fn a_month_of_several_tenants_and_tiers_matches_the_hand_computation_in_every_format() {
    let fixture = november();
    let run = fixture.report(&["--period", "2026-11"]).success();
    let report: Value = serde_json::from_str(&run.stdout()).expect("json report");
    assert_eq!(report["total"], "757.75", "{report:#}");
    assert_eq!(report["currency"], "USD");
    let subtotals: Vec<(String, String)> = (report["tenants"].as_array().expect("tenants").iter())
        .map(|subtotal| {
            (
                subtotal["name"].as_str().unwrap_or_default().to_owned(),
                subtotal["amount"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        subtotals,
        [
            ("(no tenant)", "0.10"),
            ("acme", "201.38"),
            ("globex", "50.27"),
            ("initech", "506.00")
        ]
        .map(|(name, amount)| (name.to_owned(), amount.to_owned()))
    );
    let lines = amounts(&report);
    for expected in [
        ("acme", "base", "2026-01-01", "100.00"),
        ("acme", "base", "2026-11-16", "100.00"),
        ("acme", "cpu", "2026-01-01", "1.00"),
        ("acme", "cpu", "2026-11-16", "0.28"),
        ("acme", "memory", "2026-01-01", "0.08"),
        ("acme", "memory", "2026-11-16", "0.02"),
        ("acme", "steps", "2026-01-01", "0.00"),
        ("globex", "cpu", "2026-01-01", "0.25"),
        ("globex", "memory", "2026-01-01", "0.02"),
        ("initech", "cpu", "2026-01-01", "6.00"),
        ("initech", "steps", "2026-01-01", "0.00"),
        ("(no tenant)", "memory", "2026-01-01", "0.00"),
    ] {
        let expected = (
            expected.0.to_owned(),
            expected.1.to_owned(),
            expected.2.to_owned(),
            expected.3.to_owned(),
        );
        assert!(lines.contains(&expected), "{expected:?} in {lines:#?}");
    }
    let sum: rust_decimal::Decimal = (lines.iter())
        .map(|line| line.3.parse::<rust_decimal::Decimal>().expect("amount"))
        .sum();
    assert_eq!(
        sum.to_string(),
        "757.75",
        "the total is the sum of the lines"
    );
    assert_eq!(report["runs"].as_array().expect("runs").len(), 5);
    assert_eq!(report["saved"]["cpuHours"], "1");
    assert_eq!(report["saved"]["amount"], "0.08");

    csv_reads_back(&fixture, lines.len());
    let invoice = fixture
        .report(&["--period", "2026-11", "--format", "invoice"])
        .success()
        .stdout();
    for expected in [
        "TOTAL: 757.75 USD",
        "Subtotal acme: 201.38 USD",
        "Subtotal globex: 50.27 USD",
        "Runs covered (5)",
        "Period:     2026-11-01 to 2026-11-30",
    ] {
        assert!(invoice.contains(expected), "{expected} in\n{invoice}");
    }
    let html = fixture
        .report(&["--period", "2026-11", "--format", "html"])
        .success()
        .stdout();
    for expected in [
        "Total 757.75 USD",
        "Cost per day",
        "Cost per pipeline",
        "<svg",
        "2026-11-30",
    ] {
        assert!(html.contains(expected), "{expected}");
    }
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"));
}

/// The CSV, read back by Python's csv module: as many lines, adding up to the total.
fn csv_reads_back(fixture: &Fixture, lines: usize) {
    let csv = fixture
        .report(&["--period", "2026-11", "--format", "csv", "-o", "report.csv"])
        .success();
    assert!(csv.stdout().is_empty());
    let check = std::process::Command::new("python3")
        .arg("-c")
        .arg("import csv,sys,decimal\nrows=list(csv.DictReader(open(sys.argv[1],newline='')))\nlines=[r for r in rows if r['group']!='total']\ntotal=[r for r in rows if r['group']=='total'][0]\nassert sum(decimal.Decimal(r['amount']) for r in lines)==decimal.Decimal(total['amount']),rows\nprint(len(lines), total['amount'], total['currency'])")
        .arg(fixture.test.path("report.csv"))
        .output()
        .expect("python3");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&check.stdout).trim(),
        format!("{lines} 757.75 USD")
    );
}

/// One tenant; part of a month (base fees in proportion, the rate of the first day); grouped
/// by pipeline and by day.
#[test]
fn tenants_periods_and_groupings() {
    let fixture = november();
    let acme: Value = serde_json::from_str(
        &fixture
            .report(&["--period", "2026-11", "--tenant", "acme"])
            .success()
            .stdout(),
    )
    .expect("json");
    assert_eq!(acme["total"], "201.38");
    assert_eq!(acme["runs"].as_array().expect("runs").len(), 2);
    let half: Value = serde_json::from_str(
        &fixture
            .report(&["--since", "2026-11-16", "--until", "2026-11-30"])
            .success()
            .stdout(),
    )
    .expect("json");
    assert_eq!(half["total"], "381.30", "{half:#}");
    let lines = amounts(&half);
    assert!(
        lines.contains(&(
            "acme".to_owned(),
            "base".to_owned(),
            "2026-11-16".to_owned(),
            "100.00".to_owned()
        )),
        "{lines:#?}"
    );
    let refused: Vec<&str> = (half["refused"].as_array().expect("refused").iter())
        .map(|refused| refused["reason"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        refused
            .iter()
            .filter(|reason| reason.starts_with("outside the period"))
            .count(),
        3
    );
    let by_pipeline: Value = serde_json::from_str(
        &fixture
            .report(&["--period", "2026-11", "--group-by", "pipeline"])
            .success()
            .stdout(),
    )
    .expect("json");
    assert_eq!(by_pipeline["total"], "757.75");
    let groups: Vec<&str> = (by_pipeline["groups"].as_array().expect("groups").iter())
        .map(|group| group["name"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        groups,
        [
            "app",
            "base fee: acme",
            "base fee: globex",
            "base fee: initech",
            "etl",
            "site"
        ]
    );
    let by_step: Value = serde_json::from_str(
        &fixture
            .report(&["--period", "2026-11", "--group-by", "step"])
            .success()
            .stdout(),
    )
    .expect("json");
    assert_eq!(
        by_step["total"], "757.75",
        "the same lines rounded per step here"
    );
}

/// A copy of a document counted once; a document edited after signing, one signed by another
/// key, one dated in the future and one from October each refused, with the reason.
#[test]
fn duplicates_count_once_and_bad_documents_are_refused_with_their_reason() {
    let fixture = november();
    let test = &fixture.test;
    let original = test.read("attestations/20261103T100000Z-00000001/usage.intoto.json");
    test.write(
        "more/20261103T100000Z-00000001/usage.intoto.json",
        &original,
    );
    let mut envelope: Value = serde_json::from_str(&original).expect("json");
    let mut statement: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            envelope["payload"].as_str().expect("payload"),
        )
        .expect("base64"),
    )
    .expect("statement");
    statement["predicate"]["runId"] = json!("20261104T100000Z-0000000a");
    statement["predicate"]["steps"][0]["usage"]["cpuUserUs"] = json!(1);
    envelope["payload"] = json!(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&statement).expect("json")
    ));
    test.write("more/tampered/usage.intoto.json", &envelope.to_string());
    fixture.run(
        "20270105T100000Z-0000000b",
        Some("acme"),
        "app",
        "2027-01-05T10:00:00Z",
        &json!([]),
    );
    fixture.run(
        "20261031T235959Z-0000000c",
        Some("acme"),
        "app",
        "2026-10-31T23:59:59Z",
        &json!([executed(
            "x",
            &json!({"method": "wait4", "wallUs": HOUR, "cpuUserUs": HOUR})
        )]),
    );
    let stranger = p256::ecdsa::SigningKey::from_slice(&[9u8; 32]).expect("key");
    let stranger = gantry::keys::EcdsaSigner::new(&stranger).expect("signer");
    let body = serde_json::to_vec(&statement).expect("json");
    let foreign = gantry::attest::dsse::sign("application/vnd.in-toto+json", &body, &stranger);
    test.write(
        "more/foreign/usage.intoto.json",
        &serde_json::to_string(&foreign).expect("json"),
    );
    let run = fixture
        .report(&[
            "--period",
            "2026-11",
            "--attestations",
            "attestations",
            "--attestations",
            "more",
        ])
        .success();
    let report: Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(
        report["total"], "757.75",
        "nothing bad counted, the duplicate once"
    );
    let refused: Vec<(String, String)> = (report["refused"].as_array().expect("refused").iter())
        .map(|refused| {
            (
                refused["file"].as_str().unwrap_or_default().to_owned(),
                refused["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let reason = |file: &str| -> String {
        refused
            .iter()
            .find(|(path, _)| path.contains(file))
            .map_or_else(
                || panic!("{file} not refused: {refused:#?}"),
                |(_, reason)| reason.clone(),
            )
    };
    assert!(
        reason("more/20261103T100000Z-00000001").starts_with("the same run as"),
        "{refused:#?}"
    );
    assert!(reason("tampered").contains("signature does not verify"));
    assert!(reason("foreign").contains("signature does not verify"));
    assert!(reason("20270105T100000Z").starts_with("dated in the future"));
    assert!(reason("20261031T235959Z").starts_with("outside the period"));
    assert!(run.stderr().contains("note: not counted"));
}

/// A signed report re-checked from the documents: the same totals; then with a run's document
/// gone, the difference named; an edited report does not verify.
#[test]
fn a_signed_report_verifies_against_the_documents_and_names_a_difference() {
    let fixture = november();
    let test = &fixture.test;
    fixture
        .report(&[
            "--period",
            "2026-11",
            "--key",
            "keys/farm.key",
            "-o",
            "report.intoto.json",
        ])
        .success();
    let verify = |extra: &[&str]| {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        verify_report(test, "report.intoto.json", &args)
    };
    let same: Value = serde_json::from_str(&verify(&[]).success().stdout()).expect("json");
    assert_eq!(same["same"], true, "{same}");
    assert_eq!(same["total"], "757.75");
    std::fs::rename(
        test.path("attestations/20261130T230000Z-00000004"),
        test.path("elsewhere"),
    )
    .expect("move");
    let differs = verify(&[]).failure(1);
    let differs: Value = serde_json::from_str(&differs.stdout()).expect("json");
    let named = differs["differences"].to_string();
    assert!(
        named.contains("run 20261130T230000Z-00000004") && named.contains("not found"),
        "{named}"
    );
    assert!(
        named.contains("the report says 757.75 USD, the attestations give 751.75 USD"),
        "{named}"
    );
    std::fs::rename(
        test.path("elsewhere"),
        test.path("attestations/20261130T230000Z-00000004"),
    )
    .expect("move");
    // A report edited after signing is refused before anything is priced.
    let edited =
        test.read("report.intoto.json")
            .replacen("\"payload\": \"", "\"payload\": \"e30", 1);
    test.write("report.intoto.json", &edited);
    verify(&[]).failure(1).stderr_contains("does not verify");
}

/// Another format, signed: the rendered file and its signed report beside it, which names the
/// rendered file's digest; an edit of the rendered file after signing is named.
#[test]
fn a_rendered_report_is_signed_beside_it_and_an_edit_is_named() {
    let fixture = november();
    let test = &fixture.test;
    fixture
        .report(&[
            "--period",
            "2026-11",
            "--format",
            "invoice",
            "--key",
            "keys/farm.key",
            "-o",
            "invoice.txt",
        ])
        .success();
    assert!(test.path("invoice.txt.intoto.json").is_file());
    verify_report(test, "invoice.txt.intoto.json", &[]).success();
    // The rendered file edited after signing: named.
    let invoice = test.read("invoice.txt").replace("757.75", "157.75");
    test.write("invoice.txt", &invoice);
    let edited = verify_report(test, "invoice.txt.intoto.json", &[]).failure(1);
    assert!(
        edited
            .stdout()
            .contains("`invoice.txt` is not the rendered report that was signed"),
        "{}",
        edited.stdout()
    );
}

/// Every mistake in a rate card at its line and column.
#[test]
fn a_rate_cards_mistakes_are_shown_at_their_line() {
    let fixture = Fixture::new();
    fixture.test.write(
        "bad.toml",
        "[rate_card]\ncurrency = \"DOLLARS\"\n\n[[tiers]]\nname = \"basic\"\neffective_from = 2026-01-01\nbase_per_month = -5\ncpu_hour = 0.10\nmemory_gb_hour = 0\nnetwork_gb = 0\nstep = 0\n\n[tenants]\nacme = \"gold\"\n",
    );
    let output = fixture
        .test
        .command()
        .args([
            "usage",
            "report",
            "--rate-card",
            "bad.toml",
            "--public-key",
            "keys/farm.pub",
        ])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.failure(2);
    let stderr = run.stderr();
    for expected in [
        "bad.toml:2:12: error: unknown currency `DOLLARS`",
        "bad.toml:7:18: error: `base_per_month`: `-5` is negative",
        "bad.toml:4:1: error: tier `basic` has no `storage_gb_month`",
        "bad.toml:14:8: error: unknown tier `gold`",
    ] {
        assert!(stderr.contains(expected), "{expected} in\n{stderr}");
    }
}

/// The fixture's rate card holds to `gantry schema rate-card` (jsonschema, draft 2020-12, the
/// TOML read by Python's tomllib), and one with a negative price does not.
#[test]
fn the_rate_card_schema_accepts_the_fixture_and_refuses_a_negative_price() {
    let fixture = Fixture::new();
    let test = &fixture.test;
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/sbom/.venv/bin/python");
    assert!(
        python.exists(),
        "the rate card schema check needs jsonschema in the venv at {}: bash scripts/test.sh installs it",
        python.display()
    );
    test.write(
        "rate-card.schema.json",
        &test.run(["schema", "rate-card"]).success().stdout(),
    );
    test.write(
        "negative.toml",
        &test
            .read("rate-card.toml")
            .replacen("cpu_hour = 0.10", "cpu_hour = -0.10", 1),
    );
    let check = |card: &str| {
        std::process::Command::new(&python)
            .current_dir(test.root())
            .args([
                "-c",
                "import json, sys, tomllib, jsonschema\nschema = json.load(open('rate-card.schema.json'))\njsonschema.Draft202012Validator.check_schema(schema)\ncard = json.loads(json.dumps(tomllib.load(open(sys.argv[1], 'rb')), default=str))\njsonschema.validate(card, schema, cls=jsonschema.Draft202012Validator)",
                card,
            ])
            .output()
            .expect("python")
    };
    let valid = check("rate-card.toml");
    assert!(
        valid.status.success(),
        "{}",
        String::from_utf8_lossy(&valid.stderr)
    );
    assert!(!check("negative.toml").status.success());
}

/// Real runs, end to end: two runs of a pipeline for a tenant, one executing and one a cache
/// hit, are priced from the documents they signed (with the development key), and the cache
/// hit shows as saved.
#[test]
fn real_runs_are_priced_from_the_documents_they_signed() {
    let fixture = Fixture::new();
    let test = &fixture.test;
    test.write(
        "pipeline.toml",
        "[pipeline]\nname = \"app\"\nroot = \".\"\ntenant = \"acme\"\n\n[steps.build]\nrun = \"mkdir -p out && echo app > out/app\"\noutputs = [\"out/app\"]\n",
    );
    test.gantry_run(&[]).success();
    test.gantry_run(&["--builder-id", "https://ci.example.org/second"])
        .success();
    let month = &gantry::time::rfc3339(gantry::time::unix_now())[..7];
    let output = test
        .command()
        .args([
            "usage",
            "report",
            "--rate-card",
            "rate-card.toml",
            "--period",
            month,
            "--tenant",
            "acme",
        ])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.success();
    let report: Value = serde_json::from_str(&run.stdout()).expect("json");
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{report:#}");
    let count = |field: &str| {
        runs.iter()
            .map(|run| run[field].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    assert_eq!((count("executed"), count("cached")), (1, 1), "{report:#}");
    assert_eq!(report["saved"]["steps"], 1);
    let charges: Vec<&str> = (report["lines"].as_array().expect("lines").iter())
        .map(|line| line["charge"].as_str().unwrap_or_default())
        .collect();
    assert!(
        charges.contains(&"cpu") && charges.contains(&"steps") && charges.contains(&"base"),
        "{charges:?}"
    );
    // The executed step stored `out/app` ("app\n"): four bytes, billed as storage.
    let stored: Vec<&str> = (report["lines"].as_array().expect("lines").iter())
        .filter(|line| line["charge"] == "storage")
        .map(|line| line["measured"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(stored, ["4"], "{report:#}");
    // Signed with another key than the one given: refused, not counted.
    let output = test
        .command()
        .args([
            "usage",
            "report",
            "--rate-card",
            "rate-card.toml",
            "--period",
            month,
            "--public-key",
            "keys/farm.pub",
        ])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.success();
    let report: Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(report["runs"].as_array().expect("runs").len(), 0);
    assert_eq!(report["refused"].as_array().expect("refused").len(), 2);
}

/// A step that burns CPU (about 0.3 s, by its own clock) against `[budget] cpu_hours`.
fn budget_pipeline(budget: &str) -> String {
    format!(
        "[pipeline]\nname = \"app\"\nroot = \".\"\ntenant = \"acme\"\n\n[budget]\n{budget}\n\n[steps.burn]\ninputs = [\"touch.txt\"]\nrun = '''while :; do read -r _ _ _ _ _ _ _ _ _ _ _ _ _ u s _ < /proc/$$/stat; [ $((u + s)) -ge 30 ] && break; done; mkdir -p out && echo done > out/burn'''\noutputs = [\"out/burn\"]\n\n[steps.light]\nrun = \"mkdir -p out && echo light > out/light\"\noutputs = [\"out/light\"]\n"
    )
}

/// `[budget]`: within it the run passes; over it (CPU hours, or a cost priced with a rate
/// card) the run fails at its end naming the step that used most, keeps its documents, and
/// the run log says `over-budget`.
#[test]
fn a_run_over_its_budget_fails_at_the_end_naming_the_step_that_used_most() {
    let fixture = Fixture::new();
    let test = &fixture.test;
    test.write("touch.txt", "1\n");
    test.write("pipeline.toml", &budget_pipeline("cpu_hours = 1"));
    test.gantry_run(&[]).success();
    // 0.3 s of CPU is 0.0000833 hours: a budget of a millionth of an hour is exceeded.
    test.write("pipeline.toml", &budget_pipeline("cpu_hours = 0.000001"));
    test.write("touch.txt", "2\n");
    let output = test
        .command()
        .args(["run", "pipeline.toml"])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.failure(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("the run is over its budget: it used")
            && stderr.contains("more than the budget's 0.000001; the step that used most: `burn`"),
        "{stderr}"
    );
    let newest = std::fs::read_dir(test.path("attestations"))
        .expect("runs")
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.join("SHA256SUMS").is_file())
        .max()
        .expect("a run");
    assert!(
        newest.join("usage.intoto.json").is_file(),
        "the evidence is kept"
    );
    let log = test.run(["log", "show", "--json"]).success().stdout();
    assert!(log.contains("\"result\": \"over-budget\""), "{log}");
    // A cost: 0.3 s of CPU at 0.08 an hour rounds to 0.00, under any positive limit; one
    // executed step at professional's 0.0008 too. Under budget.
    test.write(
        "pipeline.toml",
        &budget_pipeline("cost = 0.01\nrate_card = \"rate-card.toml\""),
    );
    test.write("touch.txt", "3\n");
    test.gantry_run(&[]).success();
    // A rate card with a mistake fails the run before anything runs, at the card's line.
    test.write(
        "rate-card.toml",
        &test
            .read("rate-card.toml")
            .replacen("cpu_hour = 0.10", "cpu_hour = -0.10", 1),
    );
    let output = test
        .command()
        .args(["run", "pipeline.toml"])
        .output()
        .expect("gantry");
    crate::support::Run { output }
        .failure(1)
        .stderr_contains("rate-card.toml:12:12: error: `cpu_hour`: `-0.10` is negative");
}

/// Mistakes in `[budget]` at their line.
#[test]
fn budget_mistakes_are_shown_at_their_line() {
    let fixture = Fixture::new();
    let test = &fixture.test;
    test.write("touch.txt", "1\n");
    test.write(
        "pipeline.toml",
        &budget_pipeline("cpu_hours = -1\ncost = 5"),
    );
    let output = test
        .command()
        .args(["check", "pipeline.toml"])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.failure(1);
    let stderr = run.stderr();
    for expected in [
        "pipeline.toml:7:13: error: `cpu_hours` must be a number above zero",
        "pipeline.toml:8:8: error: a `cost` needs the `rate_card` that prices it",
    ] {
        assert!(stderr.contains(expected), "{expected} in\n{stderr}");
    }
    test.write(
        "pipeline.toml",
        &budget_pipeline("rate_card = \"../rates.toml\""),
    );
    let output = test
        .command()
        .args(["check", "pipeline.toml"])
        .output()
        .expect("gantry");
    let stderr = crate::support::Run { output }.failure(1).stderr();
    assert!(
        stderr.contains("a `rate_card` prices a `cost`, and there is none"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`rate_card` is a path inside the workspace"),
        "{stderr}"
    );
    // A card that has no tier for the run's tenant is refused before any step runs.
    let card = test
        .read("rate-card.toml")
        .replace("default_tier = \"basic\"\n", "");
    test.write("no-default.toml", &card);
    test.write(
        "pipeline.toml",
        &budget_pipeline("cost = 5\nrate_card = \"no-default.toml\""),
    );
    let refused = test.gantry_run(&["--tenant", "nobody"]).failure(2);
    assert!(
        refused.stderr().contains("the budget's rate card `no-default.toml` cannot price this run: tenant `nobody` is on no tier"),
        "{}",
        refused.stderr()
    );
    assert!(refused.statuses().is_empty(), "nothing ran");
}

/// The gauntlet's `usage` evidence: a gate judges a run's signed usage document.
#[test]
fn a_gate_judges_a_runs_usage_document() {
    let fixture = Fixture::new();
    let test = &fixture.test;
    test.write("touch.txt", "1\n");
    test.write("pipeline.toml", &budget_pipeline("cpu_hours = 1"));
    let run = test.gantry_run(&[]).success();
    std::fs::create_dir_all(test.path("evidence")).expect("mkdir");
    std::fs::copy(
        run.run_dir().join("usage.intoto.json"),
        test.path("evidence/usage.intoto.json"),
    )
    .expect("copy");
    let gate = |require: &str| {
        format!(
            "[pipeline]\nname = \"gates\"\nroot = \".\"\n\n[steps.gate-cost]\nkind = \"gate\"\nstage = \"09 cost\"\nevidence = {{ usage = \"evidence/usage.intoto.json\" }}\nrequire = {{ {require} }}\n"
        )
    };
    test.write(
        "gates.toml",
        &gate("cpu_hours_max = 1, executed_min = 2, cached = 0"),
    );
    let output = test
        .command()
        .args(["run", "gates.toml", "--json"])
        .output()
        .expect("gantry");
    crate::support::Run { output }.success();
    test.write("gates.toml", &gate("cpu_hours_max = 0.000001"));
    let output = test
        .command()
        .args(["run", "gates.toml", "--json"])
        .output()
        .expect("gantry");
    let failed = crate::support::Run { output }.failure(1);
    assert!(
        failed.stdout().contains("cpu_hours") || failed.stderr().contains("cpu_hours"),
        "{}{}",
        failed.stdout(),
        failed.stderr()
    );
}

/// The HTML page in headless Chromium: its screenshot (kept as
/// `target/tmp/usage-report.png`) shows the charts' bars and the table's header row, read
/// back from the PNG's pixels; the page holds no script and asks for nothing on the network.
#[test]
fn the_html_page_renders_its_charts_and_table_in_headless_chromium() {
    crate::support::require_tool(
        "chromium",
        "--version",
        "apt-get install chromium (scripts/test.sh installs it)",
    );
    let fixture = november();
    let test = &fixture.test;
    fixture
        .report(&[
            "--period",
            "2026-11",
            "--format",
            "html",
            "-o",
            "report.html",
        ])
        .success();
    let page = test.read("report.html");
    assert!(!page.contains("<script") && !page.contains("src=") && !page.contains("href="));
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("usage-report.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1000,1500",
        ])
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg(format!("file://{}", test.path("report.html").display()))
        .env("HOME", test.path("home"))
        .output()
        .expect("chromium");
    assert!(
        screenshot.is_file(),
        "no screenshot: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let counts = std::process::Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracles/png/colours.py"))
        .arg(&screenshot)
        .args(["3b7dd8", "e8eef7"])
        .output()
        .expect("python3");
    assert!(
        counts.status.success(),
        "{}",
        String::from_utf8_lossy(&counts.stderr)
    );
    let counts: Vec<u64> = String::from_utf8_lossy(&counts.stdout)
        .split_whitespace()
        .map(|count| count.parse().expect("count"))
        .collect();
    assert!(counts[0] > 2_000, "the charts' bars: {counts:?} pixels");
    assert!(
        counts[1] > 2_000,
        "the table's header row: {counts:?} pixels"
    );
}

/// Grouped by pipeline, two tenants on two tiers share the pipeline `app`: their lines are
/// told apart by tenant and tier, and a signed report of them verifies.
#[test]
fn a_report_grouped_by_pipeline_verifies_with_tenants_sharing_a_pipeline() {
    let fixture = november();
    fixture
        .report(&[
            "--period",
            "2026-11",
            "--group-by",
            "pipeline",
            "--key",
            "keys/farm.key",
            "-o",
            "report.intoto.json",
        ])
        .success();
    let output = fixture
        .test
        .command()
        .args([
            "usage",
            "verify",
            "report.intoto.json",
            "--public-key",
            "keys/farm.pub",
        ])
        .output()
        .expect("gantry");
    crate::support::Run { output }.success();
}

/// A tier that ends inside the period (a tenant still listed on it) charges its base fee for
/// the days it held, and fails nothing.
#[test]
fn a_tier_that_ends_inside_the_period_charges_the_days_it_held() {
    let fixture = november();
    let card = fixture.test.read("rate-card.toml").replace(
        "[tenants]\n",
        "[[tiers]]\nname = \"legacy\"\neffective_from = 2026-01-01\neffective_until = 2026-11-10\nbase_per_month = 30.00\ncpu_hour = 0.10\nmemory_gb_hour = 0.005\nnetwork_gb = 0.05\nstep = 0.001\nstorage_gb_month = 0.02\n\n[tenants]\noldco = \"legacy\"\n",
    );
    fixture.test.write("rate-card.toml", &card);
    let report: Value = serde_json::from_str(
        &fixture
            .report(&["--period", "2026-11", "--tenant", "oldco"])
            .success()
            .stdout(),
    )
    .expect("json");
    // Nine days of thirty at 30.00 a month.
    assert_eq!(report["total"], "9.00", "{report:#}");
}

/// `usage verify` re-prices as of the report's making: a run that started after it (within
/// the five minutes of clock skew a report allows) is newer than the report, not a difference;
/// a run that started before it and is missing from it is one.
#[test]
fn a_run_started_after_the_report_is_not_a_difference() {
    let fixture = Fixture::new();
    let now = gantry::time::unix_now();
    let at = |offset: i64| gantry::time::rfc3339(now + offset);
    let day = |offset: i64| gantry::time::rfc3339(now + offset)[..10].to_owned();
    let used = json!([executed(
        "build",
        &json!({"method": "wait4", "wallUs": 1_000_000, "cpuUserUs": 1_000_000})
    )]);
    fixture.run("20261207T000000Z-00000001", None, "app", &at(-3600), &used);
    let (since, until) = (day(-86_400), day(86_400));
    fixture
        .report(&[
            "--since",
            &since,
            "--until",
            &until,
            "--key",
            "keys/farm.key",
            "-o",
            "report.intoto.json",
        ])
        .success();
    let verify = || {
        let output = fixture
            .test
            .command()
            .args([
                "usage",
                "verify",
                "report.intoto.json",
                "--public-key",
                "keys/farm.pub",
                "--json",
            ])
            .output()
            .expect("gantry");
        crate::support::Run { output }
    };
    fixture.run("20261207T000000Z-00000002", None, "app", &at(120), &used);
    let same: Value = serde_json::from_str(&verify().success().stdout()).expect("json");
    assert_eq!(same["same"], true, "{same}");
    fixture.run("20261207T000000Z-00000003", None, "app", &at(-60), &used);
    let differs: Value = serde_json::from_str(&verify().failure(1).stdout()).expect("json");
    assert!(
        differs["differences"]
            .to_string()
            .contains("20261207T000000Z-00000003"),
        "{differs}"
    );
}
