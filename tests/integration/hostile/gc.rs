//! `gantry gc` deletes: a run folder that is a link, or a link inside an old run folder, must
//! lead it to nothing outside the store and the attestation folder.

use crate::support::Test;

#[test]
fn gc_deletes_nothing_through_a_link() {
    let victim = tempfile::tempdir().expect("victim");
    let precious = victim.path().join("precious");
    std::fs::write(&precious, "precious").expect("write");
    let test = Test::new()
        .file("src/a.txt", "a\n")
        .pipeline("[steps.copy]\nrun = \"cp src/a.txt out.txt\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out.txt\"]\n");
    let old = test.gantry_run(&[]).success().run_dir();
    test.write("src/a.txt", "b\n");
    test.gantry_run(&[]).success();
    // An old run folder holding a link to a host file, and a "run folder" that is a link to
    // a host folder, both older than every real run.
    std::os::unix::fs::symlink(&precious, old.join("evil.intoto.json")).expect("link");
    std::os::unix::fs::symlink(
        victim.path(),
        test.path("attestations/20000101T000000Z-deadbeef"),
    )
    .expect("link");
    test.run(["gc", "pipeline.toml", "--keep", "1"]).success();
    assert_eq!(
        std::fs::read_to_string(&precious).expect("still there"),
        "precious"
    );
    assert!(!old.exists(), "the old run was collected");
}
