//! What the sandboxed child does between `clone` and `execve`. This code runs in a copy of a
//! multi-threaded process, so it may only make raw system calls: everything it needs (paths,
//! argument vectors, map contents) is prepared by the parent, and it never allocates, locks or
//! panics. A failing operation reports its index and errno through a close-on-exec pipe.

use std::ffi::{CString, c_char, c_int, c_ulong, c_void};
use std::os::fd::RawFd;
use std::ptr;
use std::sync::atomic::{AtomicBool, Ordering};

/// One setup operation, applied in order.
#[derive(Clone)]
pub(crate) enum Operation {
    Mount {
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: c_ulong,
        data: Option<CString>,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    Chmod {
        path: CString,
        mode: libc::mode_t,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    CreateFile {
        path: CString,
    },
    WriteFile {
        path: CString,
        bytes: Vec<u8>,
    },
    SetHostname {
        name: Vec<u8>,
    },
    LoopbackUp,
    PivotRoot {
        new_root: CString,
    },
    Chdir {
        path: CString,
    },
    /// `unshare(flags)`: a time namespace, entered by the program at `execve`, or (after
    /// [`Operation::DropPrivileges`]) the user namespace that shows the step its own ids.
    Unshare {
        flags: c_int,
    },
    /// `lchown`: a folder the step must own (its HOME) when gantry runs as root.
    Chown {
        path: CString,
        uid: u32,
        gid: u32,
    },
    /// Becomes `uid`/`gid` of the host with no supplementary groups and no capabilities (a
    /// root gantry's child, after its mounts), then enters a user namespace of its own with
    /// those maps ([`become_step_user`]).
    BecomeStepUser {
        uid: u32,
        gid: u32,
        uid_map: Vec<u8>,
        gid_map: Vec<u8>,
    },
    /// `setrlimit(resource, value, value)`.
    SetLimit {
        resource: libc::__rlimit_resource_t,
        value: u64,
    },
}

/// Stages after the operations, reported as `operations.len() + stage`.
pub(super) const STAGE_NO_NEW_PRIVILEGES: usize = 0;
pub(super) const STAGE_DESCRIPTORS: usize = 1;
pub(super) const STAGE_SECCOMP: usize = 2;
pub(super) const STAGE_EXEC: usize = 3;

impl Operation {
    /// A short description for error messages.
    pub(crate) fn describe(&self) -> String {
        let show = |text: &CString| text.to_string_lossy().into_owned();
        match self {
            Self::Mount {
                source,
                target,
                fstype,
                ..
            } => format!(
                "mount {} on {}",
                source
                    .as_ref()
                    .or(fstype.as_ref())
                    .map_or_else(|| "(remount)".to_owned(), show),
                show(target)
            ),
            Self::Mkdir { path, .. } => format!("mkdir {}", show(path)),
            Self::Chmod { path, .. } => format!("chmod {}", show(path)),
            Self::Symlink { link, .. } => format!("symlink {}", show(link)),
            Self::CreateFile { path } => format!("create {}", show(path)),
            Self::WriteFile { path, .. } => format!("write {}", show(path)),
            Self::SetHostname { .. } => "sethostname".to_owned(),
            Self::LoopbackUp => "bring up loopback".to_owned(),
            Self::PivotRoot { .. } => "pivot_root".to_owned(),
            Self::Chdir { path } => format!("chdir {}", show(path)),
            Self::Unshare { .. } => "unshare".to_owned(),
            Self::Chown { path, .. } => format!("chown {}", show(path)),
            Self::BecomeStepUser { uid, gid, .. } => {
                format!("become uid {uid} gid {gid} in a user namespace of its own")
            }
            Self::SetLimit { resource, value } => format!("limit resource {resource} to {value}"),
        }
    }
}

/// Everything the child needs, prepared by the parent.
pub(super) struct ChildPlan {
    pub operations: Vec<Operation>,
    pub program: CString,
    /// Owned here so the pointer arrays below stay valid.
    _argv: Vec<CString>,
    _envp: Vec<CString>,
    argv_pointers: Vec<*const c_char>,
    envp_pointers: Vec<*const c_char>,
    pub stdin: RawFd,
    pub stdout: RawFd,
    pub stderr: RawFd,
    pub error_pipe: RawFd,
    pub umask: libc::mode_t,
    /// The system-call filter (`seccomp.rs`), installed last; `filter_program` points into it.
    filter: Vec<libc::sock_filter>,
    filter_program: libc::sock_fprog,
}

// SAFETY: the raw pointers point into `argv`/`envp`/`filter`, owned by the same plan and never
// moved after construction (their heap buffers stay put when the plan moves).
unsafe impl Send for ChildPlan {}

impl ChildPlan {
    #[must_use]
    pub(super) fn new(
        operations: Vec<Operation>,
        program: CString,
        argv: Vec<CString>,
        envp: Vec<CString>,
        stdio: [RawFd; 3],
        error_pipe: RawFd,
        umask: libc::mode_t,
    ) -> Self {
        let pointers = |strings: &[CString]| {
            strings
                .iter()
                .map(|string| string.as_ptr())
                .chain(std::iter::once(ptr::null()))
                .collect()
        };
        let argv_pointers = pointers(&argv);
        let envp_pointers = pointers(&envp);
        Self {
            operations,
            program,
            _argv: argv,
            _envp: envp,
            argv_pointers,
            envp_pointers,
            stdin: stdio[0],
            stdout: stdio[1],
            stderr: stdio[2],
            error_pipe,
            umask,
            filter: Vec::new(),
            filter_program: libc::sock_fprog {
                len: 0,
                filter: ptr::null_mut(),
            },
        }
    }

    /// The system-call filter to install just before `execve`.
    #[must_use]
    pub(super) fn with_filter(mut self, mut filter: Vec<libc::sock_filter>) -> Self {
        self.filter_program = libc::sock_fprog {
            len: u16::try_from(filter.len()).unwrap_or(0),
            filter: filter.as_mut_ptr(),
        };
        self.filter = filter;
        self
    }
}

/// Entry point given to `clone`.
pub(super) extern "C" fn child_main(argument: *mut c_void) -> c_int {
    // SAFETY: the parent passes a pointer to a live `ChildPlan`; the child has its own copy of
    // the address space, so the plan stays valid for the child's whole life.
    let plan = unsafe { &*argument.cast::<ChildPlan>() };
    // SAFETY: only raw system calls on data prepared by the parent.
    unsafe { run(plan) }
}

unsafe fn run(plan: &ChildPlan) -> ! {
    // SAFETY: every call is a raw system call on valid, NUL-terminated data owned by `plan`;
    // nothing allocates (this is the cloned child, on its own stack, before exec).
    unsafe {
        // Signal state survives execve: start the program with default dispositions (Rust
        // ignores SIGPIPE in its own process) and, only then, nothing blocked. The parent
        // blocked everything across clone so that none of its handlers runs here.
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::signal(signal, libc::SIG_DFL);
            }
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &raw const set, ptr::null_mut());
        // If gantry dies (even by SIGKILL), the sandbox dies with it: this process is pid 1 of
        // its namespace, so the kernel then kills everything the step started.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        for (index, operation) in plan.operations.iter().enumerate() {
            if apply(operation) < 0 {
                fail(plan.error_pipe, index);
            }
        }
        let stage = |offset| plan.operations.len() + offset;
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 {
            fail(plan.error_pipe, stage(STAGE_NO_NEW_PRIVILEGES));
        }
        // Only 0, 1 and 2 reach the program: every other descriptor gantry holds or inherited
        // (an open folder, a CI runner's pipe) closes at execve; the error pipe stays usable
        // until then.
        if libc::dup2(plan.stdin, 0) < 0
            || libc::dup2(plan.stdout, 1) < 0
            || libc::dup2(plan.stderr, 2) < 0
            || libc::syscall(
                libc::SYS_close_range,
                3,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ) < 0
        {
            fail(plan.error_pipe, stage(STAGE_DESCRIPTORS));
        }
        libc::umask(plan.umask);
        if plan.filter_program.len > 0
            && libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &raw const plan.filter_program,
            ) < 0
        {
            fail(plan.error_pipe, stage(STAGE_SECCOMP));
        }
        libc::execve(
            plan.program.as_ptr(),
            plan.argv_pointers.as_ptr(),
            plan.envp_pointers.as_ptr(),
        );
        fail(plan.error_pipe, stage(STAGE_EXEC))
    }
}

