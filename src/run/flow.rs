//! `gantry run`: scan the workspace, build the graph, open the store, start the sandbox and
//! schedule every step; return what happened.

use std::fs::{self, File};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rand_core::RngCore;

use crate::error::{Error, Result};
use crate::exec::context::{Context, ProgramCache};
use crate::exec::executor::{Executor, LazyExecutor};
use crate::exec::sandbox::Sandbox;
use crate::exec::scratch::Slots;
use crate::exec::variation::Variation;
use crate::graph::{self, Graph};
use crate::keys::Signer;
use crate::pipeline::Pipeline;
use crate::report::{Event, Reporter, StepStatus};
use crate::run::records::{self, RecordOptions};
use crate::run::{scheduler, settled};
use crate::runlog::LogFiles;
use crate::store::Store;
use crate::workspace;

pub struct RunOptions {
    pub jobs: usize,
    pub keep_going: bool,
    /// Folder holding one sub-folder per run.
    pub attestations: PathBuf,
    pub cache_dir: PathBuf,
    pub reporter: Reporter,
    /// `gantry repro`: rebuild everything in varied surroundings.
    pub rebuild: Option<Rebuild>,
    /// The key of each sign step, loaded by the caller (which may ask for passwords).
    pub artifact_keys: crate::exec::context::Keys,
    /// Where sbom steps look up crates' licences (`CARGO_HOME`, else `~/.cargo`).
    pub cargo_home: Option<PathBuf>,
    /// `--param NAME=VALUE`: every command sees `GANTRY_PARAM_NAME`; provenance records them.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// The provenance's `builder.id`.
    pub builder_id: String,
    /// Also write each attestation as a Sigstore bundle (`<name>.sigstore.json`).
    pub bundles: bool,
    /// The caller's home folder, for `[tools]` written as `~/...`.
    pub home: Option<PathBuf>,
    /// `--tenant`: who the run's usage is for, over the pipeline's `tenant`.
    pub tenant: Option<String>,
    /// `gantry release`: what the provenance records of the release.
    pub release: Option<crate::attest::provenance::ReleaseParameter>,
    /// `--remote`: the REAPI server steps run on, instead of the pipeline's `[executor]`.
    pub remote: Option<crate::pipeline::model::Remote>,
    /// `--trust-cache-key`: public keys besides the run's whose links vouch for cached
    /// results (a key rotated out); their links are signed again with the run's key.
    pub trusted_cache_keys: Vec<Box<dyn crate::keys::Verifier>>,
}

/// A rebuild for `gantry repro`: its cache (`cache_dir`) starts empty, its outputs go to
/// `output_root` instead of the workspace, its steps run in `variation`'s surroundings.
pub struct Rebuild {
    pub variation: Variation,
    pub output_root: PathBuf,
    /// Where steps' scratch folders go (a tmpfs lets file order be varied); default: the
    /// cache's `tmp/`.
    pub scratch: Option<PathBuf>,
    /// Paths that are not sources of the rebuild: outputs of steps left out (`--step`), the
    /// workspace's cache and attestation folders.
    pub skip: Vec<PathBuf>,
    /// Build Nix steps again with `nix build --rebuild` (the main rebuild), or only make sure
    /// their outputs exist (the rebuilds that attribute a difference).
    pub nix_check: bool,
}

#[derive(Debug)]
pub struct RunSummary {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub executed: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
    pub interrupted_by: Option<i32>,
    /// `provenance.intoto.json`, written when every step succeeded.
    pub provenance: Option<PathBuf>,
    /// Why the run is over its `[budget]`: it fails, its documents kept.
    pub over_budget: Option<String>,
    /// The run whose provenance this one names (it executed nothing and would have written
    /// the same); `run_dir` and `provenance` are that run's.
    pub reused: Option<String>,
    /// Whether the run was settled (`run::settled`): no step planned.
    pub settled: bool,
}

impl RunSummary {
    #[must_use]
    pub fn success(&self) -> bool {
        self.failed == 0
            && self.skipped == 0
            && self.interrupted_by.is_none()
            && self.over_budget.is_none()
    }
}

