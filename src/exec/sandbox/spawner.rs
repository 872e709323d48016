//! Starting a sandboxed child: `clone` with `CLONE_VM | CLONE_VFORK` and a stack of its own,
//! as glibc's `posix_spawn` does. The child shares the parent's memory until it execs, so no
//! page tables are copied (copying them for every step cost more than the step itself), and
//! the calling thread sleeps until the child has exec'd or failed.
//!
//! Network: a thread's network namespace is inherited by the children it clones. Steps without
//! network all share one empty namespace made once per run; the calling thread switches into
//! it (or back to the host's) with `setns` only when the next child needs the other one. When
//! gantry may not make that namespace (not root), each offline child gets its own.

use std::cell::Cell;
use std::ffi::c_void;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::thread;

use crate::exec::sandbox::child::{ChildPlan, child_main, loopback_up};

const STACK_SIZE: usize = 256 * 1024;

/// A started child: its pid and a pidfd to wait on or signal it without pid-reuse races.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

pub struct Spawner {
    host: OwnedFd,
    /// The empty namespace offline steps share; `None` when it could not be made.
    offline: Option<OwnedFd>,
}

/// The host's network namespace, kept from the first spawner for [`use_host_network`].
static HOST_NETWORK: std::sync::OnceLock<OwnedFd> = std::sync::OnceLock::new();

/// Puts this thread back into the host's network namespace if a sandbox spawn left it in
/// the offline one. Work that runs on the same threads as the steps and talks to the network
/// itself (a rollout's probes, a host tool such as `nix` or a command backend, whose children
/// inherit the thread's namespace) calls this first.
pub fn use_host_network() -> io::Result<()> {
    if OFFLINE.get() != Some(true) {
        return Ok(());
    }
    let Some(host) = HOST_NETWORK.get() else {
        return Ok(());
    };
    // SAFETY: setns on a namespace descriptor we own; affects only this thread.
    if unsafe { libc::setns(host.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    OFFLINE.set(Some(false));
    Ok(())
}

thread_local! {
    /// Which namespace this thread is in: `Some(true)` offline, `Some(false)` host.
    static OFFLINE: Cell<Option<bool>> = const { Cell::new(None) };
    static STACK: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; STACK_SIZE]);
}

impl Spawner {
    pub fn start() -> io::Result<Self> {
        let host: OwnedFd = File::open("/proc/thread-self/ns/net")?.into();
        if HOST_NETWORK.get().is_none()
            && let Ok(copy) = host.try_clone()
        {
            let _ = HOST_NETWORK.set(copy);
        }
        let offline = thread::Builder::new()
            .name("gantry-netns".to_owned())
            .spawn(|| {
                // SAFETY: unshare of the network namespace affects only this thread, which
                // ends right after keeping a handle on the new namespace.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0
                    || unsafe { loopback_up() } != 0
                {
                    return None;
                }
                File::open("/proc/thread-self/ns/net")
                    .ok()
                    .map(OwnedFd::from)
            })?
            .join()
            .ok()
            .flatten();
        Ok(Self { host, offline })
    }

    /// Whether offline children need `CLONE_NEWNET` (and a loopback) of their own.
    #[must_use]
    pub fn needs_private_network_namespace(&self) -> bool {
        self.offline.is_none()
    }

    /// Clones a child that runs `plan`; returns once it has exec'd or failed.
    pub fn spawn(
        &self,
        plan: &ChildPlan,
        extra_flags: libc::c_int,
        network: bool,
    ) -> io::Result<Spawned> {
        self.enter(!network)?;
        // One stack per thread, reused: the child runs on it only while this thread sleeps.
        STACK.with_borrow_mut(|stack| clone_child(plan, extra_flags, stack))
    }

    fn enter(&self, offline: bool) -> io::Result<()> {
        let Some(offline_namespace) = &self.offline else {
            return Ok(());
        };
        if OFFLINE.get() == Some(offline) || (OFFLINE.get().is_none() && !offline) {
            return Ok(());
        }
        let target = if offline {
            offline_namespace
        } else {
            &self.host
        };
        // SAFETY: setns on a namespace descriptor we own; affects only this thread.
        if unsafe { libc::setns(target.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(io::Error::last_os_error());
        }
        OFFLINE.set(Some(offline));
        Ok(())
    }
}

fn clone_child(
    plan: &ChildPlan,
    extra_flags: libc::c_int,
    stack: &mut [u8],
) -> io::Result<Spawned> {
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
        | libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | extra_flags
        | libc::SIGCHLD;
    // The stack grows down; its top must be 16-byte aligned.
    let top = stack.as_mut_ptr().wrapping_add(stack.len());
    let top = top.wrapping_sub(top as usize % 16);
    // Block every signal across clone so that no handler of ours runs in the child, which
    // shares our memory; the child restores a clean mask before exec.
    // SAFETY: sigset manipulation on local values.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigfillset(&raw mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &raw const all, &raw mut previous);
    }
    // SAFETY: with CLONE_VM | CLONE_VFORK this thread sleeps until the child execs or exits;
    // the child runs `child_main` on `stack`, touching only `plan` (read) and its own stack.
    let pid = unsafe {
        libc::clone(
            child_main,
            top.cast::<c_void>(),
            flags,
            std::ptr::from_ref(plan).cast_mut().cast::<c_void>(),
        )
    };
    let clone_error = io::Error::last_os_error();
    // SAFETY: restoring the mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &raw const previous, std::ptr::null_mut()) };
    if pid < 0 {
        return Err(clone_error);
    }
    // SAFETY: `pid` is our unreaped child, so it cannot have been reused.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if pidfd < 0 {
        let error = io::Error::last_os_error();
        // SAFETY: plain kill/wait of our own child.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        return Err(error);
    }
    let pidfd = RawFd::try_from(pidfd).map_err(io::Error::other)?;
    // SAFETY: pidfd_open returned a fresh descriptor we now own.
    Ok(Spawned {
        pid,
        pidfd: unsafe { OwnedFd::from_raw_fd(pidfd) },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_left_offline_comes_back_to_the_host_network() {
        let spawner = Spawner::start().expect("spawner");
        if spawner.needs_private_network_namespace() {
            eprintln!("not root: no shared offline namespace to leave");
            return;
        }
        let here = || std::fs::read_link("/proc/thread-self/ns/net").expect("namespace");
        thread::spawn(move || {
            let host = here();
            spawner.enter(true).expect("offline");
            assert_ne!(here(), host);
            use_host_network().expect("back");
            assert_eq!(here(), host);
        })
        .join()
        .expect("thread");
    }
}
