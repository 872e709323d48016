//! The trust boundary, attacked (docs/security.md): each test is an attack that must fail,
//! beside the legitimate use next to it that must keep working. CI runs them as root, which
//! is how gantry is usually run; where an unprivileged gantry behaves differently the test
//! runs that mode too (`as_nobody`).

mod cache;
mod descriptors;
mod gc;
mod identity;
mod init;
mod inputs;
mod limits;
mod network;
mod pipeline_file;
mod reading;
mod records;
mod remote_cache;
mod runlog;
mod settled;
mod slots;
mod symlinks;
mod templates;
mod usage;
mod vulns;

use std::process::Command;

use crate::support::{GANTRY, Test};

/// The host uid and gid steps run as when gantry is root (`SANDBOX_HOST_ID`).
pub(crate) const SANDBOX_HOST_ID: u32 = 0x7FFF_FFFE;

pub(crate) fn is_root() -> bool {
    // SAFETY: trivial getter.
    unsafe { libc::geteuid() == 0 }
}

/// `gantry ARGS` in the test's workspace as the unprivileged user 65534 (the workspace is
/// handed to that user first); as the current user when the tests do not run as root.
pub(crate) fn as_nobody(test: &Test, args: &[&str]) -> std::process::Output {
    let mut command = if is_root() {
        for entry in walkdir::WalkDir::new(test.root()) {
            let entry = entry.expect("walk");
            std::os::unix::fs::lchown(entry.path(), Some(65534), Some(65534)).expect("chown");
        }
        let mut command = test.command_for("setpriv");
        command.args(["--reuid=65534", "--regid=65534", "--clear-groups", GANTRY]);
        command
    } else {
        test.command()
    };
    command
        .args(args)
        .output()
        .expect("setpriv (util-linux) runs gantry")
}

/// Runs `script` with `python3` inside a step and returns what it printed to `out/probe.txt`.
pub(crate) fn python_probe(test: Test, script: &str, extra: &str) -> (Test, String) {
    let test = test
        .file("probe.py", script)
        .pipeline(&format!(
            "[steps.probe]\nrun = \"python3 probe.py > out/probe.txt\"\ninputs = [\"probe.py\"]\noutputs = [\"out/probe.txt\"]\n{extra}\n"
        ));
    test.gantry_run(&[]).success();
    let text = test.read("out/probe.txt");
    (test, text)
}

/// `program` run as the unprivileged user 65534 (root only). setpriv keeps its capabilities
/// across the change of uid until its own `execve`, so a shell in between makes the program's
/// `execve` an unprivileged one.
pub(crate) fn nobody(program: &str) -> Command {
    let mut command = Command::new("setpriv");
    command.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "/bin/sh",
        "-c",
        "exec \"$0\"",
        program,
    ]);
    command
}

/// Waits (up to 20 s) until a file called `name` appears under `folder` (a step's slot: the
/// step is running), and returns its path.
pub(crate) fn wait_for_file_in(folder: &std::path::Path, name: &str) -> std::path::PathBuf {
    let started = std::time::Instant::now();
    loop {
        let found = walkdir::WalkDir::new(folder)
            .into_iter()
            .flatten()
            .find(|entry| entry.file_name() == name);
        if let Some(entry) = found {
            return entry.into_path();
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no `{name}` appeared under {}",
            folder.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Whether a run's stderr or its JSON events say `text`.
#[track_caller]
pub(crate) fn says(run: &crate::support::Run, text: &str) {
    assert!(
        run.stderr().contains(text) || run.stdout().contains(text),
        "the run does not say {text:?}:\n{}\n{}",
        run.stdout(),
        run.stderr()
    );
}

/// A new P-256 signing key in `test`'s folder (mode 0600), by its path: for runs in other
/// workspaces that sign with the same key.
pub(crate) fn shared_key(test: &Test) -> String {
    let key = test.path("shared-key.pem");
    assert!(crate::attestations::generate_key(
        &key,
        "EC",
        "ec_paramgen_curve:P-256"
    ));
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("mode");
    key.to_str().expect("utf-8").to_owned()
}
