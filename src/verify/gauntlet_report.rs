//! The gauntlet report of a run: its gates' signed verdicts, by stage, as a table, a JSON
//! value and a self-contained HTML page (no script, no external resource) for reviewers.
//! Pure: the caller reads the run folder.

use std::fmt::Write as _;

use serde::Serialize;

use super::evidence::{EvidenceFile, GateVerdict, Kind};
use crate::attest::run_folder::StepFile;
use crate::gauntlet::{Bound, Verdict, number};
use crate::report::escape::html as escape;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The run, from its provenance when the folder has one.
    pub run: Option<String>,
    /// SHA-256 of the pipeline the verdicts judged (one, or the report says otherwise).
    pub pipelines: Vec<String>,
    pub passed: bool,
    pub gates: usize,
    pub failed: usize,
    pub stages: Vec<Stage>,
    /// Files that are not verdicts gantry can read.
    pub unreadable: Vec<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Stage {
    pub name: String,
    pub passed: bool,
    pub gates: Vec<Gate>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Gate {
    pub step: String,
    pub passed: bool,
    /// The evidence's kind and what it is (a report's path, a drill's command).
    pub evidence: String,
    pub report: String,
    /// What the verdict is about, and its SHA-256.
    pub subject: String,
    pub subject_sha256: String,
    pub thresholds: Vec<Verdict>,
    pub failing: Vec<String>,
    /// The verdict's file in the run folder.
    pub file: String,
}

/// Builds the report from a run folder's parsed attestations; stages and the gates in each
/// by name (a verdict does not know where its gate stood in the pipeline; number the stages,
/// `01 unit`, to order them).
#[must_use]
pub fn build(files: &[EvidenceFile]) -> Report {
    let mut run = None;
    let mut pipelines: Vec<String> = Vec::new();
    let mut gates: Vec<(String, Gate)> = Vec::new();
    let mut unreadable = Vec::new();
    for file in files {
        let parsed = match &file.content {
            Ok(parsed) => parsed,
            Err(message) => {
                if file.name.ends_with(StepFile::Gate.suffix()) {
                    unreadable.push(format!("{}: {message}", file.name));
                }
                continue;
            }
        };
        match &parsed.kind {
            Kind::Provenance { invocation_id, .. } => run = Some(invocation_id.clone()),
            Kind::TestResult(verdict) => {
                if let Some(pipeline) = &verdict.pipeline
                    && !pipelines.contains(pipeline)
                {
                    pipelines.push(pipeline.clone());
                }
                let subject = parsed.subjects.first();
                gates.push((
                    verdict
                        .stage
                        .clone()
                        .unwrap_or_else(|| "gauntlet".to_owned()),
                    gate(file, verdict, subject),
                ));
            }
            _ => {}
        }
    }
    gates.sort_by(|a, b| (&a.0, &a.1.step, &a.1.file).cmp(&(&b.0, &b.1.step, &b.1.file)));
    let mut stages: Vec<Stage> = Vec::new();
    for (stage, gate) in gates {
        match stages.iter_mut().find(|known| known.name == stage) {
            Some(known) => known.gates.push(gate),
            None => stages.push(Stage {
                name: stage,
                passed: true,
                gates: vec![gate],
            }),
        }
    }
    for stage in &mut stages {
        stage.passed = stage.gates.iter().all(|gate| gate.passed);
    }
    let total = stages.iter().map(|stage| stage.gates.len()).sum();
    let failed = (stages.iter().flat_map(|stage| &stage.gates))
        .filter(|gate| !gate.passed)
        .count();
    Report {
        run,
        passed: failed == 0 && total > 0 && unreadable.is_empty(),
        pipelines,
        gates: total,
        failed,
        stages,
        unreadable,
    }
}

fn gate(
    file: &EvidenceFile,
    verdict: &GateVerdict,
    subject: Option<&crate::verify::evidence::Descriptor>,
) -> Gate {
    let step = verdict.step.clone().unwrap_or_else(|| {
        (file.name.strip_suffix(StepFile::Gate.suffix()))
            .unwrap_or(&file.name)
            .to_owned()
    });
    Gate {
        step,
        // A verdict is a pass only when it says so and every threshold it lists held.
        passed: verdict.says_passed() && verdict.thresholds.iter().all(|t| t.passed),
        evidence: verdict.evidence.clone().unwrap_or_default(),
        report: verdict.report.clone(),
        subject: subject
            .map(|subject| subject.name.clone())
            .unwrap_or_default(),
        subject_sha256: (subject.and_then(|subject| subject.sha256.clone())).unwrap_or_default(),
        thresholds: verdict.thresholds.clone(),
        failing: verdict.failing.clone(),
        file: file.name.clone(),
    }
}

impl Report {
    /// The table: per stage, each gate and under it each threshold with its measured value.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let run = self
            .run
            .as_deref()
            .unwrap_or("(no provenance in the folder)");
        let _ = write!(out, "gauntlet of run {run}");
        match self.pipelines.as_slice() {
            [one] => {
                let _ = writeln!(out, ", pipeline sha256 {}", short(one));
            }
            [] => out.push('\n'),
            many => {
                let names: Vec<&str> = many.iter().map(|hex| short(hex)).collect();
                let _ = writeln!(
                    out,
                    ", verdicts of {} pipelines: {}",
                    many.len(),
                    names.join(", ")
                );
            }
        }
        let width = (self.stages.iter().flat_map(|stage| &stage.gates))
            .map(|gate| gate.step.len())
            .max()
            .unwrap_or(0);
        let rule = (self.stages.iter().flat_map(|stage| &stage.gates))
            .flat_map(|gate| {
                gate.thresholds
                    .iter()
                    .map(|threshold| rule_of(threshold).len())
            })
            .max()
            .unwrap_or(0);
        for stage in &self.stages {
            let passed = stage.gates.iter().filter(|gate| gate.passed).count();
            let _ = writeln!(
                out,
                "{} ({passed} of {} passed)",
                stage.name,
                stage.gates.len()
            );
            for gate in &stage.gates {
                let _ = writeln!(
                    out,
                    "  {} {:<width$}  {} {}",
                    status(gate.passed),
                    gate.step,
                    gate.evidence,
                    gate.report
                );
                for threshold in &gate.thresholds {
                    let _ = writeln!(
                        out,
                        "       {} {:<rule$}  measured {}",
                        status(threshold.passed),
                        rule_of(threshold),
                        threshold
                            .measured
                            .map_or_else(|| "nothing".to_owned(), number)
                    );
                }
                for name in gate.failing.iter().take(5) {
                    let _ = writeln!(out, "            {name}");
                }
            }
        }
        for line in &self.unreadable {
            let _ = writeln!(out, "unreadable verdict: {line}");
        }
        let _ = writeln!(out, "{}", self.verdict());
        out
    }

    fn verdict(&self) -> String {
        if self.gates == 0 {
            "FAILED: no gate verdicts in the folder".to_owned()
        } else if self.passed {
            format!("PASSED: all {} gates", self.gates)
        } else {
            format!("FAILED: {} of {} gates", self.failed, self.gates)
        }
    }

    /// One page, styles inline: a tile per gate by stage, then each stage's thresholds with a
    /// gauge of the measured value against its limit.
    #[must_use]
    pub fn html(&self) -> String {
        let mut out = String::from(HEAD);
        let run = self
            .run
            .as_deref()
            .unwrap_or("(no provenance in the folder)");
        let _ = write!(
            out,
            "<h1>Gauntlet <span class=\"{}\">{}</span></h1>\n<p>run <code>{}</code>",
            class(self.passed),
            escape(&self.verdict()),
            escape(run)
        );
        for pipeline in &self.pipelines {
            let _ = write!(
                out,
                " · pipeline <code>sha256 {}</code>",
                escape(short(pipeline))
            );
        }
        out.push_str("</p>\n<div class=\"tiles\">\n");
        for stage in &self.stages {
            let _ = write!(out, "<div class=\"stage\"><h3>{}</h3>", escape(&stage.name));
            for gate in &stage.gates {
                let _ = write!(
                    out,
                    "<a class=\"tile {}\" href=\"#gate-{}\">{}</a>",
                    class(gate.passed),
                    escape(&gate.step),
                    escape(&gate.step)
                );
            }
            out.push_str("</div>\n");
        }
        out.push_str("</div>\n");
        for stage in &self.stages {
            let _ = write!(
                out,
                "<h2>{}</h2>\n<table>\n<tr><th>gate</th><th>evidence</th><th>threshold</th><th>measured</th><th></th><th>verdict</th></tr>\n",
                escape(&stage.name)
            );
            for gate in &stage.gates {
                let rows = gate.thresholds.len().max(1);
                let _ = write!(
                    out,
                    "<tr id=\"gate-{}\"><td rowspan=\"{rows}\"><b>{}</b><br><small>{}</small></td><td rowspan=\"{rows}\">{} <code>{}</code>{}</td>",
                    escape(&gate.step),
                    escape(&gate.step),
                    escape(&gate.subject),
                    escape(&gate.evidence),
                    escape(&gate.report),
                    failing(&gate.failing)
                );
                if gate.thresholds.is_empty() {
                    out.push_str("<td colspan=\"4\">no thresholds</td></tr>\n");
                }
                for (index, threshold) in gate.thresholds.iter().enumerate() {
                    if index > 0 {
                        out.push_str("<tr>");
                    }
                    let _ = writeln!(
                        out,
                        "<td><code>{} {} {}</code></td><td>{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                        escape(&threshold.metric),
                        escape(threshold.bound.symbol()),
                        number(threshold.limit),
                        threshold
                            .measured
                            .map_or_else(|| "nothing".to_owned(), number),
                        gauge(threshold),
                        class(threshold.passed),
                        if threshold.passed { "pass" } else { "fail" }
                    );
                }
            }
            out.push_str("</table>\n");
        }
        for line in &self.unreadable {
            let _ = writeln!(
                out,
                "<p class=\"fail\">unreadable verdict: {}</p>",
                escape(line)
            );
        }
        out.push_str("</body>\n</html>\n");
        out
    }
}

