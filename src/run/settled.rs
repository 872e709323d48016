//! The settled record: a no-op run in ninja's spirit (a stat a file, nothing more), made
//! safe by deriving it from what the action keys and the provenance are made of.
//!
//! A run that executed nothing, restored nothing and whose every step is of a kind whose key
//! is known from its definition, its inputs and run-wide settings alone (`exec`, `sign`)
//! records, beside the pipeline's index and signed with the run's key:
//! - the digest of every run-wide ingredient ([`ingredients`]): gantry's binary, the
//!   validated pipeline, the graph, the keys, the host system, the toolchains, HEAD, the
//!   sandbox settings, the parameters, and the git state the provenance records;
//! - every program the steps found by name, with the host program's digest;
//! - the stat of every source the steps read and of every output (each entry of a folder
//!   output), as the stat cache vouched for the digest the run used, each unchanged since
//!   before the run started (a ctime cannot be set back);
//! - each step's action key and stored link, and the stat of each shard folder of the links
//!   (a link removed, replaced or added changes its folder; one changed in place does not,
//!   and `gantry verify` names it);
//! - the last run whose provenance it named.
//!
//! A later run whose ingredients are the same, whose programs are found again alike and whose
//! files all stat the same would compute every step's key as recorded and find each cached
//! with its outputs in place: it names the same provenance without planning a step
//! ([`check`]). Anything else, or a record that does not verify, and the run plans every
//! step as always. The record is written only by a run that planned every step.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::attest::provenance::GitSource;
use crate::digest::{Digest, DigestBuilder};
use crate::exec::context::Context;
use crate::exec::program::{Program, Resolution};
use crate::pipeline::StepKind;
use crate::report::StepStatus;
use crate::run::last_run::{self, LastRun};

const MAGIC: &[u8] = b"gantry-settled/1\n";

/// A file changed within this long before a run started may have changed while the run
/// looked at it (file times come from a coarse clock): it is not recorded.
const SETTLE_NANOS: i64 = 1_000_000_000;

/// Where the record of `index`'s pipeline is kept: beside the index.
#[must_use]
pub fn file_for(index: &Path) -> PathBuf {
    let mut name = index.as_os_str().to_owned();
    name.push(".settled");
    PathBuf::from(name)
}

/// What a settled run names: the last run, and each step's action key and link.
pub struct Settled {
    pub last: LastRun,
    pub steps: Vec<(Digest, Digest)>,
}

