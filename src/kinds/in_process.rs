//! What the kinds that run inside gantry rather than in a sandbox (sign, sbom) share: their
//! files go into the store, their link names their inputs as materials and their files as
//! products, and they commit with empty logs (no process ran).

use std::collections::HashMap;
use std::time::Instant;

use crate::attest::{Link, ResourceDescriptor, link};
use crate::digest::Digest;
use crate::exec::commit::{Commit, Failure, commit, store_log};
use crate::exec::context::Context;
use crate::exec::inputs::InputFile;
use crate::kinds::{Ran, Work};
use crate::pipeline::StepId;
use crate::store::OutputRecord;

/// Stores `bytes` as the regular file `path` of the step's outputs.
pub(crate) fn store_file(
    context: &Context,
    path: String,
    bytes: &[u8],
) -> Result<OutputRecord, Failure> {
    let digest = context
        .store
        .cas
        .put_bytes(bytes)
        .map_err(|error| Failure::environment(format!("cannot store `{path}`: {error}")))?;
    Ok(OutputRecord {
        path,
        digest,
        directory: false,
        executable: false,
        link: None,
    })
}

/// What the step's link says beyond its materials and products.
pub(crate) struct LinkParts {
    /// The equivalent command line.
    pub command: Vec<String>,
    pub byproducts: link::Byproducts,
    pub environment: link::Environment,
}

/// A kind that runs inside gantry: it makes its files and says what its link adds; the
/// timing, the link's materials and products, and the commit are shared.
pub(crate) trait InProcess: Send + Sync {
    fn key(&self) -> Digest;
    /// The inputs it read: the link's materials.
    fn inputs(&self) -> &[InputFile];
    /// Whether a cached result may stand in for running it.
    fn cacheable(&self) -> bool {
        true
    }
    /// Makes the step's files (each stored with [`store_file`]) and its link's parts.
    fn make(&self, context: &Context, id: StepId) -> Result<Made, Failure>;
}

/// What an in-process step made.
pub(crate) struct Made {
    pub records: Vec<OutputRecord>,
    pub link: LinkParts,
}

impl<T: InProcess> Work for T {
    fn key(&self) -> Option<Digest> {
        Some(InProcess::key(self))
    }

    fn cacheable(&self) -> bool {
        InProcess::cacheable(self)
    }

    fn execute(&self, context: &Context, id: StepId) -> Result<Ran, Failure> {
        let started = Instant::now();
        let cpu_before = thread_cpu();
        let made = self.make(context, id)?;
        let usage = thread_usage(started.elapsed(), cpu_before);
        finish(
            context,
            id,
            InProcess::key(self),
            self.inputs(),
            made,
            (started, usage),
        )?;
        Ok(Ran::Executed)
    }
}

/// The CPU time of the calling thread so far, user and system, in microseconds.
fn thread_cpu() -> Option<(u64, u64)> {
    // SAFETY: a zeroed rusage is a valid one for the kernel to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage of this thread into a local.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut usage) } != 0 {
        return None;
    }
    let micros = |time: libc::timeval| {
        u64::try_from(time.tv_sec)
            .ok()?
            .checked_mul(1_000_000)?
            .checked_add(u64::try_from(time.tv_usec).ok()?)
    };
    Some((micros(usage.ru_utime)?, micros(usage.ru_stime)?))
}

/// An in-process step's usage: its time, and the CPU time of the thread that ran it (work it
/// handed to other threads, such as reading an advisory database in parallel, is not in it).
fn thread_usage(wall: std::time::Duration, before: Option<(u64, u64)>) -> crate::store::Usage {
    let spent = before
        .zip(thread_cpu())
        .map(|((user, system), (user_now, system_now))| {
            (
                user_now.saturating_sub(user),
                system_now.saturating_sub(system),
            )
        });
    crate::store::Usage {
        method: "thread".to_owned(),
        wall_us: crate::store::usage::micros(wall),
        cpu_user_us: spent.map(|(user, _)| user),
        cpu_system_us: spent.map(|(_, system)| system),
        ..crate::store::Usage::default()
    }
}

/// Signs the step's link and commits its files under the action `key`.
fn finish(
    context: &Context,
    id: StepId,
    key: Digest,
    inputs: &[InputFile],
    made: Made,
    (started, usage): (Instant, crate::store::Usage),
) -> Result<(), Failure> {
    let Made {
        records,
        link: parts,
    } = made;
    let subjects = records
        .iter()
        .map(|record| ResourceDescriptor::named(record.path.clone(), &record.digest))
        .collect();
    // A link inside a folder output is no material (what it points to is listed itself).
    let materials = inputs
        .iter()
        .filter(|input| input.material)
        .map(|input| ResourceDescriptor::named(input.path.clone(), &input.digest))
        .collect();
    let link = Link {
        name: context.pipeline.steps[id].name.clone(),
        command: parts.command,
        materials,
        byproducts: parts.byproducts,
        environment: parts.environment,
    };
    let empty = store_log(context, b"")?;
    commit(
        context,
        id,
        Commit {
            key,
            subjects,
            link,
            records,
            trees: HashMap::new(),
            logs: [empty, empty],
            duration: started.elapsed(),
            usage,
        },
    )
    .map(drop)
}

/// The pipeline file, by its path in the workspace and its digest: what a verdict or a
/// rollout record names as the plan it followed.
pub(crate) fn pipeline_descriptor(context: &Context) -> ResourceDescriptor {
    let pipeline = &context.pipeline;
    ResourceDescriptor::named(
        pipeline
            .file
            .strip_prefix(&pipeline.root)
            .unwrap_or(&pipeline.file)
            .to_string_lossy(),
        &pipeline.digest,
    )
}

/// A failed gate's verdict or a rolled-back rollout's record: it is not an output (the step
/// failed), but the run folder keeps it as `STEP` + `suffix` for the report and the auditor.
pub(crate) fn keep_in_run_folder(
    context: &Context,
    step: &str,
    file: crate::attest::run_folder::StepFile,
    bytes: &[u8],
) -> Result<(), Failure> {
    let path = context.run_dir.join(file.name(step));
    crate::atomic::write(&path, bytes).map_err(|error| {
        Failure::environment(format!("cannot write `{}`: {error}", path.display()))
    })
}

/// The link's `environment` of an in-process step: the action key it ran under.
pub(crate) fn action_environment(key: &Digest) -> link::Environment {
    link::Environment {
        action_key: key.hex(),
        ..link::Environment::default()
    }
}
