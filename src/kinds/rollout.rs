//! The `rollout` step kind: moves traffic to the new release through the traffic backend,
//! watched by the sequential test (`rollout::controller`), and signs the record of every
//! decision about the artifact rolled out. It changes the world, so it is never cached. A
//! rollback fails the step (every step that needs it is skipped); its signed record still
//! goes into the run folder.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::attest::run_folder::StepFile;
use crate::attest::{ResourceDescriptor, Statement};
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::commit::{Failure, step_failure};
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::kinds::in_process::{
    LinkParts, action_environment, finish, keep_in_run_folder, pipeline_descriptor, store_file,
};
use crate::pipeline::{StepId, StepKind};
use crate::report::Event as ReportEvent;
use crate::rollout::command::CommandBackend;
use crate::rollout::controller::{Controller, Event, Record, Report, Wall};
use crate::rollout::haproxy::Haproxy;
use crate::rollout::health;
use crate::rollout::nginx::Nginx;
use crate::rollout::plan::{RolloutStep, TrafficSpec, VerifySpec};
use crate::rollout::prometheus::Measured;
use crate::rollout::sprt::Outcome;
use crate::rollout::tool::Tool;
use crate::rollout::traffic::Traffic;
use crate::verify::{Artifact, gather};

pub struct RolloutAction {
    pub key: Digest,
    inputs: Vec<InputFile>,
}

/// Bump when what a rollout writes changes.
const VERSION: u32 = 1;

