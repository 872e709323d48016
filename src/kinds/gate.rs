//! The `gate` step kind: reads its evidence, checks the thresholds and writes the signed
//! verdict, an in-toto test-result attestation about the release candidate. Runs in gantry.
//! A failed threshold fails the step (so every step that needs it is skipped), and its
//! signed `fail` verdict still goes into the run folder for the report.

use std::fmt::Write as _;
use std::time::Instant;

use serde_json::json;

use crate::attest::run_folder::StepFile;
use crate::attest::{ResourceDescriptor, Statement, predicate};
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::command::{ExecAction, prepare_command, run_command};
use crate::exec::commit::{Failure, step_failure, tail};
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::exec::sandbox::Termination;
use crate::gauntlet::{self, Reading, Verdict};
use crate::kinds::in_process::{
    LinkParts, action_environment, finish, keep_in_run_folder, pipeline_descriptor, store_file,
};
use crate::pipeline::model::{Evidence, GateStep};
use crate::pipeline::{ExecStep, StepId, StepKind};

/// Bump when what a gate writes changes in a way gantry's version does not capture.
const VERSION: u32 = 1;

pub struct GateAction {
    pub key: Digest,
    inputs: Vec<InputFile>,
    /// A drill's command.
    drill: Option<ExecAction>,
}

impl GateAction {
    /// A drill measures time now: it is never served from the cache.
    #[must_use]
    pub fn is_drill(&self) -> bool {
        self.drill.is_some()
    }
}

pub fn plan(context: &Context, id: StepId) -> Result<GateAction, String> {
    let step = &context.pipeline.steps[id];
    let StepKind::Gate(spec) = &step.kind else {
        return Err(format!("internal: step `{}` is not a gate", step.name));
    };
    let drill = match &spec.evidence {
        Evidence::Drill { argv } => Some(prepare_command(
            context,
            id,
            &ExecStep {
                argv: argv.clone(),
                warm: Vec::new(),
            },
        )?),
        _ => None,
    };
    let inputs = inputs::resolve(context, id)?;
    let mut key = ActionKey::new(step.kind.name(), VERSION);
    key.text("gantry", env!("CARGO_PKG_VERSION"))
        .text("key id", context.signer.key_id())
        // The verdict names the pipeline whose thresholds it checked.
        .digest("pipeline", &context.pipeline.digest)
        .text(
            "spec",
            &serde_json::to_string(spec).map_err(|error| error.to_string())?,
        );
    for input in &inputs {
        key.input(&input.path, &input.digest);
    }
    if let Some(drill) = &drill {
        key.digest("drill", &drill.key);
    }
    Ok(GateAction {
        key: key.finish(),
        inputs,
        drill,
    })
}

/// What a gate measured, and the evidence it measured, as the verdict names it.
struct Measured {
    reading: Reading,
    report: ResourceDescriptor,
}

pub(crate) fn execute(context: &Context, id: StepId, action: &GateAction) -> Result<(), Failure> {
    let step = &context.pipeline.steps[id];
    let StepKind::Gate(spec) = &step.kind else {
        return Err(step_failure("internal: not a gate"));
    };
    let started = Instant::now();
    let measured = measure(context, id, spec, action)?;
    let verdicts = gauntlet::judge(&measured.reading, &spec.thresholds);
    let passed = verdicts.iter().all(|verdict| verdict.passed);
    let subject = match &spec.subject {
        Some(path) => {
            let input = find(&action.inputs, path)?;
            ResourceDescriptor::named(input.path.clone(), &input.digest)
        }
        None => ResourceDescriptor {
            annotations: None,
            ..measured.report.clone()
        },
    };
    let attestation =
        attest(context, spec, &step.name, &measured, subject, &verdicts).map_err(step_failure)?;
    if !passed {
        keep_in_run_folder(context, &step.name, StepFile::Gate, &attestation)?;
        let failed: Vec<String> = (verdicts.iter())
            .filter(|verdict| !verdict.passed)
            .map(Verdict::sentence)
            .collect();
        let mut message = format!(
            "gate failed on `{}`: {}",
            spec.evidence.describe(),
            failed.join("; ")
        );
        if let Some(names) = shown(&measured.reading.failed) {
            let _ = write!(message, " ({names})");
        }
        return Err(step_failure(message));
    }
    let records = vec![store_file(context, spec.output.clone(), &attestation)?];
    let kind = spec.evidence.kind();
    let parts = LinkParts {
        command: vec![
            "gantry".to_owned(),
            "gate".to_owned(),
            format!("--{}", kind.name()),
            spec.evidence.describe(),
        ],
        byproducts: serde_json::Map::from_iter([("result".to_owned(), "pass".into())]),
        environment: action_environment(&action.key),
    };
    finish(
        context,
        id,
        action.key,
        &action.inputs,
        records,
        parts,
        started,
    )
}