const HEAD: &str = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Gauntlet report</title>\n<style>\nbody{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}\ncode{font-size:13px}\n.pass{color:#176c2c}.fail{color:#b3261e;font-weight:bold}\n.tiles{display:flex;flex-wrap:wrap;gap:1em}\n.stage h3{margin:.2em 0;font-size:13px;text-transform:uppercase;color:#555}\n.tile{display:inline-block;margin:2px;padding:.4em .7em;border-radius:4px;color:#fff;text-decoration:none}\n.tile.pass{background:#2e7d32;color:#fff}.tile.fail{background:#c62828;color:#fff}\ntable{border-collapse:collapse;margin:.5em 0 1.5em}\ntd,th{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}\n.gauge{position:relative;width:160px;height:10px;background:#eee;border-radius:5px;margin-top:.4em}\n.gauge .value{position:absolute;left:0;top:0;bottom:0;border-radius:5px}\n.gauge .limit{position:absolute;top:-3px;bottom:-3px;width:2px;background:#222}\n.ok{background:#66bb6a}.bad{background:#e57373}\n</style>\n</head>\n<body>\n";

/// `line_coverage >= 0.95`.
fn rule_of(threshold: &Verdict) -> String {
    format!(
        "{} {} {}",
        threshold.metric,
        threshold.bound.symbol(),
        number(threshold.limit)
    )
}

fn status(passed: bool) -> &'static str {
    if passed { "PASS" } else { "FAIL" }
}

