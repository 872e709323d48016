//! Runs a host tool (nix, diffoscope, a rollout's `start` command or traffic backend) to
//! completion, honouring the step's timeout and the
//! run's cancellation. The tool gets a process group of its own and is terminated when gantry
//! dies (PDEATHSIG). Stopping it is SIGTERM first: Nix runs builders as a build user in a session
//! of their own, out of reach of a signal to its group, and kills them itself when it is
//! asked to stop; SIGKILL to the group follows if it has not ended after a grace period.

use std::ffi::OsString;
use std::fmt;
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What a tool printed, capped so a runaway log cannot exhaust memory.
pub struct Captured {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
    TimedOut,
    Cancelled,
    /// Stopped early because its caller had what it needed (`run_until`).
    Stopped,
}

impl fmt::Display for Ended {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exited(code) => write!(formatter, "exit code {code}"),
            Self::Signaled(signal) => write!(formatter, "killed by signal {signal}"),
            Self::TimedOut => formatter.write_str("timed out"),
            Self::Cancelled => formatter.write_str("cancelled"),
            Self::Stopped => formatter.write_str("stopped early"),
        }
    }
}

const LIMIT: u64 = 64 << 20;
const GRACE: Duration = Duration::from_secs(10);

fn terminate(child: &mut std::process::Child, pid: i32) {
    // SAFETY: signals the tool itself, which cleans up its builders.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let asked = Instant::now();
    while asked.elapsed() < GRACE {
        if matches!(child.try_wait(), Ok(Some(_)) | Err(_)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // SAFETY: signals the process group the tool leads (whatever is left of it).
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    let _ = child.wait();
}

pub fn run(
    program: &Path,
    arguments: &[OsString],
    directory: &Path,
    timeout: Option<Duration>,
    cancel: &AtomicBool,
) -> io::Result<Captured> {
    run_until(program, arguments, directory, timeout, cancel, &|| false)
}

/// As [`run`], and stops the tool ([`Ended::Stopped`]) as soon as `enough` says so, such as
/// when a report it writes has reached its size limit.
pub fn run_until(
    program: &Path,
    arguments: &[OsString],
    directory: &Path,
    timeout: Option<Duration>,
    cancel: &AtomicBool,
    enough: &dyn Fn() -> bool,
) -> io::Result<Captured> {
    let mut command = Command::new(program);
    command
        .args(arguments)
        .current_dir(directory)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent. SIGTERM, not
    // SIGKILL: Nix stops its builders when terminated, and would orphan them when killed.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command.spawn()?;
    let reader = |stream: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(stream) = stream {
                let _ = stream.take(LIMIT).read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    );
    let started = Instant::now();
    let pid = i32::try_from(child.id()).unwrap_or(0);
    let ended = loop {
        if let Some(status) = child.try_wait()? {
            break match (status.code(), status.signal()) {
                (Some(code), _) => Ended::Exited(code),
                (None, Some(signal)) => Ended::Signaled(signal),
                (None, None) => Ended::Exited(-1),
            };
        }
        let stop = if cancel.load(Ordering::Relaxed) {
            Some(Ended::Cancelled)
        } else if timeout.is_some_and(|limit| started.elapsed() >= limit) {
            Some(Ended::TimedOut)
        } else if enough() {
            Some(Ended::Stopped)
        } else {
            None
        };
        if let Some(stop) = stop {
            terminate(&mut child, pid);
            break stop;
        }
        // Most Nix calls end within milliseconds: check often at first, then less often.
        let pause = if started.elapsed() < Duration::from_millis(200) {
            1
        } else {
            10
        };
        std::thread::sleep(Duration::from_millis(pause));
    };
    Ok(Captured {
        ended,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}
