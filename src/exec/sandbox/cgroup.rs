//! Per-step memory and process limits through cgroups, and what hit them. A root gantry makes a
//! folder of its own under the cgroup it runs in (so a CI runner's limits still bind every
//! step), and in it one cgroup per step running at a time, reused by later steps like the
//! network namespaces. cgroup v2 (`memory.max`, `pids.max`, `*.events`) where the unified
//! hierarchy has the memory controller; v1 (`memory.limit_in_bytes`, `pids.max`,
//! `memory.oom_control`) otherwise. Without either (an unprivileged gantry), the sandbox falls
//! back on rlimits and says so.
//!
//! Joining a cgroup is a migration, and on v1 every migration waits for an RCU grace period
//! while forks run elsewhere (the threadgroup rwsem): two per step cost 0.5 ms a step at two
//! jobs, a quarter of a trivial step. So on v1, where single threads may be placed, each
//! spawning thread of gantry is placed once in a cgroup of its own and its children are born
//! in it; the thread's own memory is charged to gantry (memory follows the address space's
//! owner), and it counts as one process. On v2, whose cgroups hold whole processes, a step's
//! child joins its cgroup by writing `0` to `cgroup.procs` before it leaves the host's mount
//! namespace view. Either way everything a step starts is counted from its first instruction.
//!
//! CPU time is counted the same way: v2's `cpu.stat` (always there), v1's `cpuacct` with the
//! spawning thread's own time taken out. v1's total is `cpuacct.usage` (the scheduler's own
//! count); its user and system figures are sampled at each tick, less the time the hypervisor
//! stole, so on a busy VM they held 0.25 s of a 1 s burn: they only split the total.
//!
//! A group keeps the files it reads on every step open and reads them with `pread` at offset 0
//! (which makes the kernel render them afresh): an open, size, two reads and a close cost 16 µs
//! a file here, a `pread` 4. Unlike `wait4`, it sees a descendant still running
//! when the step's pid 1 exits: the kernel kills and reaps those without adding them to
//! anyone's rusage.

#![expect(
    clippy::disallowed_methods,
    reason = "cgroupfs control files are the kernel's interface, written in place; not records"
)]

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Which cgroup hierarchy enforces the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

impl Version {
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "cgroup v1",
            Self::V2 => "cgroup v2",
        }
    }
}

/// gantry's own cgroup folders and the step cgroups made in them.
pub struct Cgroups {
    version: Version,
    /// `memory` (v1) or the unified folder (v2).
    memory: PathBuf,
    /// `pids` (v1); the same folder as `memory` on v2; `None` when v1 has no pids controller.
    pids: Option<PathBuf>,
    /// `cpuacct` (v1); the same folder as `memory` on v2; `None` when v1 has no cpuacct.
    cpu: Option<PathBuf>,
    /// v2: groups no running step uses; v1: each spawning thread's group, by its owner.
    free: Mutex<Vec<(Owner, Group)>>,
    made: Mutex<usize>,
}

/// One step's cgroup, with the event counts it had when the step took it.
pub struct Group {
    memory: PathBuf,
    pids: Option<PathBuf>,
    cpu: Option<PathBuf>,
    version: Version,
    /// The counters when the step started: the group's CPU time and, on v1, the spawning
    /// thread's own (it lives in the group).
    cpu_start: Option<(CpuTime, CpuTime)>,
    oom_kills: u64,
    process_refusals: u64,
    /// The limits last written, so a reused group with the same limits is not written again.
    set: Option<(u64, u64)>,
    /// Whether the high-water mark counts only the step that holds the group.
    peak_is_own: bool,
    /// `memory.max_usage_in_bytes` (v1, also reset through it) or `memory.peak` (v2).
    peak_file: Option<File>,
    /// `cpuacct.usage` (v1) or `cpu.stat` (v2).
    cpu_file: Option<File>,
    /// `cpuacct.stat` (v1): the ticks that split the total into user and system.
    split_file: Option<File>,
}

/// CPU time in microseconds, user and system.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuTime {
    pub user_us: u64,
    pub system_us: u64,
}

