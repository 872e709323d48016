//! Scheduling, failure reporting, retries, timeouts, interruption and crash recovery.

use std::fmt::Write as _;
use std::process::Stdio;
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::support::Test;

#[test]
fn json_events_have_the_documented_shape() {
    let test = Test::new().pipeline("[steps.a]\nrun = \"echo a > out/a\"\noutputs = [\"out/a\"]\n[steps.b]\nrun = \"cat out/a > out/b\"\ninputs = [\"out/a\"]\noutputs = [\"out/b\"]\n");
    let run = test.gantry_run(&[]).success();
    let events = run.events();
    let finished: Vec<_> = events
        .iter()
        .filter(|event| event["event"] == "step_finished")
        .collect();
    assert_eq!(finished.len(), 2);
    assert_eq!(finished[0]["step"], "a", "dependencies finish first");
    for event in &finished {
        assert_eq!(event["status"], "executed");
        assert!(event["duration_ms"].is_u64());
    }
    let last = events.last().expect("events");
    assert_eq!(last["event"], "run_finished");
    for field in ["run_id", "executed", "cached", "failed", "attestations"] {
        assert!(!last[field].is_null(), "run_finished lacks {field}");
    }
    assert_eq!(
        (
            last["executed"].as_u64(),
            last["cached"].as_u64(),
            last["failed"].as_u64()
        ),
        (Some(2), Some(0), Some(0))
    );
}

#[test]
fn a_failing_step_shows_command_exit_code_and_stderr() {
    let test = Test::new().pipeline(
        "[steps.broken]\nrun = \"echo first line >&2; echo 'the real reason' >&2; exit 3\"\n",
    );
    let run = test.run(["run", "pipeline.toml"]).failure(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("error: step `broken` failed: exit code 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "command: /bin/sh -c 'echo first line >&2; echo '\\''the real reason'\\'' >&2; exit 3'"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("    the real reason"), "{stderr}");
}

#[test]
fn a_failed_steps_json_says_whose_failure_it_is() {
    let test = Test::new().file("report.xml", "not xml at all").pipeline(
        "[steps.broken]\nrun = \"exit 3\"\n\n[steps.tests]\nkind = \"gate\"\nevidence = { junit = \"report.xml\" }\nrequire = { failures = 0 }\n\n[steps.gate]\nkind = \"gate\"\nevidence = { drill = \"true\" }\nrequire = { seconds_max = 0.000001 }\n",
    );
    let run = test.gantry_run(&["--keep-going"]).failure(1);
    let categories: std::collections::BTreeMap<String, String> = (run.events().iter())
        .filter(|event| event["event"] == "step_finished")
        .map(|event| {
            (
                event["step"].as_str().unwrap_or("").to_owned(),
                event["category"].as_str().unwrap_or("(none)").to_owned(),
            )
        })
        .collect();
    // A command that exits non-zero and a threshold that does not hold: the step said no.
    assert_eq!(categories["broken"], "step", "{categories:?}");
    assert_eq!(categories["gate"], "step", "{categories:?}");
    // Evidence that is not what the gate reads: what it was given is wrong.
    assert_eq!(categories["tests"], "input", "{categories:?}");
}

const DIAMOND: &str = "[steps.bad]\nrun = \"exit 1\"\noutputs = [\"out/bad\"]\n[steps.after]\nrun = \"true\"\ninputs = [\"out/bad\"]\n[steps.slow]\nrun = \"sleep 0.3; echo ok > out/slow\"\noutputs = [\"out/slow\"]\n[steps.later]\nrun = \"echo ok > out/later\"\ninputs = [\"out/slow\"]\noutputs = [\"out/later\"]\n";

#[test]
fn fail_fast_starts_nothing_new() {
    let test = Test::new().pipeline(DIAMOND);
    let run = test.gantry_run(&["--jobs", "2"]).failure(1);
    let statuses = run.statuses();
    assert_eq!(statuses["bad"], "failed");
    assert_eq!(statuses["after"], "skipped");
    assert_eq!(
        statuses["slow"], "executed",
        "a running step is allowed to finish"
    );
    assert_eq!(statuses["later"], "skipped");
}

#[test]
fn keep_going_runs_everything_independent() {
    let test = Test::new().pipeline(DIAMOND);
    let run = test.gantry_run(&["--jobs", "2", "--keep-going"]).failure(1);
    let statuses = run.statuses();
    assert_eq!(
        (statuses["bad"].as_str(), statuses["after"].as_str()),
        ("failed", "skipped")
    );
    assert_eq!(
        (statuses["slow"].as_str(), statuses["later"].as_str()),
        ("executed", "executed")
    );
    assert_eq!(run.finished()["failed"], 1);
}

#[test]
fn retries_with_backoff_then_reports_attempts() {
    let test = Test::new().pipeline(
        "[steps.flaky]\nrun = \"exit 7\"\nretry = { attempts = 3, backoff = \"10ms\" }\n",
    );
    let run = test.gantry_run(&[]).failure(1);
    let warnings = run
        .events()
        .into_iter()
        .filter(|event| event["event"] == "warning")
        .count();
    assert_eq!(warnings, 2);
    let finished = run
        .events()
        .into_iter()
        .find(|event| event["event"] == "step_finished")
        .expect("finished");
    assert_eq!(finished["attempts"], 3);
    assert_eq!(finished["exit_code"], 7);
}

/// Processes whose command line contains `marker`, outside this test.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("proc").flatten() {
        if let Ok(command) = std::fs::read(entry.path().join("cmdline")) {
            let command = String::from_utf8_lossy(&command).replace('\0', " ");
            if command.contains(marker) && !command.contains("gantry-test-") {
                found.push(command);
            }
        }
    }
    found
}

