//! The run's usage document, `usage.intoto.json` (docs/usage.md): what each step used as it
//! ran here (every failed attempt too), or saved as a cache hit, signed about the run's
//! provenance, or about the pipeline file when the run failed: a failed run used the machine
//! as much as any.

use crate::attest::predicate::usage::{Machine, Pipeline, RunUsage, StepUsage, URI};
use crate::attest::{ResourceDescriptor, Statement, run_folder};
use crate::digest::Digest;
use crate::exec::context::Context;
use crate::report::StepStatus;
use crate::run::provenance::Times;

/// The predicate, made and serialised (on another thread while the provenance is written:
/// a run of thousands of steps lists thousands of records).
pub struct Prepared {
    pub predicate: RunUsage,
    json: Vec<u8>,
}

/// The document's predicate; `result` is `success`, `failed` or `interrupted`.
pub fn prepare(
    context: &Context,
    statuses: &[StepStatus],
    times: &Times,
    result: &str,
) -> Result<Prepared, String> {
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
            let usage = context.usage_of(id);
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
        result: result.to_owned(),
        tenant: pipeline.tenant.clone(),
        pipeline: Pipeline {
            name: pipeline.name.clone(),
            path,
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
    let mut json = Vec::with_capacity(256 * predicate.steps.len() + 1024);
    serde_json::to_writer(&mut json, &predicate).map_err(|error| error.to_string())?;
    Ok(Prepared { predicate, json })
}

/// Signs and writes the document about the run's provenance (`None`: a run that failed, about
/// its pipeline file); returns its digest and what it says.
pub fn write(
    context: &Context,
    prepared: Prepared,
    provenance: Option<&Digest>,
) -> Result<(Digest, RunUsage), String> {
    let Prepared { predicate, json } = prepared;
    let subject = match provenance {
        Some(provenance) => ResourceDescriptor::named(run_folder::PROVENANCE, provenance),
        None => ResourceDescriptor::named(&predicate.pipeline.path, &context.pipeline.digest),
    };
    // The statement with the predicate already serialised: written with a null predicate,
    // whose `null` the predicate's bytes then replace (a statement's fields are written in
    // their declared order, the predicate last).
    let mut body = serde_json::to_vec(&Statement::new(vec![subject], URI, ()))
        .map_err(|error| error.to_string())?;
    let Some(head) = body.strip_suffix(b"null}").map(<[u8]>::len) else {
        return Err("the usage statement's predicate is not last".to_owned());
    };
    body.truncate(head);
    body.reserve(json.len() + 1);
    body.extend_from_slice(&json);
    body.push(b'}');
    drop(json);
    let path = context.run_dir.join(run_folder::USAGE);
    let digest = crate::run::signed_file::write(&path, &body, context.signer.as_ref())?;
    Ok((digest, predicate))
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
