//! Long-lived threads that `clone` sandboxed children.
//!
//! Why threads of their own: a child's `PR_SET_PDEATHSIG` fires when the *thread* that
//! created it exits, so the creator must live as long as gantry (tokio's blocking threads come
//! and go). And a network namespace is per thread: the offline spawner moves itself into one
//! empty namespace, made once per run, so that steps without network pay no per-step
//! namespace cost (see ../shared/FACTS.md: 1.2 ms vs 2.5 ms per step).

use std::ffi::c_void;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::mpsc;
use std::thread;

use crate::exec::sandbox::child::{ChildPlan, child_main, loopback_up};

const STACK_SIZE: usize = 256 * 1024;

/// A started child: its pid and a pidfd to wait on or signal it without pid-reuse races.
pub struct Spawned {
    pub pid: libc::pid_t,
    pub pidfd: OwnedFd,
}

struct Request {
    plan: Box<ChildPlan>,
    extra_flags: libc::c_int,
    reply: mpsc::SyncSender<io::Result<Spawned>>,
}

pub struct Spawner {
    offline: mpsc::Sender<Request>,
    online: mpsc::Sender<Request>,
    /// False when this process may not make a network namespace for a thread (not root):
    /// then every offline step gets a namespace of its own.
    shared_offline_namespace: bool,
}

impl Spawner {
    #[must_use]
    pub fn start() -> Self {
        let (online, online_requests) = mpsc::channel();
        spawn_thread("gantry-spawn-net", online_requests, false);
        let (offline, offline_requests) = mpsc::channel();
        let (ready_sender, ready) = mpsc::sync_channel(1);
        let shared = thread::Builder::new()
            .name("gantry-spawn".to_owned())
            .spawn(move || {
                // SAFETY: unshare of the network namespace affects only this thread.
                let shared =
                    unsafe { libc::unshare(libc::CLONE_NEWNET) == 0 && loopback_up() == 0 };
                let _ = ready_sender.send(shared);
                serve(&offline_requests);
            })
            .is_ok()
            && ready.recv().unwrap_or(false);
        Self {
            offline,
            online,
            shared_offline_namespace: shared,
        }
    }

    /// Whether offline children need `CLONE_NEWNET` (and a loopback) of their own.
    #[must_use]
    pub fn needs_private_network_namespace(&self) -> bool {
        !self.shared_offline_namespace
    }

    /// Clones a child that runs `plan`. `network` picks the thread (and so the namespace).
    pub fn spawn(
        &self,
        plan: Box<ChildPlan>,
        extra_flags: libc::c_int,
        network: bool,
    ) -> io::Result<Spawned> {
        let (reply, answer) = mpsc::sync_channel(1);
        let sender = if network { &self.online } else { &self.offline };
        sender
            .send(Request {
                plan,
                extra_flags,
                reply,
            })
            .map_err(|_| io::Error::other("the sandbox spawner thread has stopped"))?;
        answer
            .recv()
            .map_err(|_| io::Error::other("the sandbox spawner thread has stopped"))?
    }
}

fn spawn_thread(name: &str, requests: mpsc::Receiver<Request>, _offline: bool) {
    let _ = thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || serve(&requests));
}

fn serve(requests: &mpsc::Receiver<Request>) {
    let mut stack = vec![0u8; STACK_SIZE];
    while let Ok(request) = requests.recv() {
        let result = clone_child(&request.plan, request.extra_flags, &mut stack);
        let _ = request.reply.send(result);
    }
}

fn clone_child(
    plan: &ChildPlan,
    extra_flags: libc::c_int,
    stack: &mut [u8],
) -> io::Result<Spawned> {
    let flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS
        | extra_flags
        | libc::SIGCHLD;
    // The stack grows down; its top must be 16-byte aligned.
    let top = stack.as_mut_ptr().wrapping_add(stack.len());
    let top = top.wrapping_sub(top as usize % 16);
    // SAFETY: without CLONE_VM the child gets a copy of this address space, including `plan`
    // and `stack`; `child_main` only makes raw system calls before execve.
    let pid = unsafe {
        libc::clone(
            child_main,
            top.cast::<c_void>(),
            flags,
            std::ptr::from_ref(plan).cast_mut().cast::<c_void>(),
        )
    };
    if pid < 0 {
        return Err(io::Error::last_os_error());
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