impl CpuTime {
    fn minus(self, earlier: Self) -> Self {
        Self {
            user_us: self.user_us.saturating_sub(earlier.user_us),
            system_us: self.system_us.saturating_sub(earlier.system_us),
        }
    }
}

/// A limit a step reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reached {
    Memory,
    Processes,
}

impl Cgroups {
    /// gantry's cgroup folders, made now; `None` when this process may not make cgroups.
    #[must_use]
    pub fn detect() -> Option<Self> {
        // SAFETY: trivial getter.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let own = fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!("gantry.{}", std::process::id());
        let unified = Path::new("/sys/fs/cgroup");
        let v2_memory = fs::read_to_string(unified.join("cgroup.controllers"))
            .is_ok_and(|controllers| controllers.split_whitespace().any(|name| name == "memory"));
        if v2_memory {
            let relative = own.lines().find_map(|line| line.strip_prefix("0::"))?;
            let parent = unified.join(relative.trim_start_matches('/'));
            let folder = parent.join(&name);
            sweep(&parent);
            fs::create_dir_all(&folder).ok()?;
            // Children get the controllers; gantry's own folder holds no process.
            fs::write(folder.join("cgroup.subtree_control"), "+memory +pids").ok()?;
            return Some(Self::new(
                Version::V2,
                folder.clone(),
                Some(folder.clone()),
                Some(folder),
            ));
        }
        let place = |controller: &str| -> Option<PathBuf> {
            let relative = own.lines().find_map(|line| {
                let mut fields = line.splitn(3, ':');
                let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
                controllers
                    .split(',')
                    .any(|name| name == controller)
                    .then(|| path.trim_start_matches('/').to_owned())
            })?;
            let parent = Path::new("/sys/fs/cgroup").join(controller).join(relative);
            sweep(&parent);
            let folder = parent.join(&name);
            fs::create_dir_all(&folder).ok()?;
            Some(folder)
        };
        let memory = place("memory")?;
        Some(Self::new(
            Version::V1,
            memory,
            place("pids"),
            place("cpuacct"),
        ))
    }

    fn new(version: Version, memory: PathBuf, pids: Option<PathBuf>, cpu: Option<PathBuf>) -> Self {
        Self {
            version,
            memory,
            pids,
            cpu,
            free: Mutex::default(),
            made: Mutex::new(0),
        }
    }

    #[must_use]
    pub fn version(&self) -> Version {
        self.version
    }

    /// Whether a pids controller counts the steps' processes (v2 always has one).
    #[must_use]
    pub fn counts_processes(&self) -> bool {
        self.pids.is_some()
    }

    /// A cgroup for a step spawned by this thread, its limits set to `memory` bytes and
    /// `processes`: on v1 the thread's own (made, and the thread moved into it, the first
    /// time), on v2 one no running step uses.
    pub fn take(&self, memory: u64, processes: u64) -> io::Result<Group> {
        let thread = Owner::current();
        let reused = {
            let mut free = lock(&self.free);
            let found = match self.version {
                Version::V1 => free
                    .iter()
                    .position(|(owner, _)| owner.token == thread.token),
                Version::V2 => free.len().checked_sub(1),
            };
            found.map(|index| free.swap_remove(index).1)
        };
        let mut group = if let Some(group) = reused {
            group
        } else {
            let mut made = lock(&self.made);
            *made += 1;
            let name = made.to_string();
            let mut group = Group {
                memory: self.memory.join(&name),
                pids: self.pids.as_ref().map(|pids| pids.join(&name)),
                cpu: self.cpu.as_ref().map(|cpu| cpu.join(&name)),
                version: self.version,
                cpu_start: None,
                oom_kills: 0,
                process_refusals: 0,
                set: None,
                peak_is_own: false,
                peak_file: None,
                cpu_file: None,
                split_file: None,
            };
            for folder in group.folders() {
                fs::create_dir_all(folder)?;
            }
            group.open_files();
            if self.version == Version::V1 {
                for folder in group.folders() {
                    fs::write(folder.join("tasks"), thread.id.to_string())?;
                }
            }
            group
        };
        group.reset_peak();
        if group.set != Some((memory, processes)) {
            group.set(memory, processes)?;
            group.set = Some((memory, processes));
            group.oom_kills = group.oom_kills_now();
            group.process_refusals = group.process_refusals_now();
        }
        Ok(group)
    }

