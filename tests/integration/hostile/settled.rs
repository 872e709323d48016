//! The settled run (`run::settled`, docs/provenance.md "A run that finds everything as it
//! was left"), attacked: a run that plans no step must never stand for a workspace that is
//! not the one its record describes. Each change below is one the record must not survive:
//! an edited or deleted output, a file added to a folder output, a source touched or edited,
//! a changed toolchain, a new commit, a step's epoch changed under the same HEAD, a deleted
//! link, an edited or replayed record. Each ends
//! with a run that is right (outputs restored, steps run again where their key changed) and
//! verifies.

use std::fs;
use std::time::Duration;

use crate::records::{verify, workspace};
use crate::support::{Run, Test};

/// File times come from a coarse clock: a settled record names only files that changed more
/// than a second before the run that wrote it started.
fn settle() {
    std::thread::sleep(Duration::from_millis(1100));
}

fn settled(run: &Run) -> bool {
    run.finished().get("settled") == Some(&serde_json::Value::Bool(true))
}

/// Runs until a run plans no step: a run after a change writes the record once what it reads
/// is a second old and was hashed before it started (a file hashed within a second of its
/// change is hashed again by the next run, as the stat cache does), the next one uses it.
fn settled_run(test: &Test) -> Run {
    settle();
    for _ in 0..3 {
        let run = test.gantry_run(&[]).success();
        if settled(&run) {
            return run;
        }
    }
    panic!("no run of three was settled");
}

fn record_of(test: &Test) -> std::path::PathBuf {
    let folder = test.path(".gantry/index");
    let found: Vec<_> = fs::read_dir(&folder)
        .expect("index folder")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|extension| extension == "settled")
        })
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

/// The legitimate use: nothing changed, no step planned, every step reported cached with its
/// link, the provenance of the run that built it named again, and it verifies.
#[test]
fn a_settled_run_names_the_last_provenance_and_verifies() {
    let test = workspace();
    let first = test.gantry_run(&[]).success();
    let run = settled_run(&test);
    assert_eq!(run.finished()["reused"], first.finished()["run_id"]);
    assert_eq!(run.finished()["executed"], 0);
    let events: Vec<_> = (run.events().into_iter())
        .filter(|event| event["event"] == "step_finished")
        .collect();
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_eq!(event["status"], "cached");
        let link = event["attestation"].as_str().expect("the link's path");
        assert!(std::path::Path::new(link).is_file(), "{link}");
        assert!(event["usage"]["wallUs"].is_u64(), "saved usage: {event}");
    }
    verify(&test, &run.run_dir()).success();
    test.run(["log", "verify"]).success();
    // Plain output says why it was quick.
    let plain = test
        .command()
        .args(["run", "pipeline.toml"])
        .output()
        .expect("run");
    assert!(
        String::from_utf8_lossy(&plain.stderr).contains("no step planned"),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
}

/// An output edited or deleted: the step's result is put back from the cache, nothing runs.
#[test]
fn an_edited_or_deleted_output_is_put_back() {
    let test = workspace();
    test.gantry_run(&[]).success();
    settled_run(&test);
    test.write("out/a.txt", "forged\n");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert_eq!(run.finished()["executed"], 0);
    assert_eq!(test.read("out/a.txt"), "a\n");
    settled_run(&test);
    fs::remove_file(test.path("out/a.tar")).expect("remove");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert!(test.path("out/a.tar").is_file());
    verify(&test, &run.run_dir()).success();
}

/// A source edited runs what reads it; a source touched (same bytes) runs nothing, and the
/// record is written again.
#[test]
fn a_touched_or_edited_source_is_seen() {
    let test = workspace();
    test.gantry_run(&[]).success();
    settled_run(&test);
    test.write("src/a.txt", "a\n");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert_eq!(run.finished()["executed"], 0);
    settled_run(&test);
    test.write("src/a.txt", "b\n");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert_eq!(run.statuses()["copy"], "executed");
    assert_eq!(test.read("out/a.txt"), "b\n");
    verify(&test, &run.run_dir()).success();
}

/// A file slipped into a folder output: the folder is put back as the step made it.
#[test]
fn a_file_added_to_a_folder_output_is_removed() {
    let test = Test::new().file("src/a.txt", "a\n").pipeline(
        "[pipeline]\nname = \"folder\"\nroot = \".\"\n\n[steps.docs]\nrun = \"mkdir -p out/docs/deep && cp src/a.txt out/docs/deep/a.txt\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/docs/\"]\n",
    );
    test.gantry_run(&[]).success();
    settled_run(&test);
    test.write("out/docs/deep/planted.txt", "planted\n");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert!(!test.path("out/docs/deep/planted.txt").exists());
    assert_eq!(test.read("out/docs/deep/a.txt"), "a\n");
}