#[test]
fn a_timeout_kills_the_whole_process_tree() {
    let test = Test::new()
        .pipeline("[steps.hang]\nrun = \"sleep 41.5 & sleep 41.5; wait\"\ntimeout = \"300ms\"\n");
    let run = test.run(["run", "pipeline.toml"]).failure(1);
    run.stderr_contains("error: step `hang` failed: timed out after 300ms");
    assert!(
        processes_with("sleep 41.5").is_empty(),
        "left behind: {:?}",
        processes_with("sleep 41.5")
    );
}

/// Starts a run whose step sleeps, sends `signal` once the sleep runs, returns the output.
fn interrupted_run(signal: i32, marker: &str) -> (Test, std::process::Output) {
    let test = Test::new().pipeline(&format!(
        "[steps.long]\nrun = \"echo partial > out/long; sleep {marker}; echo done >> out/long\"\noutputs = [\"out/long\"]\n"
    ));
    let child = test
        .command()
        .args(["run", "pipeline.toml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    wait_for(|| !processes_with(&format!("sleep {marker}")).is_empty());
    // SAFETY: signalling our own child.
    unsafe { libc::kill(i32::try_from(child.id()).expect("pid"), signal) };
    let output = child.wait_with_output().expect("wait");
    (test, output)
}

#[test]
fn interrupt_stops_running_steps_and_keeps_no_partial_output() {
    let (test, output) = interrupted_run(libc::SIGINT, "42.5");
    assert_eq!(output.status.code(), Some(130));
    assert!(
        !test.path("out/long").exists(),
        "no partial output in the workspace"
    );
    assert!(processes_with("sleep 42.5").is_empty());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("\"cancelled\":true"), "{stdout}");
}

#[test]
fn sigterm_stops_the_run_like_an_interrupt() {
    let (test, output) = interrupted_run(libc::SIGTERM, "44.5");
    assert_eq!(output.status.code(), Some(143));
    assert!(!test.path("out/long").exists());
    assert!(processes_with("sleep 44.5").is_empty());
}

#[test]
fn kill_9_then_rerun_completes_with_correct_outputs() {
    let mut toml = String::new();
    for index in 0..12 {
        let _ = writeln!(
            toml,
            "[steps.s{index}]\nrun = \"sleep 0.0{index}; echo {index} > out/s{index}\"\noutputs = [\"out/s{index}\"]"
        );
    }
    toml.push_str(
        "[steps.slow]\nrun = \"sleep 43.5; echo slow > out/slow\"\noutputs = [\"out/slow\"]\n",
    );
    let test = Test::new().pipeline(&toml);
    for delay in [50, 150, 300] {
        let mut child = test
            .command()
            .args(["run", "pipeline.toml", "--json", "--jobs", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        sleep(Duration::from_millis(delay));
        child.kill().expect("kill -9");
        child.wait().expect("wait");
        wait_for(|| processes_with("sleep 43.5").is_empty());
    }
    let cleaned = test.path("pipeline.toml");
    let toml = std::fs::read_to_string(&cleaned)
        .expect("read")
        .replace("sleep 43.5; ", "");
    std::fs::write(&cleaned, toml).expect("write");
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["failed"], 0);
    for index in 0..12 {
        assert_eq!(test.read(&format!("out/s{index}")), format!("{index}\n"));
    }
    assert_eq!(test.read("out/slow"), "slow\n");
    // Every cache entry is sound: a run after deleting outputs restores them all from the cache.
    std::fs::remove_dir_all(test.path("out")).expect("remove");
    let again = test.gantry_run(&[]).success();
    assert_eq!(again.finished()["executed"], 0);
    assert_eq!(test.read("out/s11"), "11\n");
}

fn wait_for(condition: impl Fn() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "condition not reached in 20 s"
        );
        sleep(Duration::from_millis(10));
    }
}

