//! Run records in proportion to what changed (docs/provenance.md, "Where a run's records
//! are"): step attestations stored once by content, a run that changed nothing naming the
//! provenance before it, the in-toto bundle an auditor is handed, and `gc` keeping every
//! attestation that something kept names.

use std::fs;

use crate::support::{Run, Test};

const PIPELINE: &str = "[pipeline]\nname = \"records\"\nroot = \".\"\n\n[steps.copy]\nrun = \"cp src/a.txt out/a.txt\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/a.txt\"]\n\n[steps.pack]\nrun = \"tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf out/a.tar out/a.txt\"\ninputs = [\"out/a.txt\"]\noutputs = [\"out/a.tar\"]\n";

pub(crate) fn workspace() -> Test {
    let test = Test::new().file("src/a.txt", "a\n").pipeline(PIPELINE);
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("dev.pub", &public);
    test.write(
        "policy.toml",
        "[policy]\nname = \"p\"\n\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"*\"]\n\n[require]\nsteps = [\"copy\", \"pack\"]\nprovenance = true\nsources = [\"src/*\"]\ntools = [\"/usr\", \"/usr/bin/*\", \"/bin/*\"]\n",
    );
    test
}

pub(crate) fn verify(test: &Test, attestations: &std::path::Path) -> Run {
    let output = test
        .command()
        .args(["verify", "--policy", "policy.toml", "--attestations"])
        .arg(attestations)
        .arg("out/a.tar")
        .output()
        .expect("verify");
    Run { output }
}

fn stored(test: &Test) -> Vec<std::path::PathBuf> {
    walk(&test.path("attestations/sha256"))
}

fn walk(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in fs::read_dir(folder).into_iter().flatten().flatten() {
        if entry.file_type().expect("type").is_dir() {
            files.extend(walk(&entry.path()));
        } else {
            files.push(entry.path());
        }
    }
    files.sort();
    files
}

/// A run writes what is new: its links into the store once, its own documents into its
/// folder; a later run that executes one step adds one link, and one that changes nothing
/// adds none and names the provenance that still holds, which verifies as before.
#[test]
fn a_run_stores_each_attestation_once_and_a_no_op_names_the_last_provenance() {
    let test = workspace();
    let first = test.gantry_run(&[]).success();
    let links = stored(&test);
    assert_eq!(links.len(), 2, "{links:?}");
    for link in &links {
        let name = link
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let hex = name.strip_suffix(".intoto.json").expect("suffix");
        assert_eq!(
            crate::support::sha256_hex(&fs::read(link).expect("link")),
            hex
        );
    }
    let mut own: Vec<String> = fs::read_dir(first.run_dir())
        .expect("run folder")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    own.sort();
    assert_eq!(
        own,
        ["SHA256SUMS", "provenance.intoto.json", "usage.intoto.json"]
    );
    verify(&test, &first.run_dir()).success();

    // Nothing changed: no new folder, no new file, a record naming the first run.
    let before = walk(&test.path("attestations"));
    let again = test.gantry_run(&[]).success();
    assert_eq!(again.finished()["reused"], first.finished()["run_id"]);
    assert_eq!(
        again.finished()["provenance"],
        first.finished()["provenance"]
    );
    assert_eq!(walk(&test.path("attestations")), before);
    verify(&test, &again.run_dir()).success();
    test.run(["log", "verify"]).success();

    // One step changes: one new link, a new provenance naming both.
    test.write("src/a.txt", "b\n");
    let changed = test.gantry_run(&[]).success();
    assert!(changed.finished().get("reused").is_none());
    assert_eq!(stored(&test).len(), 4, "copy and pack ran again");
    test.write("src/a.txt", "a\n");
    let back = test.gantry_run(&[]).success();
    assert_eq!(back.statuses()["copy"], "cached");
    assert_eq!(stored(&test).len(), 4, "every link was stored already");
    // Its provenance is not the one before it (src/a.txt changed back), so it has its own.
    assert!(back.finished().get("reused").is_none());
    verify(&test, &back.run_dir()).success();
}