/// The run-wide ingredients of every step's key, of its cached result's use and of the
/// provenance's run-level parts, but the git state (which the provenance reads at its end):
/// `None` when the run cannot be settled (a rebuild, a release, a remote, a step of another
/// kind, a toolchain that cannot be read).
#[must_use]
pub fn ingredients(context: &Context, builder_id: &str, bundles: bool) -> Option<Digest> {
    // Every field named: a field added to the context must be judged here, ingredient or not.
    let Context {
        pipeline,
        graph,
        store,
        // How steps run, not what they make; a remote is refused below.
        executor: _,
        remote,
        signer,
        // A hit vouched by another key is signed again with the run's before any record.
        cache_verifiers: _,
        artifact_keys,
        cargo_home,
        // This run's own, never an ingredient.
        run_id: _,
        run_dir,
        scratch: _,
        source_date_epoch,
        host,
        last_changes,
        // Derived from `last_changes` and the graph.
        epochs: _,
        parameters,
        release,
        cancel: _,
        reporter: _,
        attestations: _,
        placer: _,
        stored: _,
        results: _,
        failed_attempts: _,
        // Recorded by what they found (`Resolution`).
        programs: _,
        tools,
        slots: _,
        nix_settings: _,
        output_root,
        variation,
        sandbox_settings,
        rebuild,
        nix_check,
    } = context;
    let settles = |kind: &StepKind| matches!(kind, StepKind::Exec(_) | StepKind::Sign(_));
    if *rebuild
        || *nix_check
        || release.is_some()
        || remote.is_some()
        || pipeline.remote.is_some()
        || *variation != crate::exec::variation::Variation::none()
        || !pipeline.steps.iter().all(|step| settles(&step.kind))
    {
        return None;
    }
    let mut digest = DigestBuilder::new("gantry-settled/1");
    digest.str(env!("CARGO_PKG_VERSION"));
    binary(&mut digest)?;
    // The whole validated model, streamed into a hash: what every step is, whatever set it.
    let mut model = HashWriter(sha2::Sha256::new());
    bincode::serialize_into(&mut model, pipeline).ok()?;
    digest.field(&model.0.finalize());
    graph_part(&mut digest, graph);
    path(&mut digest, &store.root);
    path(&mut digest, run_dir.parent().unwrap_or(run_dir));
    path(&mut digest, output_root);
    digest.str(signer.key_id()).str(signer.public_key_pem());
    keys_part(&mut digest, artifact_keys);
    digest.field(&[u8::from(cargo_home.is_some())]);
    if let Some(cargo_home) = cargo_home {
        path(&mut digest, cargo_home);
    }
    digest.field(&source_date_epoch.map_or([0xff; 9], |epoch| {
        let mut bytes = [0; 9];
        bytes[1..].copy_from_slice(&epoch.to_le_bytes());
        bytes
    }));
    digest.field(host.digest.as_bytes());
    match last_changes {
        Some(changes) => {
            digest.str("git").str(&changes.head);
            digest.field(&changes.head_time.to_le_bytes());
            path(&mut digest, &changes.work_tree);
        }
        None => {
            digest.str("no git");
        }
    }
    digest.field(&(parameters.len() as u64).to_le_bytes());
    for (name, value) in parameters {
        digest.str(name).str(value);
    }
    digest.str(sandbox_settings);
    // Each step's `SOURCE_DATE_EPOCH`: the history walk behind it is kept unsigned beside the
    // cache, and a deepened clone changes it under the same HEAD.
    for id in 0..pipeline.steps.len() {
        let epoch = crate::exec::epoch::of_step(context, id);
        digest.field(&epoch.map_or([0xff; 9], |epoch| {
            let mut bytes = [0; 9];
            bytes[1..].copy_from_slice(&epoch.to_le_bytes());
            bytes
        }));
    }
    tools_part(&mut digest, pipeline, tools, &store.stats)?;
    digest.str(builder_id).field(&[u8::from(bundles)]);
    Some(digest.finish())
}

fn path(digest: &mut DigestBuilder, path: &Path) {
    digest.field(path.as_os_str().as_bytes());
}

/// gantry itself, by its file's stat: a build of other code under the same version derives
/// keys its own way.
fn binary(digest: &mut DigestBuilder) -> Option<()> {
    let binary = std::fs::metadata("/proc/self/exe").ok()?;
    for value in [
        binary.dev(),
        binary.ino(),
        binary.size(),
        binary.mtime().cast_unsigned(),
        binary.mtime_nsec().cast_unsigned(),
        binary.ctime().cast_unsigned(),
        binary.ctime_nsec().cast_unsigned(),
    ] {
        digest.field(&value.to_le_bytes());
    }
    Some(())
}

/// What each step reads: its sources (from the workspace scan) and the outputs it takes.
fn graph_part(digest: &mut DigestBuilder, graph: &crate::graph::Graph) {
    digest.field(&(graph.inputs.len() as u64).to_le_bytes());
    for inputs in &graph.inputs {
        digest.field(&(inputs.sources.len() as u64).to_le_bytes());
        for source in &inputs.sources {
            digest.str(source);
        }
        digest.field(&(inputs.upstream.len() as u64).to_le_bytes());
        for upstream in &inputs.upstream {
            for part in [upstream.step, upstream.output, upstream.pattern] {
                digest.field(&(part as u64).to_le_bytes());
            }
        }
    }
}

