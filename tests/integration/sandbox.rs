//! Each sandbox property, proven by a step that tries to break it.

use std::fmt::Write as _;
use std::net::TcpListener;

use crate::support::{Test, probe_pipeline};

/// Runs one probing step; returns what it wrote to `out/probe.txt`.
fn probe(test: Test, script: &str, extra: &str) -> (Test, String) {
    let test = test.pipeline(&probe_pipeline("probe", script, extra));
    test.gantry_run(&[]).success();
    let text = test.read("out/probe.txt");
    (test, text)
}

#[test]
fn undeclared_workspace_files_do_not_exist() {
    let test = Test::new()
        .file("src/declared.txt", "yes")
        .file("src/secret.txt", "no");
    let (_, text) = probe(
        test,
        "ls -a src > out/probe.txt; test -e src/secret.txt && echo LEAK >> out/probe.txt; test -e pipeline.toml && echo LEAK >> out/probe.txt; true",
        "inputs = [\"src/declared.txt\"]",
    );
    assert_eq!(text, ".\n..\ndeclared.txt\n");
}

#[test]
fn inputs_and_system_folders_are_read_only() {
    let test = Test::new().file("src/in.txt", "original");
    let (test, text) = probe(
        test,
        "for target in src/in.txt /usr/bin/gantry-probe /etc/gantry-probe; do (echo x > $target) 2>/dev/null && echo \"WROTE $target\" || echo \"denied $target\"; done > out/probe.txt; (rm -f src/in.txt) 2>/dev/null; true",
        "inputs = [\"src/in.txt\"]",
    );
    assert_eq!(
        text,
        "denied src/in.txt\ndenied /usr/bin/gantry-probe\ndenied /etc/gantry-probe\n"
    );
    assert_eq!(test.read("src/in.txt"), "original");
}

#[test]
fn host_files_outside_system_folders_do_not_exist() {
    let test = Test::new();
    let outside = test.root().display().to_string();
    let script = format!(
        "for path in /root /work /var {outside} /srv; do test -e $path && echo \"seen $path\"; done > out/probe.txt; ls / >> out/probe.txt"
    );
    let (_, text) = probe(test, &script, "");
    assert!(
        !text.contains(&outside),
        "the test folder is visible: {text}"
    );
    assert!(
        !text.contains("seen /root") && !text.contains("seen /work") && !text.contains("seen /var"),
        "{text}"
    );
    let top: Vec<&str> = text
        .lines()
        .filter(|line| !line.starts_with("seen"))
        .collect();
    for name in &top {
        assert!(
            [
                "bin", "build", "dev", "etc", "home", "lib", "lib32", "lib64", "libx32", "nix",
                "proc", "sbin", "tmp", "usr"
            ]
            .contains(name),
            "unexpected /{name}"
        );
    }
}

#[test]
fn environment_is_clean_and_fixed() {
    let test = Test::new().pipeline(&probe_pipeline(
        "probe",
        "env | sort > out/probe.txt",
        "env = { MODE = \"release\" }",
    ));
    test.command()
        .args(["run", "pipeline.toml"])
        .env("SECRET_TOKEN", "hunter2")
        .env("LD_PRELOAD", "/nope.so")
        .output()
        .expect("run");
    let text = test.read("out/probe.txt");
    let names: Vec<&str> = text
        .lines()
        .map(|line| line.split('=').next().unwrap_or(""))
        .collect();
    assert_eq!(
        names,
        [
            "HOME", "LANG", "LC_ALL", "MODE", "PATH", "PWD", "TMPDIR", "TZ"
        ],
        "{text}"
    );
    assert!(
        text.contains("TZ=UTC\n")
            && text.contains("HOME=/home/build\n")
            && text.contains("MODE=release\n")
    );
    assert!(!text.contains("hunter2"));
}

#[test]
fn hostname_user_and_process_namespace_are_private() {
    let test = Test::new();
    let host_pid = std::process::id();
    let script = format!(
        "hostname > out/probe.txt; id -u >> out/probe.txt; echo $$ >> out/probe.txt; ls /proc | grep -c '^[0-9]' >> out/probe.txt; kill -0 {host_pid} 2>/dev/null && echo KILLABLE >> out/probe.txt; true"
    );
    let (_, text) = probe(test, &script, "");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "gantry");
    assert_eq!(lines[1], "1000", "steps do not run as root");
    assert_eq!(lines[2], "1", "the step is pid 1 of its own namespace");
    assert!(
        lines[3].parse::<u32>().expect("count") <= 3,
        "only the step's processes are visible: {text}"
    );
    assert!(!text.contains("KILLABLE"));
}

