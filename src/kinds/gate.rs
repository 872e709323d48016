//! The `gate` step kind: reads its evidence, checks the thresholds and writes the signed
//! verdict, an in-toto test-result attestation about the release candidate. Runs in gantry.
//! A failed threshold fails the step (so every step that needs it is skipped), and its
//! signed `fail` verdict still goes into the run folder for the report.

use std::time::Instant;

use serde_json::json;

use crate::attest::{ResourceDescriptor, Statement};
use crate::digest::{Digest, DigestBuilder};
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::exec::step::{Failure, step_failure};
use crate::gauntlet::{self, Verdict};
use crate::kinds::in_process::{LinkParts, finish, store_file};
use crate::pipeline::model::GateStep;
use crate::pipeline::{StepId, StepKind};
use crate::store::atomic;

/// <https://github.com/in-toto/attestation/blob/main/spec/predicates/test-results.md>
pub const PREDICATE_TYPE: &str = "https://in-toto.io/attestation/test-result/v0.1";

/// What a gate's attestation is called in the run folder, after the step's name.
pub const RUN_FILE_SUFFIX: &str = ".gate.intoto.json";

/// Bump when what a gate writes changes in a way gantry's version does not capture.
const FORMAT: &str = "gate/1";

pub struct GateAction {
    pub key: Digest,
    inputs: Vec<InputFile>,
}

pub fn plan(context: &Context, id: StepId) -> Result<GateAction, String> {
    let step = &context.pipeline.steps[id];
    let StepKind::Gate(spec) = &step.kind else {
        return Err(format!("internal: step `{}` is not a gate", step.name));
    };
    let inputs = inputs::resolve(context, id)?;
    let mut key = DigestBuilder::new("gantry-action/1");
    key.str(step.kind.name())
        .str(FORMAT)
        .str(env!("CARGO_PKG_VERSION"))
        .str(context.signer.key_id())
        // The verdict names the pipeline whose thresholds it checked.
        .field(context.pipeline.digest.as_bytes())
        .str(&serde_json::to_string(spec).map_err(|error| error.to_string())?);
    for input in &inputs {
        key.str(&input.path).field(input.digest.as_bytes());
    }
    Ok(GateAction {
        key: key.finish(),
        inputs,
    })
}

pub(crate) fn execute(context: &Context, id: StepId, action: &GateAction) -> Result<(), Failure> {
    let step = &context.pipeline.steps[id];
    let StepKind::Gate(spec) = &step.kind else {
        return Err(step_failure("internal: not a gate"));
    };
    let started = Instant::now();
    let find = |path: &str| {
        action
            .inputs
            .iter()
            .find(|input| input.path == path)
            .ok_or_else(|| step_failure(format!("`{path}` is not a file")))
    };
    let evidence = find(&spec.evidence_path)?;
    let subject = match &spec.subject {
        Some(path) => find(path)?,
        None => evidence,
    };
    let verdicts = judge(spec, evidence).map_err(step_failure)?;
    let passed = verdicts.iter().all(|verdict| verdict.passed);
    let attestation =
        attest(context, spec, &step.name, evidence, subject, &verdicts).map_err(step_failure)?;
    if !passed {
        let path = context
            .run_dir
            .join(format!("{}{RUN_FILE_SUFFIX}", step.name));
        atomic::write(&path, &attestation)
            .map_err(|error| step_failure(format!("cannot write `{}`: {error}", path.display())))?;
        let failed: Vec<String> = (verdicts.iter())
            .filter(|verdict| !verdict.passed)
            .map(Verdict::sentence)
            .collect();
        return Err(step_failure(format!(
            "gate failed on `{}`: {}",
            spec.evidence_path,
            failed.join("; ")
        )));
    }
    let records = vec![store_file(context, spec.output.clone(), &attestation)?];
    let parts = LinkParts {
        command: vec![
            "gantry".to_owned(),
            "gate".to_owned(),
            format!("--{}", spec.evidence.name()),
            spec.evidence_path.clone(),
        ],
        byproducts: serde_json::Map::from_iter([("result".to_owned(), "pass".into())]),
        environment: serde_json::Map::from_iter([(
            "actionKey".to_owned(),
            action.key.hex().into(),
        )]),
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

/// Reads the evidence (checking it is what was planned) and judges every threshold.
fn judge(spec: &GateStep, evidence: &InputFile) -> Result<Vec<Verdict>, String> {
    let bytes = std::fs::read(&evidence.host)
        .map_err(|error| format!("cannot read `{}`: {error}", evidence.path))?;
    if Digest::of_bytes(&bytes) != evidence.digest {
        return Err(format!("`{}` changed while the run read it", evidence.path));
    }
    let text =
        String::from_utf8(bytes).map_err(|_| format!("`{}` is not UTF-8 text", evidence.path))?;
    let metrics: Vec<&str> = (spec.thresholds.iter())
        .map(|threshold| threshold.metric.as_str())
        .collect();
    let reading = spec.evidence.read(&text, &metrics).map_err(|message| {
        format!(
            "`{}` is not a {} report gantry can read: {message}",
            evidence.path,
            spec.evidence.name()
        )
    })?;
    Ok(gauntlet::judge(&reading, &spec.thresholds))
}

/// The signed test-result Statement: each threshold is a test, named by its sentence; the
/// configuration is the pipeline (whose digest fixes the thresholds) and the evidence, which
/// carries the thresholds, values and verdicts as data.
fn attest(
    context: &Context,
    spec: &GateStep,
    step: &str,
    evidence: &InputFile,
    subject: &InputFile,
    verdicts: &[Verdict],
) -> Result<Vec<u8>, String> {
    let pipeline = &context.pipeline;
    let mut pipeline_file = ResourceDescriptor::named(
        pipeline
            .file
            .strip_prefix(&pipeline.root)
            .unwrap_or(&pipeline.file)
            .to_string_lossy(),
        &pipeline.digest,
    );
    pipeline_file.annotations = Some(serde_json::Map::from_iter([(
        "step".to_owned(),
        step.into(),
    )]));
    let mut report = ResourceDescriptor::named(evidence.path.clone(), &evidence.digest);
    report.annotations = Some(serde_json::Map::from_iter([
        ("evidence".to_owned(), spec.evidence.name().into()),
        ("stage".to_owned(), spec.stage.clone().into()),
        (
            "thresholds".to_owned(),
            serde_json::to_value(verdicts).map_err(|error| error.to_string())?,
        ),
    ]));
    let sentences = |passed: bool| -> Vec<String> {
        (verdicts.iter())
            .filter(|verdict| verdict.passed == passed)
            .map(Verdict::sentence)
            .collect()
    };
    let failed = sentences(false);
    let predicate = json!({
        "result": if failed.is_empty() { "pass" } else { "fail" },
        "configuration": [pipeline_file, report],
        "passedTests": sentences(true),
        "warnedTests": [],
        "failedTests": failed,
    });
    let statement = Statement::new(
        vec![ResourceDescriptor::named(
            subject.path.clone(),
            &subject.digest,
        )],
        PREDICATE_TYPE,
        predicate,
    );
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