pub fn plan(context: &Context, id: StepId) -> Result<RolloutAction, String> {
    let step = &context.pipeline.steps[id];
    let StepKind::Rollout(spec) = &step.kind else {
        return Err(format!("internal: step `{}` is not a rollout", step.name));
    };
    let inputs = inputs::resolve(context, id)?;
    // Never looked up (a rollout is never served from the cache): the key names this run's
    // attempt in the store.
    let mut key = ActionKey::new(step.kind.name(), VERSION);
    key.text("run", &context.run_id)
        .digest("pipeline", &context.pipeline.digest)
        .text(
            "spec",
            &serde_json::to_string(spec).map_err(|error| error.to_string())?,
        );
    for input in &inputs {
        key.input(&input.path, &input.digest);
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
    let verified = match &spec.verify {
        Some(verify) => Some(verify_first(context, &step.name, verify, subject)?),
        None => None,
    };
    let subject = ResourceDescriptor::named(subject.path.clone(), &subject.digest);
    let root = &context.pipeline.root;
    let mut backend = backend(&spec.traffic, root, &context.cancel);
    let mut measured;
    let traffic: &mut dyn Traffic = match &spec.metrics {
        Some(metrics) => {
            measured = Measured {
                backend: backend.as_mut(),
                spec: metrics,
                names: spec.traffic.pool_names(),
            };
            &mut measured
        }
        None => backend.as_mut(),
    };
    let progress = progress_lines(context, &step.name);
    let clock = Wall(started);
    let start = || {
        let argv = spec.start.as_deref().unwrap_or_default();
        let tool = Tool {
            argv,
            root,
            cancel: &context.cancel,
        };
        tool.run(&[])
            .map(|said| said.lines().last().unwrap_or_default().trim().to_owned())
    };
    let mut controller =
        Controller::new(spec, traffic, &health::probe, &clock).with_progress(&progress);
    if spec.start.is_some() {
        controller = controller.with_start(&start);
    }
    let report = controller
        .run()
        .map_err(|error| step_failure(format!("cannot start the rollout: {error}")))?;
    let attestation = attest(
        context,
        spec,
        &step.name,
        subject,
        verified.as_ref(),
        &report,
    )
    .map_err(step_failure)?;
    if !report.promoted {
        keep_in_run_folder(context, &step.name, StepFile::Rollout, &attestation)?;
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

fn backend<'a>(
    spec: &'a TrafficSpec,
    root: &'a Path,
    cancel: &'a AtomicBool,
) -> Box<dyn Traffic + 'a> {
    match spec {
        TrafficSpec::Haproxy {
            socket,
            backend,
            stable,
            canary,
        } => Box::new(Haproxy {
            socket: root.join(socket),
            backend: backend.clone(),
            stable: stable.clone(),
            canary: canary.clone(),
        }),
        TrafficSpec::Nginx {
            upstream,
            stable,
            canary,
            access_log,
            reload,
        } => Box::new(Nginx::new(
            root.join(upstream),
            stable.clone(),
            canary.clone(),
            root.join(access_log),
            Tool {
                argv: reload,
                root,
                cancel,
            },
        )),
        TrafficSpec::Command { run } => Box::new(CommandBackend {
            tool: Tool {
                argv: run,
                root,
                cancel,
            },
        }),
    }
}

/// Every decision as a progress line; the test's readings at most every two seconds (and
/// whenever it decides), so a long canary does not flood the log.
fn progress_lines<'a>(context: &'a Context, step: &'a str) -> impl Fn(&Record) + 'a {
    let last_reading = Cell::new(None::<Instant>);
    move |record: &Record| {
        if let Event::Analysis { evaluation, .. } = &record.event
            && evaluation.outcome == Outcome::Continue
        {
            if last_reading
                .get()
                .is_some_and(|last| last.elapsed() < Duration::from_secs(2))
            {
                return;
            }
            last_reading.set(Some(Instant::now()));
        }
        context.reporter.emit(&ReportEvent::Progress {
            step: step.to_owned(),
            message: record.event.describe(),
        });
    }
}

/// What the rollout's verification found, for its record.
struct Verified {
    policy: String,
    attestations: Vec<String>,
    checks: usize,
}

/// `gantry verify` of the subject under the step's policy, before anything changes. The
/// attestation folders default to this run's (every placement so far flushed to it).
fn verify_first(
    context: &Context,
    step: &str,
    verify: &VerifySpec,
    subject: &InputFile,
) -> Result<Verified, Failure> {
    let root = &context.pipeline.root;
    let folders: Vec<PathBuf> = if verify.attestations.is_empty() {
        context.placer.flush();
        vec![context.run_dir.clone()]
    } else {
        verify
            .attestations
            .iter()
            .map(|folder| root.join(folder))
            .collect()
    };
    let artifact = Artifact {
        name: subject.path.clone(),
        digest: subject.digest,
    };
    let report = gather::verify_files(
        &root.join(&verify.policy),
        &folders,
        std::slice::from_ref(&artifact),
        crate::time::unix_now(),
        crate::verify::Signatures::default(),
    )
    .map_err(|error| {
        step_failure(format!(
            "cannot verify `{}` before the rollout: {error}; nothing was changed",
            subject.path
        ))
    })?;
    let shown = |folder: &PathBuf| {
        folder
            .strip_prefix(root)
            .unwrap_or(folder)
            .display()
            .to_string()
    };
    if !report.passed {
        let failures: Vec<String> = (report.checks.iter())
            .flat_map(|check| check.failures.iter())
            .map(|finding| finding.message.clone())
            .collect();
        return Err(step_failure(format!(
            "`{}` fails the policy `{}` with the attestations in {}: {}; nothing was changed",
            subject.path,
            verify.policy,
            folders.iter().map(shown).collect::<Vec<_>>().join(", "),
            failures.join("; ")
        )));
    }
    context.reporter.emit(&ReportEvent::Progress {
        step: step.to_owned(),
        message: format!(
            "`{}` passes the policy `{}` ({} checks)",
            subject.path,
            verify.policy,
            report.checks.len()
        ),
    });
    Ok(Verified {
        policy: verify.policy.clone(),
        attestations: folders.iter().map(shown).collect(),
        checks: report.checks.len(),
    })
}

/// The signed record: the artifact, the plan it followed and every decision it took.
fn attest(
    context: &Context,
    spec: &RolloutStep,
    step: &str,
    subject: ResourceDescriptor,
    verified: Option<&Verified>,
    report: &Report,
) -> Result<Vec<u8>, String> {
    let pipeline_file = pipeline_descriptor(context);
    let (lower, upper) = spec.analysis.bounds();
    let traffic = serde_json::to_value(&spec.traffic).map_err(|error| error.to_string())?;
    let metrics = spec.metrics.as_ref().map(|metrics| {
        json!({ "prometheus": {
            "url": metrics.url.to_string(),
            "requests": metrics.requests,
            "errors": metrics.errors,
            "latency": metrics.latency,
            "maxLatencyMs": metrics.max_latency.map(|limit| limit.as_secs_f64() * 1000.0),
        }})
    });
    let verified = verified.map(|verified| {
        json!({
            "policy": verified.policy,
            "attestations": verified.attestations,
            "checks": verified.checks,
            "passed": true,
        })
    });
    let predicate = json!({
        "step": step,
        "pipeline": pipeline_file,
        "runId": context.run_id,
        "strategy": spec.strategy.name(),
        "traffic": traffic,
        "metrics": metrics,
        "verified": verified,
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
        "start": spec.start,
        "result": if report.promoted { "promoted" } else { "rolled-back" },
        "reason": report.reason,
        "canaryRequests": report.canary_requests,
        "decisions": report.records,
    });
    let statement = Statement::new(vec![subject], crate::attest::predicate::ROLLOUT, predicate);
    let body = serde_json::to_vec(&statement).map_err(|error| error.to_string())?;
    let envelope =
        crate::attest::dsse::sign(crate::attest::PAYLOAD_TYPE, &body, context.signer.as_ref());
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}