/// `gantry export bundle` hands an auditor one file; `gantry verify` reads it wherever it
/// reads a folder, and one changed line is caught.
#[test]
fn a_run_exported_as_an_in_toto_bundle_verifies_on_its_own() {
    let test = workspace();
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    test.run([
        "export",
        "bundle",
        folder.to_str().expect("utf-8"),
        "-o",
        "handoff.intoto.jsonl",
    ])
    .success();
    let text = test.read("handoff.intoto.jsonl");
    // Two links, the provenance and the usage document: one DSSE envelope a line.
    assert_eq!(text.lines().count(), 4, "{text}");
    for line in text.lines() {
        let envelope: serde_json::Value = serde_json::from_str(line).expect("json line");
        assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
    }
    // Moved elsewhere, without the workspace's attestation folder.
    fs::rename(test.path("attestations"), test.path("gone")).expect("move");
    let verdict = verify(&test, &test.path("handoff.intoto.jsonl")).success();
    assert!(verdict.stdout().contains("PASSED"), "{}", verdict.stdout());
    assert!(
        verdict
            .stdout()
            .contains("signed by the signed provenance that lists their bytes")
            || verdict.stdout().contains("by the signed provenance"),
        "the links are the very files the provenance lists: {}",
        verdict.stdout()
    );
    // One line's payload changed: refused.
    let mut lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).expect("json"))
        .collect();
    let payload = lines[0]["payload"].as_str().expect("payload").to_owned();
    lines[0]["payload"] = payload.replacen('e', "f", 1).into();
    let tampered = lines
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
        + "\n";
    test.write("tampered.intoto.jsonl", &tampered);
    verify(&test, &test.path("tampered.intoto.jsonl")).failure(1);
    // The run folder alone, without the store beside it, says what is missing.
    let alone = test.path("alone");
    fs::create_dir_all(&alone).expect("alone");
    let copy = alone.join(folder.file_name().expect("name"));
    crate::support::copy_tree(
        &test.path("gone").join(folder.file_name().expect("name")),
        &copy,
    );
    verify(&test, &copy)
        .failure(2)
        .stderr_contains("which is not in the attestation store beside it");
}

/// `gantry gc` removes what no kept run, release or reproduction names, and nothing that
/// one does.
#[test]
fn gc_keeps_every_stored_attestation_something_kept_names() {
    let test = workspace();
    let old = test.gantry_run(&[]).success();
    let old_links: Vec<String> = fs::read_to_string(old.run_dir().join("SHA256SUMS"))
        .expect("sums")
        .lines()
        .filter(|line| line.ends_with("  copy.intoto.json") || line.ends_with("  pack.intoto.json"))
        .map(|line| line[..64].to_owned())
        .collect();
    test.write("src/a.txt", "b\n");
    let new = test.gantry_run(&[]).success();
    assert_eq!(stored(&test).len(), 4);
    test.run(["gc", "pipeline.toml", "--keep", "1", "--dry-run"])
        .success();
    assert_eq!(stored(&test).len(), 4, "a dry run removes nothing");
    let gc = test
        .run(["gc", "pipeline.toml", "--keep", "1", "--json"])
        .success();
    let freed: serde_json::Value = serde_json::from_str(&gc.stdout()).expect("json");
    assert_eq!(freed["attestations"], 2, "{freed}");
    assert!(!old.run_dir().exists());
    let left = stored(&test);
    assert_eq!(left.len(), 2);
    for hex in &old_links {
        assert!(
            !left
                .iter()
                .any(|path| path.to_string_lossy().contains(hex.as_str())),
            "the old run's links went"
        );
    }
    verify(&test, &new.run_dir()).success();
    // A reproduction names the run it checked: its links stay while it is kept.
    test.run(["repro", "pipeline.toml", "--vary", "none"])
        .success();
    test.write("src/a.txt", "c\n");
    test.gantry_run(&[]).success();
    test.run(["gc", "pipeline.toml", "--keep", "1"]).success();
    let sums = fs::read_to_string(new.run_dir().join("SHA256SUMS")).unwrap_or_default();
    assert!(sums.is_empty(), "the run itself went");
    let statement = walk(&test.path("attestations/repro"))
        .into_iter()
        .find(|path| path.ends_with("reproducibility.intoto.json"))
        .expect("the reproduction is kept");
    let text = String::from_utf8_lossy(&fs::read(statement).expect("statement")).into_owned();
    let _ = text;
    let new_links: Vec<String> = left
        .iter()
        .map(|path| {
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .trim_end_matches(".intoto.json")
                .to_owned()
        })
        .collect();
    for hex in &new_links {
        assert!(
            stored(&test)
                .iter()
                .any(|path| path.to_string_lossy().contains(hex.as_str())),
            "the checked run's link {hex} stays with its reproduction"
        );
    }
}