/// A toolchain's program changed: the step that uses it runs again.
#[test]
fn a_changed_toolchain_runs_its_steps_again() {
    let toolchain = tempfile::tempdir().expect("tool folder");
    let greet = toolchain.path().join("bin/greet");
    fs::create_dir_all(greet.parent().expect("bin")).expect("mkdir");
    fs::write(&greet, "#!/bin/sh\necho one\n").expect("write");
    fs::set_permissions(&greet, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let test = Test::new().pipeline(&format!(
        "[tools]\ngreeter = \"{}\"\n\n[steps.use]\ntools = [\"greeter\"]\nrun = \"greet > out/use.txt\"\noutputs = [\"out/use.txt\"]\n",
        toolchain.path().display()
    ));
    test.gantry_run(&[]).success();
    settled_run(&test);
    fs::write(&greet, "#!/bin/sh\necho two\n").expect("write");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert_eq!(run.statuses()["use"], "executed");
    assert_eq!(test.read("out/use.txt"), "two\n");
}

fn git(test: &Test, args: &[&str]) {
    let output = std::process::Command::new("git")
        .current_dir(test.root())
        .args(["-c", "user.email=ci@example.org", "-c", "user.name=CI"])
        .args(args)
        .output()
        .expect("git is installed (apt-get install git)");
    assert!(output.status.success(), "git {args:?}");
}

/// [`workspace`], committed, with gantry's folders ignored as a project would.
fn committed_workspace() -> Test {
    let test = workspace().file(".gitignore", "/home/\n/.gantry/\n/attestations/\n/out/\n");
    git(&test, &["init", "-q", "-b", "main"]);
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "one"]);
    test
}

/// A new commit that touches nothing a step reads: no step runs, but the provenance records
/// the commit, so the run writes its own; so does a file that makes the work tree dirty.
#[test]
fn a_new_commit_or_a_dirty_work_tree_gets_its_own_provenance() {
    let test = committed_workspace();
    test.gantry_run(&[]).success();
    settled_run(&test);
    test.write("README", "more\n");
    let dirty = test.gantry_run(&[]).success();
    assert!(!settled(&dirty));
    assert!(
        dirty.finished().get("reused").is_none(),
        "the work tree is dirty now"
    );
    git(&test, &["add", "-A"]);
    git(&test, &["commit", "-q", "-m", "two"]);
    let committed = test.gantry_run(&[]).success();
    assert!(!settled(&committed));
    assert!(committed.finished().get("reused").is_none(), "a new commit");
    assert_eq!(committed.finished()["executed"], 0);
    let run = settled_run(&test);
    assert_eq!(run.finished()["reused"], committed.finished()["run_id"]);
    verify(&test, &run.run_dir()).success();
}

/// A stored link deleted: it is placed again.
#[test]
fn a_deleted_link_is_placed_again() {
    let test = workspace();
    test.gantry_run(&[]).success();
    let run = settled_run(&test);
    let link = crate::support::attested(&run.run_dir(), "copy.intoto.json");
    fs::remove_file(&link).expect("remove");
    let again = test.gantry_run(&[]).success();
    assert!(!settled(&again));
    assert!(link.is_file());
    verify(&test, &again.run_dir()).success();
}

/// The record edited (one byte), or an older genuine record put back after the workspace
/// changed: neither is taken; the run plans its steps and is right.
#[test]
fn an_edited_or_replayed_record_is_not_taken() {
    let test = workspace();
    test.gantry_run(&[]).success();
    settled_run(&test);
    let record = record_of(&test);
    let genuine = fs::read(&record).expect("record");
    let mut edited = genuine.clone();
    let middle = edited.len() / 2;
    edited[middle] ^= 1;
    fs::write(&record, &edited).expect("edit");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert_eq!(run.finished()["executed"], 0);

    test.write("src/a.txt", "b\n");
    test.gantry_run(&[]).success();
    settle();
    fs::write(&record, &genuine).expect("replay");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert_eq!(test.read("out/a.txt"), "b\n");
    verify(&test, &run.run_dir()).success();
}

/// A link changed in place (its shard folder unchanged) is what a settled run does not look
/// at: it names the last provenance as before, and `gantry verify` names the changed link.
/// The known limit of a stat a folder (docs/security.md).
#[test]
fn a_link_changed_in_place_is_named_by_verify() {
    let test = workspace();
    test.gantry_run(&[]).success();
    let run = settled_run(&test);
    let link = crate::support::attested(&run.run_dir(), "copy.intoto.json");
    let mut bytes = fs::read(&link).expect("link");
    let last = bytes.len() - 2;
    bytes[last] = b' ';
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(&link)
        .expect("open in place");
    std::io::Write::write_all(&mut file, &bytes).expect("write in place");
    drop(file);
    let again = test.gantry_run(&[]).success();
    assert!(settled(&again));
    let verified = verify(&test, &again.run_dir());
    assert_ne!(verified.code(), 0, "{}", verified.stdout());
    let said = format!("{}{}", verified.stdout(), verified.stderr());
    assert!(said.contains("copy"), "{said}");
}

/// The kept history walk (when each file last changed, `.gantry/last-change/HEAD.json`) gives
/// each step its `SOURCE_DATE_EPOCH` and can change under the same HEAD (a deepened clone, an
/// edit): a step whose epoch changed runs again, settled record or not.
#[test]
fn a_step_whose_epoch_changed_under_the_same_head_runs_again() {
    let test = committed_workspace();
    test.gantry_run(&[]).success();
    settled_run(&test);
    let folder = test.path(".gantry/last-change");
    let kept: Vec<_> = fs::read_dir(&folder)
        .expect("the history walk is kept")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let mut walk: serde_json::Value =
        serde_json::from_slice(&fs::read(&kept[0]).expect("walk")).expect("json");
    let time = walk["times"]["src/a.txt"]
        .as_i64()
        .expect("src/a.txt's time");
    walk["times"]["src/a.txt"] = (time - 86_400).into();
    fs::write(&kept[0], serde_json::to_vec(&walk).expect("json")).expect("write");
    let run = test.gantry_run(&[]).success();
    assert!(!settled(&run));
    assert_eq!(run.statuses()["copy"], "executed", "{}", run.stdout());
}
