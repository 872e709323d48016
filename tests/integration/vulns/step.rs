//! `kind = "vulns"` in a pipeline: the scan as a step (its database an input, its statement
//! signed and in the run folder), its thresholds failing the run, and `gantry verify`'s
//! `[require] vulns` over it.

use std::path::Path;

use super::fixtures;
use crate::support::{Test, copy_tree};

/// A workspace with a built artifact, the lock with affected crates, the RustSec slice as
/// `advisories/` (plus, when `fresh`, an OSV record modified now, so the database is recent)
/// and the OpenVEX document.
fn workspace(vulns: &str, fresh: bool) -> Test {
    let test = Test::new()
        .file(
            "Cargo.lock",
            &std::fs::read_to_string(fixtures().join("affected.Cargo.lock")).expect("lock"),
        )
        .file(
            "vex/app.openvex.json",
            &std::fs::read_to_string(fixtures().join("app.openvex.json")).expect("vex"),
        )
        .pipeline(&format!(
            r#"
[steps.build]
run = "mkdir -p out && echo app > out/app"
outputs = ["out/app"]

[steps.sbom]
kind = "sbom"
from = "Cargo.lock"
format = "spdx"
subject = "out/app"
output = "out/app.spdx.json"

[steps.vulns]
kind = "vulns"
sbom = "out/app.spdx.json"
db = "advisories/"
vex = ["vex/app.openvex.json"]
{vulns}
"#
        ));
    copy_tree(&fixtures().join("rustsec"), &test.path("advisories"));
    if fresh {
        test.write("advisories/osv/FRESH-0001.json", &fresh_record());
    }
    test
}

/// An OSV record modified now, about a crate no lock here has.
fn fresh_record() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    record(
        "FRESH-0001",
        &gantry::time::rfc3339(i64::try_from(now).expect("time")),
    )
}

/// An OSV record `id` modified at `modified`, about a crate no lock here has.
fn record(id: &str, modified: &str) -> String {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": id,
        "modified": modified,
        "summary": "a record that makes the database recent",
        "affected": [{
            "package": {"ecosystem": "crates.io", "name": "no-such-crate-here"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}]}]
        }]
    })
    .to_string()
}

/// The policy: the development key for everything, every workspace file a source.
fn policy(test: &Test, vulns: &str) {
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("policy/dev.pub", &public);
    test.write(
        "policy/policy.toml",
        &format!(
            "[policy]\nname = \"scanned\"\n\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"*\"]\n\n[require]\nsources = [\"**\"]\n{vulns}\n"
        ),
    );
}

/// `gantry verify --json` of `out/app` with the run folder (and `more` folders): the report.
fn verify(test: &Test, run: &Path, more: &[&str]) -> serde_json::Value {
    let mut command = test.command();
    command
        .args(["verify", "--policy", "policy/policy.toml", "--json"])
        .arg("--attestations")
        .arg(run);
    for folder in more {
        command.args(["--attestations", folder]);
    }
    let output = command.arg("out/app").output().expect("verify");
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "{error}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// The `vulns` check of a report: (passed, reasons).
fn vulns_check(report: &serde_json::Value) -> (bool, Vec<String>) {
    let check = (report["checks"].as_array().expect("checks").iter())
        .find(|check| check["check"] == "vulns")
        .expect("a vulns check");
    let reasons = (check["failures"].as_array().expect("failures").iter())
        .map(|failure| {
            format!(
                "{}: {}",
                failure["reason"].as_str().unwrap_or_default(),
                failure["message"].as_str().unwrap_or_default()
            )
        })
        .collect();
    (check["passed"] == true, reasons)
}

fn payload(bytes: &[u8]) -> serde_json::Value {
    use base64::Engine as _;
    let envelope: serde_json::Value = serde_json::from_slice(bytes).expect("envelope");
    let body = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&body).expect("statement")
}

