//! The rollout tests' world: real nginx pools on loopback (one can fail a share of its
//! requests), a real front proxy (HAProxy with its runtime API, or nginx with an included
//! upstream file), wrk's load, and the pipeline that rolls the green pool out.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{Test, require_tool};

pub(super) const HINT: &str =
    "apt-get install haproxy nginx-light wrk (scripts/test.sh installs them)";

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

pub(super) fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready() {
        assert!(Instant::now() < deadline, "{what} did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A pool: an nginx serving `/` and `/healthz`, failing `fail_percent`% of `/` with a 500.
pub(super) struct Pool {
    /// `None` for a pool something else starts (a rollout's `start`), as a daemon.
    child: Option<Child>,
    pub port: u16,
    dir: std::path::PathBuf,
    stopped: bool,
}

impl Pool {
    pub(super) fn start(test: &Test, name: &str, fail_percent: u32) -> Self {
        let mut pool = Self::configure(test, name, fail_percent);
        let child = Command::new("nginx")
            .args(pool.arguments())
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx");
        pool.child = Some(child);
        wait_for("nginx", || {
            TcpStream::connect(("127.0.0.1", pool.port)).is_ok()
        });
        pool
    }

    /// Writes the pool's nginx.conf, and starts nothing.
    pub(super) fn configure(test: &Test, name: &str, fail_percent: u32) -> Self {
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
        Self {
            child: None,
            port,
            dir,
            stopped: false,
        }
    }

    fn arguments(&self) -> Vec<String> {
        let d = self.dir.display();
        [
            "-p".to_owned(),
            d.to_string(),
            "-e".to_owned(),
            format!("{d}/error.log"),
            "-c".to_owned(),
            format!("{d}/nginx.conf"),
        ]
        .to_vec()
    }

    /// The TOML array that starts the pool as a daemon.
    pub(super) fn start_command(&self) -> String {
        let mut words = vec!["\"nginx\"".to_owned()];
        words.extend(self.arguments().iter().map(|word| format!("{word:?}")));
        format!("[{}]", words.join(", "))
    }

    pub(super) fn kill(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        // nginx's workers are its children: SIGTERM to the master takes them down with it.
        let pid = match &self.child {
            Some(child) => Some(child.id().to_string()),
            None => std::fs::read_to_string(self.dir.join("nginx.pid"))
                .ok()
                .map(|pid| pid.trim().to_owned()),
        };
        if let Some(pid) = pid {
            let _ = Command::new("kill").arg(pid).status();
        }
        if let Some(child) = &mut self.child {
            let _ = child.wait();
        } else {
            let deadline = Instant::now() + Duration::from_secs(5);
            while TcpStream::connect(("127.0.0.1", self.port)).is_ok() && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.kill();
    }
}

/// HAProxy in front of the two pools: `blue` (stable, weight 100) and `green` (weight 0).
pub(super) struct Proxy {
    child: Child,
    pub port: u16,
    socket: std::path::PathBuf,
}

impl Proxy {
    pub(super) fn start(test: &Test, blue: u16, green: u16) -> Self {
        Self::start_with(test, blue, green, "")
    }

    /// `more` goes at the end of haproxy.cfg (a Prometheus exporter's frontend).
    pub(super) fn start_with(test: &Test, blue: u16, green: u16, more: &str) -> Self {
        let port = free_port();
        let socket = test.path("haproxy.sock");
        let config = format!(
            "global\n  stats socket {} mode 600 level admin\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 1s\n  timeout client 10s\n  timeout server 10s\n  retries 3\n  option redispatch 1\nfrontend web\n  bind 127.0.0.1:{port}\n  default_backend app\nbackend app\n  balance roundrobin\n  server blue 127.0.0.1:{blue} weight 100 check inter 100ms fall 2 rise 2\n  server green 127.0.0.1:{green} weight 0 check inter 100ms fall 2 rise 2\n{more}",
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

    pub(super) fn command(&self, command: &str) -> String {
        let mut stream = UnixStream::connect(&self.socket).expect("haproxy socket");
        stream
            .write_all(format!("{command}\n").as_bytes())
            .expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    }

    /// The weights HAProxy applies now: (blue, green).
    pub(super) fn weights(&self) -> (u32, u32) {
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
pub(super) struct Load {
    pub requests: u64,
    pub per_second: f64,
    pub failed: u64,
    pub text: String,
}

pub(super) fn load(port: u16, seconds: u32) -> std::thread::JoinHandle<Load> {
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
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let non_2xx = number_after("Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
        Load {
            requests,
            per_second: number_after("Requests/sec:").unwrap_or(0.0),
            failed: non_2xx + socket_errors,
            text,
        }
    })
}

/// The front proxy the load goes through, and the `traffic = { ... }` that drives it.
pub(super) trait Front {
    fn port(&self) -> u16;
    fn traffic(&self) -> String;
    /// The weights it applies now: (blue, green).
    fn weights(&self) -> (u32, u32);
}

impl Front for Proxy {
    fn port(&self) -> u16 {
        self.port
    }
    fn traffic(&self) -> String {
        "{ haproxy = { socket = \"haproxy.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" } }".to_owned()
    }
    fn weights(&self) -> (u32, u32) {
        Proxy::weights(self)
    }
}

/// nginx in front of the two pools, through `upstream app { include upstream.conf; }`, with
/// the access log in gantry's format.
pub(super) struct NginxFront {
    child: Child,
    port: u16,
    dir: std::path::PathBuf,
    blue: u16,
    green: u16,
}

impl NginxFront {
    pub(super) fn start(test: &Test, blue: u16, green: u16) -> Self {
        let port = free_port();
        let dir = test.path("front");
        std::fs::create_dir_all(dir.join("tmp")).expect("front folder");
        std::fs::write(
            dir.join("upstream.conf"),
            format!("server 127.0.0.1:{blue} weight=100;\nserver 127.0.0.1:{green} down;\n"),
        )
        .expect("upstream.conf");
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\npid {d}/nginx.pid;\nevents {{ worker_connections 1024; }}\nhttp {{\n    log_format gantry '$upstream_addr|$upstream_status';\n    access_log {d}/access.log gantry;\n    keepalive_timeout 0;\n    client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n    upstream app {{ include {d}/upstream.conf; }}\n    server {{\n        listen 127.0.0.1:{port};\n        location / {{ proxy_pass http://app; }}\n    }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .args(Self::arguments(&dir))
            .args(["-g", "daemon off;"])
            .stdin(Stdio::null())
            .spawn()
            .expect("nginx");
        wait_for("the nginx front", || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self {
            child,
            port,
            dir,
            blue,
            green,
        }
    }

    fn arguments(dir: &std::path::Path) -> Vec<String> {
        let d = dir.display();
        [
            "-p",
            &d.to_string(),
            "-e",
            &format!("{d}/error.log"),
            "-c",
            &format!("{d}/nginx.conf"),
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

impl Drop for NginxFront {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Front for NginxFront {
    fn port(&self) -> u16 {
        self.port
    }
    fn traffic(&self) -> String {
        let mut reload: Vec<String> = vec!["nginx".to_owned()];
        reload.extend(Self::arguments(&self.dir));
        reload.extend(["-s".to_owned(), "reload".to_owned()]);
        let reload: Vec<String> = reload.iter().map(|word| format!("{word:?}")).collect();
        format!(
            "{{ nginx = {{ upstream = \"front/upstream.conf\", stable = \"127.0.0.1:{}\", canary = \"127.0.0.1:{}\", access_log = \"front/access.log\", reload = [{}] }} }}",
            self.blue,
            self.green,
            reload.join(", ")
        )
    }
    fn weights(&self) -> (u32, u32) {
        let text = std::fs::read_to_string(self.dir.join("upstream.conf")).expect("upstream.conf");
        let weight = |port: u16| {
            let line = (text.lines())
                .find(|line| {
                    line.contains(&format!("127.0.0.1:{port} "))
                        || line.contains(&format!("127.0.0.1:{port};"))
                })
                .unwrap_or("down");
            if line.contains("down") {
                0
            } else {
                line.split("weight=")
                    .nth(1)
                    .and_then(|rest| {
                        rest.trim_end_matches(';')
                            .split([' ', ';'])
                            .next()?
                            .parse()
                            .ok()
                    })
                    .unwrap_or(1)
            }
        };
        (weight(self.blue), weight(self.green))
    }
}

pub(super) struct Site<F> {
    pub test: Test,
    pub front: F,
    pub green: Pool,
    pub blue: Pool,
}

pub(super) fn require_tools() {
    for (program, flag) in [("haproxy", "-v"), ("nginx", "-v")] {
        require_tool(program, flag, HINT);
    }
    // wrk has no flag that exits 0 without a URL: found is enough.
    assert!(
        Command::new("wrk").arg("-v").output().is_ok(),
        "these tests need wrk: {HINT}"
    );
}

/// Blue and green pools (green failing `green_fail_percent`% of requests) behind a front
/// that `start` builds from the test and the two ports.
pub(super) fn site_with<F>(
    green_fail_percent: u32,
    start: impl FnOnce(&Test, u16, u16) -> F,
) -> Site<F> {
    require_tools();
    let test = Test::new();
    let blue = Pool::start(&test, "blue", 0);
    let green = Pool::start(&test, "green", green_fail_percent);
    let front = start(&test, blue.port, green.port);
    test.write("app.tar", "release 2\n");
    Site {
        test,
        front,
        green,
        blue,
    }
}

/// Behind nginx.
pub(super) fn nginx_site(green_fail_percent: u32) -> Site<NginxFront> {
    site_with(green_fail_percent, NginxFront::start)
}

/// Behind HAProxy.
pub(super) fn site(green_fail_percent: u32) -> Site<Proxy> {
    site_with(green_fail_percent, Proxy::start)
}

pub(super) fn pipeline<F: Front>(site: &Site<F>, strategy: &str, extra: &str) -> String {
    format!(
        "[pipeline]\nname = \"rollout\"\nroot = \".\"\n\n[steps.deploy]\nkind = \"rollout\"\nsubject = \"app.tar\"\nstrategy = \"{strategy}\"\ntraffic = {}\nhealth = {{ url = \"http://127.0.0.1:{}/healthz\", interval = \"100ms\", healthy_after = 3, timeout = \"3s\" }}\nanalysis = {{ method = \"sprt\", alpha = 0.05, beta = 0.05, baseline_error_rate = 0.01, delta = 0.03 }}\n{extra}\n[steps.announce]\nrun = \"echo promoted > announced.txt\"\ninputs = [\"out/rollout/deploy.intoto.json\"]\noutputs = [\"announced.txt\"]\n",
        site.front.traffic(),
        site.green.port
    )
}

/// Canary steps paced for wrk's traffic: a decision takes a few 200 ms readings.
pub(super) const CANARY: &str = "canary = { steps = [10, 50, 100], min_requests = 300, interval = \"200ms\", max_wait = \"20s\" }\n";

pub(super) fn record(run: &crate::support::Run) -> serde_json::Value {
    crate::attestations::statement(&crate::support::attested(
        &run.run_dir(),
        "deploy.rollout.intoto.json",
    ))
}

/// Blue-green paced for the tests: a 1.5 s window, read every 200 ms.
pub(super) const BLUE_GREEN: &str =
    "rollback_window = \"1500ms\"\ncanary = { interval = \"200ms\" }\n";

/// A run that promoted under wrk's load without a failed request, the front left at 0/100:
/// its record's predicate.
pub(super) fn promoted_cleanly<F: Front>(
    site: &Site<F>,
    run: &crate::support::Run,
    load: &Load,
) -> serde_json::Value {
    assert_eq!(run.statuses()["deploy"], "executed");
    assert_eq!(load.failed, 0, "{}", load.text);
    assert!(load.per_second >= 1000.0, "{}", load.text);
    assert_eq!(site.front.weights(), (0, 100));
    let predicate = record(run)["predicate"].clone();
    assert_eq!(predicate["result"], "promoted");
    predicate
}

/// A run the sequential test rolled back at the first canary step, the front back at
/// 100/0: its record's predicate.
pub(super) fn rolled_back_by_the_test<F: Front>(
    site: &Site<F>,
    run: &crate::support::Run,
) -> serde_json::Value {
    assert_eq!(run.statuses()["deploy"], "failed");
    assert!(
        run.stdout()
            .contains("rolled back to weights 100/0: the canary is worse than the stable at 10%"),
        "{}",
        run.stdout()
    );
    assert_eq!(site.front.weights(), (100, 0));
    let predicate = record(run)["predicate"].clone();
    assert_eq!(predicate["result"], "rolled-back");
    predicate
}

/// HAProxy kept blue through the window, then set it to drain.
pub(super) fn assert_blue_drained(proxy: &Proxy) {
    let stat = proxy.command("show stat");
    assert!(
        stat.lines()
            .any(|line| line.starts_with("app,blue,") && line.contains(",DRAIN,")),
        "{stat}"
    );
}

/// Rollouts drive one shared kind of load; running two at once on two cores would measure
/// the machine, not the rollout.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub(super) fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

pub(super) fn run_under_load<F: Front>(
    site: &Site<F>,
    seconds: u32,
    expect_success: bool,
) -> (crate::support::Run, Load) {
    let traffic = load(site.front.port(), seconds);
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
