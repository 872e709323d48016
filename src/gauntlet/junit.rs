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

/// Every test case of the report. A file may hold several documents one after another, each
/// with its XML declaration, as `cargo test -- --format junit` writes one per test binary.
pub fn read(text: &str) -> Result<Vec<Case>, String> {
    let starts: Vec<usize> = text.match_indices("<?xml").map(|(at, _)| at).collect();
    if starts.len() < 2 {
        return read_document(text);
    }
    let mut cases = Vec::new();
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    for (number, (start, end)) in starts.iter().copied().zip(ends).enumerate() {
        if !text[..starts[0]].trim().is_empty() {
            return Err("text before the first XML declaration".to_owned());
        }
        let document = read_document(&text[start..end])
            .map_err(|error| format!("document {} of {}: {error}", number + 1, starts.len()))?;
        cases.extend(document);
    }
    Ok(cases)
}

fn read_document(text: &str) -> Result<Vec<Case>, String> {
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