    /// A group whose step is over but whose memory may still be charged (the step's tmpfs,
    /// kept while its mount namespace waits to be closed): [`Lease::give_back`] returns it for
    /// the thread that took it, once that memory is gone.
    pub fn lease(self: &std::sync::Arc<Self>, group: Group) -> Lease {
        Lease {
            cgroups: std::sync::Arc::clone(self),
            owner: Owner::current(),
            group,
        }
    }
}

/// See [`Cgroups::lease`].
pub struct Lease {
    cgroups: std::sync::Arc<Cgroups>,
    owner: Owner,
    group: Group,
}

impl Lease {
    pub fn give_back(self) {
        lock(&self.cgroups.free).push((self.owner, self.group));
    }
}

/// The thread a v1 group holds: its id (to move it back) and a token that, unlike the id, no
/// later thread reuses (a new thread with an old id was never placed).
#[derive(Clone, Copy)]
struct Owner {
    id: libc::pid_t,
    token: u64,
}

impl Owner {
    fn current() -> Self {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        thread_local! {
            static TOKEN: u64 = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Self {
            // SAFETY: trivial getter.
            id: unsafe { libc::gettid() },
            token: TOKEN.with(|token| *token),
        }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        self.release();
    }
}

impl Cgroups {
    /// Removes every cgroup made (all steps are over) and gantry's folders; on v1 the threads
    /// placed in them go back to gantry's own cgroup first.
    pub fn release(&self) {
        let groups = std::mem::take(&mut *lock(&self.free));
        for (thread, group) in groups {
            if self.version == Version::V1 {
                for folder in self.folders() {
                    if let Some(home) = folder.parent() {
                        let _ = fs::write(home.join("tasks"), thread.id.to_string());
                    }
                }
            }
            for folder in group.folders() {
                let _ = fs::remove_dir(folder);
            }
        }
        for folder in self.folders() {
            let _ = fs::remove_dir(folder);
        }
    }

    /// gantry's folders, one per controller (one on v2).
    fn folders(&self) -> Vec<&PathBuf> {
        distinct(&self.memory, self.pids.as_ref(), self.cpu.as_ref())
    }
}

impl Group {
    /// The group's folders, one per controller (one on v2).
    fn folders(&self) -> Vec<&PathBuf> {
        distinct(&self.memory, self.pids.as_ref(), self.cpu.as_ref())
    }

    /// Opens the files read on every step (made by the kernel with the group's folders).
    fn open_files(&mut self) {
        let (peak, cpu) = match self.version {
            Version::V1 => ("memory.max_usage_in_bytes", "cpuacct.usage"),
            Version::V2 => ("memory.peak", "cpu.stat"),
        };
        self.peak_file = File::options()
            .read(true)
            .write(self.version == Version::V1)
            .open(self.memory.join(peak))
            .ok();
        let open =
            |name: &str| (self.cpu.as_ref()).and_then(|folder| File::open(folder.join(name)).ok());
        self.cpu_file = open(cpu);
        if self.version == Version::V1 {
            self.split_file = open("cpuacct.stat");
        }
    }

    /// Notes the CPU counters as the step starts (just before its pid 1 is made).
    pub fn start_cpu(&mut self) {
        self.cpu_start = self.cpu_now();
    }

    /// The CPU time the step's processes used since [`Group::start_cpu`], every one of them
    /// (read once they are all gone); `None` when the group cannot tell.
    #[must_use]
    pub fn cpu_used(&self) -> Option<CpuTime> {
        let (group, thread) = self.cpu_now()?;
        let (group_then, thread_then) = self.cpu_start?;
        Some(group.minus(group_then).minus(thread.minus(thread_then)))
    }

