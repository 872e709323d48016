//! gantry's own Linux sandbox: user, mount, pid, ipc, uts and (unless a step asks for the
//! network) network namespaces, a fresh tmpfs root with the host's system folders read-only,
//! the step's declared inputs read-only and nothing else of the workspace, a private HOME and
//! TMPDIR, a fixed hostname and an unprivileged user. No bubblewrap: its 7 ms per step would
//! dominate pipelines of small steps (../shared/FACTS.md).
//!
//! Layout inside the sandbox:
//! - `/usr`, `/etc` (and `/nix` when present) read-only; `/bin`, `/lib`, ... as on the host;
//! - `/build`: the step's scratch folder, writable, where outputs are written; each declared
//!   input is bind-mounted read-only at its workspace-relative path;
//! - `/tmp` and `/home/build` (HOME) empty and writable; a fresh `/proc`; a minimal `/dev`.

pub mod cgroup;
mod child;
pub mod forks;
mod layout;
pub mod seccomp;
mod spawner;
mod teardown;

use std::ffi::CString;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use child::{ChildPlan, Operation};
use spawner::Spawner;

/// Where the workspace appears inside the sandbox. Fixed, so that outputs which embed their
/// build path are the same in every clone of a repository.
pub const BUILD_DIR: &str = "/build";
pub const HOME_DIR: &str = "/home/build";
pub const HOSTNAME: &str = "gantry";
/// The user and group a step runs as inside its namespace; not root, so it holds no
/// capabilities once it runs its program.
pub const SANDBOX_UID: u32 = 1000;
pub const SANDBOX_GID: u32 = 1000;
/// The host uid and gid a step runs as when gantry runs as root: 2^31 - 2. No account has it
/// (`Sandbox::new` checks /etc/passwd, /etc/group, /etc/subuid and /etc/subgid), it lies above
/// every range that useradd, systemd or subordinate ids hand out and below the ids that
/// signed 32-bit code misreads, and gantry gives every file a step leaves in the store back to
/// itself. So a step owns nothing on the host once it ends, and while it runs it is nobody
/// that a file, a socket peer check or a local service trusts.
pub const SANDBOX_HOST_ID: u32 = 0x7FFF_FFFE;
/// Default PATH inside the sandbox.
pub const DEFAULT_PATH: &str = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin";

/// The part of a sandbox's settings that goes into every action key: change it and every
/// step re-runs. [`Profile::standard`] describes itself with exactly this text.
pub const SETTINGS_VERSION: &str =
    "gantry-sandbox/1 uid=1000 gid=1000 build=/build home=/home/build hostname=gantry umask=022";

/// What a step sees of its surroundings. Every run uses [`Profile::standard`]; `gantry repro`
/// changes it to find the steps whose outputs depend on it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Profile {
    /// Absolute; the step's working folder, holding its inputs and outputs.
    pub build_dir: String,
    pub home_dir: String,
    /// Absolute; made (mode 1777) when it is not `/tmp`.
    pub tmp_dir: String,
    pub hostname: String,
    pub uid: u32,
    pub gid: u32,
    pub umask: libc::mode_t,
    /// Seconds added to the monotonic and boot clocks (`/proc/uptime`) through a time
    /// namespace; 0 for none. The wall clock cannot be moved without faking it.
    pub clock_offset: u32,
}

impl Profile {
    #[must_use]
    pub fn standard() -> Self {
        Self {
            build_dir: BUILD_DIR.to_owned(),
            home_dir: HOME_DIR.to_owned(),
            tmp_dir: "/tmp".to_owned(),
            hostname: HOSTNAME.to_owned(),
            uid: SANDBOX_UID,
            gid: SANDBOX_GID,
            umask: 0o022,
            clock_offset: 0,
        }
    }