/// The keys `sign` steps sign with, by step.
fn keys_part(digest: &mut DigestBuilder, keys: &crate::exec::context::Keys) {
    let mut by_step: Vec<_> = keys.by_step.iter().collect();
    by_step.sort_by(|left, right| left.0.cmp(right.0));
    digest.field(&(by_step.len() as u64).to_le_bytes());
    for (step, key) in by_step {
        digest.str(step).str(key.key_id()).str(key.public_key_pem());
    }
    digest.field(&(keys.files.len() as u64).to_le_bytes());
    for file in &keys.files {
        path(digest, file);
    }
}

/// Each toolchain a step uses, by its tree digest (through the stat cache, kept for the run).
fn tools_part(
    digest: &mut DigestBuilder,
    pipeline: &crate::pipeline::Pipeline,
    tools: &crate::exec::tools::Tools,
    stats: &crate::store::StatCache,
) -> Option<()> {
    let mut used: Vec<&str> = (pipeline.steps.iter())
        .flat_map(|step| step.tools.iter().map(String::as_str))
        .collect();
    used.sort_unstable();
    used.dedup();
    for name in used {
        let tool = tools.get(name, stats).ok()?;
        digest.str(&tool.name).str(&tool.mount_point);
        path(digest, &tool.host);
        digest.field(tool.digest.as_bytes());
    }
    Some(())
}

/// The ingredients with the git state the provenance records.
fn with_git(base: &Digest, git: Option<&GitSource>) -> Digest {
    let mut digest = DigestBuilder::new("gantry-settled-git/1");
    digest.field(base.as_bytes());
    match git {
        Some(git) => {
            digest
                .str(&git.path)
                .str(&git.commit)
                .str(git.reference.as_deref().unwrap_or("\0"))
                .field(&[u8::from(git.dirty)]);
        }
        None => {
            digest.str("no git");
        }
    }
    digest.finish()
}

/// `lstat` as recorded: size, mtime, ctime (nanoseconds), inode, mode.
pub(crate) type FileStat = [i64; 5];

/// The `lstat` of `path` (a link itself, not what it names).
pub(crate) fn stat_of(path: &Path) -> Option<FileStat> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    let nanos = |seconds: i64, nanoseconds: i64| {
        seconds.checked_mul(1_000_000_000)?.checked_add(nanoseconds)
    };
    Some([
        i64::try_from(metadata.size()).ok()?,
        nanos(metadata.mtime(), metadata.mtime_nsec())?,
        nanos(metadata.ctime(), metadata.ctime_nsec())?,
        i64::try_from(metadata.ino()).ok()?,
        i64::from(metadata.mode()),
    ])
}

/// What [`save`] needs of the run beyond its context.
pub struct Run<'a> {
    /// [`ingredients`], computed before any step was planned.
    pub ingredients: Option<Digest>,
    /// When the run started, in nanoseconds since the epoch.
    pub started_nanos: i64,
    pub statuses: &'a [StepStatus],
    /// What the records said: the provenance the run wrote or named, and its git state.
    pub written: &'a crate::run::records::Written,
    pub last_file: &'a Path,
}

/// Records the run as settled when it is (see the module's documentation); otherwise removes
/// any record, so that none outlives what it describes. Best effort: without a record the
/// next run plans every step.
pub fn save(context: &Context, file: &Path, run: &Run<'_>) {
    let record = (|| {
        let ingredients = run.ingredients.as_ref()?;
        let git = run.written.git.as_ref()?;
        let named_run =
            (run.written.reused.as_ref()).map_or(context.run_id.as_str(), |(id, _)| id.as_str());
        if !run
            .statuses
            .iter()
            .all(|status| *status == StepStatus::Cached)
            || !crate::exec::commit::no_failed_attempts(context)
        {
            return None;
        }
        let last = last_run::intact(context, run.last_file)?;
        if last.run_id != named_run {
            return None;
        }
        encode(
            context,
            &with_git(ingredients, git.as_ref()),
            &last,
            run.started_nanos,
        )
    })();
    match record {
        Some(body) => {
            let signature = context.signer.sign(&body);
            let sealed = crate::store::index_file::seal(body, &signature);
            if crate::atomic::write(file, &sealed).is_err() {
                let _ = std::fs::remove_file(file);
            }
        }
        None => {
            let _ = std::fs::remove_file(file);
        }
    }
}

