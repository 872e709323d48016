//! The content-addressed store and action cache: no-op re-runs, precise invalidation, early
//! cutoff, and recovery from corrupted or swapped entries.

use std::collections::BTreeMap;
use std::fs;

use crate::support::Test;

const CHAIN: &str = r#"
[steps.first]
run = "tr a-z A-Z < src/in.txt > out/first.txt"
inputs = ["src/in.txt"]
outputs = ["out/first.txt"]

[steps.second]
run = "cut -c1-3 out/first.txt > out/second.txt"
inputs = ["out/first.txt"]
outputs = ["out/second.txt"]

[steps.third]
run = "tr A-Z a-z < out/second.txt > out/third.txt"
inputs = ["out/second.txt"]
outputs = ["out/third.txt"]

[steps.other]
run = "wc -c < src/other.txt > out/other.txt"
inputs = ["src/other.txt"]
outputs = ["out/other.txt"]
"#;

fn statuses(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(step, status)| ((*step).to_owned(), (*status).to_owned()))
        .collect()
}

fn chain() -> Test {
    Test::new()
        .file("src/in.txt", "abcdef\n")
        .file("src/other.txt", "xyz\n")
        .pipeline(CHAIN)
}

#[test]
fn a_second_run_executes_nothing() {
    let test = chain();
    let first = test.gantry_run(&[]).success();
    assert_eq!(first.finished()["executed"], 4);
    let second = test.gantry_run(&[]).success();
    assert_eq!(
        second.statuses(),
        statuses(&[
            ("first", "cached"),
            ("second", "cached"),
            ("third", "cached"),
            ("other", "cached")
        ])
    );
    assert_eq!(test.read("out/third.txt"), "abc\n");
}

#[test]
fn changing_one_input_reruns_only_its_dependents() {
    let test = chain();
    test.gantry_run(&[]).success();
    test.write("src/other.txt", "longer text\n");
    let run = test.gantry_run(&[]).success();
    assert_eq!(
        run.statuses(),
        statuses(&[
            ("first", "cached"),
            ("second", "cached"),
            ("third", "cached"),
            ("other", "executed")
        ])
    );
    assert_eq!(test.read("out/other.txt"), "12\n");
}

#[test]
fn unchanged_intermediate_output_stops_the_rerun() {
    let test = chain();
    test.gantry_run(&[]).success();
    // Only the first three characters reach `second`'s output: it stays the same.
    test.write("src/in.txt", "abcXYZ\n");
    let run = test.gantry_run(&[]).success();
    assert_eq!(
        run.statuses(),
        statuses(&[
            ("first", "executed"),
            ("second", "executed"),
            ("third", "cached"),
            ("other", "cached")
        ])
    );
}

#[test]
fn a_deleted_output_is_restored_without_running() {
    let test = chain();
    test.gantry_run(&[]).success();
    fs::remove_file(test.path("out/third.txt")).expect("remove");
    test.write("out/second.txt", "tampered\n");
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 0);
    assert_eq!(test.read("out/third.txt"), "abc\n");
    assert_eq!(test.read("out/second.txt"), "ABC\n");
}

fn cas_blob_of(test: &Test, content: &[u8]) -> std::path::PathBuf {
    let hex = crate::sandbox::sha256_hex(content);
    test.path(&format!(".gantry/cas/{}/{hex}", &hex[..2]))
}

#[test]
fn a_corrupted_blob_is_reported_discarded_and_rebuilt() {
    let test = chain();
    test.gantry_run(&[]).success();
    let blob = cas_blob_of(&test, b"abc\n");
    assert!(blob.is_file());
    let mut permissions = fs::metadata(&blob).expect("blob").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o644);
    fs::set_permissions(&blob, permissions).expect("chmod");
    fs::write(&blob, "EVIL\n").expect("corrupt");
    fs::remove_file(test.path("out/third.txt")).expect("remove");
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.statuses()["third"], "executed");
    let warnings: Vec<_> = run
        .events()
        .into_iter()
        .filter(|event| event["event"] == "warning")
        .collect();
    assert!(
        warnings.iter().any(|warning| warning["step"] == "third"
            && warning["message"]
                .as_str()
                .unwrap_or("")
                .contains("corrupt")),
        "{warnings:?}"
    );
    assert_eq!(test.read("out/third.txt"), "abc\n");
    assert_eq!(
        fs::read(&blob).expect("blob"),
        b"abc\n",
        "the store holds the right content again"
    );
}

