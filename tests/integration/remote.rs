//! Remote execution (REAPI v2): the pipeline's `[executor]`, a step's `executor`, `--remote`,
//! and what happens when the remote cannot be reached.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use crate::attestations::statement;
use crate::grid::Grid;
use crate::support::Test;

fn check_fails(toml: &str) -> String {
    let test = Test::new().pipeline(toml);
    test.run(["check", "pipeline.toml"]).failure(1).stderr()
}

#[test]
fn executor_settings_are_checked_at_their_line() {
    let text = check_fails("[executor]\ninstance = \"main\"\n\n[steps.a]\nrun = \"true\"\n");
    assert!(text.contains("`[executor]` names no `remote`"), "{text}");
    let text = check_fails(
        "[executor]\nremote = \"grpcs://example.org:443\"\n\n[steps.a]\nrun = \"true\"\n",
    );
    assert!(text.contains("not a remote's address"), "{text}");
    assert!(text.contains("pipeline.toml:6:10"), "{text}");
    let text = check_fails("[steps.a]\nrun = \"true\"\nexecutor = \"elsewhere\"\n");
    assert!(text.contains("unknown executor `elsewhere`"), "{text}");
    let text = check_fails(
        "[steps.a]\nrun = \"true\"\noutputs = [\"out/a\"]\n\n[steps.s]\nkind = \"sign\"\ninputs = [\"out/a\"]\nkey = \"k.pem\"\nexecutor = \"remote\"\n",
    );
    assert!(text.contains("executor"), "{text}");
}

#[test]
fn an_unreachable_remote_is_a_clear_error_and_local_steps_still_run() {
    let test = Test::new().pipeline(
        "[executor]\nremote = \"grpc://127.0.0.1:1\"\n\n[steps.here]\nrun = \"echo here > out/here\"\noutputs = [\"out/here\"]\nexecutor = \"local\"\n\n[steps.there]\nrun = \"echo there > out/there\"\noutputs = [\"out/there\"]\n",
    );
    let run = test.gantry_run(&[]).failure(1);
    let text = run.stdout();
    assert!(text.contains("the remote is unreachable"), "{text}");
    assert_eq!(test.read("out/here"), "here\n");
    assert!(!test.path("out/there").exists());

    // A networked step is refused by the remote executor, before any connection.
    let test = Test::new().pipeline(
        "[executor]\nremote = \"grpc://127.0.0.1:1\"\n\n[steps.fetch]\nrun = \"true\"\nnetwork = true\n",
    );
    let text = test.gantry_run(&[]).failure(1).stdout();
    assert!(
        text.contains("`network = true` cannot run remotely"),
        "{text}"
    );

    // A step that asks for the remote when the run has none.
    let test = Test::new().pipeline("[steps.there]\nrun = \"true\"\nexecutor = \"remote\"\n");
    let text = test.gantry_run(&[]).failure(1).stdout();
    assert!(text.contains("but the run has none"), "{text}");

    // --remote is checked as a usage error.
    test.gantry_run(&["--remote", "grpcs://example.org:443"])
        .failure(2)
        .stderr_contains("not a remote's address");
}

