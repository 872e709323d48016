//! The readers on reports shaped like the real tools' (pytest 9, coverage.py 7, Bandit 1.9);
//! the integration tests run the tools themselves.

use super::*;

const PYTEST: &str = r#"<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="1" skipped="1" tests="4" time="0.064"><testcase classname="test_calc" name="test_add" time="0.001" /><testcase classname="test_calc" name="test_div" time="0.000" /><testcase classname="test_calc" name="test_fails" time="0.001"><failure message="assert 2 == 3">def test_fails():
&gt;       assert add(1, 1) == 3</failure></testcase><testcase classname="test_calc" name="test_skipped" time="0.000"><skipped type="pytest.skip" message="later">later</skipped></testcase></testsuite></testsuites>"#;

/// What `cargo +nightly test -- -Z unstable-options --format junit` printed for a crate with
/// a library test, an integration test file and doc tests: one document per test binary.
const LIBTEST: &str = include_str!("../../tests/fixtures/junit/libtest-three-binaries.xml");

#[test]
fn junit_reads_every_document_libtest_writes() {
    let reading = EvidenceKind::Junit
        .read(LIBTEST, &[])
        .expect("three documents");
    assert_eq!(
        (
            reading.values["tests"],
            reading.values["passed"],
            reading.values["failures"]
        ),
        (3.0, 2.0, 1.0)
    );
    assert_eq!(reading.failed, vec!["integration.fails".to_owned()]);
    let second = LIBTEST
        .match_indices("<?xml")
        .nth(1)
        .expect("a second document")
        .0;
    let broken = format!(
        "{}{}",
        &LIBTEST[..second],
        LIBTEST[second..].replacen("</testsuites>", "", 1)
    );
    let error = EvidenceKind::Junit.read(&broken, &[]).unwrap_err();
    assert!(error.contains("document 2 of 3"), "{error}");
}