/// Scans the workspace and builds the graph; what `check`, `graph` and `run` share.
/// The default attestation folder, relative to the root; never a source, whatever the run's
/// `--attestations` says.
pub const DEFAULT_ATTESTATIONS: &str = crate::pipeline::model::ATTESTATIONS;

pub fn plan(pipeline: &Pipeline, extra_skips: &[&Path]) -> Result<Graph> {
    let sources = scan_sources(pipeline, extra_skips)?;
    graph::build(pipeline, &sources).map_err(|diagnostics| Error::Pipeline(Box::new(diagnostics)))
}

/// The graph's mistakes in a pipeline whose file had mistakes of its own (`whole`: no step
/// was left out for one), for `gantry check` to report them all at once.
pub fn plan_mistakes(pipeline: &Pipeline, whole: bool) -> Result<Vec<crate::pipeline::Diagnostic>> {
    let sources = scan_sources(pipeline, &[])?;
    Ok(if whole {
        graph::build(pipeline, &sources)
            .err()
            .map_or_else(Vec::new, |diagnostics| diagnostics.items)
    } else {
        graph::mistakes_of_partial(pipeline, &sources)
    })
}

/// The work tree's files a step may read: none of the outputs, attestations or key files.
fn scan_sources(pipeline: &Pipeline, extra_skips: &[&Path]) -> Result<workspace::SourceFiles> {
    let mut skip: Vec<String> = pipeline
        .steps
        .iter()
        .flat_map(|step| step.outputs.iter().map(|output| output.path.clone()))
        .collect();
    for path in extra_skips {
        if let Ok(relative) = path.strip_prefix(&pipeline.root)
            && let Some(relative) = relative.to_str()
            && !relative.is_empty()
        {
            skip.push(relative.to_owned());
        }
    }
    skip.push(DEFAULT_ATTESTATIONS.to_owned());
    // Key files named in the pipeline are never sources: no step may read a private key.
    for step in &pipeline.steps {
        if let crate::pipeline::StepKind::Sign(sign) = &step.kind
            && let crate::pipeline::model::KeyRef::Path(path) = &sign.key
        {
            skip.push(path.clone());
        }
    }
    workspace::scan(&pipeline.root, &skip)
}

/// Runs the pipeline in the local sandbox.
pub fn run(pipeline: Pipeline, signer: Box<dyn Signer>, options: RunOptions) -> Result<RunSummary> {
    let profile = options
        .rebuild
        .as_ref()
        .map_or_else(crate::exec::sandbox::Profile::standard, |rebuild| {
            rebuild.variation.sandbox.clone()
        });
    run_with_executor(pipeline, signer, options, move |scratch| {
        Ok(Box::new(Sandbox::new(scratch, profile)?) as Box<dyn Executor>)
    })
}

fn announce(
    reporter: &crate::report::Reporter,
    run_id: &str,
    pipeline: &str,
    steps: usize,
    jobs: usize,
) {
    reporter.emit(&Event::RunStarted {
        run_id: run_id.to_owned(),
        pipeline: pipeline.to_owned(),
        steps,
        jobs,
    });
}

/// HEAD's commit time, when each file last changed (`git::last_change`, kept in the store)
/// and the host system exec steps see.
type History = (
    Option<i64>,
    Option<crate::git::last_change::LastChanges>,
    crate::exec::host::HostSystem,
);

/// [`History`], read on a thread of its own while the workspace is scanned: reading git and
/// dpkg's database are milliseconds a no-op run would otherwise wait for.
fn history_and_host(root: &Path, cache_dir: &Path) -> std::thread::JoinHandle<History> {
    let (root, cache_dir) = (root.to_path_buf(), cache_dir.to_path_buf());
    std::thread::spawn(move || {
        (
            crate::git::commit_time(&root),
            crate::git::last_change::load(&root, &cache_dir.join("last-change")),
            crate::exec::host::HostSystem::identify(),
        )
    })
}

/// The REAPI executor, made on first use, when the run has a remote.
fn remote_executor(remote: Option<crate::pipeline::model::Remote>) -> Option<LazyExecutor> {
    remote.map(|remote| {
        LazyExecutor::new(move || {
            crate::remote::executor::RemoteExecutor::new(&remote.url, &remote.instance)
                .map(|executor| Box::new(executor) as Box<dyn Executor>)
                .map_err(std::io::Error::other)
        })
    })
}