fn encode(
    context: &Context,
    ingredients: &Digest,
    last: &LastRun,
    started: i64,
) -> Option<Vec<u8>> {
    let mut out = Writer(Vec::with_capacity(
        256 * context.pipeline.steps.len() + 1024,
    ));
    out.0.extend_from_slice(MAGIC);
    out.digest(ingredients);
    out.digest(&last.fingerprint);
    out.bytes(last.run_id.as_bytes());
    let resolutions = context.programs.resolutions()?;
    out.count(resolutions.len());
    for resolution in &resolutions {
        out.resolution(resolution);
    }
    let mut files = settled_files(context, started)?;
    // A link's shard folder, not the link: a link removed, replaced or added changes its
    // folder; a stat a folder instead of one a link halves a settled run's system calls.
    let mut shards: Vec<PathBuf> = (context.attestations.iter())
        .filter_map(|attestation| {
            Some(
                context
                    .stored
                    .path(attestation.get()?)
                    .parent()?
                    .to_path_buf(),
            )
        })
        .collect();
    shards.sort_unstable();
    shards.dedup();
    for shard in shards {
        let stat = stat_of(&shard).filter(|stat| stat[1].max(stat[2]) < started - SETTLE_NANOS)?;
        files.push((shard, stat));
    }
    out.count(files.len());
    for (path, stat) in &files {
        out.bytes(path.as_os_str().as_bytes());
        for value in stat {
            out.i64(*value);
        }
    }
    out.count(context.pipeline.steps.len());
    for id in 0..context.pipeline.steps.len() {
        let key = context.results[id].get()?.cached?;
        let attestation = *context.attestations[id].get()?;
        out.digest(&key);
        out.digest(&attestation);
    }
    Some(out.0)
}

/// Every source the steps read and every output (each entry of a folder output, the folder
/// itself included) with the stat it has now: a file's is the one the stat cache vouches for
/// with the digest the run used, and nothing changed since before the run started. A source's
/// digest is the one the steps were planned with when its entry was taken before the run
/// started (one hashed again during the run, by the provenance after an edit, is not); an
/// output's is compared with the step's result.
fn settled_files(context: &Context, started: i64) -> Option<Vec<(PathBuf, FileStat)>> {
    let old_enough = |stat: &FileStat| stat[1].max(stat[2]) < started - SETTLE_NANOS;
    let vouched = |path: &Path, digest: Option<&Digest>| -> Option<FileStat> {
        let stat = stat_of(path)?;
        let (known, recorded, taken) = context.store.stats.vouched(path)?;
        let used = match digest {
            Some(digest) => *digest == known,
            None => taken < started,
        };
        let same = stat[..4] == recorded && used;
        (same && old_enough(&stat) && stat[4] & 0o170_000 == 0o100_000).then_some(stat)
    };
    let mut files = Vec::new();
    let mut sources: Vec<&String> = (context.graph.inputs.iter())
        .flat_map(|inputs| &inputs.sources)
        .collect();
    sources.sort_unstable();
    sources.dedup();
    for source in sources {
        let path = context.pipeline.root.join(source);
        let stat = vouched(&path, None)?;
        files.push((path, stat));
    }
    for id in 0..context.pipeline.steps.len() {
        let result = context.results[id].get()?;
        for (index, record) in result.outputs.iter().enumerate() {
            let path = context.output_root.join(&record.path);
            if record.link.is_some() {
                return None;
            }
            if !record.directory {
                let stat = vouched(&path, Some(&record.digest))?;
                files.push((path, stat));
                continue;
            }
            let listed: std::collections::HashMap<&str, &Digest> = (result.trees.get(&index)?)
                .regular_files()
                .map(|file| (file.path.as_str(), &file.digest))
                .collect();
            for entry in walkdir::WalkDir::new(&path)
                .follow_links(false)
                .sort_by_file_name()
            {
                let entry = entry.ok()?;
                let stat = if entry.file_type().is_file() {
                    let relative = entry.path().strip_prefix(&path).ok()?.to_str()?;
                    vouched(entry.path(), Some(listed.get(relative)?))?
                } else {
                    stat_of(entry.path()).filter(old_enough)?
                };
                files.push((entry.into_path(), stat));
            }
        }
    }
    Some(files)
}

