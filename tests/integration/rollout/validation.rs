//! Mistakes in a rollout step, reported at their line before anything runs.

use crate::support::Test;

#[test]
fn rollout_mistakes_are_reported_at_their_line() {
    let base = "subject = \"app.tar\"\ntraffic = { haproxy = { socket = \"h.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" } }\nhealth = { url = \"http://127.0.0.1:8081/healthz\" }\n";
    let cases = [
        ("strategy = \"rainbow\"\n", "unknown strategy `rainbow`"),
        (
            "strategy = \"canary\"\n",
            "a canary rollout needs its steps",
        ),
        (
            "strategy = \"canary\"\ncanary = { steps = [10, 50] }\n",
            "the canary's last step must be 100",
        ),
        (
            "strategy = \"canary\"\ncanary = { steps = [50, 10, 100] }\n",
            "`10` is not a next canary step",
        ),
        (
            "strategy = \"blue-green\"\nanalysis = { alpha = 0.7, beta = 0.5 }\n",
            "alpha + beta < 1",
        ),
        (
            "strategy = \"blue-green\"\nanalysis = { method = \"bayes\" }\n",
            "unknown analysis `bayes`",
        ),
        (
            "strategy = \"blue-green\"\nrollback_window = \"soon\"\n",
            "invalid `rollback_window`",
        ),
        (
            "strategy = \"blue-green\"\ninputs = [\"x\"]\n",
            "name it in `subject`",
        ),
        (
            "strategy = \"blue-green\"\nrequire = { failures = 0 }\n",
            "`require` does not apply to rollout steps",
        ),
    ];
    for (body, expected) in cases {
        let test = Test::new().pipeline(&format!("[steps.r]\nkind = \"rollout\"\n{base}{body}"));
        let run = test.run(["check", "pipeline.toml"]);
        assert_eq!(run.code(), 1, "{body}: {}", run.stderr());
        assert!(run.stderr().contains(expected), "{body}: {}", run.stderr());
        assert!(run.stderr().contains("pipeline.toml:"), "{}", run.stderr());
    }
    let test = Test::new().pipeline(&format!(
        "[steps.r]\nkind = \"rollout\"\nstrategy = \"blue-green\"\n{}",
        base.replace("http://127.0.0.1:8081/healthz", "https://example.com/")
    ));
    let run = test.run(["check", "pipeline.toml"]);
    assert!(
        run.stderr().contains("is not an http:// URL"),
        "{}",
        run.stderr()
    );
    let test = Test::new().pipeline("[steps.r]\nkind = \"rollout\"\nstrategy = \"canary\"\n");
    let run = test.run(["check", "pipeline.toml"]);
    for expected in ["needs `traffic`", "needs `health`", "needs a `subject`"] {
        assert!(
            run.stderr().contains(expected),
            "{expected}: {}",
            run.stderr()
        );
    }
}

#[test]
fn backend_metrics_and_verify_mistakes_are_reported_at_their_line() {
    let health = "health = { url = \"http://127.0.0.1:8081/healthz\" }\n";
    let haproxy = "traffic = { haproxy = { socket = \"h.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" } }\n";
    let cases = [
        (
            "traffic = { haproxy = { socket = \"h.sock\", backend = \"app\", stable = \"blue\", canary = \"green\" }, command = { run = [\"x\"] } }\n".to_owned(),
            "names more than one backend",
        ),
        (
            "traffic = { nginx = { upstream = \"u.conf\", stable = \"127.0.0.1:8081;\", canary = \"127.0.0.1:8082\", access_log = \"a.log\" } }\n".to_owned(),
            "is not an nginx server address",
        ),
        (
            "traffic = { nginx = { upstream = \"u.conf\", stable = \"127.0.0.1:8081\", canary = \"127.0.0.1:8081\", access_log = \"a.log\" } }\n".to_owned(),
            "the canary must be another server than the stable",
        ),
        (
            "traffic = { nginx = { upstream = \"u.conf\", stable = \"a:1\", canary = \"b:1\" } }\n".to_owned(),
            "access_log",
        ),
        (
            "traffic = { command = { run = [] } }\n".to_owned(),
            "`run` is a program and its arguments",
        ),
        (
            format!("{haproxy}analysis = {{ prometheus = {{ url = \"http://127.0.0.1:9090\", requests = \"r\", errors = \"e\", max_latency = \"1s\" }} }}\n"),
            "`max_latency` needs a `latency` query",
        ),
        (
            format!("{haproxy}analysis = {{ prometheus = {{ url = \"https://prometheus\", requests = \"r\", errors = \" \" }} }}\n"),
            "is not an http:// URL",
        ),
        (
            format!("{haproxy}analysis = {{ prometheus = {{ url = \"http://p:9090\", requests = \"r\", errors = \" \" }} }}\n"),
            "`errors` is an empty query",
        ),
        (
            format!("{haproxy}verify = {{ policy = \"policies/\" }}\n"),
            "`policy` names one file",
        ),
        (
            format!("{haproxy}verify = {{ policy = \"p.toml\", attestations = [\"\"] }}\n"),
            "`attestations` is a path",
        ),
        (
            format!("{haproxy}start = []\n"),
            "`start` is a program and its arguments",
        ),
        (
            format!("{haproxy}verify = {{ policy = \"out/rollout/deploy.intoto.json\" }}\n"),
            "overlaps the rollout's output",
        ),
    ];
    for (traffic, expected) in cases {
        let test = Test::new().pipeline(&format!(
            "[steps.deploy]\nkind = \"rollout\"\nstrategy = \"blue-green\"\nsubject = \"app.tar\"\n{health}{traffic}"
        ));
        let run = test.run(["check", "pipeline.toml"]);
        assert_eq!(run.code(), 1, "{traffic}: {}", run.stderr());
        assert!(
            run.stderr().contains(expected),
            "{traffic}: {}",
            run.stderr()
        );
        assert!(run.stderr().contains("pipeline.toml:"), "{}", run.stderr());
    }
    let test =
        Test::new().pipeline("[steps.build]\nrun = \"true\"\nverify = { policy = \"p.toml\" }\n");
    let run = test.run(["check", "pipeline.toml"]);
    assert!(
        run.stderr()
            .contains("`verify` does not apply to exec steps"),
        "{}",
        run.stderr()
    );
}
