//! Through a real HAProxy (its runtime API) under load from wrk: healthy canary and
//! blue-green rollouts drop no request, a canary failing 5% of requests is rolled back by the
//! sequential test, and a pool killed mid-rollout, a pool that never turns healthy and a
//! missing socket end cleanly.

use std::process::Stdio;
use std::time::Duration;

use super::site::{
    BLUE_GREEN, CANARY, Front as _, assert_blue_drained, load, pipeline, promoted_cleanly, record,
    rolled_back_by_the_test, run_under_load, serial, site, wait_for,
};

#[test]
fn a_healthy_canary_is_promoted_step_by_step_without_a_failed_request() {
    let _serial = serial();
    let site = site(0);
    site.test.write(
        "pipeline.toml",
        &pipeline(&site, "canary", &format!("{CANARY}rehearse = true\n")),
    );
    let (run, load) = run_under_load(&site, 6, true);
    let predicate = &promoted_cleanly(&site, &run, &load);
    assert_eq!(run.statuses()["announce"], "executed");
    let record = record(&run);
    assert_eq!(
        record["predicateType"],
        "https://gantry.dev/attestation/rollout/v0.1"
    );
    assert_eq!(record["subject"][0]["name"], "app.tar");
    let decisions = predicate["decisions"].as_array().expect("decisions");
    let weights: Vec<u64> = (decisions.iter())
        .filter(|decision| decision["action"] == "weights")
        .map(|decision| decision["canary"].as_u64().expect("weight"))
        .collect();
    assert_eq!(
        weights,
        [10, 10, 50, 100],
        "a rehearsal at 10%, then each step"
    );
    assert!(
        decisions
            .iter()
            .any(|decision| decision["action"] == "rehearsed" && decision["restored"] == true)
    );
    let accepted: Vec<&serde_json::Value> = (decisions.iter())
        .filter(|decision| decision["outcome"] == "accept")
        .collect();
    assert!(accepted.iter().any(|decision| decision["weight"] == 10));
    assert!(accepted.iter().any(|decision| decision["weight"] == 50));
    eprintln!(
        "healthy canary: {} requests at {:.0}/s, none failed; {} served by the canary before 100%",
        load.requests, load.per_second, predicate["canaryRequests"]
    );
}

#[test]
fn a_healthy_blue_green_switch_drops_no_request() {
    let _serial = serial();
    let site = site(0);
    site.test
        .write("pipeline.toml", &pipeline(&site, "blue-green", BLUE_GREEN));
    let (run, load) = run_under_load(&site, 4, true);
    let predicate = promoted_cleanly(&site, &run, &load);
    assert_blue_drained(&site.front);
    assert_eq!(predicate["strategy"], "blue-green");
}

#[test]
fn a_canary_failing_5_percent_is_rolled_back_by_the_sequential_test() {
    let _serial = serial();
    let site = site(5);
    site.test
        .write("pipeline.toml", &pipeline(&site, "canary", CANARY));
    let (run, load) = run_under_load(&site, 4, false);
    let predicate = &rolled_back_by_the_test(&site, &run);
    assert_eq!(run.statuses()["announce"], "skipped");
    let served = predicate["canaryRequests"].as_u64().expect("count");
    let decisions = predicate["decisions"].as_array().expect("decisions");
    let rejected = decisions
        .iter()
        .find(|decision| decision["outcome"] == "reject")
        .expect("a rejection");
    assert!(rejected["llr"].as_f64() >= rejected["upper"].as_f64());
    assert!(served > 0 && served < 5000, "{served}");
    eprintln!(
        "failing canary: rolled back after it served {served} requests ({} errors); {} requests in all, {} failed",
        rejected["canary"]["errors"], load.requests, load.failed
    );
}

#[test]
fn a_pool_killed_mid_rollout_is_rolled_back() {
    let _serial = serial();
    let mut site = site(0);
    site.test.write(
        "pipeline.toml",
        &pipeline(
            &site,
            "canary",
            "canary = { steps = [10, 100], min_requests = 100000000, interval = \"100ms\", max_wait = \"20s\" }\n",
        ),
    );
    let traffic = load(site.front.port(), 4);
    let rollout = site
        .test
        .command()
        .args(["run", "pipeline.toml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry");
    // Wait for the canary to take traffic, then kill it.
    wait_for("the canary step", || site.front.weights().1 == 10);
    std::thread::sleep(Duration::from_millis(300));
    site.green.kill();
    let output = rollout.wait_with_output().expect("gantry");
    let run = crate::support::Run { output }.failure(1);
    let _ = traffic.join();
    assert!(
        run.stdout().contains("the new pool went down at 10%"),
        "{}",
        run.stdout()
    );
    assert_eq!(site.front.weights(), (100, 0));
    assert_eq!(record(&run)["predicate"]["result"], "rolled-back");
}

#[test]
fn a_pool_that_never_turns_healthy_changes_nothing() {
    let _serial = serial();
    let mut site = site(0);
    site.green.kill();
    site.test.write(
        "pipeline.toml",
        &pipeline(&site, "blue-green", "").replace("timeout = \"3s\"", "timeout = \"1s\""),
    );
    let run = site.test.run(["run", "pipeline.toml", "--json"]).failure(1);
    assert!(
        run.stdout().contains("the new pool never became healthy"),
        "{}",
        run.stdout()
    );
    assert_eq!(site.front.weights(), (100, 0));
    let record = record(&run);
    assert_eq!(record["predicate"]["result"], "rolled-back");
    assert!(
        !(record["predicate"]["decisions"]
            .as_array()
            .expect("decisions")
            .iter())
        .any(|decision| decision["action"] == "weights"),
        "no weight was changed"
    );
}

#[test]
fn a_missing_socket_refuses_to_start() {
    let _serial = serial();
    let site = site(0);
    site.test.write(
        "pipeline.toml",
        &pipeline(&site, "blue-green", "").replace("haproxy.sock", "missing.sock"),
    );
    let run = site.test.run(["run", "pipeline.toml", "--json"]).failure(1);
    let stdout = run.stdout();
    assert!(
        stdout.contains("cannot start the rollout: HAProxy's runtime API at")
            && stdout.contains("missing.sock")
            && stdout.contains("nothing was changed"),
        "{stdout}"
    );
    assert_eq!(site.front.weights(), (100, 0));
}

#[test]
fn blue_green_starts_the_green_pool_itself_then_switches() {
    let _serial = serial();
    let mut site = site(0);
    // Green is stopped; the rollout's `start` brings it up (as a daemon) before probing it.
    site.green.kill();
    let mut green = super::site::Pool::configure(&site.test, "green-2", 0);
    let pipeline = pipeline(
        &site,
        "blue-green",
        &format!(
            "rollback_window = \"1s\"\ncanary = {{ interval = \"200ms\" }}\nstart = {}\n",
            green.start_command()
        ),
    )
    .replace(
        &format!("127.0.0.1:{}/healthz", site.green.port),
        &format!("127.0.0.1:{}/healthz", green.port),
    );
    site.test.write("pipeline.toml", &pipeline);
    site.front.command(&format!(
        "set server app/green addr 127.0.0.1 port {}",
        green.port
    ));
    let (run, load) = run_under_load(&site, 3, true);
    assert_eq!(load.failed, 0, "{}", load.text);
    assert!(
        run.stdout().contains("started the new pool"),
        "{}",
        run.stdout()
    );
    assert_eq!(site.front.weights(), (0, 100));
    let predicate = &record(&run)["predicate"];
    assert_eq!(predicate["decisions"][1]["action"], "started");
    green.kill();
}
