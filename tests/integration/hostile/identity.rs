//! Property 1: no step runs as host uid 0 or holds a capability over the host; the kernel's
//! sensitive interfaces are masked or read-only; `no_new_privs` and a system-call filter.

use std::fmt::Write as _;
use std::io::Read as _;
use std::os::unix::net::UnixListener;

use super::{SANDBOX_HOST_ID, is_root, python_probe};
use crate::support::Test;

#[test]
fn a_step_is_not_host_root_and_holds_no_capability() {
    let (_, text) = python_probe(
        Test::new(),
        r#"
import os
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
print("uid", os.getuid(), "gid", os.getgid())
print("map", open("/proc/self/uid_map").read().split())
for field in ("CapInh", "CapPrm", "CapEff", "CapAmb", "NoNewPrivs", "Seccomp"):
    print(field, status[field].strip())
for secret in ("/etc/shadow", "/etc/gshadow"):
    try:
        open(secret).read(1)
        print("READ", secret)
    except OSError as error:
        print("denied", secret, error.errno)
"#,
        "",
    );
    let host = if is_root() {
        SANDBOX_HOST_ID
    } else {
        // SAFETY: trivial getter.
        unsafe { libc::geteuid() }
    };
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "uid 1000 gid 1000", "{text}");
    assert_eq!(lines[1], format!("map ['1000', '{host}', '1']"), "{text}");
    assert_eq!(
        &lines[2..8],
        [
            "CapInh 0000000000000000",
            "CapPrm 0000000000000000",
            "CapEff 0000000000000000",
            "CapAmb 0000000000000000",
            "NoNewPrivs 1",
            "Seccomp 2"
        ],
        "{text}"
    );
    assert!(!text.contains("READ"), "a step read a shadow file: {text}");
}

#[test]
fn proc_sys_and_the_kernels_sensitive_files_are_read_only_or_masked() {
    let (_, text) = python_probe(
        Test::new(),
        r#"
import os
for path in ("/proc/sys/kernel/core_pattern", "/proc/sys/kernel/hostname", "/proc/sysrq-trigger"):
    try:
        with open(path, "w") as handle:
            handle.write("|/tmp/x")
        print("WROTE", path)
    except OSError as error:
        print("refused", path)
for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug", "/proc/latency_stats", "/proc/interrupts"):
    if os.path.exists(path):
        print(path, len(open(path, "rb").read(64)))
for path in ("/proc/acpi", "/proc/scsi", "/proc/asound"):
    if os.path.exists(path):
        print(path, os.listdir(path))
mounts = [line.split()[4] + " " + line.split()[5].split(",")[0] for line in open("/proc/self/mountinfo")]
print("/proc/sys", [mount for mount in mounts if mount.startswith("/proc/sys ")])
"#,
        "",
    );
    assert!(!text.contains("WROTE"), "{text}");
    for line in text
        .lines()
        .filter(|line| line.starts_with("/proc/") && !line.starts_with("/proc/sys "))
    {
        assert!(
            line.ends_with(" 0") || line.ends_with(" []"),
            "a masked kernel file shows something: {line}"
        );
    }
    assert!(text.contains("/proc/sys ['/proc/sys ro']"), "{text}");
}

