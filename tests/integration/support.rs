//! A small builder for integration tests:
//! `Test::new().file("src/a", "x").pipeline(toml).run(["run"]).success()`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) const GANTRY: &str = env!("CARGO_BIN_EXE_gantry");

pub(crate) struct Test {
    pub dir: tempfile::TempDir,
}

impl Test {
    pub(crate) fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("gantry-test-")
            .tempdir()
            .expect("temporary folder");
        fs::create_dir_all(dir.path().join("home")).expect("home");
        Self { dir }
    }

    pub(crate) fn root(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub(crate) fn file(self, relative: &str, contents: &str) -> Self {
        self.write(relative, contents);
        self
    }

    pub(crate) fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(&path, contents).expect("write");
    }

    /// Writes `pipeline.toml`; `[pipeline]` with `root = "."` is added when missing.
    pub(crate) fn pipeline(self, toml: &str) -> Self {
        let toml = if toml.contains("[pipeline]") {
            toml.to_owned()
        } else {
            format!("[pipeline]\nname = \"test\"\nroot = \".\"\n\n{toml}")
        };
        self.file("pipeline.toml", &toml)
    }

    pub(crate) fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative))
            .unwrap_or_else(|error| panic!("read {relative}: {error}"))
    }

    pub(crate) fn command(&self) -> Command {
        self.command_for(GANTRY)
    }

    /// `program` in the workspace with the same clean environment gantry gets (for wrappers
    /// such as `setpriv` or `script` that start gantry themselves).
    pub(crate) fn command_for(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.root())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.path("home"))
            // Tests build local derivations whose builder is the host's `/bin/sh`: no binary
            // cache to ask, and no Nix sandbox (which has no `/bin/sh`), as on Debian.
            .env("NIX_CONFIG", "substituters =\nsandbox = false");
        command
    }

    pub(crate) fn run<const N: usize>(&self, args: [&str; N]) -> Run {
        let output = self.command().args(args).output().expect("run gantry");
        Run { output }
    }

    /// `gantry run pipeline.toml --json` plus `extra`.
    pub(crate) fn gantry_run(&self, extra: &[&str]) -> Run {
        let output = self
            .command()
            .args(["run", "pipeline.toml", "--json"])
            .args(extra)
            .output()
            .expect("run gantry");
        Run { output }
    }
}

pub(crate) struct Run {
    pub output: Output,
}

impl Run {
    pub(crate) fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub(crate) fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub(crate) fn code(&self) -> i32 {
        self.output.status.code().unwrap_or(-1)
    }

    #[track_caller]
    pub(crate) fn success(self) -> Self {
        assert_eq!(
            self.code(),
            0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub(crate) fn failure(self, code: i32) -> Self {
        assert_eq!(
            self.code(),
            code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }

    #[track_caller]
    pub(crate) fn stderr_contains(self, text: &str) -> Self {
        assert!(
            self.stderr().contains(text),
            "stderr lacks {text:?}:\n{}",
            self.stderr()
        );
        self
    }

    pub(crate) fn stdout_contains(self, text: &str) -> Self {
        assert!(
            self.stdout().contains(text),
            "stdout lacks {text:?}:\n{}",
            self.stdout()
        );
        self
    }

    /// The JSON events printed with `--json`.
    pub(crate) fn events(&self) -> Vec<serde_json::Value> {
        self.stdout()
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|error| panic!("bad JSON line {line:?}: {error}"))
            })
            .collect()
    }

    /// `step → status` from `step_finished` events.
    pub(crate) fn statuses(&self) -> std::collections::BTreeMap<String, String> {
        self.events()
            .iter()
            .filter(|event| event["event"] == "step_finished")
            .map(|event| {
                (
                    event["step"].as_str().unwrap_or("").to_owned(),
                    event["status"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect()
    }

    pub(crate) fn finished(&self) -> serde_json::Value {
        self.events()
            .into_iter()
            .find(|event| event["event"] == "run_finished")
            .expect("run_finished event")
    }

    pub(crate) fn run_dir(&self) -> PathBuf {
        PathBuf::from(
            self.finished()["attestations"]
                .as_str()
                .expect("attestations"),
        )
    }
}

/// A step whose stdout we want to inspect writes it to `out/<name>.txt`.
pub(crate) fn probe_pipeline(name: &str, script: &str, extra: &str) -> String {
    format!("[steps.{name}]\nrun = '''{script}'''\noutputs = [\"out/{name}.txt\"]\n{extra}\n")
}

/// Lowercase hex SHA-256 of `bytes`.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    use std::fmt::Write as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut text, byte| {
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// Fails with the install hint when `program` is missing: CI must not skip tests silently.
pub(crate) fn require_tool(program: &str, version_flag: &str, hint: &str) {
    let found = Command::new(program)
        .arg(version_flag)
        .output()
        .is_ok_and(|output| output.status.success());
    assert!(found, "these tests need {program}: {hint}");
}

/// Copies every file under `from` into `to` (modes kept), making folders as needed.
pub(crate) fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.expect("walk");
        let target = to.join(entry.path().strip_prefix(from).expect("inside"));
        if entry.file_type().is_dir() {
            fs::create_dir_all(&target).expect("mkdir");
        } else {
            fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// The statement inside the DSSE envelope at `path` (not verified: the caller checks what it
/// needs).
pub(crate) fn envelope_statement(path: &Path) -> serde_json::Value {
    use base64::Engine as _;
    let envelope: serde_json::Value =
        serde_json::from_slice(&std::fs::read(path).expect("read")).expect("envelope");
    let body = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&body).expect("statement")
}

/// Where the run in `folder` keeps its attestation `name`: in the attestation store beside
/// it when its `SHA256SUMS` names it (the layout since issue 34), else in the folder.
pub(crate) fn attested(folder: &Path, name: impl AsRef<str>) -> PathBuf {
    let name = name.as_ref();
    gantry::attest::run_folder::find(folder, name)
        .ok()
        .flatten()
        .unwrap_or_else(|| folder.join(name))
}

/// Makes the run in `folder` a plain folder of attestations, as runs before issue 34 left
/// them: every attestation its `SHA256SUMS` names copied in, and the `SHA256SUMS` removed, so
/// a test can remove, copy or edit one file of the run.
pub(crate) fn flatten_run(folder: &Path) {
    for entry in gantry::attest::run_folder::list(folder).expect("run folder") {
        let inside = folder.join(&entry.name);
        if entry.path != inside {
            std::fs::copy(&entry.path, &inside).expect("copy a stored attestation in");
        }
    }
    let _ = std::fs::remove_file(folder.join("SHA256SUMS"));
}