#[test]
fn home_and_tmp_are_private_empty_and_writable() {
    let test = Test::new();
    let marker = test.path("home/host-marker");
    std::fs::write(&marker, "x").expect("marker");
    let (_, text) = probe(
        test,
        "echo $HOME $TMPDIR > out/probe.txt; ls -A $HOME /tmp >> out/probe.txt; touch $HOME/a /tmp/b && echo writable >> out/probe.txt",
        "",
    );
    assert_eq!(text, "/home/build /tmp\n/home/build:\n\n/tmp:\nwritable\n");
}

#[test]
fn network_is_off_unless_asked_for() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen");
    let port = listener.local_addr().expect("address").port();
    let script = format!(
        "(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo connected > out/probe.txt || echo refused > out/probe.txt; grep -c : /proc/net/dev >> out/probe.txt"
    );
    let (_, offline) = probe(Test::new(), &format!("bash -c '{script}'"), "");
    let lines: Vec<&str> = offline.lines().collect();
    assert_eq!(
        lines[0], "refused",
        "an offline step reached the host's loopback"
    );
    assert_eq!(lines[1], "1", "an offline step sees only its own loopback");
    let (_, online) = probe(
        Test::new(),
        &format!("bash -c '{script}'"),
        "network = true",
    );
    assert!(online.starts_with("connected"), "{online}");
}

#[test]
fn only_declared_outputs_leave_the_sandbox() {
    let test = Test::new().pipeline("[steps.a]\nrun = \"echo kept > out/a.txt; echo dropped > out/extra.txt; echo dropped > stray.txt\"\noutputs = [\"out/a.txt\"]\n");
    test.gantry_run(&[]).success();
    assert_eq!(test.read("out/a.txt"), "kept\n");
    assert!(!test.path("out/extra.txt").exists() && !test.path("stray.txt").exists());
}

#[test]
fn the_program_is_recorded_as_a_material_with_its_digest() {
    let test = Test::new().pipeline("[steps.a]\nrun = [\"cat\", \"/etc/hostname\"]\n");
    let run = test.gantry_run(&[]).success();
    let statement =
        crate::attestations::statement(&crate::support::attested(&run.run_dir(), "a.intoto.json"));
    let materials = statement["predicate"]["materials"]
        .as_array()
        .expect("materials");
    let tool = materials
        .iter()
        .find(|material| material["annotations"]["role"] == "tool")
        .expect("tool material");
    let path = tool["name"].as_str().expect("name");
    let expected = sha256_hex(&std::fs::read(path).expect("read tool"));
    assert_eq!(tool["digest"]["sha256"], expected.as_str());
    assert!(path.ends_with("/cat"));
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .fold(String::new(), |mut hex, byte| {
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[test]
fn source_date_epoch_is_the_commit_time() {
    let test = Test::new().pipeline(&probe_pipeline(
        "probe",
        "echo $SOURCE_DATE_EPOCH > out/probe.txt",
        "",
    ));
    let git = |args: &[&str]| {
        let status = std::process::Command::new("git")
            .args(args)
            .current_dir(test.root())
            .env("GIT_COMMITTER_DATE", "2001-09-09T01:46:40Z")
            .env("GIT_AUTHOR_DATE", "2001-09-09T01:46:40Z")
            .output()
            .expect("git is installed");
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    };
    git(&["init", "-q"]);
    git(&["add", "pipeline.toml"]);
    git(&[
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@example.invalid",
        "commit",
        "-q",
        "-m",
        "init",
    ]);
    test.gantry_run(&[]).success();
    assert_eq!(test.read("out/probe.txt"), "1000000000\n");
}

#[test]
fn symlinks_out_of_the_workspace_are_neither_read_nor_written_through() {
    let outside = tempfile::tempdir().expect("outside");
    std::fs::write(outside.path().join("secret"), "host secret").expect("secret");
    let test = Test::new().pipeline("[steps.read]\nrun = \"cat src/leak > out/leak\"\ninputs = [\"src/leak\"]\noutputs = [\"out/leak\"]\n");
    std::fs::create_dir_all(test.path("src")).expect("src");
    std::os::unix::fs::symlink(outside.path().join("secret"), test.path("src/leak")).expect("link");
    test.run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains("`src/leak` is a symlink that leads outside the workspace");

    let test = Test::new()
        .pipeline("[steps.write]\nrun = \"echo x > out/planted\"\noutputs = [\"out/planted\"]\n");
    std::os::unix::fs::symlink(outside.path(), test.path("out")).expect("link");
    test.gantry_run(&[]).failure(1);
    assert!(
        !outside.path().join("planted").exists(),
        "gantry wrote through a symlinked folder"
    );
}

/// Runs `gantry run` as an unprivileged user: gantry then cannot make the shared network
/// namespace and gives each offline step its own.
#[test]
fn works_for_an_unprivileged_user() {
    use std::os::unix::fs::chown;
    let test = Test::new().pipeline(
        "[steps.offline]\nrun = \"id -u > out/offline; grep -c : /proc/net/dev >> out/offline\"\noutputs = [\"out/offline\"]\n\n[steps.online]\nrun = \"cat out/offline > out/online\"\ninputs = [\"out/offline\"]\noutputs = [\"out/online\"]\nnetwork = true\n",
    );
    // SAFETY: trivial getter.
    let root = unsafe { libc::geteuid() } == 0;
    let mut command = if root {
        for entry in walkdir::WalkDir::new(test.root()) {
            let entry = entry.expect("walk");
            chown(entry.path(), Some(65534), Some(65534)).expect("chown");
        }
        let mut command = test.command_for("setpriv");
        command.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            crate::support::GANTRY,
        ]);
        command
    } else {
        test.command()
    };
    let output = command
        .args(["run", "pipeline.toml"])
        .output()
        .expect("setpriv (util-linux) runs gantry");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        test.read("out/online"),
        "1000\n1\n",
        "uid 1000 inside, loopback only"
    );
}