/// Docker's default profile in spirit: the kernel's riskiest interfaces answer EPERM, and a
/// step cannot make namespaces of its own; ordinary work (files, processes, pipes) goes on.
#[test]
fn the_system_call_filter_refuses_what_builds_never_need() {
    let (_, text) = python_probe(
        Test::new(),
        r#"
import ctypes, os, subprocess
libc = ctypes.CDLL(None, use_errno=True)
calls = {"keyctl": 250, "bpf": 321, "perf_event_open": 298, "kexec_load": 246, "init_module": 175,
         "unshare": 272, "mount": 165, "setns": 308, "swapon": 167, "add_key": 248,
         "userfaultfd": 323, "reboot": 169, "clock_settime": 227}
for name, number in sorted(calls.items()):
    result = libc.syscall(number, 0, 0, 0, 0, 0, 0)
    print(name, result, os.strerror(ctypes.get_errno()) if result < 0 else "")
print("clone3", libc.syscall(435, 0, 0), ctypes.get_errno())
print("fork", subprocess.run(["sh", "-c", "echo child"], capture_output=True).stdout.decode().strip())
print("unshare -r", subprocess.run(["unshare", "-r", "true"], capture_output=True).returncode)
"#,
        "",
    );
    for line in text.lines().filter(|line| {
        !line.starts_with("fork") && !line.starts_with("clone3") && !line.starts_with("unshare -r")
    }) {
        assert!(
            line.ends_with("-1 Operation not permitted"),
            "not refused with EPERM: {line}\n{text}"
        );
    }
    assert!(
        text.contains(&format!("clone3 -1 {}", libc::ENOSYS)),
        "{text}"
    );
    assert!(text.contains("fork child"), "{text}");
    assert!(!text.contains("unshare -r 0"), "{text}");
}

/// As root, steps ignored `RLIMIT_NPROC` (host uid 0 is exempt); as the unprivileged sandbox
/// user a step is held to it.
#[test]
fn a_step_is_held_to_its_process_limit() {
    let (_, text) = python_probe(
        Test::new(),
        r"
import os, resource, time
resource.setrlimit(resource.RLIMIT_NPROC, (8, 8))
children = []
for _ in range(16):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(1)
        os._exit(0)
    children.append(pid)
for pid in children:
    os.waitpid(pid, 0)
print(len(children))
",
        "",
    );
    let started: u32 = text.trim().parse().expect("count");
    assert!(started < 16, "all 16 processes started under a limit of 8");
}

/// A step that asks for the network and talks to a local service over a unix socket is seen
/// by that service as the unprivileged sandbox user, never as root.
#[test]
fn a_local_service_sees_the_sandbox_user_not_root() {
    let name = format!("gantry-hostile-peer-{}", std::process::id());
    let listener = {
        use std::os::linux::net::SocketAddrExt;
        let address =
            std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).expect("address");
        UnixListener::bind_addr(&address).expect("abstract socket")
    };
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        // SAFETY: a zeroed ucred is a valid one to fill.
        let mut credentials: libc::ucred = unsafe { std::mem::zeroed() };
        let mut length = u32::try_from(std::mem::size_of::<libc::ucred>()).expect("size");
        // SAFETY: getsockopt into a correctly sized struct on a connected socket.
        let result = unsafe {
            libc::getsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&stream),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                (&raw mut credentials).cast(),
                &raw mut length,
            )
        };
        assert_eq!(result, 0);
        let mut hello = String::new();
        let _ = stream.read_to_string(&mut hello);
        credentials.uid
    });
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0{name}')\ns.sendall(b'hello')\ns.close()\nprint('sent')\n"
    );
    let (_, text) = python_probe(Test::new(), &script, "network = true");
    assert_eq!(text, "sent\n");
    let uid = server.join().expect("server");
    if is_root() {
        assert_eq!(uid, SANDBOX_HOST_ID, "the peer is the sandbox user");
    }
    assert_ne!(uid, 0, "a step looked like root to a local service");
}

/// Regression: becoming the sandbox user raced between steps spawned at once (the address
/// space's dumpable flag, shared with gantry, was cleared by one child's `setresuid` between a
/// sibling's `PR_SET_DUMPABLE` and its `open` of `uid_map`): about one step in 150 failed with
/// `write /proc/self/uid_map failed: Permission denied` at two jobs.
#[test]
fn many_steps_spawned_at_once_all_become_the_sandbox_user() {
    let mut toml = String::new();
    for index in 0..400 {
        let _ = writeln!(
            toml,
            "[steps.s{index}]\nrun = \"id -u > out/s{index}\"\noutputs = [\"out/s{index}\"]"
        );
    }
    let test = Test::new().pipeline(&toml);
    let run = test.gantry_run(&["--jobs", "2"]).success();
    assert_eq!(run.finished()["executed"], 400);
    assert_eq!(test.read("out/s399"), "1000\n");
}