#[test]
fn junit_counts_cases_by_outcome() {
    let reading = EvidenceKind::Junit.read(PYTEST, &[]).expect("junit");
    let value = |name: &str| reading.values[name];
    assert_eq!(
        (
            value("tests"),
            value("passed"),
            value("failures"),
            value("skipped")
        ),
        (4.0, 2.0, 1.0, 1.0)
    );
    assert!((value("pass_rate") - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(reading.failed, vec!["test_calc.test_fails".to_owned()]);
    // Nested suites, errors, and a bare <testsuite> root.
    let nested = r#"<testsuite><testsuite><testcase name="a"><error/></testcase></testsuite><testcase name="b"/></testsuite>"#;
    let reading = EvidenceKind::Junit.read(nested, &[]).expect("nested");
    assert_eq!(
        (reading.values["errors"], reading.values["tests"]),
        (1.0, 2.0)
    );
    assert!(
        EvidenceKind::Junit
            .read("<html/>", &[])
            .unwrap_err()
            .contains("<html>")
    );
    assert!(
        EvidenceKind::Junit
            .read("<testsuite", &[])
            .unwrap_err()
            .starts_with("not XML")
    );
    // No DTD, so no entity expansion.
    let bomb = r#"<!DOCTYPE t [<!ENTITY a "aaaa">]><testsuite><testcase name="&a;"/></testsuite>"#;
    assert!(EvidenceKind::Junit.read(bomb, &[]).is_err());
}

const LCOV: &str = "SF:calc.py\nDA:1,1\nDA:8,0\nDA:9,1\nLF:3\nLH:2\nFN:3,4,add\nFNDA:1,add\nFNDA:0,run\nFNF:2\nFNH:1\nBRDA:7,0,jump to line 8,0\nBRDA:7,0,jump to line 9,1\nBRF:2\nBRH:1\nend_of_record\nSF:b.c\nDA:1,5\nDA:2,0\nBRDA:2,0,0,-\nend_of_record\n";

#[test]
fn lcov_sums_records_and_counts_when_totals_are_missing() {
    let reading = EvidenceKind::Lcov.read(LCOV, &[]).expect("lcov");
    let value = |name: &str| reading.values[name];
    // calc.py by its totals (2/3), b.c by its DA lines (1/2).
    assert_eq!((value("lines_covered"), value("lines")), (3.0, 5.0));
    assert!((value("line_coverage") - 0.6).abs() < 1e-12);
    assert_eq!((value("branches_covered"), value("branches")), (1.0, 3.0));
    assert_eq!((value("functions_covered"), value("functions")), (1.0, 2.0));
    assert!(
        EvidenceKind::Lcov
            .read("SF:x\nDA:1\nend_of_record\n", &[])
            .unwrap_err()
            .contains("line 2")
    );
    assert!(
        EvidenceKind::Lcov
            .read("hello", &[])
            .unwrap_err()
            .contains("end_of_record")
    );
}

#[test]
fn cobertura_reads_the_root_totals_or_counts_lines() {
    let totals = r#"<?xml version="1.0" ?><coverage version="7.17.3" lines-valid="20" lines-covered="17" line-rate="0.85" branches-valid="2" branches-covered="1" branch-rate="0.5"><packages/></coverage>"#;
    let reading = EvidenceKind::Cobertura
        .read(totals, &[])
        .expect("cobertura");
    assert!((reading.values["line_coverage"] - 0.85).abs() < 1e-12);
    assert!((reading.values["branch_coverage"] - 0.5).abs() < 1e-12);
    assert!(!reading.values.contains_key("function_coverage"));
    let counted = r#"<coverage><packages><package><classes><class name="a"><methods><method><lines><line number="1" hits="1"/></lines></method></methods><lines><line number="1" hits="1"/><line number="2" hits="0" branch="true" condition-coverage="50% (1/2)"/></lines></class></classes></package></packages></coverage>"#;
    let reading = EvidenceKind::Cobertura.read(counted, &[]).expect("counted");
    // The method's copy of line 1 is not counted twice.
    assert_eq!(
        (reading.values["lines_covered"], reading.values["lines"]),
        (1.0, 2.0)
    );
    assert_eq!(
        (
            reading.values["branches_covered"],
            reading.values["branches"]
        ),
        (1.0, 2.0)
    );
}

#[test]
fn sarif_levels_come_from_the_result_the_rule_or_the_default() {
    let log = r#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"t","rules":[
        {"id":"R1","defaultConfiguration":{"level":"error"}},{"id":"R2"}]}},
      "results":[
        {"ruleId":"R1","ruleIndex":0,"message":{"text":"a"}},
        {"ruleId":"R2","message":{"text":"b"}},
        {"ruleId":"R2","level":"note","message":{"text":"c"}},
        {"ruleId":"R1","kind":"pass","message":{"text":"d"}},
        {"ruleId":"R1","suppressions":[{"kind":"inSource"}],"message":{"text":"e"}},
        {"ruleId":"R1","suppressions":[{"kind":"external","status":"rejected"}],"message":{"text":"f"}}
      ]}]}"#;
    let reading = EvidenceKind::Sarif.read(log, &[]).expect("sarif");
    let value = |name: &str| reading.values[name];
    assert_eq!(
        (
            value("errors"),
            value("warnings"),
            value("notes"),
            value("findings"),
            value("suppressed")
        ),
        (2.0, 1.0, 1.0, 4.0, 1.0)
    );
    assert!(
        EvidenceKind::Sarif
            .read("{}", &[])
            .unwrap_err()
            .contains("runs")
    );
    let odd = r#"{"runs":[{"results":[{"level":"fatal"}]}]}"#;
    assert!(
        EvidenceKind::Sarif
            .read(odd, &[])
            .unwrap_err()
            .contains("fatal")
    );
}

#[test]
fn metrics_are_read_by_pointer_and_must_be_numbers() {
    let file = r#"{"latency":{"p95":212.5},"error_rate":0.002,"name":"x"}"#;
    let reading = EvidenceKind::Metrics
        .read(file, &["/latency/p95", "/error_rate"])
        .expect("metrics");
    assert!((reading.values["/latency/p95"] - 212.5).abs() < f64::EPSILON);
    assert!(
        EvidenceKind::Metrics
            .read(file, &["/nope"])
            .unwrap_err()
            .contains("names nothing")
    );
    assert!(
        EvidenceKind::Metrics
            .read(file, &["/name"])
            .unwrap_err()
            .contains("not a number")
    );
}

#[test]
fn thresholds_hold_or_fail_and_an_unmeasured_value_fails() {
    let reading = EvidenceKind::Junit.read(PYTEST, &[]).expect("junit");
    let threshold = |metric: &str, bound, limit| Threshold {
        metric: metric.to_owned(),
        bound,
        limit,
    };
    let verdicts = judge(
        &reading,
        &[
            threshold("failures", Bound::Max, 0.0),
            threshold("tests", Bound::Min, 1.0),
            threshold("pass_rate", Bound::Min, 0.5),
        ],
    );
    let passed: Vec<bool> = verdicts.iter().map(|verdict| verdict.passed).collect();
    assert_eq!(passed, [false, true, true]);
    assert_eq!(verdicts[0].sentence(), "failures <= 0: 1");
    assert_eq!(verdicts[2].sentence(), "pass_rate >= 0.5: 0.6667");
    let nothing = judge(
        &Reading::default(),
        &[threshold("line_coverage", Bound::Min, 0.9)],
    );
    assert!(!nothing[0].passed);
    assert_eq!(nothing[0].sentence(), "line_coverage >= 0.9: not measured");
}

