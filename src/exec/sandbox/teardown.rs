//! Each step's mount namespace, taken apart off the step's path. When the last process of a
//! mount namespace exits, the kernel unmounts its tree and waits for an expedited RCU grace
//! period before that exit completes (`namespace_unlock`): measured here at about 135 µs a
//! step, during which gantry waits for the step to end and a core may sit idle. gantry
//! holds a reference to the step's namespace while it runs, so the step's exit only drops one;
//! the reference is closed afterwards on a thread of its own, which pays the wait instead.
//!
//! Nothing runs in a namespace held this way: its pid 1 is gone, so the kernel has killed
//! every process the step started. It only keeps the step's `/tmp` and HOME (a tmpfs) a
//! moment longer, still charged to the step's cgroup, which goes back to the pool only once
//! the namespace is closed; past [`BACKLOG`] namespaces waiting, the step's own thread closes
//! them.

use std::os::fd::{FromRawFd, OwnedFd};

use super::cgroup::Lease;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Weak};

/// Namespaces waiting to be closed beyond which a step closes its own: each holds the step's
/// tmpfs, so at most this many steps' `/tmp` outlive them (one closes in about 135 µs).
const BACKLOG: usize = 16;

/// A step's namespace (when it could be held) and its cgroup, to give back after the close.
struct Held {
    namespace: Option<OwnedFd>,
    group: Option<Lease>,
}

impl Held {
    fn release(self) {
        drop(self.namespace);
        if let Some(group) = self.group {
            group.give_back();
        }
    }
}

/// The thread that closes namespaces, started with the sandbox.
pub(super) struct Teardown {
    sender: Mutex<Option<mpsc::Sender<Held>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    waiting: Arc<AtomicUsize>,
}

impl Teardown {
    pub(super) fn start() -> Self {
        let (sender, receiver) = mpsc::channel::<Held>();
        let waiting = Arc::new(AtomicUsize::new(0));
        let counted: Weak<AtomicUsize> = Arc::downgrade(&waiting);
        let thread = std::thread::Builder::new()
            .name("gantry-teardown".to_owned())
            .spawn(move || {
                for held in receiver {
                    held.release();
                    if let Some(waiting) = counted.upgrade() {
                        waiting.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            })
            .ok();
        Self {
            sender: Mutex::new(thread.as_ref().map(|_| sender)),
            thread: Mutex::new(thread),
            waiting,
        }
    }

    /// A reference to the mount namespace of process `pid` (a step's pid 1, started and not
    /// yet reaped); `None` when it is gone already or cannot be opened.
    pub(super) fn hold(pid: libc::pid_t) -> Option<OwnedFd> {
        let path = std::ffi::CString::new(format!("/proc/{pid}/ns/mnt")).ok()?;
        // SAFETY: open of a NUL-terminated path; the descriptor is ours.
        let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
        // SAFETY: a fresh descriptor from open.
        (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Closes `namespace`, then gives `group` back, on the teardown thread (here, when there
    /// is no namespace, too many wait or the thread is gone).
    pub(super) fn close(&self, namespace: Option<OwnedFd>, group: Option<Lease>) {
        let held = Held { namespace, group };
        if held.namespace.is_none() || self.waiting.load(Ordering::Relaxed) >= BACKLOG {
            held.release();
            return;
        }
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else {
            held.release();
            return;
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::SendError(held)) = sender.send(held) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            held.release();
        }
    }

    /// Closes every namespace still waiting and stops the thread.
    pub(super) fn finish(&self) {
        self.sender
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        self.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::Teardown;

    #[test]
    fn a_held_namespace_is_closed_and_finish_waits_for_all() {
        let teardown = Teardown::start();
        // SAFETY: trivial getter.
        let own = Teardown::hold(unsafe { libc::getpid() }).expect("own mount namespace");
        teardown.close(Some(own), None);
        teardown.finish();
        assert_eq!(
            teardown.waiting.load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        assert!(Teardown::hold(i32::MAX).is_none(), "no such process");
    }
}