/// The first few names behind a failing number (failed tests, slower benchmarks).
fn shown(names: &[String]) -> Option<String> {
    const SHOWN: usize = 3;
    let (first, rest) = names.split_at(names.len().min(SHOWN));
    if first.is_empty() {
        return None;
    }
    let mut text = first.join(", ");
    if !rest.is_empty() {
        let _ = write!(text, " and {} more", rest.len());
    }
    Some(text)
}

fn find<'a>(inputs: &'a [InputFile], path: &str) -> Result<&'a InputFile, Failure> {
    inputs
        .iter()
        .find(|input| input.path == path)
        .ok_or_else(|| step_failure(format!("`{path}` is not a file")))
}

/// Reads the evidence (checking it is what was planned) or runs the drill, and measures.
fn measure(
    context: &Context,
    id: StepId,
    spec: &GateStep,
    action: &GateAction,
) -> Result<Measured, Failure> {
    match &spec.evidence {
        Evidence::Report { kind, path } => {
            let evidence = find(&action.inputs, path)?;
            let text = read_text(evidence).map_err(step_failure)?;
            let metrics: Vec<&str> = (spec.thresholds.iter())
                .map(|threshold| threshold.metric.as_str())
                .collect();
            let reading = kind.read(&text, &metrics).map_err(|message| {
                step_failure(format!(
                    "`{path}` is not a {} report gantry can read: {message}",
                    kind.name()
                ))
            })?;
            Ok(Measured {
                reading,
                report: ResourceDescriptor::named(path.clone(), &evidence.digest),
            })
        }
        Evidence::Criterion { folder, baseline } => {
            criterion(folder, baseline, &action.inputs).map_err(step_failure)
        }
        Evidence::Drill { argv } => {
            let Some(command) = &action.drill else {
                return Err(step_failure("internal: a drill without its command"));
            };
            drill(context, id, argv, command)
        }
    }
}

fn read_text(input: &InputFile) -> Result<String, String> {
    let bytes = crate::bounded::read(&input.host, crate::bounded::Kind::Evidence)
        .map_err(|error| format!("cannot read `{}`: {error}", input.path))?;
    if Digest::of_bytes(&bytes) != input.digest {
        return Err(format!("`{}` changed while the run read it", input.path));
    }
    String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", input.path))
}

/// Every `estimates.json` under the folder; the verdict names the folder by the SHA-256 of a
/// `SHA256SUMS` listing of the files read, which it carries.
fn criterion(folder: &str, baseline: &str, inputs: &[InputFile]) -> Result<Measured, String> {
    let prefix = format!("{folder}/");
    let sides = [
        "/new/estimates.json".to_owned(),
        format!("/{baseline}/estimates.json"),
    ];
    let read: Vec<&InputFile> = (inputs.iter())
        .filter(|input| {
            let path = format!("/{}", input.path);
            input.path.starts_with(&prefix) && sides.iter().any(|side| path.ends_with(side))
        })
        .collect();
    let texts = read
        .iter()
        .map(|input| read_text(input))
        .collect::<Result<Vec<String>, String>>()?;
    let files: Vec<(&str, &str)> = read
        .iter()
        .zip(&texts)
        .map(|(input, text)| (&input.path[prefix.len()..], text.as_str()))
        .collect();
    let mut found = gauntlet::criterion::read(&files, baseline)
        .map_err(|message| format!("`{folder}` is not criterion's output: {message}"))?;
    // One benchmark's own folder: name it as criterion does, by its folder.
    let own = folder.rsplit('/').next().unwrap_or(folder);
    for name in (found
        .compared
        .iter_mut()
        .map(|comparison| &mut comparison.benchmark))
    .chain(found.unmatched.iter_mut())
    {
        if name == "." {
            own.clone_into(name);
        }
    }
    let mut listing = String::new();
    for input in &read {
        let _ = writeln!(listing, "{}  {}", input.digest.hex(), input.path);
    }
    let mut report = ResourceDescriptor::named(folder, &Digest::of_bytes(listing.as_bytes()));
    report.annotations = Some(serde_json::Map::from_iter([
        ("baseline".to_owned(), baseline.into()),
        ("listing".to_owned(), listing.into()),
        (
            "benchmarks".to_owned(),
            (found.compared.iter())
                .map(|comparison| {
                    json!({
                        "name": comparison.benchmark,
                        "baselineNs": comparison.baseline,
                        "newNs": comparison.new,
                        "change": comparison.change(),
                    })
                })
                .collect(),
        ),
    ]));
    Ok(Measured {
        reading: gauntlet::criterion::measure(&found),
        report,
    })
}