    /// The settings as one line, for action keys and attestations.
    #[must_use]
    pub fn describe(&self) -> String {
        let mut text = format!(
            "gantry-sandbox/1 uid={} gid={} build={} home={} hostname={} umask={:03o}",
            self.uid, self.gid, self.build_dir, self.home_dir, self.hostname, self.umask
        );
        if self.tmp_dir != "/tmp" {
            let _ = write!(text, " tmp={}", self.tmp_dir);
        }
        if self.clock_offset != 0 {
            let _ = write!(text, " clock=+{}s", self.clock_offset);
        }
        text
    }
}

/// One sandboxed process to run.
pub struct Request<'a> {
    pub argv: &'a [String],
    /// Path handed to `execve`: absolute, or relative to the build folder.
    pub program: &'a str,
    pub env: &'a [(String, String)],
    /// Host folder shown read-write as the build folder.
    pub work_dir: &'a Path,
    /// (host file, path relative to the build folder): each shown read-only. The placeholder file at
    /// that path in `work_dir` must exist.
    pub inputs: &'a [(PathBuf, String)],
    /// (host folder, absolute path in the sandbox): toolchains, each shown read-only.
    pub tools: &'a [(PathBuf, String)],
    pub network: bool,
    pub timeout: Option<Duration>,
    pub cancel: &'a AtomicBool,
    /// The declared outputs, relative to the build folder: what a remote executor brings back
    /// (the local sandbox leaves them where the command wrote them).
    pub outputs: &'a [String],
    /// Warm folders in the build folder (`warm = [...]`), relative to it: the step's own from
    /// earlier runs, so gantry hands over the folder itself and nothing in it.
    pub warm: &'a [String],
    /// What the process may use.
    pub limits: crate::pipeline::model::Limits,
    /// What a result from a remote executor's action cache must show to be used; `None` (a
    /// rebuild) takes none.
    pub cache: Option<CacheTrust<'a>>,
}

/// A remote action cache is untrusted storage: a result found there is used only when a link
/// that one of `verifiers` signed names action `key` and lists exactly the result's outputs.
#[derive(Clone, Copy)]
pub struct CacheTrust<'a> {
    pub key: &'a crate::digest::Digest,
    pub verifiers: &'a [Box<dyn crate::keys::Verifier>],
}

/// How the process ended and what it printed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub termination: Termination,
    pub stdout: Log,
    pub stderr: Log,
    /// Where a remote executor ran it; `None` for a local run.
    pub remote: Option<RemoteRun>,
    /// The limit the process reached, when the sandbox could tell.
    pub reached: Option<cgroup::Reached>,
    /// What the kernel counted for its processes; `None` where nothing here measured it (a
    /// remote run).
    pub rusage: Option<Rusage>,
    /// What its cgroup counted of its processes, every one (`None` without a cgroup of its
    /// own).
    pub group: Option<GroupCount>,
    /// How many processes it started, its pid 1 included (`None`: not counted here).
    pub processes: Option<u64>,
}

/// What a step's own cgroup counted: the whole tree, including what was still running when
/// its pid 1 exited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupCount {
    pub version: cgroup::Version,
    /// The most memory its processes held together.
    pub peak_memory: Option<u64>,
    pub cpu: Option<cgroup::CpuTime>,
}

/// What the kernel counted for a step's processes (`wait4`'s rusage of the namespace's pid 1,
/// which includes every descendant it reaped). A descendant still running when pid 1 exits is
/// killed with the namespace and not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rusage {
    pub user_us: u64,
    pub system_us: u64,
    /// The largest resident set of any one of them, in bytes.
    pub peak_rss_bytes: u64,
    /// What they read from and wrote to storage (the page cache's hits are not I/O), in bytes.
    pub block_read_bytes: u64,
    pub block_written_bytes: u64,
}

impl Rusage {
    fn of(usage: &libc::rusage) -> Self {
        let micros = |time: libc::timeval| {
            u64::try_from(time.tv_sec)
                .unwrap_or(0)
                .saturating_mul(1_000_000)
                .saturating_add(u64::try_from(time.tv_usec).unwrap_or(0))
        };
        let count = |value: libc::c_long| u64::try_from(value).unwrap_or(0);
        Self {
            user_us: micros(usage.ru_utime),
            system_us: micros(usage.ru_stime),
            // Linux counts it in kilobytes.
            peak_rss_bytes: count(usage.ru_maxrss).saturating_mul(1024),
            // In 512-byte blocks, whatever the file system's block size.
            block_read_bytes: count(usage.ru_inblock).saturating_mul(512),
            block_written_bytes: count(usage.ru_oublock).saturating_mul(512),
        }
    }
}

