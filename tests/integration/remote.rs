//! Remote execution (REAPI v2): the pipeline's `[executor]`, a step's `executor`, `--remote`,
//! and what happens when the remote cannot be reached.

use crate::support::Test;

fn check_fails(toml: &str) -> String {
    let test = Test::new().pipeline(toml);
    test.run(["check", "pipeline.toml"]).failure(1).stderr()
}

#[test]
fn executor_settings_are_checked_at_their_line() {
    let text = check_fails("[executor]\ninstance = \"main\"\n\n[steps.a]\nrun = \"true\"\n");
    assert!(text.contains("`[executor]` names no `remote`"), "{text}");
    let text = check_fails(
        "[executor]\nremote = \"grpcs://example.org:443\"\n\n[steps.a]\nrun = \"true\"\n",
    );
    assert!(text.contains("not a remote's address"), "{text}");
    assert!(text.contains("pipeline.toml:6:10"), "{text}");
    let text = check_fails("[steps.a]\nrun = \"true\"\nexecutor = \"elsewhere\"\n");
    assert!(text.contains("unknown executor `elsewhere`"), "{text}");
    let text = check_fails(
        "[steps.a]\nrun = \"true\"\noutputs = [\"out/a\"]\n\n[steps.s]\nkind = \"sign\"\ninputs = [\"out/a\"]\nkey = \"k.pem\"\nexecutor = \"remote\"\n",
    );
    assert!(text.contains("executor"), "{text}");
}

#[test]
fn an_unreachable_remote_is_a_clear_error_and_local_steps_still_run() {
    let test = Test::new().pipeline(
        "[executor]\nremote = \"grpc://127.0.0.1:1\"\n\n[steps.here]\nrun = \"echo here > out/here\"\noutputs = [\"out/here\"]\nexecutor = \"local\"\n\n[steps.there]\nrun = \"echo there > out/there\"\noutputs = [\"out/there\"]\n",
    );
    let run = test.gantry_run(&[]).failure(1);
    let text = run.stdout();
    assert!(text.contains("the remote is unreachable"), "{text}");
    assert_eq!(test.read("out/here"), "here\n");
    assert!(!test.path("out/there").exists());

    // A networked step is refused by the remote executor, before any connection.
    let test = Test::new().pipeline(
        "[executor]\nremote = \"grpc://127.0.0.1:1\"\n\n[steps.fetch]\nrun = \"true\"\nnetwork = true\n",
    );
    let text = test.gantry_run(&[]).failure(1).stdout();
    assert!(
        text.contains("`network = true` cannot run remotely"),
        "{text}"
    );

    // A step that asks for the remote when the run has none.
    let test = Test::new().pipeline("[steps.there]\nrun = \"true\"\nexecutor = \"remote\"\n");
    let text = test.gantry_run(&[]).failure(1).stdout();
    assert!(text.contains("but the run has none"), "{text}");

    // --remote is checked as a usage error.
    test.gantry_run(&["--remote", "grpcs://example.org:443"])
        .failure(2)
        .stderr_contains("not a remote's address");
}