/// The settled run this run is, when it is one: the record verifies with the run's key, its
/// ingredients are this run's, the last run it names is intact, every program is found again
/// alike, and every file and stored link stats as recorded.
#[must_use]
pub fn check(
    context: &Context,
    file: &Path,
    ingredients: Option<&Digest>,
    last_file: &Path,
) -> Option<Settled> {
    let ingredients = ingredients?;
    let bytes = crate::bounded::read(file, crate::bounded::Kind::Attestation).ok()?;
    let (body, signature) = crate::store::index_file::unseal(&bytes)?;
    let verifier = crate::keys::EcdsaVerifier::from_pem(context.signer.public_key_pem()).ok()?;
    if !crate::keys::Verifier::verify(&verifier, body, signature) {
        return None;
    }
    let mut read = Reader(body.strip_prefix(MAGIC)?);
    let git = crate::run::provenance::git_of(context);
    if read.digest()? != with_git(ingredients, git.as_ref()) {
        return None;
    }
    let fingerprint = read.digest()?;
    let run_id = read.bytes()?;
    let last = last_run::intact(context, last_file)?;
    if last.fingerprint != fingerprint || last.run_id.as_bytes() != run_id {
        return None;
    }
    for _ in 0..read.count()? {
        let resolution = read.resolution()?;
        if !context
            .programs
            .finds_again(&resolution, &context.store.stats)
        {
            return None;
        }
    }
    let mut files = Vec::new();
    for _ in 0..read.count()? {
        let path = read.bytes()?;
        let recorded = [
            read.i64()?,
            read.i64()?,
            read.i64()?,
            read.i64()?,
            read.i64()?,
        ];
        files.push((path, recorded));
    }
    let count = read.count()?;
    if count != context.pipeline.steps.len() {
        return None;
    }
    let mut steps = Vec::with_capacity(count);
    for _ in 0..count {
        steps.push((read.digest()?, read.digest()?));
    }
    if !read.0.is_empty() {
        return None;
    }
    // A stat a file, on two threads: the whole of a settled run's work.
    let (first, second) = files.split_at(files.len() / 2);
    let unchanged = std::thread::scope(|scope| {
        let helper = scope.spawn(|| files_unchanged(second));
        files_unchanged(first) && helper.join().unwrap_or(false)
    });
    unchanged.then_some(Settled { last, steps })
}

/// Whether every file stats as recorded, each looked up in its folder (opened once for a run
/// of files in one folder, as outputs are): a walk from the root for each cost twice as much.
fn files_unchanged(files: &[(&[u8], FileStat)]) -> bool {
    let mut folder: Option<(&[u8], Option<OwnedFd>)> = None;
    for (path, recorded) in files {
        let Some(slash) = path.iter().rposition(|byte| *byte == b'/') else {
            return false;
        };
        let (parent, name) = (&path[..slash.max(1)], &path[slash + 1..]);
        if folder.as_ref().is_none_or(|(open, _)| *open != parent) {
            folder = Some((parent, open_folder(parent)));
        }
        let Some((_, Some(fd))) = &folder else {
            return false;
        };
        if stat_at(fd, name) != Some(*recorded) {
            return false;
        }
    }
    true
}

