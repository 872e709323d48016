//! The processes a step starts, as the kernel counts them. Linux keeps no fork count for a
//! process tree (cgroups count the processes alive, `wait4` counts time), so a root gantry
//! opens, on each thread that spawns sandboxes, a perf counter of the `task:task_newtask`
//! tracepoint filtered to new processes (not threads), with `inherit`: every process the
//! thread creates, and every process those create, carries the counter, and their counts
//! come back to the thread's as they exit. A step's processes are the counter's rise across
//! the step, its pid 1 included. The step cannot reach the counter: it holds no descriptor of
//! it, the sandbox's system-call filter refuses `perf_event_open` and the `prctl` that turns
//! a process's counters off.
//!
//! The tracepoint's id is read from tracefs; where tracefs is not mounted, it is mounted in a
//! private mount namespace of a short-lived thread, so the host's mounts never change.
//! Unprivileged, or where the kernel refuses any of it, the figure is not measured.

use std::cell::RefCell;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `PERF_TYPE_TRACEPOINT`.
const TRACEPOINT: u32 = 2;
/// `attr.inherit`: children carry the counter.
const INHERIT: u64 = 1 << 1;
/// `PERF_ATTR_SIZE_VER0`: the fields before it are all this counter needs.
const ATTR_SIZE: u32 = 64;
/// `PERF_FLAG_FD_CLOEXEC`.
const FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `_IOW('$', 6, char *)`.
const SET_FILTER: libc::c_ulong = 0x4008_2406;
/// New processes only: `CLONE_THREAD` is 0x10000.
const PROCESSES_ONLY: &std::ffi::CStr = c"!(clone_flags & 65536)";
const EVENT: &str = "events/task/task_newtask/id";

/// The tracepoint to count, found once per run.
#[derive(Clone, Copy, Debug)]
pub struct Forks {
    tracepoint: u64,
}

/// A thread's counter.
enum Counter {
    /// Not asked for yet.
    Unopened,
    /// The kernel refused it.
    Refused,
    Open(OwnedFd),
}

/// The first counter, held for the process's life (see [`Forks::detect`]).
static KEEPER: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

thread_local! {
    /// This thread's counter, opened on its first step.
    static COUNTER: RefCell<Counter> = const { RefCell::new(Counter::Unopened) };
}

impl Forks {
    /// The counter's tracepoint when this gantry may count (root, perf events allowed);
    /// `None` otherwise.
    #[must_use]
    pub fn detect() -> Option<Self> {
        // SAFETY: trivial getter.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        let tracepoint =
            mounted_id().or_else(|| std::thread::spawn(private_mount_id).join().ok().flatten())?;
        let forks = Self { tracepoint };
        // The first counter registers the tracepoint's probe, which waits for an RCU grace
        // period (22 ms measured here): one is opened now on a thread of its own and kept, so
        // that wait overlaps the run's planning and later counters only take a reference. A
        // kernel that refuses it leaves each step's figure out.
        std::thread::spawn(move || {
            if let Some(counter) = forks.open() {
                let _ = KEEPER.set(counter);
            }
        });
        Some(forks)
    }

    /// The number of processes this thread and everything it started have created so far;
    /// `None` when it cannot be counted.
    #[must_use]
    pub fn count(self) -> Option<u64> {
        COUNTER.with_borrow_mut(|counter| {
            if let Counter::Unopened = counter {
                *counter = self.open().map_or(Counter::Refused, Counter::Open);
            }
            let Counter::Open(fd) = counter else {
                return None;
            };
            let mut value = [0u8; 8];
            // SAFETY: reading 8 bytes into a local from a perf counter we own.
            let read = unsafe { libc::read(fd.as_raw_fd(), value.as_mut_ptr().cast(), 8) };
            (read == 8).then(|| u64::from_ne_bytes(value))
        })
    }

    /// A counter of the calling thread's new processes, inherited by its children.
    fn open(self) -> Option<OwnedFd> {
        let mut attr = [0u64; (ATTR_SIZE / 8) as usize];
        attr[0] = u64::from(TRACEPOINT) | u64::from(ATTR_SIZE) << 32;
        attr[1] = self.tracepoint;
        attr[5] = INHERIT;
        // SAFETY: a perf_event_attr of the size it says, for the calling thread on any CPU.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_perf_event_open,
                attr.as_ptr(),
                0,
                -1,
                -1,
                FD_CLOEXEC,
            )
        };
        let fd = i32::try_from(fd).ok().filter(|fd| *fd >= 0)?;
        // SAFETY: perf_event_open returned a fresh descriptor we now own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: a NUL-terminated filter string for our own counter.
        let filtered = unsafe { libc::ioctl(fd.as_raw_fd(), SET_FILTER, PROCESSES_ONLY.as_ptr()) };
        (filtered == 0).then_some(fd)
    }
}

/// The tracepoint's id where tracefs is mounted already.
fn mounted_id() -> Option<u64> {
    ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .find_map(|root| read_id(&std::path::Path::new(root).join(EVENT)))
}

fn read_id(path: &std::path::Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// On a thread of its own: a private mount namespace (its mounts propagate nowhere), tracefs
/// mounted in it, the id read. The namespace goes with the thread.
fn private_mount_id() -> Option<u64> {
    // SAFETY: unsharing this thread's mount namespace (and its fs_struct, which CLONE_NEWNS
    // implies), then mounting within it; nothing else runs on this thread.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0
            || libc::mount(
                std::ptr::null(),
                c"/".as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            || libc::mount(
                c"tracefs".as_ptr(),
                c"/sys/kernel/tracing".as_ptr(),
                c"tracefs".as_ptr(),
                0,
                std::ptr::null(),
            ) != 0
        {
            return None;
        }
    }
    read_id(&std::path::Path::new("/sys/kernel/tracing").join(EVENT))
}

#[cfg(test)]
mod tests {
    use super::Forks;

    /// As root: three processes started by this thread (and one by one of them) rise the
    /// count by four; threads do not count.
    #[test]
    fn a_threads_processes_and_theirs_are_counted() {
        let Some(forks) = Forks::detect() else {
            eprintln!("not root, or no perf events here: nothing to count");
            return;
        };
        std::thread::spawn(move || {
            let before = forks.count().expect("count");
            for _ in 0..3 {
                let status = std::process::Command::new("/bin/sh")
                    .args(["-c", "true"])
                    .status()
                    .expect("sh");
                assert!(status.success());
            }
            std::process::Command::new("/bin/sh")
                .args(["-c", "/bin/true; true"])
                .status()
                .expect("sh");
            std::thread::spawn(|| ()).join().expect("thread");
            let after = forks.count().expect("count");
            assert_eq!(after - before, 5, "three shells, a fourth and its child");
        })
        .join()
        .expect("thread");
    }
}
