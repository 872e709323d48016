//! `kind = "gate"` steps on real reports: pytest's JUnit XML, coverage.py's LCOV and
//! Cobertura, Bandit's SARIF, all produced here by the tools themselves; each gate passing and
//! failing, its signed test-result attestation, and a failed gate blocking what needs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::attestations::statement;
use crate::support::Test;

fn venv(program: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracles/sbom/.venv/bin")
        .join(program);
    assert!(
        path.exists(),
        "the gate tests need {} (pytest, coverage, bandit): bash scripts/test.sh installs them",
        path.display()
    );
    path
}

fn tool(test: &Test, program: &str, args: &[&str]) {
    let output = Command::new(venv(program))
        .current_dir(test.root())
        .args(args)
        .output()
        .expect("run the tool");
    // pytest exits 1 when a test fails, which one here does on purpose.
    assert!(
        output.status.code().is_some_and(|code| code <= 1),
        "{program}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small Python project with three passing tests, one failing, one skipped, an untested
/// branch and a `shell=True` call for Bandit; its reports in `reports/`.
fn reports() -> Test {
    let test = Test::new()
        .file(
            "calc.py",
            "import subprocess\n\ndef add(a, b):\n    return a + b\n\ndef div(a, b):\n    if b == 0:\n        raise ZeroDivisionError('b')\n    return a / b\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n",
        )
        .file(
            "test_calc.py",
            "import pytest\nfrom calc import add, div\n\ndef test_add():\n    assert add(1, 2) == 3\n\ndef test_div():\n    assert div(4, 2) == 2\n\ndef test_more():\n    assert add(2, 2) == 4\n\ndef test_fails():\n    assert add(1, 1) == 3\n\n@pytest.mark.skip(reason='later')\ndef test_skipped():\n    pass\n",
        );
    std::fs::create_dir_all(test.path("reports")).expect("reports");
    tool(
        &test,
        "coverage",
        &[
            "run",
            "--branch",
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--junitxml=reports/junit.xml",
            "test_calc.py",
        ],
    );
    tool(&test, "coverage", &["lcov", "-o", "reports/lcov.info"]);
    tool(&test, "coverage", &["xml", "-o", "reports/cobertura.xml"]);
    tool(
        &test,
        "bandit",
        &["-q", "-f", "sarif", "-o", "reports/bandit.sarif", "calc.py"],
    );
    test
}

const PACKAGE: &str = "[steps.package]\nrun = \"mkdir -p out && echo release > out/pkg.tar\"\noutputs = [\"out/pkg.tar\"]\n\n";

fn gate(name: &str, evidence: &str, require: &str) -> String {
    format!(
        "[steps.{name}]\nkind = \"gate\"\nstage = \"qualification\"\nsubject = \"out/pkg.tar\"\nevidence = {{ {evidence} }}\nrequire = {{ {require} }}\n\n"
    )
}

/// The step that may run only on the gates' pass.
fn release(needs: &[&str]) -> String {
    format!(
        "[steps.release]\nrun = \"cp out/pkg.tar out/release.tar\"\ninputs = [\"out/pkg.tar\"]\noutputs = [\"out/release.tar\"]\nneeds = {needs:?}\n"
    )
}

/// The mutation check: every gate answers each perturbation of its real report as it must,
/// and the same seed gives the same report.
fn perturb_holds(test: &Test) {
    let perturb = |seed: &str| {
        test.run([
            "gauntlet",
            "perturb",
            "pipeline.toml",
            "--seed",
            seed,
            "--cases",
            "400",
            "--json",
        ])
    };
    let checked = perturb("7");
    assert_eq!(checked.code(), 0, "{}", checked.stdout());
    assert_eq!(checked.stdout(), perturb("7").stdout());
    assert_ne!(checked.stdout(), perturb("8").stdout());
    let report: serde_json::Value = serde_json::from_str(&checked.stdout()).expect("json");
    assert_eq!(report["cases"], 400);
    assert_eq!(report["holes"], serde_json::json!([]));
    for gate in ["tests", "lines", "cobertura", "security"] {
        let score = &report["gates"][gate];
        assert!(score["should_flip"].as_u64() > Some(0), "{gate}: {score}");
        assert_eq!(score["score"], 1.0, "{gate}: {score}");
    }
    assert!(report["gates"]["tests"]["caught_by"]["failure-injected"].as_u64() > Some(0));
    assert!(report["gates"]["security"]["caught_by"]["metric-noise"].as_u64() > Some(0));
}

#[test]
fn gates_judge_real_reports_and_sign_their_verdicts() {
    let test = reports();
    let pipeline = [
        PACKAGE.to_owned(),
        gate(
            "tests",
            "junit = \"reports/junit.xml\"",
            "failures = 1, tests_min = 5, pass_rate_min = 0.75",
        ),
        gate(
            "lines",
            "lcov = \"reports/lcov.info\"",
            "line_coverage_min = 0.8, branch_coverage_min = 0.5",
        ),
        gate(
            "cobertura",
            "cobertura = \"reports/cobertura.xml\"",
            "line_coverage_min = 0.8",
        ),
        gate(
            "security",
            "sarif = \"reports/bandit.sarif\"",
            "errors_max = 1, findings_max = 2",
        ),
        release(&["tests", "lines", "cobertura", "security"]),
    ]
    .concat();
    let test = test.pipeline(&pipeline);
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    let tests = statement(&crate::support::attested(&folder, "tests.gate.intoto.json"));
    assert_eq!(
        tests["predicateType"],
        "https://in-toto.io/attestation/test-result/v0.1"
    );
    assert_eq!(tests["subject"][0]["name"], "out/pkg.tar");
    assert_eq!(tests["predicate"]["result"], "PASSED");
    // pytest ran 5 tests: 3 passed, 1 failed, 1 skipped.
    assert_eq!(
        tests["predicate"]["passedTests"],
        serde_json::json!([
            "failures <= 1: 1",
            "tests >= 5: 5",
            "pass_rate >= 0.75: 0.75"
        ])
    );
    let evidence = &tests["predicate"]["configuration"][1];
    assert_eq!(evidence["name"], "reports/junit.xml");
    assert_eq!(evidence["annotations"]["stage"], "qualification");
    // The same bytes in the workspace and the run folder, listed in SHA256SUMS.
    assert_eq!(
        std::fs::read(test.path("out/gauntlet/tests.intoto.json")).expect("output"),
        std::fs::read(crate::support::attested(&folder, "tests.gate.intoto.json")).expect("placed")
    );
    let sums = std::fs::read_to_string(folder.join("SHA256SUMS")).expect("sums");
    for name in ["tests", "lines", "cobertura", "security"] {
        assert!(
            sums.contains(&format!("  {name}.gate.intoto.json")),
            "{sums}"
        );
    }
    let security = statement(&crate::support::attested(
        &folder,
        "security.gate.intoto.json",
    ));
    // Bandit: `shell=True` is high severity (error), `import subprocess` low (note).
    assert_eq!(
        security["predicate"]["passedTests"],
        serde_json::json!(["errors <= 1: 1", "findings <= 2: 2"])
    );
    // The gates' verdicts belong to the run: `gantry verify` accepts it.
    policy(
        &test,
        "steps = [\"package\", \"release\"]\nprovenance = true\n",
    );
    let (code, report) = verify_json(&test, &folder);
    assert_eq!(code, 0, "{report:#}");
    perturb_holds(&test);
    // Nothing changed: every gate is a cache hit.
    let again = test.gantry_run(&[]).success();
    assert!(
        again.statuses().values().all(|status| status == "cached"),
        "{:?}",
        again.statuses()
    );
}

/// A policy trusting the test's development key; `require` is appended.
fn policy(test: &Test, require: &str) {
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("dev.pub", &public);
    test.write(
        "policy.toml",
        &format!(
            "[policy]\nname = \"gates\"\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"*\"]\n[require]\nsources = [\"reports/*\"]\n{require}"
        ),
    );
}

fn verify_json(test: &Test, folder: &Path) -> (i32, serde_json::Value) {
    let run = test.run([
        "verify",
        "--policy",
        "policy.toml",
        "--attestations",
        folder.to_str().expect("utf8"),
        "--json",
        "out/release.tar",
    ]);
    let report = serde_json::from_str(&run.stdout()).expect("json report");
    (run.code(), report)
}

/// The `gates` check's findings, as (reason, message).
fn gate_findings(report: &serde_json::Value) -> Vec<(String, String)> {
    let check = (report["checks"].as_array().expect("checks").iter())
        .find(|check| check["check"] == "gates")
        .expect("a gates check");
    (check["failures"].as_array().expect("failures").iter())
        .map(|finding| {
            (
                finding["reason"].as_str().unwrap_or_default().to_owned(),
                finding["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[test]
fn verify_requires_passed_gates_under_the_approved_pipeline_and_catches_a_lowered_threshold() {
    let test = reports();
    let approved = [
        PACKAGE.to_owned(),
        gate(
            "tests",
            "junit = \"reports/junit.xml\"",
            "failures = 1, tests_min = 5",
        ),
        gate(
            "lines",
            "lcov = \"reports/lcov.info\"",
            "line_coverage_min = 0.8",
        ),
        release(&["tests", "lines"]),
    ]
    .concat();
    let test = test.pipeline(&approved);
    let first = test.gantry_run(&[]).success();
    // The reviewed pipeline, kept apart from the one a run may execute.
    test.write(
        "approved.toml",
        &std::fs::read_to_string(test.path("pipeline.toml")).expect("pipeline"),
    );
    policy(&test, "gates = [\"*\"]\npipeline = \"approved.toml\"\n");
    let (code, report) = verify_json(&test, &first.run_dir());
    assert_eq!(code, 0, "{report:#}");
    let check = (report["checks"].as_array().expect("checks").iter())
        .find(|check| check["check"] == "gates")
        .expect("gates");
    assert_eq!(check["required"], true);
    assert!(
        check["summary"]
            .as_str()
            .is_some_and(|summary| summary.starts_with("2 of 2 required gates passed")),
        "{check}"
    );

    // Someone lowers the coverage bar and runs again: the run is valid on its own terms, but
    // not under the approved pipeline.
    let lowered = std::fs::read_to_string(test.path("pipeline.toml"))
        .expect("pipeline")
        .replace("line_coverage_min = 0.8", "line_coverage_min = 0.5");
    test.write("pipeline.toml", &lowered);
    let second = test.gantry_run(&[]).success();
    let (code, report) = verify_json(&test, &second.run_dir());
    assert_eq!(code, 1, "{report:#}");
    let findings = gate_findings(&report);
    assert!(
        findings
            .iter()
            .any(|(reason, _)| reason == "pipeline-not-approved"),
        "{findings:?}"
    );
    assert!(
        findings
            .iter()
            .any(|(reason, message)| reason == "threshold-changed"
                && message.contains("`line_coverage >= 0.5` instead of `line_coverage >= 0.8`")),
        "{findings:?}"
    );
    // Only the lowered gate is at fault.
    assert!(
        !findings
            .iter()
            .any(|(_, message)| message.contains("gate `tests`")),
        "{findings:?}"
    );

    // A verdict spliced in from the other run does not count as this run's.
    // (In a run folder that holds its files itself: one stored by content cannot be
    // replaced without its digest giving it away, `hostile::records`.)
    let folder = first.run_dir();
    crate::support::flatten_run(&folder);
    std::fs::copy(
        crate::support::attested(&second.run_dir(), "lines.gate.intoto.json"),
        folder.join("lines.gate.intoto.json"),
    )
    .expect("splice");
    let (code, report) = verify_json(&test, &folder);
    assert_eq!(code, 1, "{report:#}");
    assert!(
        gate_findings(&report)
            .iter()
            .any(|(reason, message)| reason == "gate-missing"
                && message.contains("is not the verdict the link of gate `lines` lists")),
        "{report:#}"
    );

    // Without an approved pipeline, naming the gates still requires their signed pass.
    policy(&test, "gates = [\"tests\", \"lines\", \"smoke\"]\n");
    let (code, report) = verify_json(&test, &second.run_dir());
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(
        gate_findings(&report),
        vec![(
            "gate-missing".to_owned(),
            "no verdict of gate `smoke` in the run: its link lists none".to_owned()
        )]
    );
}

#[test]
fn a_failed_gate_fails_the_run_blocks_what_needs_it_and_signs_its_failure() {
    let test = reports();
    let pipeline = [
        PACKAGE.to_owned(),
        gate(
            "tests",
            "junit = \"reports/junit.xml\"",
            "failures = 0, tests_min = 1",
        ),
        gate(
            "lines",
            "lcov = \"reports/lcov.info\"",
            "line_coverage_min = 0.99",
        ),
        release(&["tests", "lines"]),
    ]
    .concat();
    let test = test.pipeline(&pipeline);
    let run = test.gantry_run(&["--keep-going"]).failure(1);
    let statuses = run.statuses();
    assert_eq!(statuses["tests"], "failed", "{statuses:?}");
    assert_eq!(statuses["lines"], "failed", "{statuses:?}");
    assert_ne!(
        statuses.get("release").map(String::as_str),
        Some("executed")
    );
    assert!(!test.path("out/release.tar").exists());
    assert!(
        run.stdout().contains("failures <= 0: 1"),
        "{}",
        run.stdout()
    );
    let folder = run.run_dir();
    let failed = statement(&crate::support::attested(&folder, "tests.gate.intoto.json"));
    assert_eq!(failed["predicate"]["result"], "FAILED");
    assert_eq!(
        failed["predicate"]["failedTests"],
        serde_json::json!(["failures <= 0: 1"])
    );
    assert!(
        failed["predicate"]["configuration"][1]["annotations"]["thresholds"][0]["passed"] == false
    );
    assert!(!test.path("out/gauntlet/tests.intoto.json").exists());
}

#[test]
fn gate_mistakes_are_reported_at_their_line() {
    let cases = [
        (
            "evidence = { junit = \"r.xml\" }\nrequire = { failure = 0 }",
            "unknown threshold `failure`",
        ),
        (
            "evidence = { lcov = \"r.info\" }\nrequire = { line_coverage_min = 95 }",
            "is a fraction from 0 to 1",
        ),
        ("evidence = { junit = \"r.xml\" }", "requires nothing"),
        (
            "evidence = { xunit = \"r.xml\" }\nrequire = { failures = 0 }",
            "unknown evidence `xunit`",
        ),
        (
            "evidence = { metrics = \"m.json\" }\nrequire = { latency = { max = 1 } }",
            "is not a JSON pointer",
        ),
        (
            "evidence = { junit = \"r.xml\", lcov = \"l.info\" }\nrequire = { failures = 0 }",
            "a gate judges one report",
        ),
        (
            "evidence = { junit = \"r.xml\" }\nrequire = { failures = \"none\" }",
            "a threshold is a number",
        ),
        (
            "evidence = { junit = \"r.xml\" }\nbaseline = \"main\"\nrequire = { failures = 0 }",
            "`baseline` goes with criterion evidence",
        ),
        (
            "evidence = { criterion = \"target/criterion\" }\nrequire = { regression_max = 5 }",
            "`regression_max` is a fraction",
        ),
        (
            "evidence = { criterion = \"target/criterion\" }\nbaseline = \"new\"\nrequire = { regression_max = 0.05 }",
            "`new` is not a baseline name",
        ),
        (
            "evidence = { junit = \"r.xml\" }\ninputs = [\"x\"]\nrequire = { failures = 0 }",
            "only a drill has `inputs`",
        ),
        (
            "evidence = { drill = \"true\" }\noutputs = [\"x\"]\nrequire = { seconds_max = 1 }",
            "a drill is judged by its time and exit code",
        ),
        (
            "evidence = { drill = \" \" }\nrequire = { seconds_max = 1 }",
            "a drill is a command",
        ),
    ];
    for (body, expected) in cases {
        let test = Test::new().pipeline(&format!("[steps.g]\nkind = \"gate\"\n{body}\n"));
        let run = test.run(["check", "pipeline.toml"]);
        assert_eq!(run.code(), 1, "{body}: {}", run.stderr());
        assert!(run.stderr().contains(expected), "{body}: {}", run.stderr());
        assert!(run.stderr().contains("pipeline.toml:"), "{}", run.stderr());
    }
}

/// Criterion's real output (tests/fixtures/criterion) under `criterion/` of the workspace.
fn with_criterion(mut test: Test) -> Test {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/criterion");
    for side in ["new", "main", "change"] {
        for bench in ["small", "large"] {
            let relative = format!("sum/{bench}/{side}/estimates.json");
            let text = std::fs::read_to_string(fixtures.join(&relative)).expect("fixture");
            test = test.file(&format!("criterion/{relative}"), &text);
        }
    }
    test
}

#[test]
fn a_criterion_gate_judges_the_regression_against_a_saved_baseline() {
    let test = with_criterion(Test::new()).pipeline(
        "[steps.speed]\nkind = \"gate\"\nstage = \"performance\"\nevidence = { criterion = \"criterion\" }\nbaseline = \"main\"\nrequire = { regression_max = 0.5, benchmarks_min = 2 }\n\n[steps.strict]\nkind = \"gate\"\nevidence = { criterion = \"criterion/sum/large\" }\nbaseline = \"main\"\nrequire = { regression_max = 0.05 }\n",
    );
    let run = test.gantry_run(&["--keep-going"]).failure(1);
    let statuses = run.statuses();
    assert_eq!(statuses["speed"], "executed", "{statuses:?}");
    assert_eq!(statuses["strict"], "failed", "{statuses:?}");
    // Criterion printed +41.400% for sum/large.
    assert!(
        run.stdout()
            .contains("gate failed on `criterion/sum/large (baseline main)`: regression <= 0.05: 0.414 (large +41.40%)"),
        "{}",
        run.stdout()
    );
    let speed = statement(&crate::support::attested(
        &run.run_dir(),
        "speed.gate.intoto.json",
    ));
    assert_eq!(
        speed["predicate"]["passedTests"],
        serde_json::json!(["regression <= 0.5: 0.4486", "benchmarks >= 2: 2"])
    );
    let report = &speed["predicate"]["configuration"][1];
    assert_eq!(report["name"], "criterion");
    assert_eq!(report["annotations"]["baseline"], "main");
    assert_eq!(report["annotations"]["benchmarks"][0]["name"], "sum/large");
    // The folder's digest is the SHA-256 of the listing it carries.
    let listing = report["annotations"]["listing"].as_str().expect("listing");
    assert_eq!(listing.lines().count(), 4, "new and main of two benchmarks");
    assert_eq!(
        report["digest"]["sha256"],
        crate::support::sha256_hex(listing.as_bytes())
    );
    // Benchmark times moved up and down: each gate answers as it must.
    let checked = test.run([
        "gauntlet",
        "perturb",
        "pipeline.toml",
        "--seed",
        "3",
        "--cases",
        "100",
    ]);
    assert_eq!(checked.code(), 0, "{}", checked.stdout());
    assert!(
        checked
            .stdout()
            .contains("PASSED: every gate answered every perturbation as it must"),
        "{}",
        checked.stdout()
    );
}

#[test]
fn a_drill_is_timed_against_its_budget_every_run() {
    let test = Test::new()
        .file("drills/restore.sh", "#!/bin/sh\ncat backup.txt > /dev/null && sleep 0.2\n")
        .file("backup.txt", "rows\n")
        .pipeline(
            "[steps.restore]\nkind = \"gate\"\nstage = \"resilience\"\nevidence = { drill = \"sh drills/restore.sh\" }\ninputs = [\"drills/restore.sh\", \"backup.txt\"]\nrequire = { seconds_max = 60 }\n\n[steps.rto]\nkind = \"gate\"\nevidence = { drill = \"sleep 0.5\" }\nrequire = { seconds_max = 0.1 }\n\n[steps.broken]\nkind = \"gate\"\nevidence = { drill = \"echo no backup >&2; exit 3\" }\nrequire = { seconds_max = 60 }\n",
        );
    let run = test.gantry_run(&["--keep-going"]).failure(1);
    let statuses = run.statuses();
    assert_eq!(statuses["restore"], "executed", "{statuses:?}");
    assert_eq!(statuses["rto"], "failed", "{statuses:?}");
    assert_eq!(statuses["broken"], "failed", "{statuses:?}");
    let stdout = run.stdout();
    assert!(
        stdout.contains("gate failed on `sleep 0.5`: seconds <= 0.1: 0.5"),
        "{stdout}"
    );
    assert!(
        stdout.contains("exit_code <= 0: 3 (stderr: no backup)"),
        "{stdout}"
    );
    let restore = statement(&crate::support::attested(
        &run.run_dir(),
        "restore.gate.intoto.json",
    ));
    let passed = restore["predicate"]["passedTests"]
        .as_array()
        .expect("passed");
    assert!(
        passed[0]
            .as_str()
            .is_some_and(|text| text.starts_with("seconds <= 60: 0.2")),
        "{passed:?}"
    );
    assert_eq!(passed[1], "exit_code <= 0: 0");
    let report = &restore["predicate"]["configuration"][1];
    assert_eq!(report["name"], "sh drills/restore.sh");
    assert_eq!(report["annotations"]["exitCode"], 0);
    // A drill measures now: it runs again, where a report's gate would be cached.
    let again = test.gantry_run(&["--keep-going"]).failure(1);
    assert_eq!(again.statuses()["restore"], "executed");

    // The gauntlet report of the run: by stage, as a table, JSON and one HTML page.
    let folder = run.run_dir();
    let folder_text = folder.to_str().expect("utf8");
    let table = test.run(["gauntlet", "report", folder_text, "--html", "gauntlet.html"]);
    assert_eq!(table.code(), 1, "a gate failed: {}", table.stdout());
    let text = table.stdout();
    for expected in [
        "gauntlet (0 of 2 passed)",
        "resilience (1 of 1 passed)",
        "  FAIL broken   drill echo no backup >&2; exit 3",
        "       FAIL exit_code <= 0  measured 3",
        "            stderr: no backup",
        "FAILED: 2 of 3 gates",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let json = test.run(["gauntlet", "report", folder_text, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&json.stdout()).expect("json");
    assert_eq!(report["gates"], 3);
    assert_eq!(report["failed"], 2);
    assert_eq!(report["stages"][1]["name"], "resilience");
    assert_eq!(
        report["stages"][1]["gates"][0]["thresholds"][1]["measured"],
        0.0
    );
    let html = std::fs::read_to_string(test.path("gauntlet.html")).expect("html");
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<a class=\"tile fail\" href=\"#gate-rto\">rto</a>"));
    // Escaped, and self-contained: nothing to fetch, nothing to run.
    assert!(html.contains("echo no backup &gt;&amp;2; exit 3"));
    for outside in ["<script", "src=", "http:", "https:", "@import"] {
        assert!(!html.contains(outside), "{outside}");
    }
    // Only the drill that passed left a verdict (its last measurement) to perturb.
    let checked = test.run(["gauntlet", "perturb", "pipeline.toml", "--cases", "60"]);
    assert_eq!(checked.code(), 0, "{}", checked.stdout());
    let text = checked.stdout();
    assert!(text.contains("  restore "), "{text}");
    assert!(
        text.contains("skipped rto: cannot read `out/gauntlet/rto.intoto.json`"),
        "{text}"
    );
    // A folder without verdicts is a failed report, not an empty pass.
    let empty = test.run(["gauntlet", "report", "drills"]);
    assert_eq!(empty.code(), 1);
    assert!(empty.stdout().contains("FAILED: no gate verdicts"));
}
