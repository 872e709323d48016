//! `gantry graph`, `gantry schema`, `gantry check`.

use crate::support::Test;

const TWO: &str = "[steps.a]\nrun = \"echo > out/a\"\noutputs = [\"out/a\"]\n[steps.b]\nrun = \"true\"\ninputs = [\"out/a\"]\n[steps.c]\nrun = \"true\"\nneeds = [\"b\"]\n";

#[test]
fn graph_formats() {
    let test = Test::new().pipeline(TWO);
    let dot = test
        .run(["graph", "pipeline.toml", "--format", "dot"])
        .success()
        .stdout();
    assert!(dot.starts_with("digraph \"test\" {"), "{dot}");
    assert!(dot.contains("\"a\" -> \"b\" [label=\"out/a\"];"), "{dot}");
    assert!(dot.contains("\"b\" -> \"c\" [label=\"needs\"];"), "{dot}");
    let mermaid = test
        .run(["graph", "pipeline.toml", "--format", "mermaid"])
        .success()
        .stdout();
    assert!(
        mermaid.starts_with("flowchart LR\n") && mermaid.contains("s0 -->|\"out/a\"| s1"),
        "{mermaid}"
    );
    let json: serde_json::Value = serde_json::from_str(
        &test
            .run(["graph", "pipeline.toml", "--format", "json"])
            .success()
            .stdout(),
    )
    .expect("json");
    assert_eq!(json["steps"].as_array().map(Vec::len), Some(3));
    assert_eq!(
        json["edges"][0],
        serde_json::json!({"from": "a", "to": "b", "reason": "reads", "pattern": "out/a", "output": "out/a"})
    );
}

#[test]
fn check_succeeds_on_a_valid_pipeline() {
    Test::new()
        .pipeline(TWO)
        .run(["check", "pipeline.toml"])
        .success()
        .stderr_contains("ok: pipeline `test`, 3 steps, 2 edges");
}

#[test]
fn schema_is_json_and_names_every_step_key() {
    let schema: serde_json::Value =
        serde_json::from_str(&Test::new().run(["schema"]).success().stdout())
            .expect("schema is JSON");
    let keys: Vec<&String> = schema["$defs"]["step"]["properties"]
        .as_object()
        .expect("step properties")
        .keys()
        .collect();
    for key in [
        "kind",
        "description",
        "run",
        "flake",
        "expr",
        "file",
        "attr",
        "key",
        "from",
        "format",
        "subject",
        "output",
        "stage",
        "baseline",
        "evidence",
        "require",
        "inputs",
        "outputs",
        "needs",
        "env",
        "network",
        "warm",
        "sbom",
        "db",
        "vex",
        "allow",
        "vendored",
        "manifests",
        "about",
        "import",
        "timeout",
        "retry",
        "publish",
        "strategy",
        "traffic",
        "health",
        "canary",
        "analysis",
        "rollback_window",
        "rehearse",
        "verify",
        "start",
        "tools",
        "executor",
        "builders",
        "limits",
        "uses",
        "with",
    ] {
        assert!(
            keys.iter().any(|known| *known == key),
            "schema lacks `{key}`"
        );
    }
    assert_eq!(
        keys.len(),
        48,
        "the schema and the parser list the same keys"
    );
    assert!(schema["properties"]["tools"].is_object());
    assert!(schema["properties"]["executor"]["properties"]["remote"].is_object());
    assert!(schema["properties"]["defaults"]["properties"]["tools"].is_object());
    assert!(schema["properties"]["defaults"]["properties"]["limits"].is_object());
    assert!(
        schema["properties"]["registries"]["additionalProperties"]["properties"]["keys"]
            .is_object()
    );
}

#[test]
fn the_policy_schema_names_every_policy_key() {
    let schema: serde_json::Value =
        serde_json::from_str(&Test::new().run(["schema", "policy"]).success().stdout())
            .expect("schema is JSON");
    let keys = |pointer: &str| -> Vec<String> {
        let mut keys: Vec<String> = schema
            .pointer(pointer)
            .and_then(serde_json::Value::as_object)
            .expect(pointer)
            .keys()
            .cloned()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(keys("/properties"), ["keys", "policy", "require"]);
    assert_eq!(
        keys("/properties/keys/items/properties"),
        ["id", "not_after", "not_before", "public", "steps"]
    );
    assert_eq!(
        keys("/properties/require/properties"),
        [
            "gates",
            "network",
            "pipeline",
            "provenance",
            "reproduced",
            "rollout",
            "sbom",
            "sources",
            "steps",
            "templates_from",
            "tools",
            "vulns"
        ]
    );
}

#[test]
fn usage_errors_exit_2() {
    Test::new().run(["run"]).failure(2);
    Test::new().run(["frobnicate"]).failure(2);
    // Zero steps at once would run nothing (it used to print "1 jobs").
    for command in [
        &["run", "pipeline.toml"][..],
        &["repro", "pipeline.toml"][..],
    ] {
        let output = Test::new()
            .command()
            .args(command)
            .args(["--jobs", "0"])
            .output()
            .expect("gantry");
        assert_eq!(output.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&output.stderr).contains("give at least 1"));
    }
}

#[test]
fn validated_pipelines_are_cached_by_content_and_never_served_stale() {
    let test = Test::new().pipeline(TWO);
    test.run(["check", "pipeline.toml"]).success();
    let cache = test.path("home/.cache/gantry/pipelines");
    let entries: Vec<_> = std::fs::read_dir(&cache)
        .expect("cache folder")
        .map(|entry| entry.expect("entry").path())
        .collect();
    assert_eq!(entries.len(), 1);
    // A damaged entry is ignored.
    std::fs::write(&entries[0], b"garbage").expect("damage");
    test.run(["check", "pipeline.toml"])
        .success()
        .stderr_contains("3 steps");
    // A changed file is parsed again, errors and all.
    test.write(
        "pipeline.toml",
        &std::fs::read_to_string(test.path("pipeline.toml"))
            .expect("read")
            .replace("needs = [\"b\"]", "needs = [\"z\"]"),
    );
    test.run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains("`needs` names `z`");
}
