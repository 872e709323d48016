//! A host program the rollout runs: nginx's reload, a command backend. It runs in the
//! workspace root under a time limit and the run's cancellation; anything but exit 0 is an
//! error that quotes what the program said.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::host_tool::{self as process, Ended};

const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Tool<'a> {
    /// The program and its first arguments, as the pipeline gives them.
    pub argv: &'a [String],
    pub root: &'a Path,
    pub cancel: &'a AtomicBool,
}

impl Tool<'_> {
    /// Runs the program with `more` after its own arguments; its standard output.
    pub fn run(&self, more: &[String]) -> Result<String, String> {
        let (program, arguments) = self
            .argv
            .split_first()
            .ok_or_else(|| "no program to run".to_owned())?;
        let arguments: Vec<OsString> = (arguments.iter().chain(more)).map(OsString::from).collect();
        let shown = || {
            let mut words = self.argv.to_vec();
            words.extend(more.iter().cloned());
            words.join(" ")
        };
        let captured = process::run(
            &self.program(program),
            &arguments,
            self.root,
            Some(TIMEOUT),
            self.cancel,
        )
        .map_err(|error| format!("cannot run `{}`: {error}", shown()))?;
        if captured.ended == Ended::Exited(0) {
            return Ok(String::from_utf8_lossy(&captured.stdout).into_owned());
        }
        let said = String::from_utf8_lossy(&captured.stderr);
        let said = said.trim();
        let tail: Vec<&str> = said.lines().rev().take(5).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Err(if said.is_empty() {
            format!("`{}` failed ({})", shown(), captured.ended)
        } else {
            format!(
                "`{}` failed ({}): {}",
                shown(),
                captured.ended,
                tail.join(" / ")
            )
        })
    }

    /// A program with a slash is a path, relative to the workspace root; a bare name is
    /// looked up on `PATH`.
    fn program(&self, program: &str) -> PathBuf {
        if program.contains('/') {
            self.root.join(program)
        } else {
            PathBuf::from(program)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_and_failures() {
        let cancel = AtomicBool::new(false);
        let root = std::env::temp_dir();
        let argv = ["sh".to_owned(), "-c".to_owned()];
        let tool = Tool {
            argv: &argv,
            root: &root,
            cancel: &cancel,
        };
        assert_eq!(tool.run(&["echo hi".to_owned()]), Ok("hi\n".to_owned()));
        let error = tool
            .run(&["echo no such pool >&2; exit 3".to_owned()])
            .unwrap_err();
        assert_eq!(
            error,
            "`sh -c echo no such pool >&2; exit 3` failed (exit code 3): no such pool"
        );
        let missing = ["./not-here".to_owned()];
        let tool = Tool {
            argv: &missing,
            root: &root,
            cancel: &cancel,
        };
        assert!(
            tool.run(&[])
                .unwrap_err()
                .starts_with("cannot run `./not-here`")
        );
    }
}
