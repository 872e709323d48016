//! Usage reports attacked: names written to break out of the invoice, the CSV and the HTML
//! page; documents too large, too deep, from the far future or with figures that overflow.
//! Each is escaped, refused with its reason, or priced without a panic.

use serde_json::{Value, json};

use crate::usage_report::{Fixture, HOUR, executed};

/// A signed document's tenant, pipeline and step names carry markup, a spreadsheet formula
/// and terminal escapes: the page shows them as text, the CSV defuses the formula, the
/// invoice drops the control characters, and the JSON holds them as they are.
#[test]
fn names_from_a_document_cannot_break_out_of_any_format() {
    let fixture = Fixture::new();
    fixture.run(
        "20261103T100000Z-00000001",
        Some("<script>alert(1)</script>"),
        "=HYPERLINK(\"http://evil\")",
        "2026-11-03T10:00:00Z",
        &json!([executed(
            "\u{1b}[2J\u{1b}[31mstep\nforged line",
            &json!({"method": "wait4", "wallUs": HOUR, "cpuUserUs": HOUR})
        )]),
    );
    let html = fixture
        .report(&["--period", "2026-11", "--format", "html"])
        .success()
        .stdout();
    assert!(!html.contains("<script>alert"), "markup is escaped");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let csv = fixture
        .report(&[
            "--period",
            "2026-11",
            "--format",
            "csv",
            "--group-by",
            "pipeline",
        ])
        .success()
        .stdout();
    assert!(
        csv.contains("\"'=HYPERLINK(\"\"http://evil\"\")\""),
        "{csv}"
    );
    let invoice = fixture
        .report(&[
            "--period",
            "2026-11",
            "--format",
            "invoice",
            "--group-by",
            "step",
        ])
        .success()
        .stdout();
    assert!(!invoice.contains('\u{1b}'), "{invoice:?}");
    assert!(!invoice.contains("\nforged line"), "{invoice}");
    let report: Value =
        serde_json::from_str(&fixture.report(&["--period", "2026-11"]).success().stdout())
            .expect("json");
    assert_eq!(report["runs"][0]["tenant"], "<script>alert(1)</script>");
}