/// Which remote action a step was, and who ran it: recorded in the step's link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRun {
    /// The REAPI action digest, `hash/size`.
    pub action: String,
    /// The worker the result names (`ExecutedActionMetadata.worker`).
    pub worker: String,
    /// Whether the remote action cache answered (the worker ran it for an earlier request).
    pub cached: bool,
    /// Why the remote action cache's result was not used, when it had one that no trusted
    /// link vouches for (the action ran again).
    pub refused: Option<String>,
    /// What the worker reported of the execution.
    pub usage: Option<crate::store::usage::Remote>,
}

/// Captured output of one stream: up to [`LOG_LIMIT`] bytes, and whether more was dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Log {
    pub bytes: Vec<u8>,
    pub truncated: bool,
}

/// Output beyond this much per stream is read and dropped, so a chatty step cannot exhaust
/// memory.
pub const LOG_LIMIT: usize = 64 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    Cancelled,
}

impl Termination {
    #[must_use]
    pub fn success(self) -> bool {
        self == Self::Exited(0)
    }
}

/// Why a sandbox could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start the sandbox: {stage} failed: {source}")]
    Setup { stage: String, source: io::Error },
    #[error("cannot run `{program}` in the sandbox: {source}")]
    Exec { program: String, source: io::Error },
    #[error("sandbox I/O: {0}")]
    Io(#[from] io::Error),
    #[error("remote execution: {0}")]
    Remote(String),
}

/// Who a step is on the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// gantry runs as root: the child sets the sandbox up as root, then becomes
    /// [`SANDBOX_HOST_ID`] with no capabilities before the step's program runs.
    Dropped { uid: u32, gid: u32 },
    /// gantry runs unprivileged: the step is gantry's own user, shown as the profile's ids
    /// through a user namespace.
    Own { uid: u32, gid: u32 },
}

impl Identity {
    /// The identity for this process: dropped when it is root.
    #[must_use]
    pub fn current() -> Self {
        // SAFETY: trivial getters.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if euid == 0 {
            Self::Dropped {
                uid: SANDBOX_HOST_ID,
                gid: SANDBOX_HOST_ID,
            }
        } else {
            Self::Own {
                uid: euid,
                gid: egid,
            }
        }
    }
}

pub struct Sandbox {
    spawner: Spawner,
    root_mount_point: CString,
    /// The setup every step shares (see `layout.rs`), computed once.
    base: Vec<Operation>,
    profile: Profile,
    identity: Identity,
    /// The system-call filter, built once.
    filter: Vec<libc::sock_filter>,
    /// Per-step cgroups (a root gantry); rlimits alone otherwise. Shared with the teardown
    /// thread, which gives a step's group back once its namespace is closed.
    cgroups: Option<std::sync::Arc<cgroup::Cgroups>>,
    /// Counts the processes each step starts (a root gantry where perf events are allowed).
    forks: Option<forks::Forks>,
    /// Closes each step's mount namespace off the step's path.
    teardown: teardown::Teardown,
}

