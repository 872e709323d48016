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
pub(super) struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

pub(super) struct Spawner {
    /// Empty namespaces for offline steps, each used by one step at a time and reused;
    /// `None` when gantry may not make them (not root).
    offline: Option<std::sync::Mutex<Vec<Namespace>>>,
}

/// A network namespace: its descriptor and its inode, which names it.
pub(super) struct Namespace {
    fd: OwnedFd,
    inode: u64,
}

impl Namespace {
    fn open_own() -> io::Result<Self> {
        use std::os::unix::fs::MetadataExt;
        let file = File::open("/proc/thread-self/ns/net")?;
        let inode = file.metadata()?.ino();
        Ok(Self {
            fd: file.into(),
            inode,
        })
    }

    /// A new empty namespace with its loopback up, made on a thread of its own.
    fn make() -> io::Result<Self> {
        thread::Builder::new()
            .name("gantry-netns".to_owned())
            .spawn(|| {
                // SAFETY: unshare of the network namespace affects only this thread, which
                // ends right after keeping a handle on the new namespace.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0
                    // SAFETY: brings up this thread's new namespace's loopback through a socket it owns.
                    || unsafe { loopback_up() } != 0
                {
                    return Err(io::Error::last_os_error());
                }
                Self::open_own()
            })?
            .join()
            .map_err(|_| io::Error::other("making a network namespace panicked"))?
    }
}

/// The host's network namespace, kept from the first spawner for [`use_host_network`].
static HOST_NETWORK: std::sync::OnceLock<Namespace> = std::sync::OnceLock::new();

/// Puts this thread back into the host's network namespace. A spawn into an offline
/// namespace enters it only for the `clone` and comes straight back here, so no other code
/// on the thread (a rollout's probes, a host tool such as `nix`, whose children inherit the
/// thread's namespace) ever finds itself offline.
fn use_host_network() -> io::Result<()> {
    let Some(host) = HOST_NETWORK.get() else {
        return Ok(());
    };
    if CURRENT.get().is_none_or(|inode| inode == host.inode) {
        return Ok(());
    }
    enter(host)
}

/// Moves this thread into `namespace` (a no-op when it is there).
fn enter(namespace: &Namespace) -> io::Result<()> {
    if CURRENT.get() == Some(namespace.inode) {
        return Ok(());
    }
    // SAFETY: setns on a namespace descriptor we own; affects only this thread.
    if unsafe { libc::setns(namespace.fd.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io::Error::last_os_error());
    }
    CURRENT.set(Some(namespace.inode));
    Ok(())
}

thread_local! {
    /// The inode of the network namespace this thread is in, once a spawn has moved it.
    static CURRENT: Cell<Option<u64>> = const { Cell::new(None) };
    static STACK: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0u8; STACK_SIZE]);
}

/// Where a child's network comes from.
pub(super) enum Network<'a> {
    Host,
    /// One of the spawner's offline namespaces, held by the step.
    Offline(&'a Namespace),
    /// A namespace of its own (`CLONE_NEWNET` in the flags), when gantry may not make them.
    Private,
}

impl Spawner {
    pub(super) fn start() -> io::Result<Self> {
        // The first spawner's thread is in the host's namespace; a later one (`gantry repro`
        // runs several runs) may be on a thread an earlier run left offline.
        if HOST_NETWORK.get().is_none() {
            let _ = HOST_NETWORK.set(Namespace::open_own()?);
        }
        // Whether this process may make namespaces: try one now, keep it for the first step.
        let offline = Namespace::make()
            .ok()
            .map(|first| std::sync::Mutex::new(vec![first]));
        Ok(Self { offline })
    }

    /// Whether offline children need `CLONE_NEWNET` (and a loopback) of their own.
    #[must_use]
    pub(super) fn needs_private_network_namespace(&self) -> bool {
        self.offline.is_none()
    }

    /// An offline namespace no running step uses (a new one when all are in use): steps that
    /// run at the same time never share a loopback. Give it back with [`Spawner::give_back`]
    /// once the step's processes are gone.
    pub(super) fn take_offline(&self) -> io::Result<Option<Namespace>> {
        let Some(pool) = &self.offline else {
            return Ok(None);
        };
        let free = pool
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        match free {
            Some(namespace) => Ok(Some(namespace)),
            None => Namespace::make().map(Some),
        }
    }

    pub(super) fn give_back(&self, namespace: Namespace) {
        if let Some(pool) = &self.offline {
            pool.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(namespace);
        }
    }

    /// Clones a child that runs `plan`; returns once it has exec'd or failed.
    pub(super) fn spawn(
        plan: &ChildPlan,
        extra_flags: libc::c_int,
        network: &Network<'_>,
    ) -> io::Result<Spawned> {
        // One stack per thread, reused: the child runs on it only while this thread sleeps.
        let clone = || STACK.with_borrow_mut(|stack| clone_child(plan, extra_flags, stack));
        match network {
            Network::Offline(namespace) => {
                enter(namespace)?;
                let spawned = clone();
                // Back at once, whatever happened: the thread runs other work after this.
                use_host_network()?;
                spawned
            }
            Network::Host | Network::Private => {
                use_host_network()?;
                clone()
            }
        }
    }
}

fn clone_child(
    plan: &ChildPlan,
    extra_flags: libc::c_int,
    stack: &mut [u8],
) -> io::Result<Spawned> {
    let flags = libc::CLONE_VM
        | libc::CLONE_VFORK
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
    // SAFETY: a zeroed sigset is a valid one to fill.
    let mut previous: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: the mask is set on this thread alone and restored right after clone.
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
        // SAFETY: pidfd_open returned a fresh descriptor we now own.
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
            eprintln!("not root: no offline namespaces to leave");
            return;
        }
        let here = || std::fs::read_link("/proc/thread-self/ns/net").expect("namespace");
        thread::spawn(move || {
            let host = here();
            let first = spawner.take_offline().expect("take").expect("namespace");
            let second = spawner.take_offline().expect("take").expect("namespace");
            assert_ne!(
                first.inode, second.inode,
                "two steps at once get two namespaces"
            );
            enter(&first).expect("offline");
            assert_ne!(here(), host);
            use_host_network().expect("back");
            assert_eq!(here(), host);
            spawner.give_back(first);
            spawner.give_back(second);
        })
        .join()
        .expect("thread");
    }
}
