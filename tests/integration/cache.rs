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