unsafe fn fail(pipe: RawFd, index: usize) -> ! {
    // SAFETY: errno location is thread-local storage set up before clone; write and _exit are
    // async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        let mut message = [0u8; 12];
        message[..8].copy_from_slice(&(index as u64).to_le_bytes());
        message[8..].copy_from_slice(&errno.to_le_bytes());
        libc::write(pipe, message.as_ptr().cast(), message.len());
        libc::_exit(127)
    }
}

fn optional(text: Option<&CString>) -> *const c_char {
    text.map_or(ptr::null(), |text| text.as_ptr())
}

unsafe fn apply(operation: &Operation) -> c_int {
    // SAFETY: see `run`.
    unsafe {
        match operation {
            Operation::Mount {
                source,
                target,
                fstype,
                flags,
                data,
            } => libc::mount(
                optional(source.as_ref()),
                target.as_ptr(),
                optional(fstype.as_ref()),
                *flags,
                optional(data.as_ref()).cast(),
            ),
            Operation::Mkdir { path, mode } => {
                let result = libc::mkdir(path.as_ptr(), *mode);
                if result < 0 && *libc::__errno_location() == libc::EEXIST {
                    0
                } else {
                    result
                }
            }
            Operation::Chmod { path, mode } => libc::chmod(path.as_ptr(), *mode),
            Operation::Symlink { target, link } => libc::symlink(target.as_ptr(), link.as_ptr()),
            Operation::CreateFile { path } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 { fd } else { libc::close(fd) }
            }
            Operation::WriteFile { path, bytes } => write_file(path, bytes),
            Operation::SetHostname { name } => libc::sethostname(name.as_ptr().cast(), name.len()),
            Operation::LoopbackUp => loopback_up(),
            Operation::PivotRoot { new_root } => {
                if libc::chdir(new_root.as_ptr()) < 0 {
                    return -1;
                }
                let dot = c".".as_ptr();
                if libc::syscall(libc::SYS_pivot_root, dot, dot) < 0 {
                    return -1;
                }
                if libc::umount2(dot, libc::MNT_DETACH) < 0 {
                    return -1;
                }
                libc::chdir(c"/".as_ptr())
            }
            Operation::Chdir { path } => libc::chdir(path.as_ptr()),
            Operation::Unshare { flags } => libc::unshare(*flags),
            Operation::Chown { path, uid, gid } => libc::lchown(path.as_ptr(), *uid, *gid),
            Operation::BecomeStepUser {
                uid,
                gid,
                uid_map,
                gid_map,
            } => become_step_user(*uid, *gid, uid_map, gid_map),
            Operation::SetLimit { resource, value } => {
                let limit = libc::rlimit {
                    rlim_cur: *value,
                    rlim_max: *value,
                };
                libc::setrlimit(*resource, &raw const limit)
            }
        }
    }
}

