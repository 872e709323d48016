//! The `rollout` step kind: moves traffic to the new release through the traffic backend,
//! watched by the sequential test (`rollout::controller`), and signs the record of every
//! decision about the artifact rolled out. It changes the world, so it is never cached. A
//! rollback fails the step (every step that needs it is skipped); its signed record still
//! goes into the run folder.

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::attest::link::Byproducts;
use crate::attest::predicate::rollout;
use crate::attest::run_folder::StepFile;
use crate::attest::{ResourceDescriptor, Statement};
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::commit::Failure;
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::kinds::in_process::{
    InProcess, LinkParts, Made, action_environment, keep_in_run_folder, pipeline_descriptor,
    store_file,
};
use crate::pipeline::StepId;
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
    key: Digest,
    spec: RolloutStep,
    inputs: Vec<InputFile>,
}

impl InProcess for RolloutAction {
    fn key(&self) -> Digest {
        self.key
    }

    fn inputs(&self) -> &[InputFile] {
        &self.inputs
    }

    /// A rollout acts on the world now: it is never served from the cache.
    fn cacheable(&self) -> bool {
        false
    }

    fn make(&self, context: &Context, id: StepId) -> Result<Made, Failure> {
        make(context, id, self)
    }
}

/// Bump when what a rollout writes changes.
const VERSION: u32 = 1;

pub(crate) fn plan(
    context: &Context,
    id: StepId,
    spec: &RolloutStep,
) -> Result<RolloutAction, String> {
    let step = &context.pipeline.steps[id];
    let inputs = inputs::resolve(context, id)?;
    // Never looked up (a rollout is never served from the cache): the key names this run's
    // attempt in the store.
    let mut key = ActionKey::of_step(step, step.kind.name(), VERSION);
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
        spec: spec.clone(),
        inputs,
    })
}

fn make(context: &Context, id: StepId, action: &RolloutAction) -> Result<Made, Failure> {
    let step = &context.pipeline.steps[id];
    let spec = &action.spec;
    let started = Instant::now();
    let subject = (action.inputs.iter())
        .find(|input| input.path == spec.subject)
        .ok_or_else(|| Failure::input(format!("`{}` is not a file", spec.subject)))?;
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
        .map_err(|error| Failure::environment(format!("cannot start the rollout: {error}")))?;
    let attestation = attest(
        context,
        spec,
        &step.name,
        subject,
        verified.as_ref(),
        &report,
    )
    .map_err(Failure::internal)?;
    if !report.promoted {
        keep_in_run_folder(context, &step.name, StepFile::Rollout, &attestation)?;
        return Err(Failure::refused(
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
        byproducts: Byproducts {
            result: Some("promoted".to_owned()),
            canary_requests: Some(report.canary_requests),
            ..Byproducts::default()
        },
        environment: action_environment(&action.key),
    };
    Ok(Made {
        records,
        link: parts,
    })
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
        crate::exec::commit::show_run_so_far(context).map_err(Failure::environment)?;
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
        Failure::input(format!(
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
        return Err(Failure::refused(format!(
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
    let (lower, upper) = spec.analysis.bounds();
    let predicate = rollout::Rollout {
        step: step.to_owned(),
        pipeline: pipeline_descriptor(context),
        run_id: context.run_id.clone(),
        strategy: spec.strategy.name().to_owned(),
        traffic: Some(spec.traffic.clone()),
        metrics: spec.metrics.as_ref().map(|metrics| rollout::Metrics {
            prometheus: rollout::Prometheus {
                url: metrics.url.to_string(),
                requests: metrics.requests.clone(),
                errors: metrics.errors.clone(),
                latency: metrics.latency.clone(),
                max_latency_ms: metrics
                    .max_latency
                    .map(|limit| limit.as_secs_f64() * 1000.0),
            },
        }),
        verified: verified.map(|verified| rollout::Verified {
            policy: verified.policy.clone(),
            attestations: verified.attestations.clone(),
            checks: verified.checks,
            passed: true,
        }),
        health: rollout::Health {
            url: spec.health.url.to_string(),
            healthy_after: spec.health.healthy_after,
        },
        canary_steps: spec.canary.steps.clone(),
        min_requests: spec.canary.min_requests,
        analysis: rollout::Analysis {
            method: "sprt".to_owned(),
            alpha: spec.analysis.alpha,
            beta: spec.analysis.beta,
            baseline_error_rate: spec.analysis.baseline_error_rate,
            delta: spec.analysis.delta,
            lower,
            upper,
        },
        rehearsed: spec.rehearse,
        start: spec.start.clone(),
        result: if report.promoted {
            "promoted"
        } else {
            "rolled-back"
        }
        .to_owned(),
        reason: report.reason.clone(),
        canary_requests: report.canary_requests,
        decisions: report.records.clone(),
    };
    let statement = Statement::new(vec![subject], crate::attest::predicate::ROLLOUT, predicate);
    let body = serde_json::to_vec(&statement).map_err(|error| error.to_string())?;
    let envelope =
        crate::attest::dsse::sign(crate::attest::PAYLOAD_TYPE, &body, context.signer.as_ref());
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}