#[test]
fn every_kind_lists_the_metrics_its_reader_measures() {
    let samples = [
        (EvidenceKind::Junit, PYTEST),
        (EvidenceKind::Lcov, LCOV),
        (EvidenceKind::Sarif, r#"{"runs":[{"results":[]}]}"#),
    ];
    for (kind, text) in samples {
        let reading = kind.read(text, &[]).expect("reads");
        let names = kind.metrics().expect("fixed metrics");
        for name in reading.values.keys() {
            assert!(names.contains(&name.as_str()), "{}: {name}", kind.name());
        }
    }
}

/// Criterion 0.5.1's own output (tests/fixtures/criterion/README.md says how it was made).
fn criterion_files() -> Vec<(&'static str, &'static str)> {
    macro_rules! fixture {
        ($path:literal) => {
            (
                $path,
                include_str!(concat!("../../tests/fixtures/criterion/", $path)),
            )
        };
    }
    vec![
        fixture!("sum/small/new/estimates.json"),
        fixture!("sum/small/main/estimates.json"),
        fixture!("sum/small/change/estimates.json"),
        fixture!("sum/large/new/estimates.json"),
        fixture!("sum/large/main/estimates.json"),
        fixture!("sum/large/new/benchmark.json"),
    ]
}

#[test]
fn criterion_regression_is_the_change_criterion_printed() {
    let found = criterion::read(&criterion_files(), "main").expect("criterion");
    assert_eq!(found.compared.len(), 2);
    assert!(found.unmatched.is_empty());
    let reading = criterion::measure(&found);
    // Criterion printed `change: [+43.961% +44.861% +45.932%]` for sum/small.
    assert!(
        (reading.values["regression"] - 0.448_61).abs() < 1e-4,
        "{reading:?}"
    );
    assert!((reading.values["benchmarks"] - 2.0).abs() < f64::EPSILON);
    assert_eq!(reading.failed[0], "sum/small +44.86%");
    // Against a baseline that was never saved, nothing is compared: the regression is
    // unmeasured (and fails its threshold), each benchmark unmatched.
    let found = criterion::read(&criterion_files(), "base").expect("new only");
    assert_eq!(found.unmatched, ["sum/large", "sum/small"]);
    assert!(!criterion::measure(&found).values.contains_key("regression"));
    assert!(criterion::read(&[("x/new/estimates.json", "{}")], "base").is_err());
    assert!(criterion::read(&[("x/new/sample.json", "{}")], "base").is_err());
}

#[test]
fn a_drill_measures_seconds_and_its_exit() {
    let reading = drill::measure(drill::Timing {
        seconds: 1.5,
        exit_code: Some(0),
    });
    assert_eq!(
        judge(
            &reading,
            &[
                Threshold {
                    metric: "seconds".into(),
                    bound: Bound::Max,
                    limit: 2.0,
                },
                Threshold {
                    metric: "exit_code".into(),
                    bound: Bound::Max,
                    limit: 0.0,
                },
            ],
        )
        .iter()
        .map(|verdict| verdict.passed)
        .collect::<Vec<_>>(),
        [true, true]
    );
    let timed_out = drill::measure(drill::Timing {
        seconds: 30.0,
        exit_code: None,
    });
    assert!(!timed_out.values.contains_key("exit_code"));
}

mod fuzz {
    use proptest::prelude::*;

    use super::{EvidenceKind, LCOV, PYTEST};

    /// Cuts, splices and byte flips of real reports: every reader answers without panicking.
    fn damaged(base: &'static str) -> impl Strategy<Value = String> {
        (0..base.len(), 0..base.len(), any::<u8>()).prop_map(move |(cut, at, byte)| {
            let mut bytes = base.as_bytes()[..cut.max(at)].to_vec();
            if let Some(slot) = bytes.get_mut(at.min(cut)) {
                *slot = byte;
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    }

    proptest! {
        #[test]
        fn no_report_makes_a_reader_panic(
            junit in damaged(PYTEST),
            lcov in damaged(LCOV),
            noise in ".{0,200}",
        ) {
            for kind in EvidenceKind::ALL {
                for text in [&junit, &lcov, &noise] {
                    let _ = kind.read(text, &["/a", "/0/b"]);
                }
            }
        }
    }
}