fn class(passed: bool) -> &'static str {
    if passed { "pass" } else { "fail" }
}

/// A bar for the measured value and a mark for the limit, on a scale that shows both.
fn gauge(threshold: &Verdict) -> String {
    let Some(measured) = threshold.measured else {
        return String::new();
    };
    let scale = measured.abs().max(threshold.limit.abs()) * 1.25;
    let at = |value: f64| {
        if scale > 0.0 {
            (value.max(0.0) / scale * 100.0).clamp(0.0, 100.0)
        } else {
            0.0
        }
    };
    let title = match threshold.bound {
        Bound::Min => "at least the mark",
        Bound::Max => "at most the mark",
    };
    format!(
        "<div class=\"gauge\" title=\"{title}\"><div class=\"value {}\" style=\"width:{:.1}%\"></div><div class=\"limit\" style=\"left:{:.1}%\"></div></div>",
        if threshold.passed { "ok" } else { "bad" },
        at(measured),
        at(threshold.limit)
    )
}

fn failing(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let mut out = String::from("<br><small>");
    for name in names.iter().take(5) {
        let _ = write!(out, "{}<br>", escape(name));
    }
    if names.len() > 5 {
        let _ = write!(out, "and {} more", names.len() - 5);
    }
    out.push_str("</small>");
    out
}

fn short(hex: &str) -> &str {
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use crate::report::escape::html as escape;

    #[test]
    fn html_escapes_what_a_report_name_may_hold() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
