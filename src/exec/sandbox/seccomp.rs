//! The system-call filter every step runs under: a deny list in the spirit of Docker's default
//! profile (moby `profiles/seccomp/default.json`). What a build never needs and the kernel's
//! riskiest interfaces are refused with `EPERM`: keys, BPF, perf events, kernel modules and
//! kexec, mounts and namespaces, clocks, swap, reboot, other processes' memory. `clone` with a
//! namespace flag is refused; `clone3`, whose flags the filter cannot read, answers `ENOSYS`,
//! so C libraries fall back to `clone`. `prctl` may not turn the process's perf counters off
//! or on (`PR_TASK_PERF_EVENTS_DISABLE`/`ENABLE`): gantry counts a step's processes with one
//! (`forks.rs`). Syscalls of another ABI (x32, or a foreign architecture) are refused
//! outright.
//!
//! The filter is a classic BPF program built once by the parent and installed by the child
//! just before `execve`, after `no_new_privs`.

use libc::sock_filter;

/// `AUDIT_ARCH_*` of the architecture gantry was built for (linux/audit.h).
#[cfg(target_arch = "x86_64")]
const ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const ARCH: u32 = 0xC000_00B7;

/// Syscall numbers at or above this are the x32 ABI on x86-64.
#[cfg(target_arch = "x86_64")]
const X32_BIT: u32 = 0x4000_0000;

/// Offsets into `struct seccomp_data`.
const NR: u32 = 0;
const ARCH_OFFSET: u32 = 4;
/// The low 32 bits of the first argument (little-endian).
const ARGUMENT_0: u32 = 16;

/// Namespace flags `clone` may not be given.
fn namespace_flags() -> u32 {
    u32::try_from(
        libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWCGROUP,
    )
    .unwrap_or(u32::MAX)
}

/// Refused with `EPERM`. Names, not only numbers, so the list reads like Docker's.
const DENIED: &[(&str, libc::c_long)] = &[
    ("acct", libc::SYS_acct),
    ("add_key", libc::SYS_add_key),
    ("bpf", libc::SYS_bpf),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("clock_settime", libc::SYS_clock_settime),
    ("delete_module", libc::SYS_delete_module),
    ("fanotify_init", libc::SYS_fanotify_init),
    ("finit_module", libc::SYS_finit_module),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fsopen", libc::SYS_fsopen),
    ("fspick", libc::SYS_fspick),
    ("get_mempolicy", libc::SYS_get_mempolicy),
    ("init_module", libc::SYS_init_module),
    ("kcmp", libc::SYS_kcmp),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("kexec_load", libc::SYS_kexec_load),
    ("keyctl", libc::SYS_keyctl),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("mbind", libc::SYS_mbind),
    ("mount", libc::SYS_mount),
    ("mount_setattr", libc::SYS_mount_setattr),
    ("move_mount", libc::SYS_move_mount),
    ("move_pages", libc::SYS_move_pages),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("open_tree", libc::SYS_open_tree),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("pivot_root", libc::SYS_pivot_root),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("quotactl", libc::SYS_quotactl),
    ("reboot", libc::SYS_reboot),
    ("request_key", libc::SYS_request_key),
    ("set_mempolicy", libc::SYS_set_mempolicy),
    ("setdomainname", libc::SYS_setdomainname),
    ("sethostname", libc::SYS_sethostname),
    ("setns", libc::SYS_setns),
    ("settimeofday", libc::SYS_settimeofday),
    ("swapoff", libc::SYS_swapoff),
    ("swapon", libc::SYS_swapon),
    ("syslog", libc::SYS_syslog),
    ("umount2", libc::SYS_umount2),
    ("unshare", libc::SYS_unshare),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("vhangup", libc::SYS_vhangup),
    #[cfg(target_arch = "x86_64")]
    ("ioperm", libc::SYS_ioperm),
    #[cfg(target_arch = "x86_64")]
    ("iopl", libc::SYS_iopl),
    #[cfg(target_arch = "x86_64")]
    ("nfsservctl", libc::SYS_nfsservctl),
    #[cfg(target_arch = "x86_64")]
    ("_sysctl", libc::SYS__sysctl),
    #[cfg(target_arch = "x86_64")]
    ("sysfs", libc::SYS_sysfs),
    #[cfg(target_arch = "x86_64")]
    ("uselib", libc::SYS_uselib),
    #[cfg(target_arch = "x86_64")]
    ("ustat", libc::SYS_ustat),
];

/// The names of the refused syscalls, for docs and tests.
#[must_use]
pub fn denied_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = DENIED.iter().map(|(name, _)| *name).collect();
    names.extend(["clone (namespace flags)", "clone3 (ENOSYS)"]);
    names
}

fn statement(code: u32, k: u32) -> sock_filter {
    sock_filter {
        code: u16::try_from(code).unwrap_or_default(),
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: u16::try_from(code).unwrap_or_default(),
        jt,
        jf,
        k,
    }
}

fn load(offset: u32) -> sock_filter {
    statement(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset)
}

fn ret(action: u32) -> sock_filter {
    statement(libc::BPF_RET | libc::BPF_K, action)
}

fn errno(number: i32) -> u32 {
    libc::SECCOMP_RET_ERRNO | (u32::try_from(number).unwrap_or(1) & libc::SECCOMP_RET_DATA)
}

fn number(syscall: libc::c_long) -> u32 {
    u32::try_from(syscall).unwrap_or(u32::MAX)
}

