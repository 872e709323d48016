//! The password of an encrypted key: `COSIGN_PASSWORD` (as cosign reads it), else asked on
//! the terminal with echo off. Never logged, never kept longer than the key takes to open.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Write as _};
use std::os::fd::AsRawFd;

use zeroize::Zeroizing;

/// Where a password comes from: the environment, else the terminal.
pub struct PasswordSource {
    pub from_environment: Option<Zeroizing<String>>,
}

impl PasswordSource {
    /// The password for opening `what`.
    pub fn get(&self, what: &str) -> Result<Zeroizing<String>, String> {
        if let Some(password) = &self.from_environment {
            return Ok(password.clone());
        }
        ask(&format!("Enter password for {what}: ")).map_err(|error| {
            format!("the key is encrypted and there is no terminal to ask for its password ({error}): set COSIGN_PASSWORD")
        })
    }

    /// A new password, typed twice when asked on the terminal.
    pub fn new_password(&self) -> Result<Zeroizing<String>, String> {
        if let Some(password) = &self.from_environment {
            return Ok(password.clone());
        }
        let no_terminal = |error: std::io::Error| {
            format!(
                "no terminal to ask for a password ({error}): set COSIGN_PASSWORD (it may be empty)"
            )
        };
        let first = ask("Enter password for private key: ").map_err(no_terminal)?;
        let second = ask("Enter password for private key again: ").map_err(no_terminal)?;
        if first != second {
            return Err("the passwords do not match".to_owned());
        }
        Ok(first)
    }
}

/// Reads one line from `/dev/tty` with echo off; echo is restored even when reading fails.
fn ask(prompt: &str) -> std::io::Result<Zeroizing<String>> {
    let mut terminal = File::options().read(true).write(true).open("/dev/tty")?;
    let fd = terminal.as_raw_fd();
    // SAFETY: tcgetattr/tcsetattr on a descriptor we own, with a zeroed termios they fill.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: `fd` is the open terminal and `saved` a termios it fills.
    if unsafe { libc::tcgetattr(fd, &raw mut saved) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut quiet = saved;
    quiet.c_lflag &= !libc::ECHO;
    quiet.c_lflag |= libc::ECHONL;
    // SAFETY: as above.
    if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw const quiet) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let result = (|| {
        terminal.write_all(prompt.as_bytes())?;
        terminal.flush()?;
        let mut line = Zeroizing::new(String::new());
        BufReader::new(&terminal).read_line(&mut line)?;
        let trimmed = line.trim_end_matches(['\n', '\r']).len();
        line.truncate(trimmed);
        Ok(line)
    })();
    // SAFETY: as above; restores what the terminal had.
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw const saved) };
    result
}