#[test]
fn a_vulns_step_signs_its_scan_of_the_artifact_and_verify_requires_it() {
    let test = workspace("require = { max_severity = \"critical\" }", true);
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    let kept = std::fs::read(crate::support::attested(&folder, "vulns.vulns.intoto.json"))
        .expect("in the run folder");
    assert_eq!(
        kept,
        std::fs::read(test.path("out/vulns/vulns.intoto.json")).expect("the output"),
        "the run folder holds the step's output"
    );
    let statement = payload(&kept);
    assert_eq!(
        statement["predicateType"],
        "https://in-toto.io/attestation/vulns/v0.2"
    );
    assert_eq!(statement["subject"][0]["name"], "out/app");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        crate::support::sha256_hex(b"app\n")
    );
    let db = &statement["predicate"]["scanner"]["db"];
    assert_eq!(db["uri"], "advisories");
    let ids: Vec<&str> = (statement["predicate"]["scanner"]["result"].as_array())
        .expect("results")
        .iter()
        .filter_map(|result| result["id"].as_str())
        .collect();
    assert!(ids.contains(&"RUSTSEC-2022-0013"), "{ids:?}");
    // The VEX says smallvec's insert_many is never called: no longer a finding.
    assert!(!ids.contains(&"RUSTSEC-2021-0003"), "{ids:?}");

    // The step's link names the database's files as materials.
    let link = payload(
        &std::fs::read(crate::support::attested(&folder, "vulns.intoto.json")).expect("link"),
    );
    let materials = link["predicate"]["materials"].to_string();
    assert!(materials.contains("advisories/crates/regex/RUSTSEC-2022-0013.md"));
    assert!(materials.contains("out/app.spdx.json"));

    policy(
        &test,
        "vulns = { max_severity = \"critical\", db_not_older_than = \"1d\" }",
    );
    let report = verify(&test, &folder, &[]);
    assert_eq!(vulns_check(&report), (true, Vec::new()), "{report}");
    assert_eq!(report["passed"], true, "{report}");

    // A stricter policy names each vulnerability above its ceiling.
    policy(&test, "vulns = { max_severity = \"medium\" }");
    let report = verify(&test, &folder, &[]);
    let (passed, reasons) = vulns_check(&report);
    assert!(!passed);
    assert!(
        reasons.iter().any(|reason| reason
            .starts_with("vulnerable: `out/app` is vulnerable to RUSTSEC-2022-0013 (high)")),
        "{reasons:?}"
    );

    // The database is an input: the same run is cached, a changed advisory scans again.
    let again = test.gantry_run(&[]).success();
    assert_eq!(again.statuses()["vulns"], "cached");
    let advisory = test.path("advisories/crates/regex/RUSTSEC-2022-0013.md");
    let mut text = std::fs::read_to_string(&advisory).expect("advisory");
    text.push('\n');
    std::fs::write(&advisory, text).expect("write");
    let changed = test.gantry_run(&[]).success();
    assert_eq!(changed.statuses()["vulns"], "executed");
    assert_eq!(changed.statuses()["sbom"], "cached");
}

#[test]
fn a_scan_above_its_thresholds_fails_the_run_and_keeps_its_statement() {
    // No thresholds: no known vulnerability passes.
    let test = workspace("", true);
    let run = test.gantry_run(&[]).failure(1);
    let failed = (run.events().into_iter())
        .find(|event| event["event"] == "step_finished" && event["step"] == "vulns")
        .expect("vulns finished");
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["category"], "step");
    assert!(
        failed["error"]
            .as_str()
            .is_some_and(|error| error.contains("known vulnerabilities, more than 0")),
        "{failed}"
    );
    let folder = run.run_dir();
    let statement = payload(
        &std::fs::read(crate::support::attested(&folder, "vulns.vulns.intoto.json")).expect("kept"),
    );
    assert_eq!(statement["subject"][0]["name"], "out/app");
    assert!(!test.path("out/vulns/vulns.intoto.json").exists());

    // Allowing every one of them, until a day to come, passes.
    let ids: Vec<String> = (statement["predicate"]["scanner"]["result"].as_array())
        .expect("results")
        .iter()
        .filter(|result| result["annotations"][0]["informational"].is_null())
        .map(|result| format!("\"{}@2999-12-31\"", result["id"].as_str().expect("id")))
        .collect();
    let allowed = workspace(&format!("allow = [{}]", ids.join(", ")), true);
    allowed.gantry_run(&[]).success();
    // An allowance that ended yesterday allows nothing.
    let expired: Vec<String> = ids
        .iter()
        .map(|id| id.replace("2999-12-31", "2020-01-01"))
        .collect();
    let ended = workspace(&format!("allow = [{}]", expired.join(", ")), true);
    ended.gantry_run(&[]).failure(1);
}

