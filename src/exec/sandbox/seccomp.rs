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
//! just before `execve`, after `no_new_privs`. The denied numbers are searched as a binary
//! tree, not one by one: when a filter is installed the kernel runs it for every syscall
//! number to build its cache of always-allowed calls, with interrupts off, and over 60
//! comparisons in a row that was 1.4% of the CPU of a run of many small steps.

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

/// Where a jump of the search tree goes.
#[derive(Clone, Copy, Debug)]
enum Target {
    /// The EPERM return.
    Deny,
    /// On to the argument checks (the number is not denied).
    Checks,
    /// An instruction of the tree, by its index in it.
    Tree(usize),
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Equal,
    AtLeast,
    Always,
}

/// A jump of the tree before its offsets are known.
#[derive(Clone, Copy, Debug)]
struct Pending {
    kind: Kind,
    k: u32,
    taken: Target,
    not: Target,
}

/// Appends to `tree` a search of the sorted `numbers`: a few at a leaf are compared one by
/// one, a longer list is split at its middle by one `>=`.
fn search_tree(numbers: &[u32], tree: &mut Vec<Pending>) {
    const LEAF: usize = 3;
    if numbers.len() <= LEAF {
        for &number in numbers {
            let next = Target::Tree(tree.len() + 1);
            tree.push(Pending {
                kind: Kind::Equal,
                k: number,
                taken: Target::Deny,
                not: next,
            });
        }
        tree.push(Pending {
            kind: Kind::Always,
            k: 0,
            taken: Target::Checks,
            not: Target::Checks,
        });
        return;
    }
    let (low, high) = numbers.split_at(numbers.len() / 2);
    let split = tree.len();
    tree.push(Pending {
        kind: Kind::AtLeast,
        k: high[0],
        taken: Target::Checks,
        not: Target::Tree(split + 1),
    });
    search_tree(low, tree);
    tree[split].taken = Target::Tree(tree.len());
    search_tree(high, tree);
}

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
    // The denied numbers, as a search tree whose leaves jump to the EPERM return or on to
    // the argument checks below.
    let mut numbers: Vec<u32> = DENIED.iter().map(|(_, syscall)| number(*syscall)).collect();
    numbers.sort_unstable();
    numbers.dedup();
    let mut tree = Vec::new();
    search_tree(&numbers, &mut tree);
    let tree_start = program.len();
    let checks_at = tree_start + tree.len();
    // The EPERM return comes right after the checks and the ALLOW return.
    let deny_at = checks_at + CHECKS;
    for (index, pending) in tree.iter().enumerate() {
        let at = tree_start + index;
        let offset = |target: Target| -> u8 {
            let to = match target {
                Target::Deny => deny_at,
                Target::Checks => checks_at,
                Target::Tree(position) => tree_start + position,
            };
            u8::try_from(to - at - 1).expect("the filter is short enough for 8-bit jumps")
        };
        program.push(match pending.kind {
            Kind::Equal => jump(equal, pending.k, offset(pending.taken), offset(pending.not)),
            Kind::AtLeast => jump(
                libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
                pending.k,
                offset(pending.taken),
                offset(pending.not),
            ),
            Kind::Always => {
                let Target::Checks = pending.taken else {
                    unreachable!("a tree's unconditional jumps go to the checks");
                };
                statement(
                    libc::BPF_JMP | libc::BPF_JA | libc::BPF_K,
                    u32::try_from(checks_at - at - 1).unwrap_or(u32::MAX),
                )
            }
        });
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
            } else if code == libc::BPF_JMP | libc::BPF_JA | libc::BPF_K {
                pc += usize::try_from(instruction.k).expect("offset");
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

    /// Every syscall number, not only the listed ones, gets what the list says: the tree
    /// neither misses a denied number nor catches an allowed one.
    #[test]
    fn every_number_is_answered_as_the_list_says() {
        let program = program();
        assert!(
            program.len() < 256,
            "{} instructions: a jump must fit in 8 bits",
            program.len()
        );
        let denied: std::collections::HashSet<u32> =
            DENIED.iter().map(|(_, syscall)| number(*syscall)).collect();
        for nr in 0..1024 {
            let expected = if denied.contains(&nr) {
                errno(libc::EPERM)
            } else if nr == number(libc::SYS_clone3) {
                errno(libc::ENOSYS)
            } else {
                libc::SECCOMP_RET_ALLOW
            };
            assert_eq!(run(&program, ARCH, nr, 0), expected, "syscall {nr}");
        }
    }
}