    /// The group's CPU time and, on v1 where it lives in the group, the spawning thread's
    /// own (zero on v2).
    fn cpu_now(&self) -> Option<(CpuTime, CpuTime)> {
        let text = read_afresh(self.cpu_file.as_ref()?)?;
        match self.version {
            Version::V2 => {
                let group = CpuTime {
                    user_us: field(&text, "user_usec")?,
                    system_us: field(&text, "system_usec")?,
                };
                Some((group, CpuTime::default()))
            }
            Version::V1 => {
                let total_ns: u64 = text.trim().parse().ok()?;
                let ticks = read_afresh(self.split_file.as_ref()?)?;
                let (user, system) = (field(&ticks, "user")?, field(&ticks, "system")?);
                Some((split(total_ns / 1000, user, system), thread_cpu()?))
            }
        }
    }

    fn set(&self, memory: u64, processes: u64) -> io::Result<()> {
        match self.version {
            Version::V2 => {
                fs::write(self.memory.join("memory.max"), memory.to_string())?;
                // Swap would let a step use more than its limit, slowly.
                let _ = fs::write(self.memory.join("memory.swap.max"), "0");
                fs::write(self.memory.join("pids.max"), processes.to_string())
            }
            Version::V1 => {
                fs::write(
                    self.memory.join("memory.limit_in_bytes"),
                    memory.to_string(),
                )?;
                if let Some(pids) = &self.pids {
                    // The spawning thread lives in the group too.
                    fs::write(pids.join("pids.max"), (processes + 1).to_string())?;
                }
                Ok(())
            }
        }
    }

    /// The `cgroup.procs` files the child writes `0` to, joining this group (v2; on v1 the
    /// child is born in its spawning thread's group).
    pub fn procs_files(&self) -> io::Result<Vec<CString>> {
        if self.version == Version::V1 {
            return Ok(Vec::new());
        }
        let file = self.memory.join("cgroup.procs");
        Ok(vec![
            CString::new(file.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?,
        ])
    }

    fn oom_kills_now(&self) -> u64 {
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        counter(&self.memory.join(file), "oom_kill")
    }

    fn process_refusals_now(&self) -> u64 {
        self.pids
            .as_ref()
            .map_or(0, |pids| counter(&pids.join("pids.events"), "max"))
    }

    /// Starts the group's memory high-water mark afresh for its next step (v1 resets it on a
    /// write; v2's `memory.peak` cannot be reset before Linux 6.12, so only a fresh v2 group's
    /// is the step's own).
    fn reset_peak(&mut self) {
        self.peak_is_own = match self.version {
            Version::V1 => self
                .peak_file
                .as_ref()
                .is_some_and(|file| file.write_at(b"0", 0).is_ok()),
            Version::V2 => self.set.is_none() && self.peak_file.is_some(),
        };
    }

    /// The most memory the step's processes held together (their pages and the page cache
    /// they filled, as the memory controller charges them), when this group counted only
    /// them.
    #[must_use]
    pub fn peak_memory(&self) -> Option<u64> {
        if !self.peak_is_own {
            return None;
        }
        read_afresh(self.peak_file.as_ref()?)?.trim().parse().ok()
    }

    /// Which limit, if any, the step reached while it held this group (asked only of a step
    /// that failed: the counters are read, and remembered for the group's next step).
    pub fn reached(&mut self) -> Option<Reached> {
        let (oom_kills, process_refusals) = (self.oom_kills_now(), self.process_refusals_now());
        let reached = if oom_kills > self.oom_kills {
            Some(Reached::Memory)
        } else if process_refusals > self.process_refusals {
            Some(Reached::Processes)
        } else {
            None
        };
        (self.oom_kills, self.process_refusals) = (oom_kills, process_refusals);
        reached
    }
}

/// The memory folder and the others that are not the same (v2 has one for all).
fn distinct<'a>(
    memory: &'a PathBuf,
    pids: Option<&'a PathBuf>,
    cpu: Option<&'a PathBuf>,
) -> Vec<&'a PathBuf> {
    let mut folders = vec![memory];
    for folder in [pids, cpu].into_iter().flatten() {
        if !folders.contains(&folder) {
            folders.push(folder);
        }
    }
    folders
}

