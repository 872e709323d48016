//! Property 9: what a step read is what was hashed. A source edited while its step runs fails
//! the step, and nothing of it is cached or attested; one run at a time writes a workspace,
//! whatever cache each run uses.

use std::process::Stdio;

use super::{says, wait_for_file_in};
use crate::support::{Run, Test};

#[test]
fn a_source_edited_while_its_step_runs_fails_the_step_and_is_not_cached() {
    let test = Test::new().file("src/a.txt", "before\n").pipeline(
        "[steps.read]\nrun = \"echo > out/started; sleep 1; cat src/a.txt > out/a.txt\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/a.txt\", \"out/started\"]\n",
    );
    let marker = test.path(".gantry/tmp");
    let child = test
        .command()
        .args(["run", "pipeline.toml", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run");
    // The step has started once its slot holds `out/started`.
    wait_for_file_in(&marker, "started");
    std::fs::write(test.path("src/a.txt"), "after!\n").expect("edit");
    let run = Run {
        output: child.wait_with_output().expect("wait"),
    };
    let run = run.failure(1);
    says(&run, "input `src/a.txt` changed while the step ran");
    assert!(
        !test.path("out/a.txt").exists(),
        "nothing of the step was kept"
    );
    // Settled, the next run executes it (no cache entry was written) and reads the new bytes.
    let again = test.gantry_run(&[]).success();
    assert_eq!(again.finished()["executed"], 1);
    assert_eq!(test.read("out/a.txt"), "after!\n");
}

#[test]
fn two_runs_with_different_caches_never_share_a_workspace() {
    let test = Test::new().pipeline(
        "[steps.slow]\nrun = \"echo > out/started; sleep 2; echo slow > out/slow\"\noutputs = [\"out/slow\", \"out/started\"]\n",
    );
    let first_cache = test.path("cache-one");
    let second_cache = test.path("cache-two");
    let child = test
        .command()
        .env("GANTRY_CACHE_DIR", &first_cache)
        .args(["run", "pipeline.toml"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("run");
    wait_for_file_in(&first_cache.join("tmp"), "started");
    let second = test
        .command()
        .env("GANTRY_CACHE_DIR", &second_cache)
        .args(["run", "pipeline.toml"])
        .output()
        .expect("second run");
    let second = Run { output: second };
    assert_ne!(second.code(), 0);
    assert!(
        second
            .stderr()
            .contains("another gantry run is writing the workspace"),
        "{}",
        second.stderr()
    );
    let mut child = child;
    assert!(child.wait().expect("wait").success());
    assert_eq!(test.read("out/slow"), "slow\n");
}