#[test]
fn a_swapped_action_cache_entry_is_discarded() {
    let test = chain();
    test.gantry_run(&[]).success();
    let entries: Vec<_> = fs::read_dir(test.path(".gantry/ac"))
        .expect("ac")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 4);
    // Put one entry's content under another's key. The per-pipeline index would serve the
    // right entries without reading these files: remove it so they are read.
    fs::remove_dir_all(test.path(".gantry/index")).expect("index");
    let content = fs::read(&entries[0]).expect("read");
    fs::write(&entries[1], content).expect("swap");
    for output in ["first", "second", "third", "other"] {
        fs::remove_file(test.path(&format!("out/{output}.txt"))).expect("remove");
    }
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 1, "{:?}", run.statuses());
    assert_eq!(test.read("out/third.txt"), "abc\n");
    assert_eq!(test.read("out/other.txt"), "4\n");
}

#[test]
fn folder_outputs_are_cached_and_feed_later_steps() {
    let test = Test::new().pipeline(
        "[steps.gen]\nrun = \"mkdir -p out/gen/sub && echo 1 > out/gen/a.txt && echo 2 > out/gen/sub/b.txt && chmod +x out/gen/a.txt\"\noutputs = [\"out/gen/\"]\n\n[steps.use]\nrun = \"cat out/gen/a.txt out/gen/sub/b.txt > out/use.txt\"\ninputs = [\"out/gen/\"]\noutputs = [\"out/use.txt\"]\n",
    );
    test.gantry_run(&[]).success();
    assert_eq!(test.read("out/use.txt"), "1\n2\n");
    fs::remove_dir_all(test.path("out/gen")).expect("remove");
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 0);
    assert_eq!(test.read("out/gen/sub/b.txt"), "2\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &fs::metadata(test.path("out/gen/a.txt"))
            .expect("meta")
            .permissions(),
    );
    assert_eq!(mode & 0o111, 0o111, "the executable bit is restored");
}

#[test]
fn the_cache_dir_can_be_moved() {
    let test = chain();
    let cache = tempfile::tempdir().expect("cache");
    let run = |test: &Test| {
        test.command()
            .args(["run", "pipeline.toml", "--json"])
            .env("GANTRY_CACHE_DIR", cache.path())
            .output()
            .expect("run")
    };
    assert!(run(&test).status.success());
    assert!(!test.path(".gantry").exists());
    assert!(cache.path().join("cas").is_dir());
    let second = run(&test);
    assert!(String::from_utf8_lossy(&second.stdout).contains("\"executed\":0"));
}