impl Sandbox {
    /// Prepares the sandbox; `scratch` is a folder gantry owns where an empty mount point is
    /// made. `scratch` becomes private (0700): steps' slots live under it.
    pub fn new(scratch: &Path, profile: Profile) -> io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let mount_point = scratch.join("sandbox-root");
        std::fs::create_dir_all(&mount_point)?;
        std::fs::set_permissions(scratch, std::fs::Permissions::from_mode(0o700))?;
        let identity = Identity::current();
        if let Identity::Dropped { uid, .. } = identity {
            check_unused(uid)?;
        }
        Ok(Self {
            spawner: Spawner::start()?,
            root_mount_point: c_path(&mount_point)?,
            base: layout::base_operations(&mount_point, identity, &profile)?,
            profile,
            identity,
            filter: seccomp::program(),
            cgroups: cgroup::Cgroups::detect().map(std::sync::Arc::new),
            forks: forks::Forks::detect(),
            teardown: teardown::Teardown::start(),
        })
    }

    /// Removes the per-step cgroups: every step is over.
    pub fn release(&self) {
        self.teardown.finish();
        if let Some(cgroups) = &self.cgroups {
            cgroups.release();
        }
    }

    /// What enforces memory and process limits: `cgroup v1`, `cgroup v2` or `rlimits`.
    #[must_use]
    pub fn limits_by(&self) -> &'static str {
        self.cgroups
            .as_ref()
            .map_or("rlimits", |cgroups| cgroups.version().name())
    }

    /// Who steps are on the host.
    #[must_use]
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// What a step's cgroup tells (the limit a failed step reached, the most memory the
    /// step's processes held together), and the group, to give back once nothing of the step
    /// is charged to it any more.
    fn read_group(
        &self,
        group: Option<cgroup::Group>,
        failed: bool,
    ) -> (
        Option<cgroup::Reached>,
        Option<GroupCount>,
        Option<cgroup::Lease>,
    ) {
        let (Some(mut group), Some(cgroups)) = (group, &self.cgroups) else {
            return (None, None, None);
        };
        let reached = if failed { group.reached() } else { None };
        let count = GroupCount {
            version: cgroups.version(),
            peak_memory: group.peak_memory(),
            cpu: group.cpu_used(),
        };
        (reached, Some(count), Some(cgroups.lease(group)))
    }

    /// Returns a step's cgroup with what it tells, at once (the step never ran).
    fn give_back_group(
        &self,
        group: Option<cgroup::Group>,
        failed: bool,
    ) -> (Option<cgroup::Reached>, Option<GroupCount>) {
        let (reached, count, lease) = self.read_group(group, failed);
        if let Some(lease) = lease {
            lease.give_back();
        }
        (reached, count)
    }

    /// The processes started on this thread since the count `before`, read once the step's
    /// processes are all gone (the namespace died with its pid 1): their counts are back in
    /// this thread's counter.
    fn processes_since(&self, before: Option<u64>) -> Option<u64> {
        let after = self.forks.and_then(forks::Forks::count)?;
        after.checked_sub(before?)
    }

    /// Runs one process to completion (or timeout, or cancellation), capturing its stdout
    /// and stderr through pipes (no files to create and delete per step). Blocking.
    pub fn run(&self, request: &Request<'_>) -> Result<Finished, SandboxError> {
        let (error_read, error_write) = pipe()?;
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let stdin = File::open("/dev/null")?;
        self.hand_over(request)?;
        let mut group = match &self.cgroups {
            Some(cgroups) => Some(cgroups.take(request.limits.memory, request.limits.processes)?),
            None => None,
        };
        let mut operations = Vec::new();
        if let Some(group) = &group {
            for file in group.procs_files()? {
                operations.push(Operation::WriteFile {
                    path: file,
                    bytes: b"0".to_vec(),
                });
            }
        }
        operations.extend(self.operations(request)?);
        let plan = self.plan(
            request,
            operations,
            [
                stdin.as_raw_fd(),
                stdout_write.as_raw_fd(),
                stderr_write.as_raw_fd(),
            ],
            error_write.as_raw_fd(),
        )?;
        let mut extra_flags = if !request.network && self.spawner.needs_private_network_namespace()
        {
            libc::CLONE_NEWNET
        } else {
            0
        };
        if let Identity::Own { .. } = self.identity {
            extra_flags |= libc::CLONE_NEWUSER;
        }
        let descriptions: Vec<String> = plan.operations.iter().map(Operation::describe).collect();
        // Held until the step's processes are gone, so no other step shares its loopback.
        let offline = if request.network {
            None
        } else {
            self.spawner.take_offline()?
        };
        let network = match (&offline, request.network) {
            (_, true) => spawner::Network::Host,
            (Some(namespace), false) => spawner::Network::Offline(namespace),
            (None, false) => spawner::Network::Private,
        };
        if let Some(group) = &mut group {
            group.start_cpu();
        }
        let forks_before = self.forks.and_then(forks::Forks::count);
        let spawned = Spawner::spawn(&plan, extra_flags, &network);
        let give_back = || {
            if let Some(namespace) = offline {
                self.spawner.give_back(namespace);
            }
        };
        let spawned = match spawned {
            Ok(spawned) => spawned,
            Err(error) => {
                give_back();
                self.give_back_group(group, true);
                return Err(error.into());
            }
        };
        drop((error_write, stdout_write, stderr_write, stdin));
        let namespace = teardown::Teardown::hold(spawned.pid);
        let ended = finish(
            request,
            &spawned,
            error_read,
            [stdout_read, stderr_read],
            &descriptions,
        );
        give_back();
        let failed = !matches!(&ended, Ok(finished) if finished.termination.success());
        // The group goes back only after the namespace is closed: until then the step's tmpfs
        // is still charged to it, and the next step would start with it.
        let (reached, group, lease) = self.read_group(group, failed);
        self.teardown.close(namespace, lease);
        ended.map(|finished| Finished {
            reached,
            group,
            processes: self.processes_since(forks_before),
            ..finished
        })
    }

    /// What the child runs: `operations`, then the request's program with its arguments and
    /// environment, on `stdio`, under the system-call filter.
    fn plan(
        &self,
        request: &Request<'_>,
        operations: Vec<Operation>,
        stdio: [std::os::fd::RawFd; 3],
        error_pipe: std::os::fd::RawFd,
    ) -> io::Result<ChildPlan> {
        let strings = |texts: Vec<String>| {
            texts
                .into_iter()
                .map(CString::new)
                .collect::<Result<Vec<_>, _>>()
                .map_err(io::Error::other)
        };
        Ok(ChildPlan::new(
            operations,
            CString::new(request.program).map_err(io::Error::other)?,
            strings(request.argv.to_vec())?,
            strings(
                (request.env.iter())
                    .map(|(name, value)| format!("{name}={value}"))
                    .collect(),
            )?,
            stdio,
            error_pipe,
            self.profile.umask,
        )
        .with_filter(self.filter.clone()))
    }

    fn operations(&self, request: &Request<'_>) -> io::Result<Vec<Operation>> {
        let root = Path::new(std::ffi::OsStr::from_bytes(
            self.root_mount_point.as_bytes(),
        ));
        let mut operations = self.base.clone();
        // The root tmpfs holds `/tmp` and HOME: its size is the step's `tmp` limit.
        let tmpfs_data = CString::new(format!("mode=0755,size={}", request.limits.tmp))?;
        for operation in &mut operations {
            if let Operation::Mount {
                target,
                fstype: Some(fstype),
                data,
                ..
            } = operation
                && *target == self.root_mount_point
                && fstype.as_bytes() == b"tmpfs"
            {
                *data = Some(tmpfs_data.clone());
            }
        }
        if !request.network && self.spawner.needs_private_network_namespace() {
            operations.push(Operation::LoopbackUp);
        }
        let build_dir = root.join(self.profile.build_dir.trim_start_matches('/'));
        layout::make_folders(root, &self.profile.build_dir, &mut operations)?;
        let build = c_path(&build_dir)?;
        operations.push(Operation::Mount {
            source: Some(c_path(request.work_dir)?),
            target: build.clone(),
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
        });
        // A setuid file or a device node a step makes in its slot gives nobody anything.
        operations.push(Operation::Mount {
            source: None,
            target: build,
            fstype: None,
            flags: libc::MS_BIND
                | libc::MS_REMOUNT
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | locked_flags(request.work_dir)?,
            data: None,
        });
        if let Some((first, _)) = request.inputs.first() {
            let flags = locked_flags(first)?;
            for (host, relative) in request.inputs {
                let target = c_path(&build_dir.join(relative))?;
                push_read_only_bind(&mut operations, c_path(host)?, target, flags);
            }
        }
        for (host, mount_point) in request.tools {
            layout::make_folders(root, mount_point, &mut operations)?;
            let target = c_path(&root.join(mount_point.trim_start_matches('/')))?;
            push_read_only_bind(&mut operations, c_path(host)?, target, locked_flags(host)?);
        }
        operations.push(Operation::PivotRoot {
            new_root: self.root_mount_point.clone(),
        });
        if self.profile.clock_offset != 0 {
            // The program enters the new time namespace at execve.
            operations.push(Operation::Unshare {
                flags: libc::CLONE_NEWTIME,
            });
            let offset = self.profile.clock_offset;
            operations.push(Operation::WriteFile {
                path: c"/proc/self/timens_offsets".into(),
                bytes: format!("monotonic {offset} 0\nboottime {offset} 0\n").into_bytes(),
            });
        }
        operations.push(Operation::Chdir {
            path: CString::new(self.profile.build_dir.as_str())?,
        });
        operations.extend(layout::become_step_user(self.identity, &self.profile));
        // Set once the step's user namespace exists, so that the process count is the step's
        // own, not that of every step running as the same host user.
        let limit = |resource, value: u64| Operation::SetLimit { resource, value };
        // A pids cgroup counts and reports; RLIMIT_NPROC would refuse the fork first, unseen.
        if !self
            .cgroups
            .as_ref()
            .is_some_and(|cgroups| cgroups.counts_processes())
        {
            operations.push(limit(libc::RLIMIT_NPROC, request.limits.processes));
        }
        operations.push(limit(libc::RLIMIT_FSIZE, request.limits.output));
        if self.cgroups.is_none() {
            // Without a memory cgroup, the nearest rlimit: private writable memory (a
            // reservation a runtime never touches is not counted, unlike RLIMIT_AS).
            operations.push(limit(libc::RLIMIT_DATA, request.limits.memory));
        }
        Ok(operations)
    }

    /// Makes the slot private to the step: mode 0700 and, when the step runs as another host
    /// user, that user's (with every folder gantry made in it), so it can write its outputs
    /// there and nobody else can reach what it makes.
    fn hand_over(&self, request: &Request<'_>) -> io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(request.work_dir, std::fs::Permissions::from_mode(0o700))?;
        let Identity::Dropped { uid, gid } = self.identity else {
            return Ok(());
        };
        let mut folders: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        folders.insert("");
        let paths = (request.inputs.iter().map(|(_, relative)| relative.as_str()))
            .chain(request.outputs.iter().map(String::as_str))
            .chain(request.warm.iter().map(String::as_str));
        for path in paths {
            let mut end = 0;
            while let Some(slash) = path[end..].find('/') {
                end += slash;
                folders.insert(&path[..end]);
                end += 1;
            }
            folders.insert(path);
        }
        let in_warm = |folder: &str| {
            (request.warm.iter())
                .any(|warm| folder != warm && crate::pipeline::path::is_within(folder, warm))
        };
        for folder in folders {
            // Parts of a warm folder were made by an earlier run of the step: one may be a
            // link by now, and a path through it would reach the host.
            if in_warm(folder) {
                continue;
            }
            let path = request.work_dir.join(folder);
            // Only real folders gantry made: never a file, never through a link.
            if std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_dir()) {
                std::os::unix::fs::lchown(&path, Some(uid), Some(gid))?;
            }
        }
        Ok(())
    }
}