/// A cgroup file's whole text as the kernel renders it now: reading from offset 0 renders it
/// afresh.
fn read_afresh(file: &File) -> Option<String> {
    let mut text = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        let read = file.read_at(&mut chunk, text.len() as u64).ok()?;
        text.extend_from_slice(&chunk[..read]);
        // The kernel fills a read as far as the text goes: a short one is the end.
        if read < chunk.len() {
            break;
        }
    }
    String::from_utf8(text).ok()
}

/// `name N` from a flat-keyed cgroup file's text.
fn field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok())?
    })
}

/// A total split into user and system time as the ticks were (all user before the first
/// tick).
fn split(total_us: u64, user_ticks: u64, system_ticks: u64) -> CpuTime {
    let ticks = user_ticks.saturating_add(system_ticks);
    let system_us = if ticks == 0 {
        0
    } else {
        u64::try_from(u128::from(total_us) * u128::from(system_ticks) / u128::from(ticks))
            .unwrap_or(total_us)
    };
    CpuTime {
        user_us: total_us - system_us,
        system_us,
    }
}

/// The calling thread's own CPU time.
fn thread_cpu() -> Option<CpuTime> {
    // SAFETY: a zeroed rusage is a valid one for the kernel to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: the calling thread's rusage into a local.
    if unsafe { libc::getrusage(libc::RUSAGE_THREAD, &raw mut usage) } != 0 {
        return None;
    }
    let micros = |time: libc::timeval| {
        u64::try_from(time.tv_sec)
            .unwrap_or(0)
            .saturating_mul(1_000_000)
            .saturating_add(u64::try_from(time.tv_usec).unwrap_or(0))
    };
    Some(CpuTime {
        user_us: micros(usage.ru_utime),
        system_us: micros(usage.ru_stime),
    })
}

/// `name N` from a cgroup's flat-keyed file; 0 when absent.
fn counter(file: &Path, name: &str) -> u64 {
    fs::read_to_string(file)
        .ok()
        .and_then(|text| field(&text, name))
        .unwrap_or(0)
}

/// Removes what a killed gantry left: `gantry.PID` folders whose process is gone.
fn sweep(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|name| name.strip_prefix("gantry.")) else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        if let Ok(children) = fs::read_dir(entry.path()) {
            for child in children.flatten() {
                if child.file_type().is_ok_and(|kind| kind.is_dir()) {
                    let _ = fs::remove_dir(child.path());
                }
            }
        }
        let _ = fs::remove_dir(entry.path());
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::{CpuTime, field, read_afresh, split};

    #[test]
    fn a_precise_total_is_split_as_the_ticks_were() {
        assert_eq!(
            split(1_000_000, 14, 86),
            CpuTime {
                user_us: 140_000,
                system_us: 860_000
            }
        );
        assert_eq!(
            split(700, 0, 0),
            CpuTime {
                user_us: 700,
                system_us: 0
            }
        );
        assert_eq!(
            split(u64::MAX, 1, 1).user_us + split(u64::MAX, 1, 1).system_us,
            u64::MAX
        );
        assert_eq!(field("user 14\nsystem 86\n", "system"), Some(86));
        assert_eq!(field("user 14\n", "system"), None);
    }

    #[test]
    fn a_file_is_read_whole_from_its_start_every_time() {
        let folder = tempfile::tempdir().expect("folder");
        let path = folder.path().join("stat");
        let long = "x".repeat(5000);
        std::fs::write(&path, &long).expect("write");
        let file = std::fs::File::open(&path).expect("open");
        assert_eq!(read_afresh(&file).as_deref(), Some(long.as_str()));
        std::fs::write(&path, "user_usec 7\n").expect("rewrite");
        assert_eq!(read_afresh(&file).as_deref(), Some("user_usec 7\n"));
    }
}