/// A file past the size gantry reads, JSON nested past serde's limit, garbage, a document
/// from the year 9999 and one with an unreadable date: each refused with its reason, the rest
/// still priced.
#[test]
fn oversized_deep_future_and_overflowing_documents_are_refused_or_reported() {
    let fixture = Fixture::new();
    let test = &fixture.test;
    fixture.run(
        "20261103T100000Z-00000001",
        Some("acme"),
        "app",
        "2026-11-03T10:00:00Z",
        &json!([executed(
            "build",
            &json!({"method": "wait4", "wallUs": HOUR, "cpuUserUs": HOUR})
        )]),
    );
    std::fs::create_dir_all(test.path("attestations/huge")).expect("mkdir");
    std::fs::File::create(test.path("attestations/huge/usage.intoto.json"))
        .and_then(|file| file.set_len(1 << 30))
        .expect("a sparse 1 GiB file");
    test.write(
        "attestations/deep/usage.intoto.json",
        &format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    );
    test.write(
        "attestations/garbage/usage.intoto.json",
        "\u{0}\u{1}not json",
    );
    fixture.run(
        "99991231T235959Z-00000009",
        Some("acme"),
        "app",
        "9999-12-31T23:59:59Z",
        &json!([]),
    );
    fixture.run(
        "20261104T100000Z-0000000a",
        Some("acme"),
        "app",
        "2026-11-04 10:00",
        &json!([]),
    );
    let run = fixture.report(&["--period", "2026-11"]).success();
    let report: Value = serde_json::from_str(&run.stdout()).expect("json");
    assert_eq!(report["runs"].as_array().expect("runs").len(), 1);
    let reasons: Vec<(String, String)> = (report["refused"].as_array().expect("refused").iter())
        .map(|refused| {
            (
                refused["file"].as_str().unwrap_or_default().to_owned(),
                refused["reason"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let reason = |file: &str| {
        reasons
            .iter()
            .find(|(path, _)| path.contains(file))
            .map_or_else(
                || panic!("{file} not refused: {reasons:#?}"),
                |(_, reason)| reason.clone(),
            )
    };
    assert!(reason("huge").contains("more than"), "{reasons:#?}");
    assert!(
        reason("deep").contains("not a DSSE envelope"),
        "{reasons:#?}"
    );
    assert!(
        reason("garbage").contains("not a DSSE envelope"),
        "{reasons:#?}"
    );
    assert!(
        reason("99991231T235959Z").starts_with("dated in the future"),
        "{reasons:#?}"
    );
    assert!(
        reason("20261104T100000Z").contains("not an RFC 3339 time"),
        "{reasons:#?}"
    );
}

/// Figures at u64's limit, a thousand of them, add up exactly (in u128) and are priced; peak
/// memory times wall time at that limit, a thousand times, passes what a decimal holds: the
/// report says so and names the line, without a panic.
#[test]
fn figures_at_u64s_limit_are_priced_or_named_too_large() {
    let fixture = Fixture::new();
    let maximal = json!({"method": "wait4", "wallUs": u64::MAX, "cpuUserUs": u64::MAX, "cpuSystemUs": u64::MAX});
    let steps: Vec<Value> = (0..1000)
        .map(|index| executed(&format!("s{index}"), &maximal))
        .collect();
    fixture.run(
        "20261103T100000Z-00000001",
        Some("acme"),
        "app",
        "2026-11-03T10:00:00Z",
        &Value::Array(steps),
    );
    let priced: Value =
        serde_json::from_str(&fixture.report(&["--period", "2026-11"]).success().stdout())
            .expect("json");
    assert!(
        priced["total"]
            .as_str()
            .is_some_and(|total| total.len() > 10),
        "{priced:#}"
    );
    // Peak memory times wall time at u64's limit, a thousand times, passes what a decimal
    // holds: the report says so and names the line.
    let fixture = Fixture::new();
    let memory =
        json!({"method": "wait4", "wallUs": u64::MAX, "cpuUserUs": 1, "peakMemoryBytes": u64::MAX});
    let steps: Vec<Value> = (0..1000)
        .map(|index| executed(&format!("s{index}"), &memory))
        .collect();
    fixture.run(
        "20261103T100000Z-00000001",
        Some("acme"),
        "app",
        "2026-11-03T10:00:00Z",
        &Value::Array(steps),
    );
    fixture
        .report(&["--period", "2026-11"])
        .failure(1)
        .stderr_contains("the memory of `acme` is too large to price");
    // The largest price a card takes, times CPU at u64's limit, in eight pipelines: named too
    // large, never a panic (totals are summed with checks too).
    let fixture = Fixture::new();
    let card = fixture
        .test
        .read("rate-card.toml")
        .replace("cpu_hour = 0.10", "cpu_hour = 999999999999999");
    fixture.test.write("rate-card.toml", &card);
    for index in 0..8 {
        let steps: Vec<Value> = (0..1000)
            .map(|step| executed(&format!("s{step}"), &maximal))
            .collect();
        fixture.run(
            &format!("20261103T100000Z-0000000{index}"),
            None,
            &format!("app{index}"),
            "2026-11-03T10:00:00Z",
            &Value::Array(steps),
        );
    }
    fixture
        .report(&["--period", "2026-11", "--group-by", "pipeline"])
        .failure(1)
        .stderr_contains("too large to price");
}

/// A step that tries to stop the kernel counting its processes (`prctl` turning its perf
/// counters off) is refused, and every process it then starts is still counted.
#[test]
fn a_step_cannot_turn_off_the_count_of_its_processes() {
    let script = "import ctypes, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\nresult = libc.prctl(31, 0, 0, 0, 0)\nerror = ctypes.get_errno()\nfor _ in range(3):\n    subprocess.run(['/bin/true'], check=True)\nprint(result, error)\n";
    let (test, printed) = crate::hostile::python_probe(crate::support::Test::new(), script, "");
    assert_eq!(
        printed.trim(),
        format!("-1 {}", libc::EPERM),
        "prctl is refused"
    );
    if !crate::hostile::is_root() {
        return;
    }
    // Run again as a new step, to read its usage from the run's events.
    test.write(
        "pipeline.toml",
        "[pipeline]\nname = \"test\"\nroot = \".\"\n\n[steps.again]\nrun = \"python3 probe.py > out/again.txt\"\ninputs = [\"probe.py\"]\noutputs = [\"out/again.txt\"]\n",
    );
    let run = test.gantry_run(&[]).success();
    let used = (run.events().into_iter())
        .find(|event| event["event"] == "step_finished" && event["step"] == "again")
        .map(|event| event["usage"].clone())
        .expect("the step finished");
    let started = used["processesStarted"].as_u64().unwrap_or(0);
    assert!(
        started >= 4,
        "python (and a shell before it) and three `true`s: {used}"
    );
}

/// A step fills its `/tmp` and ends: the next step, on the same thread and so the same reused
/// cgroup, starts with none of that memory charged to it (gantry closes a step's namespace, and
/// with it that tmpfs, after the step, and gives the group back only then): its peak is its
/// own, and it is not pushed towards its memory limit.
#[test]
fn a_full_tmp_left_behind_is_charged_to_no_later_step() {
    if !crate::hostile::is_root() {
        eprintln!("not root: no cgroups, rlimits only");
        return;
    }
    let test = crate::support::Test::new().pipeline(
        "[steps.fill]\nrun = \"head -c 200000000 /dev/zero > /tmp/fill && echo done > out/fill\"\noutputs = [\"out/fill\"]\n\n[steps.after]\nrun = \"echo done > out/after\"\ninputs = [\"out/fill\"]\noutputs = [\"out/after\"]\n",
    );
    let run = test.gantry_run(&["--jobs", "1"]).success();
    let usage_of = |step: &str| {
        (run.events().into_iter())
            .find(|event| event["event"] == "step_finished" && event["step"] == step)
            .map(|event| event["usage"].clone())
            .expect("the step finished")
    };
    let peak = |used: &Value| used["peakMemoryBytes"].as_u64().unwrap_or(0);
    let fill = usage_of("fill");
    assert!(
        peak(&fill) >= 200_000_000,
        "the tmpfs is the step's: {fill}"
    );
    let after = usage_of("after");
    assert!(
        peak(&after) < 100_000_000,
        "the first step's /tmp was charged to the next: {after}"
    );
}
