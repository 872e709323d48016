//! The human output of `check`, `run`, `verify`, `repro`, `release` and `release verify` on
//! the bundled hello example, pinned as text in `tests/integration/snapshots/` with what
//! differs from run to run masked (paths, run ids, times, durations, digests). A change to
//! what gantry prints shows here as a diff to review; after one on purpose,
//! `GANTRY_UPDATE_SNAPSHOTS=1 cargo test --test integration snapshots` writes the new text.

use std::fmt::Write as _;
use std::path::Path;

use crate::support::Test;

/// What differs from one run to the next, by what it is.
fn mask(text: &str, root: &Path) -> String {
    let text = text.replace(&root.display().to_string(), "[ROOT]");
    let rules = [
        (r"\d{8}T\d{6}Z-[0-9a-f]{8}", "[RUN]"),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "[TIME]"),
        (r"\b[0-9a-f]{12,64}\b", "[HEX]"),
        (r"\(\d+ ms\)", "([N] ms)"),
        (r"in \d+\.\d+s", "in [N]s"),
        (r"\+\d+ days", "+[N] days"),
    ];
    rules.iter().fold(text, |text, (pattern, replacement)| {
        regex::Regex::new(pattern)
            .expect("a pattern")
            .replace_all(&text, *replacement)
            .into_owned()
    })
}

/// Compares `text` with the snapshot `name`, or writes it when asked to.
fn snapshot(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/integration/snapshots")
        .join(format!("{name}.txt"));
    if std::env::var_os("GANTRY_UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().expect("folder")).expect("mkdir");
        std::fs::write(&path, text).expect("write the snapshot");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "{}: {error}; write it with GANTRY_UPDATE_SNAPSHOTS=1\n{text}",
            path.display()
        )
    });
    if expected != text {
        let first = (expected.lines().zip(text.lines()))
            .position(|(want, got)| want != got)
            .unwrap_or_else(|| expected.lines().count().min(text.lines().count()));
        panic!(
            "the output differs from {} at line {}:\n  expected: {:?}\n  got:      {:?}\n(after a change on purpose: GANTRY_UPDATE_SNAPSHOTS=1)\n--- got ---\n{text}",
            path.display(),
            first + 1,
            expected.lines().nth(first).unwrap_or("<end>"),
            text.lines().nth(first).unwrap_or("<end>"),
        );
    }
}

/// Runs gantry in `test` and adds the command, what it printed and its exit code.
fn transcript(test: &Test, into: &mut String, args: &[&str]) {
    let output = test.command().args(args).output().expect("run gantry");
    let _ = writeln!(into, "$ gantry {}", args.join(" "));
    for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        if !text.is_empty() {
            let _ = write!(into, "[{stream}]\n{text}");
            if !text.ends_with('\n') {
                into.push('\n');
            }
        }
    }
    let _ = writeln!(into, "[exit {}]\n", output.status.code().unwrap_or(-1));
}

fn git(test: &Test, args: &[&str]) {
    let status = test
        .command_for("git")
        .args(["-c", "user.name=Snap", "-c", "user.email=snap@example.org"])
        .args(args)
        .env("GIT_AUTHOR_DATE", "2026-11-01T12:00:00Z")
        .env("GIT_COMMITTER_DATE", "2026-11-01T12:00:00Z")
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}

#[test]
fn the_hello_example_prints_what_it_printed_before() {
    let test = crate::examples::example_workspace();
    let keys = test.run(["keys", "public"]).success().stdout();
    test.write("policies/dev.pub", &keys);
    // The test's HOME (gantry's caches) lies inside its workspace; a user's does not.
    test.write(".gitignore", "/home/\n");
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "the example"]);
    let mut out = String::new();
    transcript(&test, &mut out, &["check", "pipelines/hello.toml"]);
    transcript(
        &test,
        &mut out,
        &["run", "pipelines/hello.toml", "--jobs", "1"],
    );
    transcript(
        &test,
        &mut out,
        &["run", "pipelines/hello.toml", "--jobs", "2"],
    );
    let runs = test.path("attestations");
    let newest = std::fs::read_dir(&runs)
        .expect("attestations")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("20"))
        .max()
        .expect("a run");
    let attestations = format!("attestations/{newest}");
    transcript(
        &test,
        &mut out,
        &[
            "verify",
            "--policy",
            "policies/hello.toml",
            "--attestations",
            &attestations,
            "out/hello/pkg.tar",
        ],
    );
    transcript(
        &test,
        &mut out,
        &["repro", "pipelines/hello.toml", "--jobs", "1"],
    );
    transcript(
        &test,
        &mut out,
        &[
            "release",
            "0.1.0",
            "--pipeline",
            "pipelines/hello.toml",
            "--policy",
            "policies/hello.toml",
            "--jobs",
            "1",
        ],
    );
    transcript(
        &test,
        &mut out,
        &[
            "release",
            "verify",
            "0.1.0",
            "--policy",
            "policies/hello.toml",
        ],
    );
    snapshot("hello", &mask(&out, test.dir.path()));
}

#[test]
fn check_prints_every_mistake_as_it_did_before() {
    let test = Test::new().file("src/a.txt", "a\n").pipeline(
        "[pipeline]\nname = \"broken\"\n\n[steps.build]\nrun = \"true\"\ninptus = [\"src/a.txt\"]\noutputs = [\"out/a\"]\ntimeout = \"soon\"\n\n[steps.package]\nrun = \"true\"\ninputs = [\"out/a\"]\noutputs = [\"out/a\"]\nneeds = [\"biuld\"]\n",
    );
    let mut out = String::new();
    transcript(&test, &mut out, &["check", "pipeline.toml"]);
    snapshot("check-mistakes", &mask(&out, test.dir.path()));
}

#[test]
fn masks_hide_what_changes_between_runs() {
    let root = Path::new("/tmp/.tmpAbC");
    assert_eq!(
        mask(
            "/tmp/.tmpAbC/attestations/20261206T155127Z-0e0a6666 at 2026-12-06T15:51:35Z (22 ms) in 0.28s sha256:6865bcb13bb1a85910e9cf52081b1fe0ed02e9e4101853df5002a2d7572f50ec +398 days",
            root
        ),
        "[ROOT]/attestations/[RUN] at [TIME] ([N] ms) in [N]s sha256:[HEX] +[N] days"
    );
}