#[test]
fn a_worker_whose_server_is_unreachable_says_so_and_keeps_trying() {
    let test = Test::new();
    test.run(["worker", "--server", "grpcs://example.org:443"])
        .failure(2)
        .stderr_contains("a server is written grpc://HOST:PORT");
    let mut worker = test
        .command()
        .args([
            "worker",
            "--json",
            "--server",
            "grpc://127.0.0.1:1",
            "--dir",
            "w",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gantry worker");
    let stdout = worker.stdout.take().expect("stdout");
    let first = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .next()
        .expect("an event")
        .expect("a line");
    let _ = worker.kill();
    let _ = worker.wait();
    let event: serde_json::Value = serde_json::from_str(&first).expect("JSON");
    assert_eq!(event["event"], "retrying", "{event}");
    assert!(
        event["error"]
            .as_str()
            .is_some_and(|error| error.contains("the remote is unreachable")),
        "{event}"
    );
}

/// Steps that make files, an executable, a folder, and read each other's outputs; four of
/// them can run at once, so that both workers get work.
const SPREAD: &str = r#"[steps.gen]
run = "printf 'one\n' > out/gen.txt; printf '#!/bin/sh\necho tool\n' > out/tool; chmod 755 out/tool; sleep 1"
outputs = ["out/gen.txt", "out/tool"]

[steps.tree]
run = "mkdir -p out/tree/deep; cat src/in.txt > out/tree/deep/copy; id -u > out/tree/uid; echo $HOME $PWD $(hostname) > out/tree/env; sleep 1"
inputs = ["src/in.txt"]
outputs = ["out/tree/"]

[steps.use]
run = "out/tool > out/use.txt; cat out/gen.txt out/tree/deep/copy >> out/use.txt; find out | sort >> out/use.txt"
inputs = ["out/tool", "out/gen.txt", "out/tree/"]
outputs = ["out/use.txt"]

[steps.p1]
run = "sleep 1; echo p1 > out/p1"
outputs = ["out/p1"]

[steps.p2]
run = "sleep 1; echo p2 > out/p2"
outputs = ["out/p2"]
"#;

const SPREAD_OUTPUTS: [&str; 8] = [
    "out/gen.txt",
    "out/tool",
    "out/tree/deep/copy",
    "out/tree/uid",
    "out/tree/env",
    "out/use.txt",
    "out/p1",
    "out/p2",
];

/// step → (subjects, the link's `environment.sandbox`).
fn links(run_dir: &std::path::Path) -> BTreeMap<String, (serde_json::Value, serde_json::Value)> {
    let mut links = BTreeMap::new();
    for entry in gantry::attest::run_folder::list(run_dir).expect("run folder") {
        let path = entry.path;
        let name = entry.name;
        let Some(step) = name.strip_suffix(".intoto.json") else {
            continue;
        };
        if step == "provenance" || step == "usage" {
            continue;
        }
        let statement = statement(&path);
        links.insert(
            step.to_owned(),
            (
                statement["subject"].clone(),
                statement["predicate"]["environment"]["sandbox"].clone(),
            ),
        );
    }
    links
}

/// The `usage` of every executed step's `step_finished` event.
fn step_usages(run: &crate::support::Run) -> Vec<serde_json::Value> {
    (run.events().into_iter())
        .filter(|event| event["event"] == "step_finished" && event["status"] == "executed")
        .map(|event| event["usage"].clone())
        .collect()
}

#[test]
fn two_workers_give_a_local_runs_bytes_and_a_second_run_comes_from_the_remote_cache() {
    let grid = Grid::start(10);
    let one = grid.worker("w1", 1);
    let two = grid.worker("w2", 2);
    let workspace = || Test::new().file("src/in.txt", "input\n").pipeline(SPREAD);

    let local = workspace();
    let local_run = local.gantry_run(&["-j", "4"]).success();
    let local_links = links(&local_run.run_dir());

    // Two machines that share a signing key (a remote cache's result is used only when a link
    // signed by a trusted key vouches for it: tests/integration/hostile/remote_cache.rs).
    let remote = workspace();
    let key = crate::hostile::shared_key(&remote);
    let remote_run = remote
        .gantry_run(&["-j", "4", "--remote", grid.url(), "--key", &key])
        .success();
    for output in SPREAD_OUTPUTS {
        assert_eq!(
            std::fs::read(remote.path(output)).unwrap(),
            std::fs::read(local.path(output)).unwrap(),
            "{output} differs"
        );
    }
    let mode = |test: &Test| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(test.path("out/tool"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&remote), mode(&local));
    let remote_links = links(&remote_run.run_dir());
    assert_eq!(local_links.len(), 5);
    let mut workers = std::collections::BTreeSet::new();
    for (step, (subjects, sandbox)) in &remote_links {
        assert_eq!(
            *subjects, local_links[step].0,
            "step {step}: subjects differ"
        );
        assert_eq!(local_links[step].1["executor"], "local");
        assert_eq!(sandbox["executor"], "remote", "{sandbox}");
        assert_eq!(sandbox["remoteCacheHit"], false, "{sandbox}");
        workers.insert(sandbox["worker"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        workers.into_iter().collect::<Vec<_>>(),
        ["w1", "w2"],
        "both workers ran actions"
    );
    let leases = one.started().len() + two.started().len();
    assert_eq!(leases, 5);
    // Each step's usage is the worker's own account of it (REAPI's ExecutedActionMetadata).
    for usage in step_usages(&remote_run) {
        assert_eq!(usage["method"], "remote", "{usage}");
        let worker = &usage["remote"];
        assert!(
            worker["worker"] == "w1" || worker["worker"] == "w2",
            "{usage}"
        );
        assert_eq!(worker["cacheHit"], false, "{usage}");
        assert!(
            worker["executionUs"].is_u64() && worker["inputFetchUs"].is_u64(),
            "{usage}"
        );
    }

    // A new workspace (no local cache) is served by the remote action cache: no lease.
    let again = workspace();
    let again_run = again
        .gantry_run(&["-j", "4", "--remote", grid.url(), "--key", &key])
        .success();
    assert_eq!(one.started().len() + two.started().len(), leases);
    for (step, (subjects, sandbox)) in links(&again_run.run_dir()) {
        assert_eq!(subjects, local_links[&step].0, "step {step}");
        assert_eq!(sandbox["remoteCacheHit"], true, "{sandbox}");
    }
    for usage in step_usages(&again_run) {
        assert_eq!(usage["remote"]["cacheHit"], true, "{usage}");
    }
    for output in SPREAD_OUTPUTS {
        assert_eq!(again.read(output), local.read(output), "{output}");
    }
}

#[test]
fn an_action_sent_by_buildgrids_own_client_runs_on_a_gantry_worker() {
    let grid = Grid::start(10);
    let worker = grid.worker("interop", 1);
    let test = Test::new().file("input/x.txt", "from bgd\n");
    let output = Command::new(grid.bgd())
        .current_dir(test.root())
        .args(["execute", "--remote", &grid.http(), "command"])
        .args([
            "--output-file",
            "out/copy.txt",
            "--output-directory",
            "fetched",
        ])
        .arg(test.path("input"))
        .args([
            "--",
            "/bin/sh",
            "-c",
            "cat x.txt x.txt > out/copy.txt; echo ran",
        ])
        .output()
        .expect("bgd execute");
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(test.read("fetched/out/copy.txt"), "from bgd\nfrom bgd\n");
    let completed = worker.wait_for("completed", Duration::from_secs(5));
    assert_eq!(completed["outcome"], "exit code 0", "{completed}");
}

#[test]
fn a_worker_lost_mid_action_loses_nothing() {
    // Bots are counted lost 5 s after their last call.
    let grid = Grid::start(5);
    let first = grid.worker("first", 1);
    let test = Test::new().pipeline(
        "[steps.slow]\nrun = \"sleep 4; echo slow > out/slow\"\noutputs = [\"out/slow\"]\n",
    );
    let run = test
        .command()
        .args(["run", "pipeline.toml", "--json", "--remote", grid.url()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gantry run");
    first.wait_for("started", Duration::from_secs(30));
    let second = grid.worker("second", 1);
    first.signal(libc::SIGKILL);
    let output = run.wait_with_output().expect("gantry run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert_eq!(test.read("out/slow"), "slow\n");
    assert_eq!(
        second.started(),
        first.started(),
        "the lease went to the other worker"
    );

    // A worker that is stopped hands its action back at once.
    let test = Test::new().pipeline(
        "[steps.slow]\nrun = \"sleep 3; echo again > out/slow\"\noutputs = [\"out/slow\"]\n",
    );
    let third = grid.worker("third", 1);
    let run = test
        .command()
        .args(["run", "pipeline.toml", "--json", "--remote", grid.url()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("gantry run");
    let start = std::time::Instant::now();
    let (running, waiting) = loop {
        if !second.started().is_empty() && second.started().len() > 1 {
            break (&second, &third);
        }
        if !third.started().is_empty() {
            break (&third, &second);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no worker took the action"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let handed = running.started().last().cloned().expect("a lease");
    running.signal(libc::SIGTERM);
    let stopping = running.wait_for("stopping", Duration::from_secs(10));
    assert_eq!(stopping["handed_back"], 1, "{stopping}");
    let output = run.wait_with_output().expect("gantry run");
    assert!(output.status.success());
    assert_eq!(test.read("out/slow"), "again\n");
    assert!(
        waiting
            .events()
            .iter()
            .any(|event| event["event"] == "completed" && event["lease"] == handed.as_str()),
        "the other worker ran the handed-back lease {handed}: {:?}",
        waiting.events()
    );
}
