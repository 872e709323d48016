//! A hostile advisory database: whoever publishes or mirrors it controls every byte. It must
//! not reach outside its folder, exhaust memory, crash the scan or drive the terminal.

use crate::support::Test;

fn advisory(id: &str, summary: &str) -> String {
    format!(
        "```toml\n[advisory]\nid = \"{id}\"\npackage = \"smallvec\"\ndate = \"2021-01-08\"\n\n[versions]\npatched = [\">= 1.6.1\"]\n```\n\n# {summary}\n"
    )
}

#[test]
fn a_hostile_advisory_database_is_read_within_its_folder_and_its_text_is_escaped() {
    let test = Test::new()
        .file(
            "secret/RUSTSEC-2099-0001.md",
            &advisory("RUSTSEC-2099-0001", "outside the database"),
        )
        .file(
            "db/crates/smallvec/RUSTSEC-2021-0003.md",
            &advisory("RUSTSEC-2021-0003", "\u{1b}]0;owned\u{7}\u{1b}[2Jcleared"),
        )
        // Nested past serde_json's recursion limit.
        .file(
            "db/deep.json",
            &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        );
    // A link out of the database is not followed; nor is a link to a folder.
    std::os::unix::fs::symlink(
        test.path("secret/RUSTSEC-2099-0001.md"),
        test.path("db/crates/smallvec/RUSTSEC-2099-0001.md"),
    )
    .expect("link");
    std::os::unix::fs::symlink(test.path("secret"), test.path("db/crates/elsewhere"))
        .expect("link");
    // Larger than an advisory may be: refused without being read into memory.
    let big = std::fs::File::create(test.path("db/crates/smallvec/RUSTSEC-2099-0002.md"))
        .expect("create");
    big.set_len(64 << 20).expect("sparse file");
    let lock = "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n";
    test.write("Cargo.lock", lock);
    test.run(["sbom", "--from", "Cargo.lock", "-o", "app.spdx.json"])
        .success();
    let run = test
        .run(["vulns", "scan", "app.spdx.json", "--db", "db"])
        .failure(1);
    let (stdout, stderr) = (run.stdout(), run.stderr());
    assert!(stdout.contains("RUSTSEC-2021-0003"), "{stdout}");
    assert!(
        !stdout.contains("RUSTSEC-2099-0001"),
        "followed a link out: {stdout}"
    );
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(stdout.contains("\\u{1b}]0;owned"), "{stdout}");
    assert!(
        stderr.contains("RUSTSEC-2099-0002.md") && stderr.contains("deep.json"),
        "{stderr}"
    );
    assert!(stdout.contains("1 known vulnerability"), "{stdout}");
}

/// The same database as a pipeline's `db`: the step reads it as inputs (a link out of the
/// workspace is no input), refuses what is too large, survives the deep nesting, and its
/// failure message reaches the terminal escaped.
#[test]
fn a_hostile_database_in_a_vulns_step_stays_in_its_folder() {
    let test = Test::new()
        .file(
            "db/crates/smallvec/RUSTSEC-2021-0003.md",
            &advisory("RUSTSEC-2021-0003", "\u{1b}]0;owned\u{7}\u{1b}[2Jcleared"),
        )
        .file(
            "db/deep.json",
            &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        )
        .file(
            "Cargo.lock",
            "version = 3\n\n[[package]]\nname = \"smallvec\"\nversion = \"1.6.0\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\n",
        )
        .pipeline(
            r#"
[steps.build]
run = "mkdir -p out && echo app > out/app"
outputs = ["out/app"]

[steps.sbom]
kind = "sbom"
from = "Cargo.lock"
format = "spdx"
subject = "out/app"
output = "out/app.spdx.json"

[steps.vulns]
kind = "vulns"
sbom = "out/app.spdx.json"
db = "db/"
"#,
        );
    let outside = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        outside.path().join("RUSTSEC-2099-0001.md"),
        advisory("RUSTSEC-2099-0001", "outside the workspace"),
    )
    .expect("write");
    std::os::unix::fs::symlink(
        outside.path().join("RUSTSEC-2099-0001.md"),
        test.path("db/crates/smallvec/RUSTSEC-2099-0001.md"),
    )
    .expect("link");
    let run = test.gantry_run(&[]).failure(1);
    let failed = (run.events().into_iter())
        .find(|event| event["event"] == "step_finished" && event["step"] == "vulns")
        .expect("the vulns step finished");
    let everything = format!("{}{}", run.stdout(), run.stderr());
    assert!(
        !everything.contains("RUSTSEC-2099-0001\"")
            && !everything.contains("outside the workspace"),
        "read a file out of the workspace: {everything}"
    );
    assert!(!everything.contains('\u{1b}'), "{everything:?}");
    // The scan ran on what is inside and failed on the one real finding; the nesting was
    // skipped with a warning naming the file.
    assert_eq!(failed["category"], "step", "{failed}");
    assert!(
        failed["error"].as_str().is_some_and(
            |error| error.ends_with("1 known vulnerability, more than 0: RUSTSEC-2021-0003")
        ),
        "{failed}"
    );
    assert!(
        run.events().iter().any(|event| event["event"] == "warning"
            && event["message"]
                .as_str()
                .is_some_and(|text| text.contains("deep.json"))),
        "{everything}"
    );
}
