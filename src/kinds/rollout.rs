//! The `rollout` step kind: moves traffic to the new release through the traffic backend,
//! watched by the sequential test (`rollout::controller`), and signs the record of every
//! decision about the artifact rolled out. It changes the world, so it is never cached. A
//! rollback fails the step (every step that needs it is skipped); its signed record still
//! goes into the run folder.

use std::time::Instant;

use serde_json::json;

use crate::attest::{ResourceDescriptor, Statement};
use crate::digest::{Digest, DigestBuilder};
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::exec::step::{Failure, step_failure};
use crate::kinds::in_process::{
    LinkParts, action_environment, finish, keep_in_run_folder, pipeline_descriptor, store_file,
};
use crate::pipeline::{StepId, StepKind};
use crate::rollout::controller::{Controller, Report, Wall};
use crate::rollout::haproxy::Haproxy;
use crate::rollout::health;
use crate::rollout::plan::{RolloutStep, TrafficSpec};

pub const PREDICATE_TYPE: &str = "https://gantry.dev/attestation/rollout/v0.1";

/// What a rollout's attestation is called in the run folder, after the step's name.
pub const RUN_FILE_SUFFIX: &str = ".rollout.intoto.json";

pub struct RolloutAction {
    pub key: Digest,
    inputs: Vec<InputFile>,
}

pub fn plan(context: &Context, id: StepId) -> Result<RolloutAction, String> {
    let step = &context.pipeline.steps[id];
    let StepKind::Rollout(spec) = &step.kind else {
        return Err(format!("internal: step `{}` is not a rollout", step.name));
    };
    let inputs = inputs::resolve(context, id)?;
    // Never looked up (a rollout is never served from the cache): the key names this run's
    // attempt in the store.
    let mut key = DigestBuilder::new("gantry-action/1");
    key.str(step.kind.name())
        .str(&context.run_id)
        .field(context.pipeline.digest.as_bytes())
        .str(&serde_json::to_string(spec).map_err(|error| error.to_string())?);
    for input in &inputs {
        key.str(&input.path).field(input.digest.as_bytes());
    }
    Ok(RolloutAction {
        key: key.finish(),
        inputs,
    })
}

pub(crate) fn execute(
    context: &Context,
    id: StepId,
    action: &RolloutAction,
) -> Result<(), Failure> {
    let step = &context.pipeline.steps[id];
    let StepKind::Rollout(spec) = &step.kind else {
        return Err(step_failure("internal: not a rollout"));
    };
    let started = Instant::now();
    let subject = (action.inputs.iter())
        .find(|input| input.path == spec.subject)
        .ok_or_else(|| step_failure(format!("`{}` is not a file", spec.subject)))?;
    let subject = ResourceDescriptor::named(subject.path.clone(), &subject.digest);
    let mut traffic = match &spec.traffic {
        TrafficSpec::Haproxy {
            socket,
            backend,
            stable,
            canary,
        } => Haproxy {
            socket: context.pipeline.root.join(socket),
            backend: backend.clone(),
            stable: stable.clone(),
            canary: canary.clone(),
        },
    };
    let clock = Wall(started);
    let report = Controller::new(spec, &mut traffic, &health::probe, &clock)
        .run()
        .map_err(|error| step_failure(format!("cannot start the rollout: {error}")))?;
    let attestation = attest(context, spec, &step.name, subject, &report).map_err(step_failure)?;
    if !report.promoted {
        keep_in_run_folder(context, &step.name, RUN_FILE_SUFFIX, &attestation)?;
        return Err(step_failure(
            report.reason.unwrap_or_else(|| "rolled back".to_owned()),
        ));
    }
    let records = vec![store_file(context, spec.output.clone(), &attestation)?];
    let parts = LinkParts {
        command: vec![
            "gantry".to_owned(),
            "rollout".to_owned(),
            format!("--{}", spec.strategy.name()),
            spec.subject.clone(),
        ],
        byproducts: serde_json::Map::from_iter([
            ("result".to_owned(), "promoted".into()),
            ("canaryRequests".to_owned(), report.canary_requests.into()),
        ]),
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

/// The signed record: the artifact, the plan it followed and every decision it took.
fn attest(
    context: &Context,
    spec: &RolloutStep,
    step: &str,
    subject: ResourceDescriptor,
    report: &Report,
) -> Result<Vec<u8>, String> {
    let pipeline_file = pipeline_descriptor(context);
    let (lower, upper) = spec.analysis.bounds();
    let TrafficSpec::Haproxy {
        socket,
        backend,
        stable,
        canary,
    } = &spec.traffic;
    let predicate = json!({
        "step": step,
        "pipeline": pipeline_file,
        "runId": context.run_id,
        "strategy": spec.strategy.name(),
        "traffic": { "haproxy": { "socket": socket, "backend": backend, "stable": stable, "canary": canary } },
        "health": { "url": spec.health.url.to_string(), "healthyAfter": spec.health.healthy_after },
        "canarySteps": spec.canary.steps,
        "minRequests": spec.canary.min_requests,
        "analysis": {
            "method": "sprt",
            "alpha": spec.analysis.alpha,
            "beta": spec.analysis.beta,
            "baselineErrorRate": spec.analysis.baseline_error_rate,
            "delta": spec.analysis.delta,
            "lower": lower,
            "upper": upper,
        },
        "rehearsed": spec.rehearse,
        "result": if report.promoted { "promoted" } else { "rolled-back" },
        "reason": report.reason,
        "canaryRequests": report.canary_requests,
        "decisions": report.records,
    });
    let statement = Statement::new(vec![subject], PREDICATE_TYPE, predicate);
    let body = serde_json::to_vec(&statement).map_err(|error| error.to_string())?;
    let envelope =
        crate::attest::dsse::sign(crate::attest::PAYLOAD_TYPE, &body, context.signer.as_ref());
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}
