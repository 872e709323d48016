//! Property 7: limits. A memory bomb, a fork bomb, a full `/tmp` or an output past its budget
//! fails that step only, naming the limit; the step beside it finishes.

use super::{is_root, says};
use crate::support::Test;

/// A pipeline of `bomb` (with `limits`) and an honest step, run with `--keep-going`.
fn beside(bomb: &str, limits: &str) -> (Test, crate::support::Run) {
    let test = Test::new().pipeline(&format!(
        "[steps.bomb]\nrun = '''{bomb}'''\noutputs = [\"out/bomb\"]\nlimits = {limits}\ntimeout = \"20s\"\n\n[steps.honest]\nrun = \"sleep 0.2; echo ok > out/honest\"\noutputs = [\"out/honest\"]\n"
    ));
    let run = test.gantry_run(&["--keep-going"]).failure(1);
    assert_eq!(run.statuses()["bomb"], "failed");
    assert_eq!(
        test.read("out/honest"),
        "ok\n",
        "the step beside it finished"
    );
    (test, run)
}

#[test]
fn a_memory_bomb_fails_its_step_naming_the_limit() {
    let (_, run) = beside(
        "python3 -c 'chunks = []\nwhile True: chunks.append(bytearray(16 << 20))' && echo > out/bomb",
        "{ memory = \"128MiB\" }",
    );
    if is_root() {
        says(&run, "reached its memory limit of 128MiB (`limits.memory`)");
    }
}

#[test]
fn a_fork_bomb_fails_its_step_naming_the_limit() {
    let (_, run) = beside(
        "python3 -c '\nimport os, sys, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(3)\n        os._exit(0)\n' && echo > out/bomb",
        "{ processes = 32 }",
    );
    if is_root() {
        says(
            &run,
            "reached its limit of 32 processes (`limits.processes`)",
        );
    }
}

#[test]
fn a_shell_fork_bomb_is_contained() {
    let test = Test::new().pipeline(
        "[steps.bomb]\nrun = 'b() { b | b & }; b; sleep 1; echo > out/bomb'\noutputs = [\"out/bomb\"]\nlimits = { processes = 64 }\ntimeout = \"4s\"\n\n[steps.honest]\nrun = \"echo ok > out/honest\"\noutputs = [\"out/honest\"]\n",
    );
    test.gantry_run(&["--keep-going", "--jobs", "2"]);
    assert_eq!(test.read("out/honest"), "ok\n");
    {
        // The whole tree died with its step: no process of the bomb is left.
        let left = std::fs::read_dir("/proc")
            .expect("proc")
            .flatten()
            .filter(|entry| {
                std::fs::read(entry.path().join("cmdline"))
                    .is_ok_and(|command| command.windows(15).any(|part| part == b"b() { b | b & }"))
            })
            .count();
        assert_eq!(left, 0, "processes of the bomb outlived its step");
    }
}