/// Runs the drill in the sandbox and times it; its output is kept only as a digest (and the
/// tail of stderr when it fails).
fn drill(
    context: &Context,
    id: StepId,
    argv: &[String],
    command: &ExecAction,
) -> Result<Measured, Failure> {
    let (finished, duration) = run_command(context, id, command)?;
    let exit_code = match finished.termination {
        Termination::Exited(code) => Some(code),
        Termination::Signaled(signal) => Some(128 + signal),
        Termination::TimedOut => None,
        Termination::Cancelled => return Err(Failure::Cancelled),
    };
    let timing = gauntlet::drill::Timing {
        seconds: duration.as_secs_f64(),
        exit_code,
    };
    let mut output = finished.stdout.bytes.clone();
    output.extend_from_slice(&finished.stderr.bytes);
    let mut report = ResourceDescriptor::named(
        crate::pipeline::model::Evidence::Drill {
            argv: argv.to_vec(),
        }
        .describe(),
        &Digest::of_bytes(&output),
    );
    report.annotations = Some(serde_json::Map::from_iter([
        ("command".to_owned(), argv.into()),
        ("seconds".to_owned(), timing.seconds.into()),
        ("exitCode".to_owned(), exit_code.into()),
    ]));
    let mut reading = gauntlet::drill::measure(timing);
    if exit_code != Some(0) {
        let tail = tail(&finished.stderr.bytes, 5, 1024);
        if !tail.trim().is_empty() {
            reading.failed.push(format!("stderr: {}", tail.trim()));
        }
    }
    Ok(Measured { reading, report })
}

/// The signed test-result Statement: each threshold is a test, named by its sentence; the
/// configuration is the pipeline (whose digest fixes the thresholds) and the evidence, which
/// carries the thresholds, values and verdicts as data.
fn attest(
    context: &Context,
    spec: &GateStep,
    step: &str,
    measured: &Measured,
    subject: ResourceDescriptor,
    verdicts: &[Verdict],
) -> Result<Vec<u8>, String> {
    let mut pipeline_file = pipeline_descriptor(context);
    pipeline_file.annotations = Some(serde_json::Map::from_iter([(
        "step".to_owned(),
        step.into(),
    )]));
    let mut report = measured.report.clone();
    let annotations = report.annotations.get_or_insert_with(serde_json::Map::new);
    annotations.insert("evidence".to_owned(), spec.evidence.kind().name().into());
    annotations.insert("stage".to_owned(), spec.stage.clone().into());
    annotations.insert(
        "thresholds".to_owned(),
        serde_json::to_value(verdicts).map_err(|error| error.to_string())?,
    );
    if !measured.reading.failed.is_empty() {
        const KEPT: usize = 50;
        let failing = &measured.reading.failed;
        annotations.insert(
            "failing".to_owned(),
            failing[..failing.len().min(KEPT)].into(),
        );
    }
    let sentences = |passed: bool| -> Vec<String> {
        (verdicts.iter())
            .filter(|verdict| verdict.passed == passed)
            .map(Verdict::sentence)
            .collect()
    };
    let failed = sentences(false);
    let predicate = json!({
        "result": if failed.is_empty() { "PASSED" } else { "FAILED" },
        "configuration": [pipeline_file, report],
        "passedTests": sentences(true),
        "warnedTests": [],
        "failedTests": failed,
    });
    let statement = Statement::new(vec![subject], predicate::TEST_RESULT, predicate);
    let body = serde_json::to_vec(&statement).map_err(|error| error.to_string())?;
    let envelope = crate::attest::dsse::sign_deterministic(
        crate::attest::PAYLOAD_TYPE,
        &body,
        context.signer.as_ref(),
    );
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}