/// Runs the pipeline on the executor `make_executor` builds (given a scratch folder of its own).
pub fn run_with_executor(
    mut pipeline: Pipeline,
    signer: Box<dyn Signer>,
    options: RunOptions,
    make_executor: impl FnOnce(&Path) -> std::io::Result<Box<dyn Executor>> + Send + 'static,
) -> Result<RunSummary> {
    pipeline.tenant = options.tenant.clone().or(pipeline.tenant);
    let started = Instant::now();
    let started_unix = crate::time::unix_now();
    let started_nanos = crate::time::unix_nanos();
    fs::create_dir_all(&options.cache_dir).map_err(Error::write(&options.cache_dir))?;
    let _lock = lock(&options.cache_dir)?;
    let index = index_file(&options.cache_dir, &pipeline.file);
    let own_key = || crate::keys::EcdsaVerifier::from_pem(signer.public_key_pem()).ok();
    let settled_file = settled::file_for(&index);
    // A pipeline with a settled record most likely needs no action cache: its index is read
    // only once the record does not hold.
    let index_first = !settled_file.exists();
    let opening = open_store(&options.cache_dir, &index, own_key(), index_first);
    let history = history_and_host(&pipeline.root, &options.cache_dir);
    let graph = plan(&pipeline, &not_sources(&options))?;
    let budget = crate::run::budget::load(&pipeline)?;
    let store = joined(opening, &options.cache_dir)?;
    let (run_id, run_dir) = new_run_folder(&options.attestations)?;
    let scratch_base = fresh_scratch(&store)?;
    let executor_scratch = scratch_base.clone();
    let executor = LazyExecutor::new(move || make_executor(&executor_scratch));
    let remote = remote_executor(options.remote.clone().or_else(|| pipeline.remote.clone()));
    let around = surroundings(options.rebuild, &pipeline.root, &scratch_base, &run_id)?;
    let _workspace = lock_workspace(&around.output_root)?;
    let scratch = around.scratch.clone();
    let (source_date_epoch, last_changes, host) = joined_history(history)?;
    let count = pipeline.steps.len();
    let jobs = options.jobs.max(1);
    announce(&options.reporter, &run_id, &pipeline.name, count, jobs);
    let tools = checked_tools(&pipeline, options.home, &options.artifact_keys)?;
    let cache_verifiers = cache_verifiers(own_key(), options.trusted_cache_keys);
    let context = Arc::new(Context {
        pipeline,
        graph,
        store,
        executor,
        remote,
        signer,
        cache_verifiers,
        artifact_keys: options.artifact_keys,
        cargo_home: options.cargo_home,
        run_id: run_id.clone(),
        run_dir: run_dir.clone(),
        scratch: around.scratch,
        source_date_epoch,
        last_changes,
        host,
        epochs: (0..count).map(|_| OnceLock::new()).collect(),
        parameters: options.parameters,
        release: options.release,
        cancel: AtomicBool::new(false),
        reporter: options.reporter,
        results: (0..count).map(|_| OnceLock::new()).collect(),
        failed_attempts: std::sync::Mutex::default(),
        attestations: (0..count).map(|_| OnceLock::new()).collect(),
        placer: crate::exec::placer::Placer::start(),
        stored: crate::exec::stored::StoredAttestations::new(&options.attestations),
        programs: ProgramCache::default(),
        tools,
        slots: around.slots,
        nix_settings: OnceLock::new(),
        output_root: around.output_root,
        sandbox_settings: around.variation.sandbox.describe(),
        variation: around.variation,
        rebuild: around.rebuild,
        nix_check: around.nix_check,
    });
    let last_file = crate::run::last_run::file_for(&index);
    let ingredients = settled::ingredients(&context, &options.builder_id, options.bundles);
    if let Some(found) = settled_or_index(&context, &index, index_first, ingredients.as_ref()) {
        let _ = crate::exec::scratch::remove(&scratch);
        let log = LogFiles::in_folder(&options.cache_dir);
        let records = RecordOptions::settled(&options.builder_id, options.bundles, log, last_file);
        return finish_settled(context, found, &records, started);
    }
    let finished = schedule(&context, jobs, options.keep_going)?;
    release_store(&context, &index);
    let _ = crate::exec::scratch::remove(&scratch);
    let mut summary = summarise(&finished, run_id, run_dir);
    let records = RecordOptions {
        builder_id: &options.builder_id,
        bundles: options.bundles,
        log: LogFiles::in_folder(&options.cache_dir),
        statuses: &finished.statuses,
        budget: budget.as_ref(),
        last: last_file,
    };
    let written = records::write(&context, &summary, &records, started_unix)?;
    let run = settled::Run {
        ingredients,
        started_nanos,
        statuses: &finished.statuses,
        written: &written,
        last_file: &records.last,
    };
    settled::save(&context, &settled_file, &run);
    written.into_summary(&mut summary);
    context.reporter.emit(&finished_event(&summary, started));
    // Freeing thousands of steps' results costs milliseconds that nobody needs to wait for:
    // the command can exit meanwhile. What lives on the host (cgroups) goes now.
    context.executor.release();
    std::thread::spawn(move || drop(context));
    Ok(summary)
}