/// Refuses to run steps as a host id that some account, group or subordinate range has.
fn check_unused(id: u32) -> io::Result<()> {
    let text = id.to_string();
    for file in ["/etc/passwd", "/etc/group"] {
        let Ok(contents) = std::fs::read_to_string(file) else {
            continue;
        };
        let taken = contents.lines().any(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            fields.get(2) == Some(&text.as_str()) || fields.get(3) == Some(&text.as_str())
        });
        if taken {
            return Err(io::Error::other(format!(
                "{file} gives id {id} to an account; gantry runs steps as that id when it runs as root and will not share it"
            )));
        }
    }
    for file in ["/etc/subuid", "/etc/subgid"] {
        let Ok(contents) = std::fs::read_to_string(file) else {
            continue;
        };
        for line in contents.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if let (Some(Ok(start)), Some(Ok(count))) = (
                fields.get(1).map(|start| start.parse::<u64>()),
                fields.get(2).map(|count| count.parse::<u64>()),
            ) && (start..start.saturating_add(count)).contains(&u64::from(id))
            {
                return Err(io::Error::other(format!(
                    "{file} gives id {id} to `{}`; gantry runs steps as that id when it runs as root and will not share it",
                    fields[0]
                )));
            }
        }
    }
    Ok(())
}

/// Reads the child's setup report, then waits for it and collects its output.
fn finish(
    request: &Request<'_>,
    spawned: &spawner::Spawned,
    error_read: OwnedFd,
    [stdout_read, stderr_read]: [OwnedFd; 2],
    descriptions: &[String],
) -> Result<Finished, SandboxError> {
    let mut report = Vec::new();
    File::from(error_read).read_to_end(&mut report)?;
    let mut streams = [Stream::new(stdout_read)?, Stream::new(stderr_read)?];
    if report.len() >= 12 {
        wait(spawned, None, &AtomicBool::new(false), &mut streams)?;
        let index = usize::try_from(u64::from_le_bytes(
            report[..8].try_into().unwrap_or_default(),
        ))
        .unwrap_or(usize::MAX);
        let errno = i32::from_le_bytes(report[8..12].try_into().unwrap_or_default());
        let source = io::Error::from_raw_os_error(errno);
        let stage = |stage: &str| SandboxError::Setup {
            stage: stage.to_owned(),
            source: io::Error::from_raw_os_error(errno),
        };
        return Err(match descriptions.get(index) {
            Some(description) => stage(description),
            None => match index - descriptions.len() {
                child::STAGE_NO_NEW_PRIVILEGES => stage("no_new_privs"),
                child::STAGE_DESCRIPTORS => stage("closing inherited descriptors"),
                child::STAGE_SECCOMP => stage("installing the system-call filter"),
                _ => SandboxError::Exec {
                    program: request.program.to_owned(),
                    source,
                },
            },
        });
    }
    let (termination, rusage) = wait(spawned, request.timeout, request.cancel, &mut streams)?;
    let [stdout, stderr] = streams.map(|stream| stream.log);
    Ok(Finished {
        termination,
        stdout,
        stderr,
        remote: None,
        reached: None,
        rusage: Some(rusage),
        group: None,
        processes: None,
    })
}

