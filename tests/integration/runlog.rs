//! The run log: every run appends a signed, hash-chained record; `gantry log verify` names
//! the first record that was edited, removed, reordered or cut off.

use std::fs;

use crate::support::{Run, Test};

fn three_runs() -> Test {
    let test = Test::new()
        .file("src/a.txt", "a\n")
        .pipeline("[steps.copy]\nrun = \"cp src/a.txt out/a.txt\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/a.txt\"]\n");
    for _ in 0..3 {
        test.gantry_run(&[]).success();
    }
    test
}

fn verify(test: &Test) -> Run {
    test.run(["log", "verify", "--json"])
}

fn lines(test: &Test) -> Vec<String> {
    test.read(".gantry/log")
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(test: &Test, lines: &[String]) {
    let mut text = lines.join("\n");
    text.push('\n');
    fs::write(test.path(".gantry/log"), text).expect("write log");
}

#[track_caller]
fn first_bad(test: &Test, record: u64, message: &str) {
    let run = verify(test).failure(1);
    let verdict: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["first_bad_record"], record, "{verdict}");
    let problem = verdict["problem"].as_str().expect("problem");
    assert!(problem.contains(message), "{problem}");
}

#[test]
fn every_run_appends_a_record_that_verifies() {
    let test = three_runs();
    let run = verify(&test).success();
    let verdict: serde_json::Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(verdict["valid"], true);
    assert_eq!(verdict["records"], 3);
    let shown = test.run(["log", "show", "--json"]).success();
    let records: Vec<serde_json::Value> = serde_json::from_str(&shown.stdout()).expect("json");
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["seq"], 1);
    assert_eq!(records[0]["result"], "success");
    assert_eq!(records[0]["steps"]["executed"], 1);
    assert_eq!(records[2]["steps"]["cached"], 1);
    // Each record names its run folder's SHA256SUMS and provenance by digest; a run that
    // changed nothing names the run whose provenance still holds.
    assert!(records[0].get("reused").is_none());
    assert_eq!(records[1]["reused"], records[0]["runId"]);
    assert_eq!(records[2]["reused"], records[0]["runId"]);
    assert!(records[2].get("usage").is_none(), "it ran nothing");
    let run_id = records[2]["reused"].as_str().expect("run id");
    let sums = fs::read(test.path(&format!("attestations/{run_id}/SHA256SUMS"))).expect("sums");
    let digest = crate::support::sha256_hex;
    assert_eq!(records[2]["attestations"], digest(&sums));
    let provenance = fs::read(test.path(&format!("attestations/{run_id}/provenance.intoto.json")))
        .expect("provenance");
    assert_eq!(records[2]["provenance"], digest(&provenance));
    // A failed run is recorded too.
    test.write(
        "pipeline.toml",
        "[pipeline]\nname = \"t\"\nroot = \".\"\n[steps.fail]\nrun = \"exit 1\"\n",
    );
    test.gantry_run(&[]).failure(1);
    let shown = test.run(["log", "show", "--json"]).success();
    let records: Vec<serde_json::Value> = serde_json::from_str(&shown.stdout()).expect("json");
    assert_eq!(records[3]["result"], "failed");
    assert!(records[3].get("provenance").is_none());
    verify(&test).success();
}

#[test]
fn an_edited_record_is_named() {
    let test = three_runs();
    let mut lines = lines(&test);
    let mut envelope: serde_json::Value = serde_json::from_str(&lines[1]).expect("json");
    let payload = envelope["payload"].as_str().expect("payload");
    let mut body: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::STANDARD, payload).expect("b64"),
    )
    .expect("record");
    body["result"] = "failed".into();
    envelope["payload"] = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        serde_json::to_vec(&body).expect("json"),
    )
    .into();
    lines[1] = serde_json::to_string(&envelope).expect("json");
    write_lines(&test, &lines);
    first_bad(&test, 2, "record 2 does not verify");
}

#[test]
fn a_removed_record_is_named() {
    let test = three_runs();
    let mut lines = lines(&test);
    lines.remove(1);
    write_lines(&test, &lines);
    first_bad(&test, 2, "record 2 says it is record 3");
}