/// Runs the steps: the scheduler on a runtime of its own.
fn schedule(context: &Arc<Context>, jobs: usize, keep_going: bool) -> Result<scheduler::Finished> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        // Up to `jobs` planning batches and `jobs` executions at once.
        .max_blocking_threads(2 * jobs + 2)
        .enable_all()
        .build()
        .map_err(|error| Error::Environment {
            message: format!("cannot start the scheduler: {error}"),
        })?;
    let finished = runtime.block_on(scheduler::schedule(Arc::clone(context), jobs, keep_going));
    runtime.shutdown_background();
    Ok(finished)
}

/// The settled run this run is (`run::settled`), when it is one; otherwise the index is read,
/// as it is for the events of a settled run's cached steps, which show what each saved.
fn settled_or_index(
    context: &Context,
    index: &Path,
    index_first: bool,
    ingredients: Option<&crate::digest::Digest>,
) -> Option<settled::Settled> {
    let last_file = crate::run::last_run::file_for(index);
    let found = settled::check(context, &settled::file_for(index), ingredients, &last_file);
    if !index_first && (found.is_none() || context.reporter.is_json()) {
        load_index(&context.store, index, own_key_of(context).as_ref());
    }
    found
}

/// Completes a settled run (`run::settled`): every step reported cached, the run named as
/// the last run it repeats. The action cache was not read, so its index is left as it is.
fn finish_settled(
    context: Arc<Context>,
    settled: settled::Settled,
    records: &RecordOptions<'_>,
    started: Instant,
) -> Result<RunSummary> {
    for (id, (key, attestation)) in settled.steps.iter().enumerate() {
        let _ = context.attestations[id].set(*attestation);
        let usage = || context.store.actions.saved_usage(key);
        context
            .reporter
            .emit(&scheduler::cached_event(&context, id, 0, usage));
    }
    // Finding programs and toolchains again may have hashed a file.
    let _ = context.store.stats.save();
    let finished = scheduler::Finished {
        statuses: vec![StepStatus::Cached; context.pipeline.steps.len()],
        interrupted_by: None,
    };
    let mut summary = summarise(&finished, context.run_id.clone(), context.run_dir.clone());
    let written = records::record_reuse(&context, &summary, records, settled.last)?;
    written.into_summary(&mut summary);
    summary.settled = true;
    context.reporter.emit(&finished_event(&summary, started));
    context.executor.release();
    std::thread::spawn(move || drop(context));
    Ok(summary)
}