/// Without cgroups (an unprivileged gantry), rlimits hold the same line.
#[test]
fn an_unprivileged_gantry_holds_a_fork_bomb_with_rlimits() {
    let test = Test::new().pipeline(
        "[steps.bomb]\nrun = '''python3 -c 'import os, time\nfor _ in range(200):\n    if os.fork() == 0:\n        time.sleep(2)\n        os._exit(0)' && echo > out/bomb'''\noutputs = [\"out/bomb\"]\nlimits = { processes = 32 }\n\n[steps.honest]\nrun = \"echo ok > out/honest\"\noutputs = [\"out/honest\"]\n",
    );
    let output = super::as_nobody(&test, &["run", "pipeline.toml", "--keep-going"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(!test.path("out/bomb").exists());
    assert_eq!(test.read("out/honest"), "ok\n");
}

#[test]
fn a_full_tmp_and_an_output_past_its_budget_fail_their_steps() {
    let (_, run) = beside(
        "head -c 40000000 /dev/zero > /tmp/fill && echo > out/bomb",
        "{ tmp = \"16MiB\" }",
    );
    says(&run, "exit code 1");
    let test = Test::new().pipeline(
        "[steps.big]\nrun = \"head -c 700000 /dev/zero > out/a; head -c 700000 /dev/zero > out/b\"\noutputs = [\"out/a\", \"out/b\"]\nlimits = { output = \"1MiB\" }\n",
    );
    says(
        &test.gantry_run(&[]).failure(1),
        "outputs add up to more than its limit of 1MiB (`limits.output`)",
    );
    let test = Test::new().pipeline(
        "[steps.huge]\nrun = \"head -c 2000000 /dev/zero > out/a\"\noutputs = [\"out/a\"]\nlimits = { output = \"1MiB\" }\n",
    );
    says(
        &test.gantry_run(&[]).failure(1),
        "a file reached the output limit of 1MiB, `limits.output`",
    );
}

#[test]
fn limits_mistakes_are_shown_at_their_line() {
    let test = Test::new().pipeline(
        "[defaults]\nlimits = { memory = \"lots\" }\n\n[steps.a]\nrun = \"true\"\nlimits = { processes = 0, tmp = \"1KiB\" }\n",
    );
    let run = test.run(["check", "pipeline.toml"]).failure(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("pipeline.toml:6:21: error: invalid `memory`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`processes` must be between 1 and 4194304"),
        "{stderr}"
    );
    assert!(stderr.contains("`tmp` must be at least 1MiB"), "{stderr}");
    let unknown = Test::new().pipeline("[steps.a]\nrun = \"true\"\nlimits = { disk = \"1GiB\" }\n");
    unknown
        .run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains("unknown key `disk`")
        .stderr_contains("the keys allowed here: processes, memory, tmp, output");
}

/// A step's link says what it was allowed and what held it to that.
#[test]
fn the_link_records_the_limits_and_what_enforced_them() {
    let test = Test::new().pipeline(
        "[steps.a]\nrun = \"echo > out/a\"\noutputs = [\"out/a\"]\nlimits = { memory = \"1GiB\" }\n",
    );
    let run = test.gantry_run(&[]).success();
    let envelope: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(crate::support::attested(&run.run_dir(), "a.intoto.json"))
            .expect("link"),
    )
    .expect("json");
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        envelope["payload"].as_str().expect("payload"),
    )
    .expect("base64");
    let statement: serde_json::Value = serde_json::from_slice(&payload).expect("statement");
    let limits = &statement["predicate"]["environment"]["sandbox"]["limits"];
    assert_eq!(limits["memory"], 1u64 << 30);
    assert_eq!(limits["processes"], 4096);
    let enforced = limits["enforcedBy"].as_str().expect("enforcedBy");
    if is_root() {
        assert!(enforced.starts_with("cgroup v"), "{enforced}");
    } else {
        assert_eq!(enforced, "rlimits");
    }
}

/// A step whose output differs everywhere (here on purpose: an archive of 120 files that each
/// print its home on every line) cannot make `gantry repro` write a report of many megabytes
/// (diffoscope alone writes a block for each member): the report stops at the default limit
/// of 1 MiB, and says so.
#[test]
fn a_huge_difference_makes_a_report_of_at_most_its_limit() {
    let test = Test::new().pipeline(
        "[steps.flood]\nrun = '''mkdir -p t && for i in $(seq 1 120); do seq 1 2000 | sed \"s|^|$HOME $i |\" > t/$i.txt; done && tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf out/flood.tar t'''\noutputs = [\"out/flood.tar\"]\n",
    );
    test.gantry_run(&[]).success();
    let run = test
        .command()
        .args([
            "repro",
            "pipeline.toml",
            "--vary",
            "home",
            "--explain-budget",
            "0s",
        ])
        .output()
        .expect("gantry repro");
    assert_eq!(run.status.code(), Some(1));
    let reports: Vec<std::path::PathBuf> = walkdir::WalkDir::new(test.path("attestations/repro"))
        .into_iter()
        .flatten()
        .filter(|entry| entry.path().ends_with("out/flood.tar.txt"))
        .map(walkdir::DirEntry::into_path)
        .collect();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let size = std::fs::metadata(&reports[0]).expect("report").len();
    assert!(
        size > 900_000 && size <= (1 << 20) + 512,
        "{size} bytes, for a difference of about 5 MB"
    );
    let report = std::fs::read_to_string(&reports[0]).expect("report");
    assert!(
        report
            .trim_end()
            .ends_with("`--diffoscope-limit none` writes all of it]"),
        "{:?}",
        report.lines().rev().take(3).collect::<Vec<_>>()
    );
}