#[test]
fn reordered_records_are_named() {
    let test = three_runs();
    let mut lines = lines(&test);
    lines.swap(0, 1);
    write_lines(&test, &lines);
    first_bad(&test, 1, "record 1 says it is record 2");
}

#[test]
fn records_cut_off_the_end_are_caught() {
    let test = three_runs();
    let mut lines = lines(&test);
    lines.pop();
    write_lines(&test, &lines);
    first_bad(&test, 3, "the head says it has 3");
    // Half a line at the end is named as truncated.
    let text = test.read(".gantry/log");
    fs::write(test.path(".gantry/log"), &text[..text.len() - 40]).expect("write");
    first_bad(&test, 2, "record 2 is truncated");
}

#[test]
fn a_log_signed_with_another_key_does_not_verify() {
    let test = three_runs();
    fs::create_dir_all(test.path("keys")).expect("mkdir");
    let generated = test
        .command()
        .env("COSIGN_PASSWORD", "")
        .args(["keys", "generate", "--output-dir", "keys"])
        .output()
        .expect("generate");
    assert!(generated.status.success());
    let run = test
        .command()
        .args(["log", "verify", "--public-key", "keys/cosign.pub"])
        .output()
        .expect("verify");
    let run = Run { output: run }.failure(1);
    assert!(
        run.stderr().contains("record 1 does not verify"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_record_a_crash_left_half_written_is_cut_off_by_the_next_run() {
    let test = three_runs();
    let mut text = test.read(".gantry/log");
    text.push_str("{\"payloadType\":\"application/vnd.gantry.run-log-rec");
    fs::write(test.path(".gantry/log"), text).expect("write");
    let run = test.gantry_run(&[]).success();
    assert!(run.stdout().contains("half-written"), "{}", run.stdout());
    let verdict: serde_json::Value =
        serde_json::from_str(&verify(&test).success().stdout()).expect("json");
    assert_eq!(verdict["records"], 4);
}

/// `log verify` in a subfolder of the workspace checks the workspace's log and attestations
/// (it used to find nothing there and pass).
#[test]
fn log_verify_from_a_subfolder_checks_the_workspace_s_log() {
    let test = three_runs();
    let init = std::process::Command::new("git")
        .current_dir(test.root())
        .args(["init", "-q"])
        .status()
        .expect("git");
    assert!(init.success());
    let from_src = || {
        let output = test
            .command()
            .current_dir(test.path("src"))
            .args(["log", "verify", "--json"])
            .output()
            .expect("gantry");
        Run { output }
    };
    let verdict: serde_json::Value =
        serde_json::from_str(&from_src().success().stdout()).expect("json");
    assert_eq!(verdict["records"], 3, "{verdict}");
    fs::remove_file(test.path(".gantry/log")).expect("remove the log");
    from_src().failure(1);
}

/// Runs signed by two keys (a key rotated mid-log) verify with both public keys given, and
/// with either alone do not.
#[test]
fn a_log_signed_by_two_keys_verifies_with_both() {
    let test = three_runs();
    fs::create_dir_all(test.path("keys")).expect("mkdir");
    let generated = test
        .command()
        .env("COSIGN_PASSWORD", "")
        .args(["keys", "generate", "--output-dir", "keys"])
        .output()
        .expect("generate");
    assert!(generated.status.success());
    test.write("src/a.txt", "b\n");
    test.command()
        .env("COSIGN_PASSWORD", "")
        .args(["run", "pipeline.toml", "--key", "keys/cosign.key"])
        .status()
        .expect("run");
    let development = test.run(["keys", "public"]).success().stdout();
    test.write("keys/development.pub", &development);
    let verify = |keys: &[&str]| {
        let mut command = test.command();
        command.args(["log", "verify", "--json"]);
        for key in keys {
            command.args(["--public-key", key]);
        }
        Run {
            output: command.output().expect("verify"),
        }
    };
    let both = verify(&["keys/development.pub", "keys/cosign.pub"]).success();
    assert!(both.stdout().contains("\"records\":4"), "{}", both.stdout());
    verify(&["keys/development.pub"]).failure(1);
    verify(&["keys/cosign.pub"]).failure(1);
}