/// A `[tools]` folder outside the system folders: seen read-only at `/tools/NAME` by the steps
/// that list it (its `bin` first on PATH, programs runnable by name), invisible to the others,
/// recorded by tree digest, and a change inside it re-runs the steps that use it.
#[test]
fn declared_tools_are_mounted_read_only_recorded_and_keyed() {
    let test = Test::new();
    let toolchain = tempfile::tempdir().expect("tool folder");
    let greet = toolchain.path().join("bin/greet");
    std::fs::create_dir_all(greet.parent().expect("bin")).expect("mkdir");
    std::fs::write(&greet, "#!/bin/sh\necho \"hello from $0\"\n").expect("write");
    std::fs::set_permissions(&greet, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let pipeline = format!(
        r#"[tools]
greeter = "{}"

[steps.use]
tools = ["greeter"]
run = "greet > out/use.txt; echo $PATH >> out/use.txt; (echo x > /tools/greeter/bin/greet) 2>/dev/null && echo WROTE >> out/use.txt; true"
outputs = ["out/use.txt"]

[steps.direct]
tools = ["greeter"]
run = ["greet"]
outputs = []

[steps.other]
run = "test -e /tools && echo LEAK > out/other.txt || echo absent > out/other.txt"
outputs = ["out/other.txt"]
"#,
        toolchain.path().display()
    );
    let test = test.pipeline(&pipeline);
    let run = test.gantry_run(&[]).success();
    assert_eq!(
        test.read("out/use.txt"),
        "hello from /tools/greeter/bin/greet\n/tools/greeter/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin\n"
    );
    assert_eq!(test.read("out/other.txt"), "absent\n");
    let link = crate::attestations::statement(&crate::support::attested(
        &run.run_dir(),
        "use.intoto.json",
    ));
    let material = (link["predicate"]["materials"]
        .as_array()
        .expect("materials")
        .iter())
    .find(|material| material["name"] == "/tools/greeter")
    .expect("the tool is a material")
    .clone();
    assert_eq!(material["annotations"]["role"], "toolchain");
    let canonical = std::fs::canonicalize(toolchain.path()).expect("canonical");
    assert_eq!(material["uri"], format!("file://{}", canonical.display()));

    let again = test.gantry_run(&[]).success();
    assert_eq!(again.statuses()["use"], "cached");
    std::fs::write(&greet, "#!/bin/sh\necho \"hi from $0\"\n").expect("edit the tool");
    let changed = test.gantry_run(&[]).success();
    assert_eq!(changed.statuses()["use"], "executed");
    assert_eq!(changed.statuses()["direct"], "executed");
    assert_eq!(changed.statuses()["other"], "cached");
    let relinked = crate::attestations::statement(&crate::support::attested(
        &changed.run_dir(),
        "use.intoto.json",
    ));
    let digest = |statement: &serde_json::Value| {
        (statement["predicate"]["materials"]
            .as_array()
            .expect("materials")
            .iter())
        .find(|material| material["name"] == "/tools/greeter")
        .map(|material| material["digest"]["sha256"].clone())
    };
    assert_ne!(digest(&link), digest(&relinked));
}

#[test]
fn tool_mistakes_are_shown_at_their_line() {
    let test = Test::new().pipeline(
        r#"[tools]
rust = "relative/path"

[steps.build]
tools = ["rustc"]
run = "true"
outputs = []
"#,
    );
    test.run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains(
            "pipeline.toml:6:8: error: tool `rust`: `relative/path` is not an absolute folder",
        )
        .stderr_contains(
            "pipeline.toml:9:10: error: `tools` names `rustc`, which `[tools]` does not declare",
        );
    let missing = Test::new().pipeline(
        "[tools]\nrust = \"/nonexistent/toolchain\"\n\n[steps.build]\ntools = [\"rust\"]\nrun = \"true\"\noutputs = []\n",
    );
    let run = missing.gantry_run(&[]).failure(1);
    assert!(
        run.stdout()
            .contains("tool `rust`: `/nonexistent/toolchain`"),
        "{}",
        run.stdout()
    );
}
