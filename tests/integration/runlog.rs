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
    // Each record names its run folder's SHA256SUMS and provenance by digest.
    let run_id = records[2]["runId"].as_str().expect("run id");
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