pub(crate) fn push_read_only_bind(
    operations: &mut Vec<Operation>,
    source: CString,
    target: CString,
    locked: libc::c_ulong,
) {
    operations.push(Operation::Mount {
        source: Some(source),
        target: target.clone(),
        fstype: None,
        flags: libc::MS_BIND | libc::MS_REC,
        data: None,
    });
    // A bind ignores MS_RDONLY; only a remount makes it read-only.
    operations.push(Operation::Mount {
        source: None,
        target,
        fstype: None,
        flags: libc::MS_BIND
            | libc::MS_REMOUNT
            | libc::MS_RDONLY
            | libc::MS_NOSUID
            | libc::MS_NODEV
            | locked,
        data: None,
    });
}

/// Mount flags of the filesystem holding `path` that a user namespace cannot clear.
pub(crate) fn locked_flags(path: &Path) -> io::Result<libc::c_ulong> {
    let path = c_path(path)?;
    // SAFETY: statvfs into a zeroed struct with a valid path.
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `path` is NUL-terminated and `stats` a valid struct for statvfs to fill.
    if unsafe { libc::statvfs(path.as_ptr(), &raw mut stats) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut flags = 0;
    for (statvfs_flag, mount_flag) in [
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if stats.f_flag & statvfs_flag != 0 {
            flags |= mount_flag;
        }
    }
    Ok(flags)
}

pub(crate) fn c_path(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fresh descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and ours.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The read end of a child's stdout or stderr pipe and what came through it.
struct Stream {
    pipe: Option<OwnedFd>,
    log: Log,
}

impl Stream {
    fn new(pipe: OwnedFd) -> io::Result<Self> {
        // SAFETY: fcntl on a descriptor we own.
        if unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            pipe: Some(pipe),
            log: Log::default(),
        })
    }

    /// Reads what is available; closes the pipe at end of file.
    fn drain(&mut self) {
        let Some(pipe) = &self.pipe else { return };
        let mut buffer = [0u8; 16 * 1024];
        loop {
            // SAFETY: read into a stack buffer of the given size.
            let read =
                unsafe { libc::read(pipe.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
            match usize::try_from(read) {
                Ok(0) => {
                    self.pipe = None;
                    return;
                }
                Ok(read) => {
                    let room = LOG_LIMIT.saturating_sub(self.log.bytes.len());
                    self.log.bytes.extend_from_slice(&buffer[..read.min(room)]);
                    self.log.truncated |= read > room;
                }
                // EAGAIN: nothing more for now; EINTR: try again on the next poll.
                Err(_) => return,
            }
        }
    }
}

/// Waits for the child, killing its whole namespace on timeout or cancellation; how it ended
/// and what the kernel counted for it.
fn wait(
    spawned: &spawner::Spawned,
    timeout: Option<Duration>,
    cancel: &AtomicBool,
    streams: &mut [Stream; 2],
) -> io::Result<(Termination, Rusage)> {
    let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
    let mut forced = None;
    loop {
        let descriptor = |fd: Option<&OwnedFd>| libc::pollfd {
            // A negative descriptor is ignored by poll.
            fd: fd.map_or(-1, AsRawFd::as_raw_fd),
            events: libc::POLLIN,
            revents: 0,
        };
        let mut polled = [
            descriptor(Some(&spawned.pidfd)),
            descriptor(streams[0].pipe.as_ref()),
            descriptor(streams[1].pipe.as_ref()),
        ];
        // SAFETY: poll on three entries of a local array.
        let ready = unsafe { libc::poll(polled.as_mut_ptr(), 3, 100) };
        if ready < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
        }
        for (stream, polled) in streams.iter_mut().zip(&polled[1..]) {
            if polled.revents != 0 {
                stream.drain();
            }
        }
        if polled[0].revents != 0 {
            // Pid 1 of the namespace is gone, so every process that held the pipes is too.
            for stream in streams.iter_mut() {
                while stream.pipe.is_some() {
                    stream.drain();
                    if stream.pipe.is_some() {
                        // Data may still be in flight; wait for it briefly.
                        let mut rest = [descriptor(stream.pipe.as_ref())];
                        // SAFETY: poll on one entry of a local array.
                        if unsafe { libc::poll(rest.as_mut_ptr(), 1, 1000) } <= 0 {
                            break;
                        }
                    }
                }
            }
            break;
        }
        if forced.is_none() {
            if cancel.load(Ordering::Relaxed) {
                forced = Some(Termination::Cancelled);
            } else if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                forced = Some(Termination::TimedOut);
            }
            if forced.is_some() {
                // Killing pid 1 of the namespace kills every process in it.
                // SAFETY: signalling our own child through its pidfd.
                unsafe {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        spawned.pidfd.as_raw_fd(),
                        libc::SIGKILL,
                        0,
                        0,
                    )
                };
            }
        }
    }
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid one for the kernel to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: reaping our own child, its rusage into a local.
    if unsafe { libc::wait4(spawned.pid, &raw mut status, 0, &raw mut usage) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let rusage = Rusage::of(&usage);
    if let Some(forced) = forced {
        return Ok((forced, rusage));
    }
    let termination = if libc::WIFEXITED(status) {
        Termination::Exited(libc::WEXITSTATUS(status))
    } else {
        Termination::Signaled(libc::WTERMSIG(status))
    };
    Ok((termination, rusage))
}