/// Held by a child between its change of uid and the writing of its maps.
static BECOMING: AtomicBool = AtomicBool::new(false);

/// setgroups, setresgid, setresuid as raw system calls (glibc's `setresuid` would try to change
/// every thread of the parent, whose memory this child shares), then `unshare(CLONE_NEWUSER)`
/// and the namespace's maps.
///
/// A change of uid clears two settings that must hold: the parent-death signal (without it a
/// step outlives a gantry killed by SIGKILL) and dumpable, without which `/proc/self/uid_map`
/// is root's and cannot be opened. Dumpable belongs to the memory, which every child of
/// `CLONE_VM` shares with gantry: one child's `setresuid` clears it for a sibling between that
/// sibling's `PR_SET_DUMPABLE` and its `open`. So the whole sequence runs under a lock that
/// lives in that shared memory (steps spawned at once on two threads failed 1 in ~150).
unsafe fn become_step_user(uid: u32, gid: u32, uid_map: &[u8], gid_map: &[u8]) -> c_int {
    // A child killed inside the section would hold the lock forever: give up waiting after
    // about a second and go on (at worst, the old race).
    let mut spins = 0u32;
    while BECOMING
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
        && spins < 1_000_000
    {
        spins += 1;
        std::hint::spin_loop();
    }
    // SAFETY: raw system calls on plain integers and data owned by the plan.
    let result = unsafe {
        let ok = libc::syscall(libc::SYS_setgroups, 0, ptr::null::<libc::gid_t>()) == 0
            && libc::syscall(libc::SYS_setresgid, gid, gid, gid) == 0
            && libc::syscall(libc::SYS_setresuid, uid, uid, uid) == 0
            && libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == 0
            && libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) == 0
            && libc::unshare(libc::CLONE_NEWUSER) == 0
            && write_file(c"/proc/self/setgroups", b"deny") == 0
            && write_file(c"/proc/self/uid_map", uid_map) == 0
            && write_file(c"/proc/self/gid_map", gid_map) == 0;
        if ok { 0 } else { -1 }
    };
    BECOMING.store(false, Ordering::Release);
    result
}

/// Writes `bytes` to the existing file `path`.
unsafe fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> c_int {
    // SAFETY: open, write and close on a valid path and buffer.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return fd;
        }
        let written = libc::write(fd, bytes.as_ptr().cast(), bytes.len());
        libc::close(fd);
        if written < 0 { -1 } else { 0 }
    }
}

/// Brings `lo` up in the current network namespace (a fresh one has it down).
pub(super) unsafe fn loopback_up() -> c_int {
    // SAFETY: ioctl on a socket with a zeroed, correctly sized ifreq.
    unsafe {
        let socket = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if socket < 0 {
            return -1;
        }
        let mut request: libc::ifreq = std::mem::zeroed();
        for (slot, byte) in request.ifr_name.iter_mut().zip(b"lo\0") {
            *slot = c_char::from_ne_bytes([*byte]);
        }
        let mut result = libc::ioctl(socket, libc::SIOCGIFFLAGS, &raw mut request);
        if result >= 0 {
            request.ifr_ifru.ifru_flags |=
                i16::try_from(libc::IFF_UP | libc::IFF_RUNNING).unwrap_or(1);
            result = libc::ioctl(socket, libc::SIOCSIFFLAGS, &raw mut request);
        }
        libc::close(socket);
        result
    }
}