/// The action cache's results are not needed again once its index is saved; saving the stat
/// cache also frees its map (lookups then read what was written). The provenance of a large
/// run needs the memory, and the results go before the stat cache's copy is made (at 50,000
/// steps the two at once were the run's peak).
fn release_store(context: &Context, index: &Path) {
    let _ = context
        .store
        .actions
        .save_index(index, context.signer.as_ref());
    context.store.actions.forget();
    let _ = context.store.stats.save();
    if context.pipeline.steps.len() > 10_000 {
        // What was freed sits in the arenas of the threads that made it, where the thread
        // making the provenance does not allocate: given back, it is not counted twice. Alone
        // it took a 50,000-step run's peak from 197 to 196 MB; with the smaller model and the
        // order above, 172 MB (docs/PERFORMANCE.md).
        // SAFETY: malloc_trim only returns free pages to the system; nothing is invalidated.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

fn finished_event(summary: &RunSummary, started: Instant) -> Event {
    Event::RunFinished {
        run_id: summary.run_id.clone(),
        executed: summary.executed,
        cached: summary.cached,
        failed: summary.failed,
        skipped: summary.skipped,
        attestations: summary.run_dir.display().to_string(),
        provenance: summary
            .provenance
            .as_ref()
            .map(|path| path.display().to_string()),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        cancelled: summary.interrupted_by.is_some(),
        over_budget: summary.over_budget.clone(),
        reused: summary.reused.clone(),
        settled: summary.settled,
    }
}

fn summarise(finished: &scheduler::Finished, run_id: String, run_dir: PathBuf) -> RunSummary {
    let tally = |wanted: StepStatus| {
        finished
            .statuses
            .iter()
            .filter(|&&status| status == wanted)
            .count()
    };
    RunSummary {
        run_id,
        run_dir,
        executed: tally(StepStatus::Executed),
        cached: tally(StepStatus::Cached),
        failed: tally(StepStatus::Failed),
        skipped: tally(StepStatus::Skipped),
        interrupted_by: finished.interrupted_by,
        provenance: None,
        over_budget: None,
        reused: None,
        settled: false,
    }
}

/// Paths the workspace scan leaves out besides the declared outputs.
fn not_sources(options: &RunOptions) -> Vec<&Path> {
    let mut skips: Vec<&Path> = vec![&options.cache_dir, &options.attestations];
    skips.extend(options.artifact_keys.files.iter().map(PathBuf::as_path));
    if let Some(rebuild) = &options.rebuild {
        skips.extend(rebuild.skip.iter().map(PathBuf::as_path));
    }
    skips
}

/// The store [`open_store`] opened.
fn joined(
    opening: std::thread::JoinHandle<std::io::Result<Store>>,
    cache_dir: &Path,
) -> Result<Store> {
    opening
        .join()
        .map_err(|_| Error::Internal("opening the store panicked".to_owned()))?
        .map_err(Error::write(cache_dir))
}

/// The store's scratch folder, emptied: what a killed run left there is not valid.
fn fresh_scratch(store: &Store) -> Result<PathBuf> {
    let scratch = store.scratch();
    let _ = crate::exec::scratch::remove(&scratch);
    fs::create_dir_all(&scratch).map_err(Error::write(&scratch))?;
    Ok(scratch)
}

/// The keys whose links vouch for cached results: the run's own first.
fn cache_verifiers(
    own: Option<crate::keys::EcdsaVerifier>,
    trusted: Vec<Box<dyn crate::keys::Verifier>>,
) -> Vec<Box<dyn crate::keys::Verifier>> {
    let mut verifiers: Vec<Box<dyn crate::keys::Verifier>> = Vec::new();
    verifiers.extend(own.map(|key| Box::new(key) as Box<dyn crate::keys::Verifier>));
    verifiers.extend(trusted);
    verifiers
}

/// `[tools]` for the run, refused before any step when one would show a step a home folder,
/// a key or the whole system.
fn checked_tools(
    pipeline: &Pipeline,
    home: Option<PathBuf>,
    keys: &crate::exec::context::Keys,
) -> Result<crate::exec::tools::Tools> {
    let tools = crate::exec::tools::Tools::new(&pipeline.tools, home, keys.files.clone());
    tools.check().map_err(|message| Error::Input {
        path: pipeline.file.clone(),
        message,
    })?;
    Ok(tools)
}

/// Where a run's steps work and what they see.
struct Surroundings {
    /// `<cache>/tmp/<run-id>/` (or under a rebuild's own scratch folder).
    scratch: PathBuf,
    slots: Slots,
    variation: Variation,
    /// The workspace root, or a rebuild's output folder.
    output_root: PathBuf,
    rebuild: bool,
    nix_check: bool,
}

fn surroundings(
    rebuild: Option<Rebuild>,
    root: &Path,
    scratch_base: &Path,
    run_id: &str,
) -> Result<Surroundings> {
    let scratch = match rebuild
        .as_ref()
        .and_then(|rebuild| rebuild.scratch.as_ref())
    {
        Some(folder) => folder.join(run_id),
        None => scratch_base.join(run_id),
    };
    fs::create_dir_all(&scratch).map_err(Error::write(&scratch))?;
    let is_rebuild = rebuild.is_some();
    let nix_check = rebuild.as_ref().is_some_and(|rebuild| rebuild.nix_check);
    let (variation, output_root) = match rebuild {
        Some(rebuild) => (rebuild.variation, rebuild.output_root),
        None => (Variation::none(), root.to_path_buf()),
    };
    let slots = if variation.reverse_file_order {
        Slots::fresh_reversed(scratch.clone())
    } else {
        Slots::new(scratch.clone())
    };
    Ok(Surroundings {
        scratch,
        slots,
        variation,
        output_root,
        rebuild: is_rebuild,
        nix_check,
    })
}

/// `<cache>/index/<digest of the pipeline's path>`: one index per pipeline file.
/// Opens the store and loads the pipeline's index while the caller scans the workspace: both
/// are reads, and a no-op run of thousands of steps spends a good part of its time on them.
fn open_store(
    cache_dir: &Path,
    index: &Path,
    own_key: Option<crate::keys::EcdsaVerifier>,
    with_index: bool,
) -> std::thread::JoinHandle<std::io::Result<Store>> {
    let (cache_dir, index) = (cache_dir.to_path_buf(), index.to_path_buf());
    std::thread::spawn(move || {
        let store = Store::open(&cache_dir)?;
        if with_index {
            load_index(&store, &index, own_key.as_ref());
        }
        Ok(store)
    })
}

/// Loads the pipeline's index into the action cache, vouched for when `own_key` signed it.
fn load_index(store: &Store, index: &Path, own_key: Option<&crate::keys::EcdsaVerifier>) {
    store
        .actions
        .load_index(index, own_key.map(|key| key as &dyn crate::keys::Verifier));
}

/// The run key's verifier.
fn own_key_of(context: &Context) -> Option<crate::keys::EcdsaVerifier> {
    crate::keys::EcdsaVerifier::from_pem(context.signer.public_key_pem()).ok()
}

fn index_file(cache_dir: &Path, pipeline_file: &Path) -> PathBuf {
    let name = crate::digest::Digest::of_bytes(pipeline_file.as_os_str().as_encoded_bytes()).hex();
    cache_dir.join("index").join(&name[..32])
}

/// One run at a time per cache: a second gantry waits for nothing and fails clearly.
pub fn lock(cache_dir: &Path) -> Result<File> {
    let path = cache_dir.join("lock");
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(Error::write(&path))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Environment {
            message: format!(
                "another gantry run is using the cache `{}`",
                cache_dir.display()
            ),
        });
    }
    Ok(file)
}

