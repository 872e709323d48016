//! The scheduler and cache logic on a recording executor: no namespaces, no processes.

use std::path::Path;
use std::sync::{Arc, Mutex};

use p256::ecdsa::SigningKey;
use rand_core::OsRng;

use crate::exec::executor::Executor;
use crate::exec::sandbox::{Finished, Log, Request, SandboxError, Termination};
use crate::keys::EcdsaSigner;
use crate::pipeline::{SourceFile, validate};
use crate::report::Reporter;
use crate::run::{RunOptions, RunSummary, run_with_executor};

/// Records the shell command of every action it is given; "runs" none of them.
struct Recorder {
    log: Arc<Mutex<Vec<String>>>,
    failing: Vec<&'static str>,
}

impl Executor for Recorder {
    fn execute(&self, request: &Request<'_>) -> Result<Finished, SandboxError> {
        let command = request.argv.last().cloned().unwrap_or_default();
        let code = i32::from(self.failing.contains(&command.as_str()));
        self.log.lock().expect("log").push(command);
        Ok(Finished {
            termination: Termination::Exited(code),
            stdout: Log::default(),
            stderr: Log::default(),
            remote: None,
            reached: None,
            rusage: None,
            group: None,
            processes: None,
        })
    }

    fn name(&self) -> &'static str {
        "recording"
    }
}

const PIPELINE: &str = r#"[pipeline]
name = "p"
[steps.a]
run = "a"
[steps.b]
run = "b"
needs = ["a"]
[steps.c]
run = "c"
needs = ["b"]
[steps.d]
run = "d"
"#;

static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();

fn run(root: &Path, failing: Vec<&'static str>, keep_going: bool) -> (RunSummary, Vec<String>) {
    let file = root.join("p.toml");
    let source = SourceFile {
        path: file.clone(),
        text: Arc::from(PIPELINE),
    };
    let location = validate::Location {
        file: &file,
        default_root: root,
        templates: &crate::template::Templates::new(),
    };
    let pipeline = validate::parse(&source, &location).expect("valid");
    // One key for every run of a test: a cached result is used only when this key vouches for it.
    let key = KEY.get_or_init(|| SigningKey::random(&mut OsRng));
    let signer = EcdsaSigner::new(key).expect("signer");
    let options = RunOptions {
        remote: None,
        trusted_cache_keys: Vec::new(),
        jobs: 1,
        keep_going,
        attestations: root.join("attestations"),
        cache_dir: root.join(".gantry"),
        reporter: Reporter::quiet(),
        rebuild: None,
        artifact_keys: crate::exec::context::Keys::default(),
        cargo_home: None,
        parameters: std::collections::BTreeMap::new(),
        builder_id: crate::attest::provenance::LOCAL_BUILDER_ID.to_owned(),
        bundles: false,
        home: None,
        release: None,
        tenant: None,
    };
    let log = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        log: Arc::clone(&log),
        failing,
    };
    let summary = run_with_executor(pipeline, Box::new(signer), options, |_| {
        Ok(Box::new(recorder))
    })
    .expect("run");
    let log = log.lock().expect("log").clone();
    (summary, log)
}

#[test]
fn steps_run_after_what_they_need_in_file_order() {
    let root = tempfile::tempdir().expect("root");
    let (summary, log) = run(root.path(), vec![], false);
    assert_eq!(log, ["a", "d", "b", "c"]);
    assert_eq!(
        (summary.executed, summary.cached, summary.failed),
        (4, 0, 0)
    );
    let (again, log) = run(root.path(), vec![], false);
    assert!(log.is_empty(), "a second run executes nothing: {log:?}");
    assert_eq!(again.cached, 4);
}

#[test]
fn fail_fast_skips_the_rest() {
    let root = tempfile::tempdir().expect("root");
    let (summary, log) = run(root.path(), vec!["b"], false);
    assert_eq!(log, ["a", "d", "b"]);
    assert_eq!((summary.failed, summary.skipped), (1, 1));
    assert!(!summary.success());
}

#[test]
fn keep_going_skips_only_dependents() {
    let root = tempfile::tempdir().expect("root");
    let (summary, log) = run(root.path(), vec!["a"], true);
    assert_eq!(log, ["a", "d"]);
    assert_eq!(
        (summary.executed, summary.failed, summary.skipped),
        (1, 1, 2)
    );
}
