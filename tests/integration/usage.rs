//! Usage metering (issue 32, the first part): each step says what running it used, as the
//! kernel counted it, and a cache hit says what the execution that made its entry used. The
//! links stay free of it: the same inputs still give the same statement.

use crate::support::Test;

/// The `usage` of a step's `step_finished` event.
fn usage(run: &crate::support::Run, step: &str) -> serde_json::Value {
    (run.events().into_iter())
        .find(|event| event["event"] == "step_finished" && event["step"] == step)
        .map(|event| event["usage"].clone())
        .expect("the step finished")
}

fn number(value: &serde_json::Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

/// A child the step's shell does not wait for burns one second of CPU by its own clock (its
/// utime + stime in /proc, read with a builtin), then the step allocates 200 MB in `dd`: the
/// link's CPU time is that second within 20%, its peak at least 200 MB.
#[test]
fn a_steps_cpu_time_and_peak_memory_are_the_kernels_count() {
    let burn = r#"while :; do read -r _ _ _ _ _ _ _ _ _ _ _ _ _ u s _ < /proc/$$/stat; [ $((u + s)) -ge 100 ] && break; done; : > "$TMPDIR/burnt""#;
    let test = Test::new().pipeline(&format!(
        r#"
[steps.burn]
run = '''( sh -c '{burn}' & )
while [ ! -e "$TMPDIR/burnt" ]; do sleep 0.1; done
sleep 0.3
mkdir -p out && echo done > out/burn'''
outputs = ["out/burn"]
timeout = "2m"

[steps.allocate]
run = "dd if=/dev/zero of=/dev/null bs=200M count=1 2> /dev/null && mkdir -p out && echo done > out/allocate"
outputs = ["out/allocate"]
"#
    ));
    let run = test.gantry_run(&["--jobs", "1"]).success();
    let burnt = usage(&run, "burn");
    let expected: &[&str] = if crate::hostile::is_root() {
        &["cgroup v1", "cgroup v2", "cgroup v2 cpu"]
    } else {
        &["wait4"]
    };
    assert!(
        expected.contains(&burnt["method"].as_str().unwrap_or_default()),
        "{burnt}"
    );
    let cpu = number(&burnt["cpuUserUs"]) + number(&burnt["cpuSystemUs"]);
    assert!(
        (800_000..=1_200_000).contains(&cpu),
        "1 s of CPU measured as {cpu} µs: {burnt}"
    );
    assert!(number(&burnt["wallUs"]) >= cpu / 2, "{burnt}");
    let allocated = usage(&run, "allocate");
    assert!(
        number(&allocated["peakMemoryBytes"]) >= 200 << 20,
        "{allocated}"
    );
    assert!(allocated["blockReadBytes"].is_u64() && allocated["blockWrittenBytes"].is_u64());
    assert_eq!(
        allocated["outputBytes"], 5,
        "out/allocate holds \"done\\n\": {allocated}"
    );
}

/// An in-process step (here a sign step) says the CPU time of the thread that ran it; a cache
/// hit says the usage of the execution that made the entry: what the cache saved.
#[test]
fn in_process_steps_are_measured_and_a_cache_hit_keeps_what_it_saved() {
    let test = Test::new().pipeline(
        r#"
[steps.build]
run = "mkdir -p out && echo app > out/app"
outputs = ["out/app"]

[steps.sign]
kind = "sign"
inputs = ["out/app"]
key = "keys/cosign.key"
"#,
    );
    let output = test
        .command()
        .env("COSIGN_PASSWORD", "")
        .args(["keys", "generate", "--output-dir", "keys"])
        .output()
        .expect("keys");
    assert!(output.status.success());
    let first = test
        .command()
        .env("COSIGN_PASSWORD", "")
        .args(["run", "pipeline.toml", "--json"])
        .output()
        .expect("run");
    let first = crate::support::Run { output: first }.success();
    let signed = usage(&first, "sign");
    assert_eq!(signed["method"], "thread", "{signed}");
    assert!(
        signed["cpuUserUs"].is_u64() && signed["wallUs"].is_u64(),
        "{signed}"
    );
    assert!(
        signed.get("peakMemoryBytes").is_none(),
        "not measured, so not there: {signed}"
    );
    let built = usage(&first, "build");
    let again = test
        .command()
        .env("COSIGN_PASSWORD", "")
        .args(["run", "pipeline.toml", "--json"])
        .output()
        .expect("run");
    let again = crate::support::Run { output: again }.success();
    assert_eq!(again.statuses()["build"], "cached");
    assert_eq!(
        usage(&again, "build"),
        built,
        "the cache hit saved what the first run used"
    );
}

/// A cache hit made with another key is signed again with the run's: the new entry keeps
/// the usage it saved (planning reads results without their usage), and so does the index
/// the run writes.
#[test]
fn a_cache_hit_signed_again_with_a_new_key_keeps_what_it_saved() {
    let test = Test::new().pipeline(
        "[steps.build]\nrun = \"mkdir -p out && echo app > out/app\"\noutputs = [\"out/app\"]\n",
    );
    let first = test.gantry_run(&[]).success();
    let built = usage(&first, "build");
    assert!(built["method"].is_string(), "{built}");
    let release = test.path("release.pem");
    assert!(crate::attestations::generate_key(
        &release,
        "EC",
        "ec_paramgen_curve:P-256"
    ));
    let release = release.to_str().expect("utf-8");
    let development = test.path("development.pub");
    std::fs::write(&development, test.run(["key", "public"]).success().stdout()).expect("write");
    let development = development.to_str().expect("utf-8");
    let again = test
        .gantry_run(&["--key", release, "--trust-cache-key", development])
        .success();
    assert_eq!(again.statuses()["build"], "cached");
    assert_eq!(usage(&again, "build"), built, "signed again, same usage");
    // The next run reads the index the second wrote, signed by the new key, with the usage.
    std::fs::remove_dir_all(test.path(".gantry/ac")).expect("per-key entries");
    std::fs::create_dir_all(test.path(".gantry/ac")).expect("ac");
    let third = test
        .gantry_run(&[
            "--key",
            release,
            "--builder-id",
            "https://ci.example.org/third",
        ])
        .success();
    assert_eq!(third.statuses()["build"], "cached");
    assert_eq!(usage(&third, "build"), built, "kept in the index");
}

/// The run's `usage.intoto.json`: signed by the run's key, about its provenance, listing each
/// step executed or cached with its usage, the pipeline and the machine; the run log's record
/// names its digest; `gantry verify` takes it as part of the run.
#[test]
fn a_run_signs_what_it_used_about_its_provenance() {
    let test = Test::new().pipeline(
        "[steps.build]\nrun = \"mkdir -p out && echo app > out/app\"\noutputs = [\"out/app\"]\n\n[steps.copy]\nrun = \"cp out/app out/copy\"\ninputs = [\"out/app\"]\noutputs = [\"out/copy\"]\n",
    );
    let first = test.gantry_run(&[]).success();
    // The signed index vouches for the cache hits, and their usage is read from it: not from
    // the per-key entries (untrusted storage, here gone).
    std::fs::remove_dir_all(test.path(".gantry/ac")).expect("per-key entries");
    std::fs::create_dir_all(test.path(".gantry/ac")).expect("ac");
    // Another builder: a provenance of its own, every step cached (with nothing changed at
    // all the run would name the first one's provenance and write no usage: it ran nothing).
    let run = test
        .gantry_run(&["--builder-id", "https://ci.example.org/second"])
        .success();
    let folder = run.run_dir();
    let bytes = std::fs::read(folder.join("usage.intoto.json")).expect("the usage document");
    let envelope: gantry::attest::Envelope = serde_json::from_slice(&bytes).expect("envelope");
    let public = test.run(["keys", "public"]).success().stdout();
    let verifier = gantry::keys::EcdsaVerifier::from_pem(&public).expect("key");
    let body = gantry::attest::dsse::verify(&envelope, &verifier).expect("signed by the run's key");
    let statement: serde_json::Value = serde_json::from_slice(&body).expect("statement");
    assert_eq!(
        statement["predicateType"],
        "https://gantry.dev/attestation/usage/v0.1"
    );
    let provenance = std::fs::read(folder.join("provenance.intoto.json")).expect("provenance");
    assert_eq!(statement["subject"][0]["name"], "provenance.intoto.json");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        crate::support::sha256_hex(&provenance)
    );
    let predicate = &statement["predicate"];
    assert_schema_holds(&test, predicate);
    assert_eq!(predicate["pipeline"]["name"], "test");
    assert!(
        predicate["machine"]["cores"]
            .as_u64()
            .is_some_and(|cores| cores >= 1)
    );
    let steps = predicate["steps"].as_array().expect("steps");
    assert_eq!(steps.len(), 2);
    for step in steps {
        assert_eq!(step["status"], "cached", "{step}");
        assert!(
            (step["usage"]["method"].as_str()).is_some_and(|method| method.starts_with("wait4") || method.starts_with("cgroup v")),
            "{step}"
        );
    }
    // The run log's record names the document.
    let shown = test.run(["log", "show", "--json"]).success().stdout();
    let records: serde_json::Value = serde_json::from_str(&shown).expect("records");
    let last = records
        .as_array()
        .and_then(|records| records.last())
        .expect("a record");
    assert_eq!(last["usage"], crate::support::sha256_hex(&bytes));
    // It is part of the run for an auditor, and a copy under another name is not.
    let public_path = test.path("dev.pub");
    std::fs::write(&public_path, &public).expect("write");
    test.write(
        "policy.toml",
        "[policy]\nname = \"p\"\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"build\", \"copy\", \"provenance\"]\n[require]\nsources = [\"**\"]\n",
    );
    let verify = || {
        test.command()
            .args([
                "verify",
                "--policy",
                "policy.toml",
                "--json",
                "--attestations",
            ])
            .arg(&folder)
            .arg("out/copy")
            .output()
            .expect("verify")
    };
    let passed = verify();
    assert!(
        passed.status.success(),
        "{}",
        String::from_utf8_lossy(&passed.stdout)
    );
    std::fs::copy(
        folder.join("usage.intoto.json"),
        folder.join("extra.intoto.json"),
    )
    .expect("copy");
    let stray = verify();
    assert!(!stray.status.success());
    assert!(String::from_utf8_lossy(&stray.stdout).contains("extra.intoto.json"));
    // Another run's usage in its place is not this run's.
    std::fs::remove_file(folder.join("extra.intoto.json")).expect("remove");
    std::fs::copy(
        first.run_dir().join("usage.intoto.json"),
        folder.join("usage.intoto.json"),
    )
    .expect("replay");
    let replayed = verify();
    assert!(!replayed.status.success());
    assert!(String::from_utf8_lossy(&replayed.stdout).contains("not-in-run"));
}