#[test]
fn steps_run_in_parallel_up_to_jobs() {
    // Two steps that each wait for the other's marker in /tmp would deadlock if run one at a
    // time; sandboxes have private /tmp, so instead each records the moment it ran.
    let test = Test::new().pipeline("[steps.a]\nrun = \"sleep 0.4; echo a > out/a\"\noutputs = [\"out/a\"]\n[steps.b]\nrun = \"sleep 0.4; echo b > out/b\"\noutputs = [\"out/b\"]\n");
    let run = test.gantry_run(&["--jobs", "2"]).success();
    let started = run
        .events()
        .iter()
        .position(|event| event["event"] == "step_started" && event["step"] == "b")
        .expect("b started");
    let first_finish = run
        .events()
        .iter()
        .position(|event| event["event"] == "step_finished")
        .expect("finish");
    assert!(started < first_finish, "b started before a finished");
}

#[test]
fn a_terminal_gets_a_live_status_line() {
    let test = Test::new().pipeline("[steps.slow]\nrun = \"sleep 0.5; echo > out/slow\"\noutputs = [\"out/slow\"]\n[steps.fast]\nrun = \"echo > out/fast\"\noutputs = [\"out/fast\"]\n");
    // `script` (util-linux) runs gantry on a pseudo-terminal and copies what it draws.
    let command = format!("{} run pipeline.toml --jobs 1", crate::support::GANTRY);
    let output = test
        .command_for("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .output()
        .expect("script (util-linux) is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(
        screen.contains("\r\u{1b}[K"),
        "the status line is redrawn in place: {screen:?}"
    );
    assert!(
        screen.contains("[0/2]") && screen.contains("running: slow ("),
        "{screen:?}"
    );
    assert!(
        !screen.contains("running: fast (0.0s), slow"),
        "with --jobs 1 one step runs at a time: {screen:?}"
    );
    assert!(screen.contains("gantry: 2 executed"), "{screen:?}");
}

/// `gantry logs`: what a step printed, from the newest run (or `--run`), each stream where it
/// came from; a cached step's is its earlier run's.
#[test]
fn logs_print_what_a_step_wrote() {
    let test = crate::support::Test::new().pipeline(
        "[steps.talk]\nrun = \"echo to-stdout; echo to-stderr >&2; echo x > out.txt\"\noutputs = [\"out.txt\"]\n",
    );
    test.gantry_run(&[]).success();
    let logs = test.run(["logs", "pipeline.toml", "talk"]).success();
    assert_eq!(logs.stdout(), "to-stdout\n");
    assert_eq!(logs.stderr(), "to-stderr\n");
    test.gantry_run(&[]).success();
    let only = test
        .run(["logs", "pipeline.toml", "talk", "--only", "stderr"])
        .success();
    assert_eq!(only.stdout(), "");
    assert_eq!(only.stderr(), "to-stderr\n");
    test.run(["logs", "pipeline.toml", "nope"])
        .failure(2)
        .stderr_contains("has no step `nope`");
}
