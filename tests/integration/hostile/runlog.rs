//! Property 10: the run log loses nothing. A run appends only where the head says the log
//! ends; repair cuts only an unfinished fragment after the record the head names; a deleted
//! log does not verify as empty while run folders with provenances exist.

use crate::support::Test;

fn runs(count: usize) -> Test {
    let test = Test::new()
        .file("src/a.txt", "a\n")
        .pipeline("[steps.copy]\nrun = \"cp src/a.txt out/a.txt\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/a.txt\"]\n");
    for _ in 0..count {
        test.gantry_run(&[]).success();
    }
    test
}

fn verdict(test: &Test) -> serde_json::Value {
    let run = test.run(["log", "verify", "--json"]);
    serde_json::from_str(&run.stdout()).expect("json")
}

#[test]
fn a_run_after_records_were_cut_does_not_repair_the_log() {
    let test = runs(3);
    let text = test.read(".gantry/log");
    let first = text.lines().next().expect("a record");
    std::fs::write(test.path(".gantry/log"), format!("{first}\n")).expect("cut");
    let head = std::fs::read(test.path(".gantry/log.head")).expect("head");
    let run = test.gantry_run(&[]);
    assert_ne!(run.code(), 0, "a run signed over the cut");
    assert!(
        run.stderr().contains("does not end where its head says"),
        "{}",
        run.stderr()
    );
    assert_eq!(
        test.read(".gantry/log"),
        format!("{first}\n"),
        "the log is left as found"
    );
    assert_eq!(
        std::fs::read(test.path(".gantry/log.head")).expect("head"),
        head
    );
    let verdict = verdict(&test);
    assert_eq!(verdict["valid"], false);
    assert!(
        verdict["problem"]
            .as_str()
            .expect("problem")
            .contains("the head says it has 3")
    );
}

#[test]
fn a_cut_in_the_middle_of_a_named_record_is_not_taken_for_a_crash() {
    let test = runs(2);
    let text = test.read(".gantry/log");
    std::fs::write(test.path(".gantry/log"), &text[..text.len() - 30]).expect("cut");
    let run = test.gantry_run(&[]);
    assert_ne!(run.code(), 0, "{}", run.stderr());
    assert_eq!(
        test.read(".gantry/log"),
        text[..text.len() - 30],
        "nothing was cut or added"
    );
}

#[test]
fn a_deleted_log_and_head_do_not_verify_as_empty() {
    let test = runs(2);
    std::fs::remove_file(test.path(".gantry/log")).expect("rm log");
    std::fs::remove_file(test.path(".gantry/log.head")).expect("rm head");
    let verdict = verdict(&test);
    assert_eq!(verdict["valid"], false, "{verdict}");
    assert!(
        verdict["problem"]
            .as_str()
            .expect("problem")
            .contains("the log has no record of it"),
        "{verdict}"
    );
    // A log that is missing while its head exists stops the next run from starting afresh.
    let test = runs(1);
    std::fs::remove_file(test.path(".gantry/log")).expect("rm log");
    let run = test.gantry_run(&[]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr()
            .contains("missing or empty, but its head names 1"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_deleted_head_stops_appending() {
    let test = runs(2);
    std::fs::remove_file(test.path(".gantry/log.head")).expect("rm head");
    let before = test.read(".gantry/log");
    let run = test.gantry_run(&[]);
    assert_ne!(run.code(), 0);
    assert!(
        run.stderr().contains("its head file is missing"),
        "{}",
        run.stderr()
    );
    assert_eq!(test.read(".gantry/log"), before);
}
