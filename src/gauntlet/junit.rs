//! JUnit XML (pytest, Maven Surefire, cargo-nextest, Go's go-junit-report): every
//! `<testcase>` in the file, whatever the nesting of `<testsuite>`s, by outcome. The cases are
//! counted rather than the suites' `tests`/`failures` attributes trusted, which tools fill in
//! differently (or not at all).

use crate::gauntlet::Reading;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Passed,
    Failed,
    Errored,
    Skipped,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// `classname.name`, or `name` when the case has no class.
    pub name: String,
    pub outcome: Outcome,
}

/// Every test case of the report.
pub fn read(text: &str) -> Result<Vec<Case>, String> {
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        ..roxmltree::ParsingOptions::default()
    };
    let document = roxmltree::Document::parse_with_options(text, options)
        .map_err(|error| format!("not XML: {error}"))?;
    let root = document.root_element();
    if !matches!(root.tag_name().name(), "testsuites" | "testsuite") {
        return Err(format!(
            "the root element is `<{}>`, not `<testsuites>` or `<testsuite>`",
            root.tag_name().name()
        ));
    }
    let mut cases = Vec::new();
    for node in root
        .descendants()
        .filter(|node| node.has_tag_name("testcase"))
    {
        let name = node.attribute("name").unwrap_or_default();
        let name = match node.attribute("classname") {
            Some(class) if !class.is_empty() => format!("{class}.{name}"),
            _ => name.to_owned(),
        };
        let child = |tag: &str| node.children().any(|child| child.has_tag_name(tag));
        let outcome = if child("failure") {
            Outcome::Failed
        } else if child("error") {
            Outcome::Errored
        } else if child("skipped") {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        cases.push(Case { name, outcome });
    }
    Ok(cases)
}

/// What a JUnit gate can require: `tests`, `passed`, `failures`, `errors`, `skipped`, and
/// `pass_rate` (passed over run, skipped cases left out; absent when nothing ran).
#[must_use]
pub fn measure(cases: &[Case]) -> Reading {
    let count = |outcome: Outcome| cases.iter().filter(|case| case.outcome == outcome).count();
    let passed = count(Outcome::Passed);
    let run = cases.len() - count(Outcome::Skipped);
    let mut reading = Reading::default();
    reading.set("tests", cases.len());
    reading.set("passed", passed);
    reading.set("failures", count(Outcome::Failed));
    reading.set("errors", count(Outcome::Errored));
    reading.set("skipped", count(Outcome::Skipped));
    if run > 0 {
        reading.ratio("pass_rate", passed, run);
    }
    reading.failed = cases
        .iter()
        .filter(|case| matches!(case.outcome, Outcome::Failed | Outcome::Errored))
        .map(|case| case.name.clone())
        .collect();
    reading
}