/// `[pipeline] tenant`, and `--tenant` over it: in the provenance's external parameters and
/// the usage document; a name that is not one is refused at its line, or as a usage error.
#[test]
fn the_tenant_is_the_pipelines_or_the_flags_and_both_documents_name_it() {
    let test = Test::new().file(
        "pipeline.toml",
        "[pipeline]\nname = \"t\"\nroot = \".\"\ntenant = \"acme\"\n\n[steps.build]\nrun = \"mkdir -p out && echo app > out/app\"\noutputs = [\"out/app\"]\n",
    );
    let payload = |path: std::path::PathBuf| crate::support::envelope_statement(&path);
    let tenants = |run: &crate::support::Run| {
        let folder = run.run_dir();
        let provenance = payload(folder.join("provenance.intoto.json"));
        let usage = payload(folder.join("usage.intoto.json"));
        (
            provenance["predicate"]["buildDefinition"]["externalParameters"]["tenant"].clone(),
            usage["predicate"]["tenant"].clone(),
        )
    };
    let run = test.gantry_run(&[]).success();
    assert_eq!(tenants(&run), ("acme".into(), "acme".into()));
    let run = test.gantry_run(&["--tenant", "globex"]).success();
    assert_eq!(tenants(&run), ("globex".into(), "globex".into()));
    test.gantry_run(&["--tenant", "no tenant"]).failure(2);
    test.write(
        "pipeline.toml",
        "[pipeline]\nname = \"t\"\nroot = \".\"\ntenant = \"../etc\"\n\n[steps.build]\nrun = \"true\"\n",
    );
    test.run(["check", "pipeline.toml"])
        .failure(1)
        .stderr_contains("pipeline.toml:4:10: error: `../etc` is not a tenant name");
}