/// One run at a time writes a workspace, whatever cache each uses (`GANTRY_CACHE_DIR`): two
/// runs with different caches once mixed their outputs, and one of them passed `gantry
/// verify`. The lock is on the folder itself, so nothing is written to take it.
fn lock_workspace(root: &Path) -> Result<File> {
    // A rebuild's output folder is made by its first output; it must exist to be locked.
    fs::create_dir_all(root).map_err(Error::write(root))?;
    let folder = File::open(root).map_err(Error::read(root))?;
    // SAFETY: flock on a descriptor we own.
    if unsafe { libc::flock(folder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(Error::Environment {
            message: format!(
                "another gantry run is writing the workspace `{}`; one run at a time writes a workspace, whatever cache it uses",
                root.display()
            ),
        });
    }
    Ok(folder)
}

/// A new run's id and its folder, made.
fn new_run_folder(attestations: &Path) -> Result<(String, PathBuf)> {
    let run_id = new_run_id();
    let run_dir = attestations.join(&run_id);
    fs::create_dir_all(&run_dir).map_err(Error::write(&run_dir))?;
    Ok((run_id, run_dir))
}

fn joined_history(history: std::thread::JoinHandle<History>) -> Result<History> {
    history
        .join()
        .map_err(|_| Error::Internal("reading the history and the host panicked".to_owned()))
}

/// A new run's id: now, and 32 random bits.
fn new_run_id() -> String {
    crate::attest::run_folder::run_id(crate::time::unix_now(), rand_core::OsRng.next_u32())
}
