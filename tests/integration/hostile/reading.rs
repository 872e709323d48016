//! Property 11: bounded reading. What gantry reads from outside is read only from a regular
//! file and only up to a cap; durations that overflow are errors at their line; control
//! characters in paths reach no terminal raw.

use std::time::{Duration, Instant};

use crate::support::Test;

#[test]
fn a_device_or_a_fifo_is_refused_at_once() {
    let test = Test::new();
    let started = Instant::now();
    test.run(["check", "/dev/zero"])
        .failure(3)
        .stderr_contains("it is a device; gantry reads a pipeline file only from a regular file");
    let fifo = test.path("policy.toml");
    let path = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    std::fs::create_dir_all(test.path("attestations/run")).expect("mkdir");
    test.write("artifact", "x");
    let run = test.run([
        "verify",
        "--policy",
        "policy.toml",
        "--attestations",
        "attestations/run",
        "artifact",
    ]);
    assert_ne!(run.code(), 0);
    assert!(run.stderr().contains("a FIFO"), "{}", run.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "something waited"
    );
}

#[test]
fn a_fifo_in_a_run_folder_or_as_the_artifact_does_not_hang_verify() {
    let test = Test::new().pipeline("[steps.a]\nrun = \"echo a > out/a\"\noutputs = [\"out/a\"]\n");
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    let fifo = folder.join("evil.intoto.json");
    let path = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("dev.pub", &public);
    test.write(
        "policy.toml",
        "[policy]\nname = \"p\"\n\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"*\"]\n",
    );
    let started = Instant::now();
    let verified = test
        .command()
        .args(["verify", "--policy", "policy.toml", "--attestations"])
        .arg(&folder)
        .arg("out/a")
        .output()
        .expect("verify");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "verify waited on a FIFO"
    );
    assert!(
        verified.status.success(),
        "a FIFO in the folder is not an attestation and is passed over: {}",
        String::from_utf8_lossy(&verified.stderr)
    );
    // A FIFO given as the artifact is refused at once.
    let artifact = test.path("out/fifo");
    let path = std::ffi::CString::new(artifact.to_str().expect("utf-8")).expect("path");
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let verified = test
        .command()
        .args(["verify", "--policy", "policy.toml", "--attestations"])
        .arg(&folder)
        .arg("out/fifo")
        .output()
        .expect("verify");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "verify waited on a FIFO"
    );
    assert!(!verified.status.success());
    assert!(
        String::from_utf8_lossy(&verified.stderr).contains("a FIFO"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
}

#[test]
fn durations_that_overflow_are_errors_at_their_line() {
    let test = Test::new().pipeline(
        "[steps.a]\nrun = \"true\"\ntimeout = \"18446744073709551615h\"\n\n[steps.b]\nrun = \"true\"\nretry = { attempts = 3, backoff = \"8000h\" }\n\n[steps.c]\nrun = \"true\"\nretry = { attempts = 3, backoff = \"2h\" }\n",
    );
    let run = test.run(["check", "pipeline.toml"]).failure(1);
    let stderr = run.stderr();
    assert!(stderr.contains("pipeline.toml:7:11"), "{stderr}");
    assert!(stderr.contains("longer than a year"), "{stderr}");
    assert!(stderr.contains("would leave the run waiting"), "{stderr}");
    assert!(stderr.contains("pipeline.toml:11:"), "{stderr}");
}

#[test]
fn control_characters_in_a_path_are_escaped_on_the_terminal() {
    let test = Test::new().pipeline(
        "[steps.a]\nrun = \"true\"\noutputs = [\"out/\\u001b]0;owned\\u0007\\u001b[2J\"]\n",
    );
    let run = test.run(["run", "pipeline.toml"]).failure(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("out/\\u{1b}]0;owned\\u{7}\\u{1b}[2J"),
        "the path is shown escaped: {stderr:?}"
    );
    assert!(
        !stderr.contains('\u{1b}'),
        "a raw escape reached the terminal: {stderr:?}"
    );
    assert!(!stderr.contains('\u{7}'), "{stderr:?}");
}
