//! The run's usage document, `usage.intoto.json` (docs/usage.md): what each step used as it
//! ran here (every failed attempt too), or saved as a cache hit, signed about the run's
//! provenance, or about the pipeline file when the run failed: a failed run used the machine
//! as much as any.

use crate::atomic;
use crate::attest::predicate::usage::{Machine, Pipeline, RunUsage, StepUsage, URI};
use crate::attest::{PAYLOAD_TYPE, ResourceDescriptor, Statement, run_folder};
use crate::digest::Digest;
use crate::exec::context::Context;
use crate::report::StepStatus;
use crate::run::provenance::Times;

/// What a run's usage document is about.
pub enum About<'a> {
    /// A run that succeeded: its provenance.
    Provenance(&'a Digest),
    /// A run without provenance: `failed` or `interrupted`.
    Failed(&'static str),
}

/// Writes the document; returns its digest and what it says.
pub fn write(
    context: &Context,
    statuses: &[StepStatus],
    times: &Times,
    about: &About<'_>,
) -> Result<(Digest, RunUsage), String> {
    let pipeline = &context.pipeline;
    let mut failed = (context.failed_attempts.lock()).map_or_else(
        |poisoned| poisoned.into_inner().clone(),
        |failed| failed.clone(),
    );
    // Attempts in the pipeline's order, each step's in the order they ran.
    failed.sort_by_key(|(id, _)| *id);
    let failed = failed.into_iter().map(|(id, usage)| StepUsage {
        step: pipeline.steps[id].name.clone(),
        status: "failed".to_owned(),
        usage: Some(usage),
        not_measured: not_measured(&pipeline.steps[id]),
    });
    let steps = (pipeline.steps.iter().zip(statuses).enumerate())
        .filter_map(|(id, (step, status))| {
            let status = match status {
                StepStatus::Executed => "executed",
                StepStatus::Cached => "cached",
                StepStatus::Failed | StepStatus::Skipped => return None,
            };
            let usage = (context.results.get(id)?.get()).and_then(|result| result.usage.clone());
            Some(StepUsage {
                step: step.name.clone(),
                status: status.to_owned(),
                usage,
                not_measured: not_measured(step),
            })
        })
        .chain(failed)
        .collect();
    let path = (pipeline.file.strip_prefix(&pipeline.root))
        .unwrap_or(&pipeline.file)
        .display()
        .to_string();
    let predicate = RunUsage {
        run_id: context.run_id.clone(),
        result: match about {
            About::Provenance(_) => "success",
            About::Failed(result) => result,
        }
        .to_owned(),
        tenant: pipeline.tenant.clone(),
        pipeline: Pipeline {
            name: pipeline.name.clone(),
            path: path.clone(),
            sha256: pipeline.digest.hex(),
        },
        machine: Machine {
            cores: std::thread::available_parallelism()
                .map_or(1, |cores| u64::try_from(cores.get()).unwrap_or(1)),
            memory_bytes: memory_total(),
        },
        started_on: crate::time::rfc3339(times.started),
        finished_on: crate::time::rfc3339(times.finished),
        steps,
    };
    let subject = match about {
        About::Provenance(provenance) => {
            ResourceDescriptor::named(run_folder::PROVENANCE, provenance)
        }
        About::Failed(_) => ResourceDescriptor::named(&path, &pipeline.digest),
    };
    let statement = Statement::new(vec![subject], URI, &predicate);
    let body = serde_json::to_vec(&statement).map_err(|error| error.to_string())?;
    let envelope = crate::attest::dsse::sign(PAYLOAD_TYPE, &body, context.signer.as_ref());
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    let path = context.run_dir.join(run_folder::USAGE);
    atomic::write(&path, &bytes)
        .map_err(|error| format!("cannot write `{}`: {error}", path.display()))?;
    Ok((Digest::of_bytes(&bytes), predicate))
}

/// What a step may have used that nobody here measured: the traffic of a step on the host's
/// network (its own namespace would be needed to count it), or of a Nix build (the daemon's).
fn not_measured(step: &crate::pipeline::model::Step) -> Vec<String> {
    if step.network || matches!(step.kind, crate::pipeline::model::StepKind::Nix(_)) {
        vec!["networkBytes".to_owned()]
    } else {
        Vec::new()
    }
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn memory_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|line| line.starts_with("MemTotal:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kilobytes.checked_mul(1024)
}
