//! Rollouts through a real HAProxy (its runtime API) in front of real nginx pools on
//! loopback, under load from wrk: healthy canary and blue-green rollouts drop no request, a
//! canary failing 5% of requests is rolled back by the sequential test, and a pool killed
//! mid-rollout, a pool that never turns healthy and a missing socket end cleanly.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Test, require_tool};

const HINT: &str = "apt-get install haproxy nginx-light wrk (scripts/test.sh installs them)";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pool: an nginx serving `/` and `/healthz`, failing `fail_percent`% of `/` with a 500.
struct Pool {
    child: Child,
    port: u16,
    stopped: bool,
}

impl Pool {
    fn start(test: &Test, name: &str, fail_percent: u32) -> Self {
        let port = free_port();
        let dir = test.path(&format!("nginx-{name}"));
        std::fs::create_dir_all(dir.join("tmp")).expect("nginx folder");
        let failing = if fail_percent > 0 {
            format!("split_clients \"${{request_id}}\" $fail {{ {fail_percent}% 1; * 0; }}\n    ")
        } else {
            String::new()
        };
        let check = if fail_percent > 0 {
            "if ($fail) { return 500 \"fail\\n\"; } "
        } else {
            ""
        };
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nevents {{ worker_connections 1024; }}\nhttp {{\n    access_log off;\n    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n    {failing}server {{\n        listen 127.0.0.1:{port};\n        location = /healthz {{ return 200 \"ok\\n\"; }}\n        location / {{ {check}return 200 \"{name}\\n\"; }}\n    }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx");
        wait_for("nginx", || TcpStream::connect(("127.0.0.1", port)).is_ok());
        Self {
            child,
            port,
            stopped: false,
        }
    }

    fn kill(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // nginx's workers are its children: SIGTERM to the master takes them down with it.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.kill();
    }
}

/// HAProxy in front of the two pools: `blue` (stable, weight 100) and `green` (weight 0).
struct Proxy {
    child: Child,
    port: u16,
    socket: std::path::PathBuf,
}

impl Proxy {
    fn start(test: &Test, blue: u16, green: u16) -> Self {
        let port = free_port();
        let socket = test.path("haproxy.sock");
        let config = format!(
            "global\n  stats socket {} mode 600 level admin\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n  retries 3\n  option redispatch 1\nfrontend web\n  bind 127.0.0.1:{port}\n  default_backend app\nbackend app\n  balance roundrobin\n  server blue 127.0.0.1:{blue} weight 100 check inter 100ms fall 2 rise 2\n  server green 127.0.0.1:{green} weight 0 check inter 100ms fall 2 rise 2\n",
            socket.display()
        );
        test.write("haproxy.cfg", &config);
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(test.path("haproxy.cfg"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("haproxy");
        let proxy = Self {
            child,
            port,
            socket,
        };
        wait_for("haproxy", || UnixStream::connect(&proxy.socket).is_ok());
        proxy
    }

    fn command(&self, command: &str) -> String {
        let mut stream = UnixStream::connect(&self.socket).expect("haproxy socket");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    }

    /// The weights HAProxy applies now: (blue, green).
    fn weights(&self) -> (u32, u32) {
        let answer = self.command("get weight app/blue") + &self.command("get weight app/green");
        let weights: Vec<u32> = (answer.lines())
            .filter_map(|line| line.split_whitespace().next()?.parse().ok())
            .collect();
        (weights[0], weights[1])
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// wrk's summary: requests, requests per second, and the failed ones (non-2xx/3xx
/// answers and socket errors).
#[derive(Debug)]
struct Load {
    requests: u64,
    per_second: f64,
    failed: u64,
    text: String,
}

fn load(port: u16, seconds: u32) -> std::thread::JoinHandle<Load> {
    std::thread::spawn(move || {
        let output = Command::new("wrk")
            .args(["-t1", "-c8", &format!("-d{seconds}s")])
            .arg(format!("http://127.0.0.1:{port}/"))
            .output()
            .expect("wrk");
        let text = String::from_utf8_lossy(&output.stdout).into_owned();
        let number_after = |label: &str| -> Option<f64> {
            let line = text.lines().find(|line| line.contains(label))?;
            let rest = &line[line.find(label)? + label.len()..];
            rest.split(|c: char| !(c.is_ascii_digit() || c == '.'))
                .find(|part| !part.is_empty())?
                .parse()
                .ok()
        };
        let requests = (text.lines())
            .find(|line| line.contains(" requests in "))
            .and_then(|line| line.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let socket_errors: u64 = (text.lines())
            .find(|line| line.contains("Socket errors:"))
            .map_or(0, |line| {
                line.split(|c: char| !c.is_ascii_digit())
                    .filter_map(|part| part.parse::<u64>().ok())
                    .sum()
            });
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let non_2xx = number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
        Load {
            requests,
            per_second: number_after("Requests/sec:").unwrap_or(0.0),
            failed: non_2xx + socket_errors,
            text,
        }
    })
}

struct Site {
    test: Test,
    proxy: Proxy,
    green: Pool,
    /// Kept for its drop: the stable pool serves until the test ends.
    _blue: Pool,
}

fn site(green_fail_percent: u32) -> Site {
    for (program, flag) in [("haproxy", "-v"), ("nginx", "-v")] {
        require_tool(program, flag, HINT);
    }
    // wrk has no flag that exits 0 without a URL: found is enough.
    assert!(
        Command::new("wrk").arg("-v").output().is_ok(),
        "these tests need wrk: {HINT}"
    );
    let test = Test::new();
    let blue = Pool::start(&test, "blue", 0);
    let green = Pool::start(&test, "green", green_fail_percent);
    let proxy = Proxy::start(&test, blue.port, green.port);
    test.write("app.tar", "release 2\n");
    Site {
        test,
        proxy,
        green,
        _blue: blue,
    }
}

fn pipeline(site: &Site, strategy: &str, extra: &str) -> String {
    format!(
        "[pipeline]\nname = \"rollout\"\nroot = \".\"\n\n[steps.deploy]\nkind = \"rollout\"\nsubject = \"app.tar\"\nstrategy = \"{strategy}\"\ntraffic = {{ haproxy = {{ socket = \"haproxy.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" }} }}\nhealth = {{ url = \"http://127.0.0.1:{}/healthz\", interval = \"100ms\", healthy_after = 3, timeout = \"3s\" }}\nanalysis = {{ method = \"sprt\", alpha = 0.05, beta = 0.05, baseline_error_rate = 0.01, delta = 0.03 }}\n{extra}\n[steps.announce]\nrun = \"echo promoted > announced.txt\"\ninputs = [\"rollout/deploy.intoto.json\"]\noutputs = [\"announced.txt\"]\n",
        site.green.port
    )
}

/// Canary steps paced for wrk's traffic: a decision takes a few 200 ms readings.
const CANARY: &str = "canary = { steps = [10, 50, 100], min_requests = 300, interval = \"200ms\", max_wait = \"20s\" }\n";

fn record(run: &crate::support::Run) -> serde_json::Value {
    crate::attestations::statement(&run.run_dir().join("deploy.rollout.intoto.json"))
}

/// Rollouts drive one shared kind of load; running two at once on two cores would measure
/// the machine, not the rollout.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn run_under_load(site: &Site, seconds: u32, expect_success: bool) -> (crate::support::Run, Load) {
    let traffic = load(site.proxy.port, seconds);
    std::thread::sleep(Duration::from_millis(300));
    let run = site.test.run(["run", "pipeline.toml", "--json"]);
    let run = if expect_success {
        run.success()
    } else {
        run.failure(1)
    };
    let load = traffic.join().expect("wrk");
    (run, load)
}

#[test]
fn a_healthy_canary_is_promoted_step_by_step_without_a_failed_request() {
    let _serial = serial();
    let site = site(0);
    site.test.write(
        "pipeline.toml",
        &pipeline(&site, "canary", &format!("{CANARY}rehearse = true\n")),
    );
    let (run, load) = run_under_load(&site, 6, true);
    assert_eq!(run.statuses()["deploy"], "executed");
    assert_eq!(run.statuses()["announce"], "executed");
    assert_eq!(load.failed, 0, "{}", load.text);
    assert!(load.per_second >= 1000.0, "{}", load.text);
    assert_eq!(site.proxy.weights(), (0, 100));
    let record = record(&run);
    let predicate = &record["predicate"];
    assert_eq!(
        record["predicateType"],
        "https://gantry.dev/attestation/rollout/v0.1"
    );
    assert_eq!(record["subject"][0]["name"], "app.tar");
    assert_eq!(predicate["result"], "promoted");
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
    site.test.write(
        "pipeline.toml",
        &pipeline(
            &site,
            "blue-green",
            "rollback_window = \"1500ms\"\ncanary = { interval = \"200ms\" }\n",
        ),
    );
    let (run, load) = run_under_load(&site, 4, true);
    assert_eq!(run.statuses()["deploy"], "executed");
    assert_eq!(load.failed, 0, "{}", load.text);
    assert!(load.per_second >= 1000.0, "{}", load.text);
    assert_eq!(site.proxy.weights(), (0, 100));
    // Blue was kept warm through the window, then drained.
    let stat = site.proxy.command("show stat");
    assert!(
        stat.lines()
            .any(|line| line.starts_with("app,blue,") && line.contains(",DRAIN,")),
        "{stat}"
    );
    let record = record(&run);
    assert_eq!(record["predicate"]["result"], "promoted");
    assert_eq!(record["predicate"]["strategy"], "blue-green");
}

#[test]
fn a_canary_failing_5_percent_is_rolled_back_by_the_sequential_test() {
    let _serial = serial();
    let site = site(5);
    site.test
        .write("pipeline.toml", &pipeline(&site, "canary", CANARY));
    let (run, load) = run_under_load(&site, 4, false);
    assert_eq!(run.statuses()["deploy"], "failed");
    assert_eq!(run.statuses()["announce"], "skipped");
    assert!(
        run.stdout()
            .contains("rolled back to weights 100/0: the canary is worse than the stable at 10%"),
        "{}",
        run.stdout()
    );
    // The stable pool is back to all of the traffic.
    assert_eq!(site.proxy.weights(), (100, 0));
    let record = record(&run);
    let predicate = &record["predicate"];
    assert_eq!(predicate["result"], "rolled-back");
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
    let traffic = load(site.proxy.port, 4);
    let rollout = site
        .test
        .command()
        .args(["run", "pipeline.toml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gantry");
    // Wait for the canary to take traffic, then kill it.
    wait_for("the canary step", || site.proxy.weights().1 == 10);
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
    assert_eq!(site.proxy.weights(), (100, 0));
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
    assert_eq!(site.proxy.weights(), (100, 0));
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
    assert_eq!(site.proxy.weights(), (100, 0));
}

#[test]
fn rollout_mistakes_are_reported_at_their_line() {
    let base = "subject = \"app.tar\"\ntraffic = { haproxy = { socket = \"h.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" } }\nhealth = { url = \"http://127.0.0.1:8081/healthz\" }\n";
    let cases = [
        ("strategy = \"rainbow\"\n", "unknown strategy `rainbow`"),
        (
            "strategy = \"canary\"\n",
            "a canary rollout needs its steps",
        ),
        (
            "strategy = \"canary\"\ncanary = { steps = [10, 50] }\n",
            "the canary's last step must be 100",
        ),
        (
            "strategy = \"canary\"\ncanary = { steps = [50, 10, 100] }\n",
            "`10` is not a next canary step",
        ),
        (
            "strategy = \"blue-green\"\nanalysis = { alpha = 0.7, beta = 0.5 }\n",
            "alpha + beta < 1",
        ),
        (
            "strategy = \"blue-green\"\nanalysis = { method = \"bayes\" }\n",
            "unknown analysis `bayes`",
        ),
        (
            "strategy = \"blue-green\"\nrollback_window = \"soon\"\n",
            "invalid `rollback_window`",
        ),
        (
            "strategy = \"blue-green\"\ninputs = [\"x\"]\n",
            "name it in `subject`",
        ),
        (
            "strategy = \"blue-green\"\nrequire = { failures = 0 }\n",
            "`require` does not apply to rollout steps",
        ),
    ];
    for (body, expected) in cases {
        let test = Test::new().pipeline(&format!("[steps.r]\nkind = \"rollout\"\n{base}{body}"));
        let run = test.run(["check", "pipeline.toml"]);
        assert_eq!(run.code(), 1, "{body}: {}", run.stderr());
        assert!(run.stderr().contains(expected), "{body}: {}", run.stderr());
        assert!(run.stderr().contains("pipeline.toml:"), "{}", run.stderr());
    }
    let test = Test::new().pipeline(&format!(
        "[steps.r]\nkind = \"rollout\"\nstrategy = \"blue-green\"\n{}",
        base.replace("http://127.0.0.1:8081/healthz", "https://example.com/")
    ));
    let run = test.run(["check", "pipeline.toml"]);
    assert!(
        run.stderr().contains("is not an http:// URL"),
        "{}",
        run.stderr()
    );
    let test = Test::new().pipeline("[steps.r]\nkind = \"rollout\"\nstrategy = \"canary\"\n");
    let run = test.run(["check", "pipeline.toml"]);
    for expected in ["needs `traffic`", "needs `health`", "needs a `subject`"] {
        assert!(
            run.stderr().contains(expected),
            "{expected}: {}",
            run.stderr()
        );
    }
}