#[test]
fn verify_wants_a_recent_database_and_a_scan_of_each_artifact_and_takes_a_later_rescan() {
    // The fixture's newest advisory is months old.
    let test = workspace("require = { max_severity = \"critical\" }", false);
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    policy(
        &test,
        "vulns = { max_severity = \"critical\", db_not_older_than = \"7d\" }",
    );
    let (passed, reasons) = vulns_check(&verify(&test, &folder, &[]));
    assert!(!passed);
    assert!(
        reasons.len() == 1 && reasons[0].starts_with("database-stale: "),
        "{reasons:?}"
    );

    // A later scan against a fresh database, signed on its own, counts: the newest decides.
    test.write("advisories/osv/FRESH-0001.json", &fresh_record());
    test.run([
        "vulns",
        "scan",
        "out/app.spdx.json",
        "--db",
        "advisories",
        "--max-severity",
        "critical",
        "--attest",
        "rescans/app.vulns.intoto.json",
    ])
    .success();
    let report = verify(&test, &folder, &["rescans"]);
    assert_eq!(vulns_check(&report), (true, Vec::new()), "{report}");

    // A pipeline without a scan has none to show.
    let unscanned = Test::new().pipeline(
        "[steps.build]\nrun = \"mkdir -p out && echo app > out/app\"\noutputs = [\"out/app\"]\n",
    );
    let run = unscanned.gantry_run(&[]).success();
    policy(&unscanned, "vulns = { max_severity = \"high\" }");
    let (passed, reasons) = vulns_check(&verify(&unscanned, &run.run_dir(), &[]));
    assert!(!passed);
    assert!(reasons[0].starts_with("scan-missing: "), "{reasons:?}");
}

#[test]
fn a_vulns_steps_mistakes_are_shown_at_their_line() {
    let test = Test::new().pipeline(
        r#"
[steps.scan]
kind = "vulns"
db = "advisories/*"
require = { max_severity = "severe", frob = 1 }
allow = ["RUSTSEC-2020-0001@2020-13-01"]
network = true
"#,
    );
    let run = test.run(["check", "pipeline.toml"]).failure(1);
    let errors = run.stderr();
    for expected in [
        "pipeline.toml:6:8: error: vulns step `scan` needs `sbom`",
        "pipeline.toml:8:6: error: `db` names a folder, not a glob",
        "pipeline.toml:9:28: error: `max_severity` is a severity",
        "pipeline.toml:9:38: error: unknown threshold `frob`",
        "pipeline.toml:10:10: error: `RUSTSEC-2020-0001@2020-13-01`: `2020-13-01` is not a date",
        "pipeline.toml:11:11: error: `network` does not apply to vulns steps",
    ] {
        assert!(errors.contains(expected), "{expected}\n{errors}");
    }
    // Its statement cannot be written into what it reads.
    test.write(
        "pipeline.toml",
        "[pipeline]\nname = \"t\"\nroot = \".\"\n\n[steps.scan]\nkind = \"vulns\"\nsbom = \"out/app.spdx.json\"\ndb = \"db/\"\noutput = \"db/scan.intoto.json\"\n",
    );
    test.run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains(
            "pipeline.toml:8:6: error: `db` overlaps the vulns step's output `db/scan.intoto.json`",
        );
    // A policy's own mistakes, too.
    test.write(
        "policy.toml",
        "[policy]\nname = \"p\"\n[[keys]]\nid = \"k\"\npublic = \"k.pub\"\nsteps = [\"*\"]\n[require]\nvulns = { max_severity = \"worst\", db_not_older_than = \"a week\" }\n",
    );
    test.write("x", "an artifact");
    let errors = test
        .run([
            "verify",
            "--policy",
            "policy.toml",
            "--attestations",
            ".",
            "x",
        ])
        .failure(2)
        .stderr();
    assert!(
        errors.contains("policy.toml:8:26: error: `worst` is not a severity"),
        "{errors}"
    );
    assert!(
        errors.contains("policy.toml:8:55: error: `a week` is not a duration"),
        "{errors}"
    );
}