/// The predicate is valid against `gantry schema usage` (jsonschema, draft 2020-12).
fn assert_schema_holds(test: &Test, predicate: &serde_json::Value) {
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/oracles/sbom/.venv/bin/python");
    assert!(
        python.exists(),
        "the usage schema check needs jsonschema in the venv at {}: bash scripts/test.sh installs it",
        python.display()
    );
    test.write(
        "usage.schema.json",
        &test.run(["schema", "usage"]).success().stdout(),
    );
    test.write("usage.predicate.json", &predicate.to_string());
    let check = std::process::Command::new(python)
        .current_dir(test.root())
        .args([
            "-c",
            "import json, jsonschema\nschema = json.load(open('usage.schema.json'))\njsonschema.Draft202012Validator.check_schema(schema)\njsonschema.validate(json.load(open('usage.predicate.json')), schema, cls=jsonschema.Draft202012Validator, format_checker=jsonschema.FormatChecker())",
        ])
        .output()
        .expect("python");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The run folder's usage document (its bytes) and its statement, verified with the run's key.
fn signed_usage(test: &Test, folder: &std::path::Path) -> (Vec<u8>, serde_json::Value) {
    let bytes = std::fs::read(folder.join("usage.intoto.json")).expect("the usage document");
    let envelope: gantry::attest::Envelope = serde_json::from_slice(&bytes).expect("envelope");
    let public = test.run(["keys", "public"]).success().stdout();
    let verifier = gantry::keys::EcdsaVerifier::from_pem(&public).expect("key");
    let body = gantry::attest::dsse::verify(&envelope, &verifier).expect("signed by the run's key");
    (bytes, serde_json::from_slice(&body).expect("statement"))
}

/// A step that fails used the machine too: its `step_finished` event says what, as the
/// kernel counted it, and the run, which has no provenance, still signs a usage document:
/// about its pipeline file, `failed`, one entry per attempt (the retried ones too) beside the
/// steps that succeeded. `gantry usage report` bills it and counts it once.
#[test]
fn a_failed_run_signs_what_every_attempt_used() {
    let test = Test::new().pipeline(
        "[steps.ok]\nrun = \"mkdir -p out && echo ok > out/ok\"\noutputs = [\"out/ok\"]\nnetwork = true\n\n[steps.fail]\nrun = \"dd if=/dev/zero of=/dev/null bs=50M count=1 2> /dev/null; exit 3\"\noutputs = [\"out/never\"]\nretry = { attempts = 2, backoff = \"10ms\" }\n",
    );
    let run = test.gantry_run(&[]).failure(1);
    let event = (run.events().into_iter())
        .find(|event| event["event"] == "step_finished" && event["step"] == "fail")
        .expect("the step finished");
    assert_eq!(event["status"], "failed");
    assert_eq!(event["exit_code"], 3);
    let used = &event["usage"];
    assert!(
        used["method"]
            .as_str()
            .is_some_and(|method| method.starts_with("wait4") || method.starts_with("cgroup v")),
        "{event}"
    );
    assert!(number(&used["peakMemoryBytes"]) >= 50 << 20, "{used}");
    assert!(
        used.get("outputBytes").is_none(),
        "nothing was stored: {used}"
    );
    // The run's document.
    let folder = run.run_dir();
    assert!(!folder.join("provenance.intoto.json").exists());
    let (bytes, statement) = signed_usage(&test, &folder);
    let public = test.run(["keys", "public"]).success().stdout();
    let pipeline = std::fs::read(test.path("pipeline.toml")).expect("pipeline");
    assert_eq!(statement["subject"][0]["name"], "pipeline.toml");
    assert_eq!(
        statement["subject"][0]["digest"]["sha256"],
        crate::support::sha256_hex(&pipeline)
    );
    let predicate = &statement["predicate"];
    assert_schema_holds(&test, predicate);
    assert_eq!(predicate["result"], "failed");
    let entries: Vec<(&str, &str)> = (predicate["steps"].as_array().expect("steps").iter())
        .map(|step| {
            (
                step["step"].as_str().unwrap_or_default(),
                step["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [("ok", "executed"), ("fail", "failed"), ("fail", "failed")]
    );
    for step in predicate["steps"].as_array().expect("steps") {
        assert!(number(&step["usage"]["wallUs"]) > 0, "{step}");
        // The step on the host's network may have used some that nothing counted: said, not
        // written as zero.
        let network = (step["step"] == "ok").then(|| serde_json::json!(["networkBytes"]));
        assert_eq!(step.get("notMeasured").cloned(), network, "{step}");
        assert!(step["usage"].get("networkBytes").is_none(), "{step}");
    }
    // The run log's record names it.
    let shown = test.run(["log", "show", "--json"]).success().stdout();
    let records: serde_json::Value = serde_json::from_str(&shown).expect("records");
    let last = (records.as_array().and_then(|records| records.last())).expect("a record");
    assert_eq!(last["result"], "failed");
    assert_eq!(last["usage"], crate::support::sha256_hex(&bytes));
    // A report bills its three executions, once, however often the folder is given.
    test.write("dev.pub", &public);
    test.write(
        "rates.toml",
        "[rate_card]\nname = \"r\"\ncurrency = \"USD\"\ndefault_tier = \"basic\"\n\n[[tiers]]\nname = \"basic\"\neffective_from = 2020-01-01\nbase_per_month = 0\ncpu_hour = 0.10\nmemory_gb_hour = 0\nnetwork_gb = 0.05\nstep = 1.00\nstorage_gb_month = 0\n",
    );
    let month = &gantry::time::rfc3339(gantry::time::unix_now())[..7];
    let report = test
        .command()
        .args([
            "usage",
            "report",
            "--rate-card",
            "rates.toml",
            "--public-key",
            "dev.pub",
        ])
        .args(["--period", month, "--attestations"])
        .arg(&folder)
        .arg("--attestations")
        .arg(&folder)
        .output()
        .expect("report");
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(
        report.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&report.stderr)
    );
    let report: serde_json::Value = serde_json::from_str(&text).expect("report");
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{report}");
    assert_eq!(runs[0]["result"], "failed");
    assert!(runs[0].get("provenance").is_none(), "{report}");
    assert_eq!(runs[0]["executed"], 3);
    assert_eq!(
        report["refused"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
    let steps = (report["lines"].as_array().expect("lines").iter())
        .find(|line| line["charge"] == "steps")
        .expect("a steps line");
    assert_eq!(steps["amount"], "3.00", "{report}");
}

/// A child still burning CPU when the step's pid 1 exits is killed with the namespace, and
/// the kernel reaps it without adding it to anyone's rusage. The child burns half a second by
/// its own clock (its utime + stime in /proc), says so, and burns on until the step ends and
/// kills it: where the step has a cgroup of its own (gantry as root) that half second at
/// least counts; `wait4` alone (unprivileged) cannot see it, and the method says which.
#[test]
fn a_child_killed_when_pid_1_exits_is_counted_where_the_step_has_a_cgroup() {
    let burn = r#"said=; while :; do read -r _ _ _ _ _ _ _ _ _ _ _ _ _ u s _ < /proc/$$/stat; if [ -z "$said" ] && [ $((u + s)) -ge 50 ]; then : > "$TMPDIR/half"; said=1; fi; done"#;
    let test = Test::new().pipeline(&format!(
        r#"
[steps.leave]
run = '''( sh -c '{burn}' & )
while [ ! -e "$TMPDIR/half" ]; do sleep 0.05; done
mkdir -p out && echo done > out/leave'''
outputs = ["out/leave"]
timeout = "2m"
"#
    ));
    let run = test.gantry_run(&["--jobs", "1"]).success();
    let used = usage(&run, "leave");
    let cpu = number(&used["cpuUserUs"]) + number(&used["cpuSystemUs"]);
    let method = used["method"].as_str().unwrap_or_default();
    if crate::hostile::is_root() {
        assert!(method.starts_with("cgroup v"), "{used}");
        assert!(
            cpu >= 450_000,
            "the child burnt half a second before the kill, measured as {cpu} µs: {used}"
        );
    } else {
        assert_eq!(method, "wait4", "{used}");
        assert!(cpu < 450_000, "{used}");
    }
}

/// The processes a step starts, its pid 1 included and threads not, counted by the kernel
/// where gantry runs as root; not recorded (never a zero) where it cannot count them.
#[test]
fn the_processes_a_step_starts_are_counted_where_gantry_is_root() {
    let test = Test::new().pipeline(
        "[steps.spawn]\nrun = \"/bin/true; /bin/true; /bin/true; mkdir -p out && echo done > out/spawn\"\noutputs = [\"out/spawn\"]\n",
    );
    let run = test.gantry_run(&[]).success();
    let used = usage(&run, "spawn");
    if !crate::hostile::is_root() {
        assert!(used.get("processesStarted").is_none(), "{used}");
        return;
    }
    // The shell, three `true`s and `mkdir` (`echo` is the shell's own).
    assert_eq!(used["processesStarted"], 5, "{used}");
    // The same step unprivileged (a new step: no cache hit) cannot be counted, and says so by
    // leaving the figure out.
    test.write(
        "pipeline.toml",
        "[pipeline]\nname = \"test\"\nroot = \".\"\n\n[steps.again]\nrun = \"/bin/true; mkdir -p out && echo done > out/again\"\noutputs = [\"out/again\"]\n",
    );
    let output = crate::hostile::as_nobody(&test, &["run", "pipeline.toml", "--json"]);
    let run = crate::support::Run { output }.success();
    let used = usage(&run, "again");
    assert!(used.get("processesStarted").is_none(), "{used}");
}

/// Two processes that each hold 120 MB at the same time: where the step has a cgroup of its
/// own (gantry as root), its peak is the whole tree's, at least 240 MB, and the method says
/// so; without one, `wait4` can only give the larger of the two.
#[test]
fn a_steps_peak_memory_is_its_whole_trees_where_it_has_a_cgroup() {
    let hold = "dd if=/dev/zero bs=120M count=1 2> /dev/null | sleep 1";
    let test = Test::new().pipeline(&format!(
        "[steps.both]\nrun = \"({hold}) & ({hold}) & wait; mkdir -p out && echo done > out/both\"\noutputs = [\"out/both\"]\n"
    ));
    let run = test.gantry_run(&[]).success();
    let used = usage(&run, "both");
    let peak = number(&used["peakMemoryBytes"]);
    let method = used["method"].as_str().unwrap_or_default();
    if crate::hostile::is_root() {
        assert!(
            [
                "cgroup v1",
                "cgroup v2",
                "wait4+cgroup v1",
                "wait4+cgroup v2"
            ]
            .contains(&method),
            "{used}"
        );
        assert!(
            peak >= 240_000_000,
            "the tree held 2 x 120 MB at once: {used}"
        );
    } else {
        assert_eq!(method, "wait4", "{used}");
        assert!((120 << 20..240_000_000).contains(&peak), "{used}");
    }
}