/// `PR_TASK_PERF_EVENTS_DISABLE` and `_ENABLE` (linux/prctl.h).
const PERF_EVENTS_DISABLE: u32 = 31;
const PERF_EVENTS_ENABLE: u32 = 32;
/// The instructions from the first argument check to the ALLOW return, included.
const CHECKS: usize = 9;

/// The filter program.
#[must_use]
pub fn program() -> Vec<sock_filter> {
    let equal = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let mut program = vec![
        load(ARCH_OFFSET),
        jump(equal, ARCH, 1, 0),
        ret(libc::SECCOMP_RET_KILL_PROCESS),
        load(NR),
    ];
    #[cfg(target_arch = "x86_64")]
    {
        program.push(jump(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_BIT,
            0,
            1,
        ));
        program.push(ret(errno(libc::EPERM)));
    }
    // Each denied number: equal → the EPERM return after the argument checks below.
    let count = DENIED.len();
    for (index, (_, syscall)) in DENIED.iter().enumerate() {
        let to_deny = u8::try_from(count - index - 1 + CHECKS).unwrap_or(u8::MAX);
        program.push(jump(equal, number(*syscall), to_deny, 0));
    }
    // The argument checks, CHECKS instructions, then ALLOW, EPERM, ENOSYS. Each jump counts
    // the instructions it skips. clone: refuse namespace flags; clone3: ENOSYS (its flags
    // sit behind a pointer); prctl: refuse turning perf counters off or on.
    let checks_start = program.len();
    program.push(jump(equal, number(libc::SYS_clone), 0, 2));
    program.push(load(ARGUMENT_0));
    program.push(jump(
        libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K,
        namespace_flags(),
        6,
        5,
    ));
    program.push(jump(equal, number(libc::SYS_clone3), 6, 0));
    program.push(jump(equal, number(libc::SYS_prctl), 0, 3));
    program.push(load(ARGUMENT_0));
    program.push(jump(equal, PERF_EVENTS_DISABLE, 2, 0));
    program.push(jump(equal, PERF_EVENTS_ENABLE, 1, 0));
    debug_assert_eq!(program.len() - checks_start, CHECKS - 1);
    program.push(ret(libc::SECCOMP_RET_ALLOW));
    program.push(ret(errno(libc::EPERM)));
    program.push(ret(errno(libc::ENOSYS)));
    program
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tiny interpreter for the instructions the filter uses, to check every path.
    fn run(program: &[sock_filter], arch: u32, nr: u32, argument: u32) -> u32 {
        let mut accumulator = 0;
        let mut pc = 0;
        loop {
            let instruction = program[pc];
            let code = u32::from(instruction.code);
            pc += 1;
            if code == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS {
                accumulator = match instruction.k {
                    NR => nr,
                    ARCH_OFFSET => arch,
                    ARGUMENT_0 => argument,
                    other => panic!("load of offset {other}"),
                };
            } else if code == libc::BPF_RET | libc::BPF_K {
                return instruction.k;
            } else {
                let taken = match code & 0xf0 {
                    0x10 => accumulator == instruction.k,
                    0x30 => accumulator >= instruction.k,
                    0x40 => accumulator & instruction.k != 0,
                    other => panic!("jump {other:#x}"),
                };
                pc += usize::from(if taken {
                    instruction.jt
                } else {
                    instruction.jf
                });
            }
        }
    }

    #[test]
    fn the_filter_allows_builds_and_refuses_the_kernels_risky_interfaces() {
        let program = program();
        let allow = libc::SECCOMP_RET_ALLOW;
        let eperm = errno(libc::EPERM);
        for (_, syscall) in DENIED {
            assert_eq!(run(&program, ARCH, number(*syscall), 0), eperm);
        }
        for syscall in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_openat,
            libc::SYS_execve,
            libc::SYS_mmap,
            libc::SYS_ptrace,
            libc::SYS_wait4,
        ] {
            assert_eq!(run(&program, ARCH, number(syscall), 0), allow);
        }
        let fork_flags = u32::try_from(libc::CLONE_CHILD_SETTID | libc::SIGCHLD).expect("flags");
        assert_eq!(
            run(&program, ARCH, number(libc::SYS_clone), fork_flags),
            allow
        );
        let user = u32::try_from(libc::CLONE_NEWUSER).expect("flag");
        assert_eq!(run(&program, ARCH, number(libc::SYS_clone), user), eperm);
        assert_eq!(
            run(&program, ARCH, number(libc::SYS_clone3), 0),
            errno(libc::ENOSYS)
        );
        // prctl: the perf counters stay as gantry set them; everything else is allowed.
        for option in [PERF_EVENTS_DISABLE, PERF_EVENTS_ENABLE] {
            assert_eq!(run(&program, ARCH, number(libc::SYS_prctl), option), eperm);
        }
        let set_name = u32::try_from(libc::PR_SET_NAME).expect("option");
        assert_eq!(
            run(&program, ARCH, number(libc::SYS_prctl), set_name),
            allow
        );
        assert_eq!(
            run(&program, 0x4000_0003, number(libc::SYS_read), 0),
            libc::SECCOMP_RET_KILL_PROCESS,
            "another architecture's calls are refused"
        );
        #[cfg(target_arch = "x86_64")]
        assert_eq!(run(&program, ARCH, X32_BIT, 0), eperm);
    }
}