fn open_folder(path: &[u8]) -> Option<OwnedFd> {
    let path = CString::new(path).ok()?;
    // SAFETY: a NUL-terminated path; the descriptor returned is ours to own.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    // SAFETY: `fd` was just opened and nothing else owns it.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// [`stat_of`] of `name` in the folder `fd`.
fn stat_at(fd: &OwnedFd, name: &[u8]) -> Option<FileStat> {
    let name = CString::new(name).ok()?;
    // SAFETY: a zeroed stat is a valid out-buffer; `name` is NUL-terminated and the
    // descriptor is open for the call.
    let stat = unsafe {
        let mut stat: libc::stat = std::mem::zeroed();
        let done = libc::fstatat(
            fd.as_raw_fd(),
            name.as_ptr(),
            &raw mut stat,
            libc::AT_SYMLINK_NOFOLLOW,
        );
        (done == 0).then_some(stat)
    }?;
    let nanos = |seconds: i64, nanoseconds: i64| {
        seconds.checked_mul(1_000_000_000)?.checked_add(nanoseconds)
    };
    Some([
        stat.st_size,
        nanos(stat.st_mtime, stat.st_mtime_nsec)?,
        nanos(stat.st_ctime, stat.st_ctime_nsec)?,
        i64::try_from(stat.st_ino).ok()?,
        i64::from(stat.st_mode),
    ])
}

struct HashWriter(sha2::Sha256);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Writer(Vec<u8>);

impl Writer {
    fn count(&mut self, count: usize) {
        self.0
            .extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.count(bytes.len());
        self.0.extend_from_slice(bytes);
    }

    fn i64(&mut self, value: i64) {
        self.0.extend_from_slice(&value.to_le_bytes());
    }

    fn digest(&mut self, digest: &Digest) {
        self.0.extend_from_slice(digest.as_bytes());
    }

    fn resolution(&mut self, resolution: &Resolution) {
        self.bytes(resolution.name.as_bytes());
        self.bytes(resolution.path.as_bytes());
        self.count(resolution.tools.len());
        for (mount, host) in &resolution.tools {
            self.bytes(mount.as_bytes());
            self.bytes(host.as_os_str().as_bytes());
        }
        match &resolution.program {
            Program::System {
                exec_path,
                resolved,
            } => {
                self.0.push(0);
                self.bytes(exec_path.as_bytes());
                self.bytes(resolved.as_os_str().as_bytes());
            }
            Program::Input { path } => {
                self.0.push(1);
                self.bytes(path.as_bytes());
            }
            Program::Tool { exec_path } => {
                self.0.push(2);
                self.bytes(exec_path.as_bytes());
            }
        }
        match &resolution.digest {
            Some(digest) => {
                self.0.push(1);
                self.digest(digest);
            }
            None => self.0.push(0),
        }
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.0.split_at_checked(length)?;
        self.0 = rest;
        Some(taken)
    }

    fn count(&mut self) -> Option<usize> {
        let bytes = self.take(4)?;
        usize::try_from(u32::from_le_bytes(bytes.try_into().ok()?)).ok()
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let length = self.count()?;
        self.take(length)
    }

    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?.to_vec()).ok()
    }

    fn path(&mut self) -> Option<PathBuf> {
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(self.bytes()?)))
    }

    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    fn digest(&mut self) -> Option<Digest> {
        Some(Digest::from_raw(self.take(32)?.try_into().ok()?))
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn resolution(&mut self) -> Option<Resolution> {
        let name = self.text()?;
        let path = self.text()?;
        let mut tools = Vec::new();
        for _ in 0..self.count()? {
            tools.push((self.text()?, self.path()?));
        }
        let program = match self.byte()? {
            0 => Program::System {
                exec_path: self.text()?,
                resolved: self.path()?,
            },
            1 => Program::Input { path: self.text()? },
            2 => Program::Tool {
                exec_path: self.text()?,
            },
            _ => return None,
        };
        let digest = match self.byte()? {
            0 => None,
            1 => Some(self.digest()?),
            _ => return None,
        };
        Some(Resolution {
            name,
            path,
            tools,
            program,
            digest,
        })
    }
}