/// What an attacker does with scans handed to `gantry verify`: a clean scan signed by a key
/// the policy does not allow for scans, a statement whose payload was edited after signing, a
/// scan of other bytes. None of them makes the artifact pass.
#[test]
fn verify_takes_no_scan_it_cannot_trust() {
    let test = workspace("require = { max_severity = \"critical\" }", true);
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    // A policy that trusts the key for the run's steps but not for scans made on their own.
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("policy/dev.pub", &public);
    // A second key, without a password.
    let with_key = |args: &[&str]| -> String {
        let output = test
            .command()
            .env("COSIGN_PASSWORD", "")
            .args(args)
            .output()
            .expect("gantry");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    with_key(&[
        "keys",
        "generate",
        "--prefix",
        "other",
        "--output-dir",
        "keys",
    ]);
    let other = with_key(&["keys", "public", "--key", "keys/other.key"]);
    test.write("policy/other.pub", &other);
    test.write(
        "policy/policy.toml",
        "[policy]\nname = \"scanned\"\n\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"*\"]\n\n[[keys]]\nid = \"other\"\npublic = \"other.pub\"\nsteps = [\"build\"]\n\n[require]\nsources = [\"**\"]\nvulns = { max_severity = \"critical\" }\n",
    );
    // The run's own scan passes; hide it, and offer only the hostile ones.
    assert_eq!(
        vulns_check(&verify(&test, &folder, &[])),
        (true, Vec::new())
    );
    crate::support::flatten_run(&folder);
    let hidden = folder.join("vulns.vulns.intoto.json");
    let own = std::fs::read(&hidden).expect("the run's scan");
    std::fs::remove_file(&hidden).expect("hide it");

    // 1. A clean scan (an empty database) signed by a key allowed only for `build`.
    test.write("empty/osv/NONE-0001.json", &fresh_record());
    with_key(&[
        "vulns",
        "scan",
        "out/app.spdx.json",
        "--db",
        "empty",
        "--key",
        "keys/other.key",
        "--attest",
        "forged/app.vulns.intoto.json",
    ]);
    let (passed, reasons) = vulns_check(&verify(&test, &folder, &["forged"]));
    assert!(
        !passed && reasons[0].starts_with("scan-missing"),
        "{reasons:?}"
    );

    // 2. The run's dirty scan with its payload edited to list nothing, signature kept.
    let mut envelope: serde_json::Value = serde_json::from_slice(&own).expect("envelope");
    let mut statement = payload(&own);
    statement["predicate"]["scanner"]["result"] = serde_json::json!([]);
    {
        use base64::Engine as _;
        envelope["payload"] = base64::engine::general_purpose::STANDARD
            .encode(statement.to_string())
            .into();
    }
    test.write("edited/app.vulns.intoto.json", &envelope.to_string());
    let (passed, reasons) = vulns_check(&verify(&test, &folder, &["edited"]));
    assert!(
        !passed && reasons[0].starts_with("scan-missing"),
        "{reasons:?}"
    );

    // 3. A clean scan of other bytes: about another artifact.
    test.write("other.lock", "version = 3\n");
    test.write("other-app", "not the artifact\n");
    test.run([
        "sbom",
        "--from",
        "other.lock",
        "--subject",
        "other-app",
        "-o",
        "other.spdx.json",
    ])
    .success();
    test.run([
        "vulns",
        "scan",
        "other.spdx.json",
        "--db",
        "empty",
        "--attest",
        "elsewhere/other.vulns.intoto.json",
    ])
    .success();
    let (passed, reasons) = vulns_check(&verify(&test, &folder, &["elsewhere"]));
    assert!(
        !passed && reasons[0].starts_with("scan-missing"),
        "{reasons:?}"
    );
}

/// An old clean scan beside the run's newer one that found RUSTSEC-2022-0013 (high): with a
/// ceiling of medium, the newer database decides.
#[test]
fn an_older_clean_scan_does_not_hide_what_a_newer_one_found() {
    let test = workspace("require = { max_severity = \"critical\" }", true);
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    crate::support::flatten_run(&folder);
    policy(&test, "vulns = { max_severity = \"medium\" }");
    let stale = record("OLD-0001", "2020-01-01T00:00:00Z");
    test.write("old-db/osv/OLD-0001.json", &stale);
    test.run([
        "vulns",
        "scan",
        "out/app.spdx.json",
        "--db",
        "old-db",
        "--attest",
        "old/app.vulns.intoto.json",
    ])
    .success();
    let old = payload(&std::fs::read(test.path("old/app.vulns.intoto.json")).expect("old scan"));
    assert_eq!(
        old["predicate"]["scanner"]["db"]["lastUpdate"],
        "2020-01-01T00:00:00Z"
    );
    let (passed, reasons) = vulns_check(&verify(&test, &folder, &["old"]));
    assert!(!passed, "the older clean scan hid the newer finding");
    assert!(
        reasons
            .iter()
            .any(|reason| reason.contains("RUSTSEC-2022-0013")),
        "{reasons:?}"
    );
    // Alone, the old scan is valid and clean: it was the newer one that decided.
    std::fs::remove_file(folder.join("vulns.vulns.intoto.json")).expect("remove");
    assert_eq!(
        vulns_check(&verify(&test, &folder, &["old"])),
        (true, Vec::new())
    );
}
