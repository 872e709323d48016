//! A private `BuildGrid` 0.9.1 server (`scripts/buildgrid.sh`) and `gantry worker`s serving it,
//! each stopped when dropped.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::GANTRY;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/buildgrid.sh");

pub(crate) struct Grid {
    dir: tempfile::TempDir,
    pub env: BTreeMap<String, String>,
}

impl Grid {
    /// Starts a server whose bots are counted lost after `keepalive` seconds without a call.
    pub(crate) fn start(keepalive: u32) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gantry-grid-")
            .tempdir()
            .expect("temporary folder");
        let output = Command::new("bash")
            .arg(SCRIPT)
            .arg("start")
            .arg(dir.path().join("grid"))
            .env("BUILDGRID_BOT_KEEPALIVE_TIMEOUT", keepalive.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/buildgrid.sh");
        assert!(
            output.status.success(),
            "BuildGrid did not start (it needs Python >= 3.13 and PostgreSQL: bash scripts/buildgrid.sh install):\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let text = std::fs::read_to_string(dir.path().join("grid/env")).expect("grid env");
        let env = text
            .lines()
            .filter_map(|line| line.split_once('='))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Self { dir, env }
    }

    pub(crate) fn url(&self) -> &str {
        &self.env["BUILDGRID_URL"]
    }

    /// `http://127.0.0.1:PORT`, as `BuildGrid`'s own client takes it.
    pub(crate) fn http(&self) -> String {
        format!("http://{}", self.env["BUILDGRID_ADDRESS"])
    }

    pub(crate) fn bgd(&self) -> &str {
        &self.env["BGD"]
    }

    /// Starts `gantry worker` as `name`, running `concurrency` actions at once.
    pub(crate) fn worker(&self, name: &str, concurrency: u32) -> Worker {
        let log = self.dir.path().join(format!("{name}.jsonl"));
        let child = Command::new(GANTRY)
            .args(["worker", "--json", "--server", self.url(), "--name", name])
            .args(["--concurrency", &concurrency.to_string()])
            .arg("--dir")
            .arg(self.dir.path().join("workers"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("worker log"))
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start gantry worker");
        let worker = Worker {
            child,
            log,
            name: name.to_owned(),
        };
        worker.wait_for("connected", Duration::from_secs(30));
        worker
    }
}

impl Drop for Grid {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(SCRIPT)
            .arg("stop")
            .arg(self.dir.path().join("grid"))
            .stdin(Stdio::null())
            .output();
    }
}

pub(crate) struct Worker {
    pub child: Child,
    log: PathBuf,
    pub name: String,
}

impl Worker {
    /// The worker's events so far.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        read_events(&self.log)
    }

    /// The ids of the leases it started.
    pub(crate) fn started(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|event| event["event"] == "started")
            .filter_map(|event| event["lease"].as_str().map(str::to_owned))
            .collect()
    }

    /// Waits until the worker reports an event named `event`.
    pub(crate) fn wait_for(&self, event: &str, limit: Duration) -> serde_json::Value {
        let start = Instant::now();
        loop {
            if let Some(found) = self
                .events()
                .into_iter()
                .find(|seen| seen["event"] == event)
            {
                return found;
            }
            assert!(
                start.elapsed() < limit,
                "worker {} reported no `{event}` in {limit:?}: {:?}",
                self.name,
                self.events()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub(crate) fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: a signal to our own child.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_events(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