/// `git commit` in `test` with this commit time.
fn commit_at(test: &Test, message: &str, date: &str) {
    for args in [&["add", "-A"][..], &["commit", "-q", "-m", message][..]] {
        let output = std::process::Command::new("git")
            .current_dir(test.root())
            .args(["-c", "user.name=Dev", "-c", "user.email=dev@example.org"])
            .args(["-c", "commit.gpgsign=false"])
            .args(args)
            .env("GIT_AUTHOR_DATE", date)
            .env("GIT_COMMITTER_DATE", date)
            .output()
            .expect("git");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

/// A step's `SOURCE_DATE_EPOCH` is when what it reads last changed, not HEAD's time: a commit
/// that touches nothing a step reads (a CI file) re-runs nothing, and a commit that changes a
/// source re-runs the steps that read it and their dependents, which see the new time.
#[test]
fn a_commit_that_touches_nothing_a_step_reads_reruns_nothing() {
    let test = Test::new()
        .file("src/a.c", "int a;\n")
        .file("src/b.c", "int b;\n")
        .file(".gitignore", "/out/\n/.gantry/\n/attestations/\n/home/\n")
        .pipeline(
            r#"[steps.a]
run = "echo $SOURCE_DATE_EPOCH > out/a.epoch; cat src/a.c > out/a"
inputs = ["src/a.c"]
outputs = ["out/a", "out/a.epoch"]

[steps.b]
run = "echo $SOURCE_DATE_EPOCH > out/b.epoch; cat src/b.c > out/b"
inputs = ["src/b.c"]
outputs = ["out/b", "out/b.epoch"]

[steps.both]
run = "echo $SOURCE_DATE_EPOCH > out/both.epoch; cat out/a out/b > out/both"
inputs = ["out/a", "out/b"]
outputs = ["out/both", "out/both.epoch"]
"#,
        );
    let git = std::process::Command::new("git")
        .current_dir(test.root())
        .args(["init", "-q", "-b", "main"])
        .status()
        .expect("git init");
    assert!(git.success());
    // 2026-11-01 and -03 at noon, UTC.
    let (first, third) = (1_793_534_400_i64, 1_793_707_200_i64);
    commit_at(&test, "first", "2026-11-01T12:00:00Z");
    let epoch = |step: &str| -> i64 {
        test.read(&format!("out/{step}.epoch"))
            .trim()
            .parse()
            .expect("epoch")
    };
    assert_eq!(test.gantry_run(&[]).success().finished()["executed"], 3);
    assert_eq!([epoch("a"), epoch("b"), epoch("both")], [first; 3]);

    test.write(".ci.yml", "jobs: {}\n");
    commit_at(&test, "ci: a workflow", "2026-11-02T12:00:00Z");
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 0, "{}", run.stdout());
    assert_eq!(run.finished()["cached"], 3);

    test.write("src/b.c", "int b = 2;\n");
    commit_at(&test, "b: two", "2026-11-03T12:00:00Z");
    let run = test.gantry_run(&[]).success();
    assert_eq!(
        run.statuses(),
        statuses(&[("a", "cached"), ("b", "executed"), ("both", "executed")])
    );
    assert_eq!(
        [epoch("a"), epoch("b"), epoch("both")],
        [first, third, third]
    );
}

/// The host system is in an exec step's key: the same run with one package's version changed
/// in dpkg's database (shown to gantry alone, through a bind mount in a mount namespace of its
/// own) runs the step again, and the link and provenance name the new version.
#[test]
fn a_new_compiler_on_the_host_reruns_exec_steps() {
    // SAFETY: trivial getter.
    assert!(
        // SAFETY: geteuid has no preconditions.
        unsafe { libc::geteuid() } == 0,
        "this test shows gantry another dpkg database through a mount namespace: run it as root"
    );
    let test = Test::new()
        .file("src/a.c", "int a;\n")
        .pipeline("[steps.cc]\nrun = \"cat src/a.c > out/a.o\"\ninputs = [\"src/a.c\"]\noutputs = [\"out/a.o\"]\n");
    let first = test.gantry_run(&[]).success();
    assert_eq!(first.finished()["executed"], 1);
    assert_eq!(test.gantry_run(&[]).success().finished()["cached"], 1);
    let host = |run: &crate::support::Run| -> (serde_json::Value, serde_json::Value) {
        let link = crate::attestations::statement(&crate::support::attested(
            &run.run_dir(),
            "cc.intoto.json",
        ));
        let material = (link["predicate"]["materials"]
            .as_array()
            .expect("materials")
            .iter())
        .find(|material| material["name"] == "/usr")
        .cloned()
        .expect("the link names the host system");
        let provenance =
            crate::attestations::statement(&run.run_dir().join("provenance.intoto.json"));
        let dependency = (provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
            .as_array()
            .expect("dependencies")
            .iter())
        .find(|dependency| dependency["name"] == "/usr")
        .cloned()
        .expect("the provenance names the host system");
        (material, dependency)
    };
    let (material, dependency) = host(&first);
    assert_eq!(material["annotations"]["role"], "host-system");
    let packages = dependency["annotations"]["packages"].to_string();
    let bash = packages
        .split('"')
        .find(|package| package.starts_with("bash="))
        .expect("bash is installed")
        .to_owned();

    // bash "upgraded": only the Version line of its stanza changes.
    let status = std::fs::read_to_string("/var/lib/dpkg/status").expect("dpkg status");
    let upgraded: String = status
        .split("\n\n")
        .map(|stanza| {
            if stanza.starts_with("Package: bash\n") {
                (stanza.lines())
                    .map(|line| {
                        if line.starts_with("Version: ") {
                            "Version: 99.0-1".to_owned()
                        } else {
                            line.to_owned()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                stanza.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n\n");
    test.write("home/status", &upgraded);
    let script = format!(
        "mount --bind {} /var/lib/dpkg/status && exec {} run pipeline.toml --json",
        test.path("home/status").display(),
        crate::support::GANTRY
    );
    let output = test
        .command_for("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let again = crate::support::Run { output }.success();
    assert_eq!(again.finished()["executed"], 1, "{}", again.stdout());
    let (new_material, new_dependency) = host(&again);
    assert_ne!(new_material["digest"], material["digest"]);
    let listed = new_dependency["annotations"]["packages"].to_string();
    assert!(listed.contains("\"bash=99.0-1 amd64\""), "{listed}");
    assert!(!listed.contains(&format!("\"{bash}\"")));
    // The real host again: the first result is still in the cache.
    assert_eq!(test.gantry_run(&[]).success().finished()["cached"], 1);
}

/// A folder output may hold symbolic links that stay inside it, as a `make install` tree does
/// (`libz.so -> libz.so.1`): they are kept as links, restored as links from the cache, shown
/// as links to the steps that read the folder, and left out of the subjects (what they point
/// to is listed itself).
#[test]
fn a_folder_output_keeps_its_links() {
    let test = Test::new().pipeline(
        r#"[steps.install]
run = "mkdir -p out/lib out/include && echo lib > out/lib/libz.so.1.3 && ln -s libz.so.1.3 out/lib/libz.so.1 && ln -s libz.so.1 out/lib/libz.so && echo h > out/include/zlib.h && ln -s ../include/zlib.h out/lib/zlib.h"
outputs = ["out/"]

[steps.use]
run = "readlink out/lib/libz.so > use.txt && cat out/lib/libz.so out/lib/zlib.h >> use.txt"
inputs = ["out/lib/", "out/include/"]
outputs = ["use.txt"]
"#,
    );
    let run = test.gantry_run(&[]).success();
    assert_eq!(test.read("use.txt"), "libz.so.1\nlib\nh\n");
    let link = |path: &str| std::fs::read_link(test.path(path)).expect("a link");
    assert_eq!(link("out/lib/libz.so"), std::path::Path::new("libz.so.1"));
    let statement = crate::attestations::statement(&crate::support::attested(
        &run.run_dir(),
        "install.intoto.json",
    ));
    let subjects: Vec<&str> = (statement["subject"].as_array().expect("subjects").iter())
        .filter_map(|subject| subject["name"].as_str())
        .collect();
    assert_eq!(subjects, ["out/include/zlib.h", "out/lib/libz.so.1.3"]);

    fs::remove_dir_all(test.path("out")).expect("remove");
    let again = test.gantry_run(&[]).success();
    assert_eq!(again.finished()["executed"], 0);
    assert_eq!(
        link("out/lib/libz.so.1"),
        std::path::Path::new("libz.so.1.3")
    );
    assert_eq!(
        link("out/lib/zlib.h"),
        std::path::Path::new("../include/zlib.h")
    );
    assert_eq!(test.read("out/lib/libz.so"), "lib\n");
}

/// `gantry gc`: the newest runs stay with everything they and their cache entries need (a run
/// after it executes nothing, and `verify` passes on a kept run); older runs, the entries only
/// they used and those blobs go; a run a release names stays whatever its age.
#[test]
fn gc_keeps_the_newest_runs_and_what_they_need() {
    let test = Test::new()
        .file("src/a.txt", "one\n")
        .pipeline("[steps.copy]\nrun = \"cp src/a.txt out.txt\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out.txt\"]\n");
    let first = test.gantry_run(&[]).success();
    for content in ["two\n", "three\n"] {
        test.write("src/a.txt", content);
        test.gantry_run(&[]).success();
    }
    let blobs = |test: &Test| {
        walkdir::WalkDir::new(test.path(".gantry/cas"))
            .into_iter()
            .flatten()
            .filter(|entry| entry.file_type().is_file())
            .count()
    };
    let before = blobs(&test);
    let dry = test
        .run(["gc", "pipeline.toml", "--keep", "1", "--dry-run", "--json"])
        .success();
    let said: serde_json::Value = serde_json::from_str(dry.stdout().trim()).expect("json");
    assert_eq!(said["runs"], 2);
    assert_eq!(blobs(&test), before, "a dry run removes nothing");
    let gc = test
        .run(["gc", "pipeline.toml", "--keep", "1", "--json"])
        .success();
    let said: serde_json::Value = serde_json::from_str(gc.stdout().trim()).expect("json");
    assert_eq!(said["runs"], 2);
    assert_eq!(said["cache_entries"], 2);
    assert!(said["blobs"].as_u64().expect("blobs") >= 4, "{said}");
    assert!(!first.run_dir().exists());
    assert!(blobs(&test) < before);
    let again = test.gantry_run(&[]).success();
    assert_eq!(
        again.finished()["executed"],
        0,
        "the newest run's results stay"
    );
    // Back to an old input: its result was collected, so the step runs again.
    test.write("src/a.txt", "one\n");
    assert_eq!(test.gantry_run(&[]).success().finished()["executed"], 1);
    assert_eq!(test.read("out.txt"), "one\n");
}
