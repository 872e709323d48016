//! The `gate` step kind: reads its evidence, checks the thresholds and writes the signed
//! verdict, an in-toto test-result attestation about the release candidate. Runs in gantry.
//! A failed threshold fails the step (so every step that needs it is skipped), and its
//! signed `fail` verdict still goes into the run folder for the report.

use std::fmt::Write as _;

use crate::attest::link::Byproducts;
use crate::attest::predicate::test_result::{self, Annotations, Benchmark, Configuration};
use crate::attest::run_folder::StepFile;
use crate::attest::{ResourceDescriptor, Statement, predicate};
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::command::{ExecAction, prepare_command, run_command};
use crate::exec::commit::{Failure, tail};
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::exec::sandbox::Termination;
use crate::gauntlet::{self, Reading, Verdict};
use crate::kinds::in_process::{
    InProcess, LinkParts, Made, action_environment, keep_in_run_folder, pipeline_descriptor,
    store_file,
};
use crate::pipeline::model::{Evidence, GateStep};
use crate::pipeline::{ExecStep, StepId};

/// Bump when what a gate writes changes in a way gantry's version does not capture.
const VERSION: u32 = 1;

pub struct GateAction {
    key: Digest,
    spec: GateStep,
    inputs: Vec<InputFile>,
    /// A drill's command.
    drill: Option<ExecAction>,
}

impl InProcess for GateAction {
    fn key(&self) -> Digest {
        self.key
    }

    fn inputs(&self) -> &[InputFile] {
        &self.inputs
    }

    /// A drill measures time now: it is never served from the cache.
    fn cacheable(&self) -> bool {
        self.drill.is_none()
    }

    fn make(&self, context: &Context, id: StepId) -> Result<Made, Failure> {
        make(context, id, self)
    }
}

pub(crate) fn plan(context: &Context, id: StepId, spec: &GateStep) -> Result<GateAction, String> {
    let step = &context.pipeline.steps[id];
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
    let mut key = ActionKey::of_step(step, step.kind.name(), VERSION);
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
        spec: spec.clone(),
        inputs,
        drill,
    })
}

/// What a gate measured, and the evidence it measured, as the verdict names it.
struct Measured {
    reading: Reading,
    report: Configuration,
}

fn make(context: &Context, id: StepId, action: &GateAction) -> Result<Made, Failure> {
    let step = &context.pipeline.steps[id];
    let spec = &action.spec;
    let measured = measure(context, id, spec, action)?;
    let verdicts = gauntlet::judge(&measured.reading, &spec.thresholds);
    let passed = verdicts.iter().all(|verdict| verdict.passed);
    let subject = match &spec.subject {
        Some(path) => {
            let input = find(&action.inputs, path)?;
            ResourceDescriptor::named(input.path.clone(), &input.digest)
        }
        None => measured.report.descriptor(),
    };
    let attestation = attest(context, spec, &step.name, &measured, subject, &verdicts)
        .map_err(Failure::internal)?;
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
        return Err(Failure::refused(message));
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
        byproducts: Byproducts {
            result: Some("pass".to_owned()),
            ..Byproducts::default()
        },
        environment: action_environment(&action.key),
    };
    Ok(Made {
        records,
        link: parts,
    })
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
        .ok_or_else(|| Failure::input(format!("`{path}` is not a file")))
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
            let text = read_text(evidence).map_err(Failure::input)?;
            let metrics: Vec<&str> = (spec.thresholds.iter())
                .map(|threshold| threshold.metric.as_str())
                .collect();
            let reading = kind.read(&text, &metrics).map_err(|message| {
                Failure::input(format!(
                    "`{path}` is not a {} report gantry can read: {message}",
                    kind.name()
                ))
            })?;
            Ok(Measured {
                reading,
                report: Configuration::new(
                    ResourceDescriptor::named(path.clone(), &evidence.digest),
                    Annotations::default(),
                ),
            })
        }
        Evidence::Criterion { folder, baseline } => {
            criterion(folder, baseline, &action.inputs).map_err(Failure::input)
        }
        Evidence::Drill { argv } => {
            let Some(command) = &action.drill else {
                return Err(Failure::internal("a drill without its command"));
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
    let report = Configuration::new(
        ResourceDescriptor::named(folder, &Digest::of_bytes(listing.as_bytes())),
        Annotations {
            baseline: Some(baseline.to_owned()),
            benchmarks: (found.compared.iter())
                .map(|comparison| Benchmark {
                    name: comparison.benchmark.clone(),
                    baseline_ns: comparison.baseline,
                    new_ns: comparison.new,
                    change: comparison.change(),
                })
                .collect(),
            listing: Some(listing),
            ..Annotations::default()
        },
    );
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
    let report = Configuration::new(
        ResourceDescriptor::named(
            crate::pipeline::model::Evidence::Drill {
                argv: argv.to_vec(),
            }
            .describe(),
            &Digest::of_bytes(&output),
        ),
        Annotations {
            command: argv.to_vec(),
            seconds: Some(timing.seconds),
            exit_code,
            ..Annotations::default()
        },
    );
    let mut reading = gauntlet::drill::measure(timing);
    if exit_code != Some(0) {
        let tail = tail(&finished.stderr.bytes, 5, 1024);
        if !tail.trim().is_empty() {
            reading.failed.push(format!("stderr: {}", tail.trim()));
        }
    }
    Ok(Measured { reading, report })
}

/// How many names behind failing numbers a verdict keeps.
const KEPT_FAILING: usize = 50;

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
    let pipeline_file = Configuration::new(
        pipeline_descriptor(context),
        Annotations {
            step: Some(step.to_owned()),
            ..Annotations::default()
        },
    );
    let mut report = measured.report.clone();
    report.annotations.evidence = Some(spec.evidence.kind().name().to_owned());
    report.annotations.stage = Some(spec.stage.clone());
    report.annotations.thresholds = Some(verdicts.to_vec());
    let failing = &measured.reading.failed;
    report.annotations.failing = failing[..failing.len().min(KEPT_FAILING)].to_vec();
    let sentences = |passed: bool| -> Vec<String> {
        (verdicts.iter())
            .filter(|verdict| verdict.passed == passed)
            .map(Verdict::sentence)
            .collect()
    };
    let failed = sentences(false);
    let predicate = test_result::TestResult {
        result: if failed.is_empty() {
            "PASSED"
        } else {
            "FAILED"
        }
        .to_owned(),
        configuration: vec![pipeline_file, report],
        passed_tests: sentences(true),
        warned_tests: Vec::new(),
        failed_tests: failed,
    };
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
