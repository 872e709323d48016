//! gantry's error type. Every error has a category that decides the exit code; it is rendered
//! once, by the CLI.

use std::io;
use std::path::PathBuf;

use crate::diagnostic::Diagnostics;

/// What kind of failure an error is; decides the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
    /// The pipeline, a key or another input the user gave is wrong (exit 1).
    UserInput,
    /// The command line is wrong (exit 2).
    Usage,
    /// The machine lacks something: a permission, a tool, namespaces (exit 3).
    Environment,
    /// A bug in gantry (exit 70, like sysexits' `EX_SOFTWARE`).
    Internal,
}

impl Category {
    #[must_use]
    pub fn exit_code(self) -> u8 {
        match self {
            Self::UserInput => 1,
            Self::Usage => 2,
            Self::Environment => 3,
            Self::Internal => 70,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}", .0.render().trim_end())]
    Pipeline(Box<Diagnostics>),
    #[error("cannot read `{}`: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write `{}`: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },
    #[error("{0}")]
    Usage(String),
    /// A verification policy with mistakes: a usage error of `gantry verify` (exit 2), which
    /// keeps exit 1 for "the artifact failed verification".
    #[error("{}", .0.render().trim_end())]
    Policy(Box<Diagnostics>),
    #[error("signing key `{}`: {message}", path.display())]
    Key { path: PathBuf, message: String },
    #[error("{message}")]
    Environment { message: String },
    /// An input file gantry reads that is malformed (a Cargo.lock, say).
    #[error("`{}`: {message}", path.display())]
    Input { path: PathBuf, message: String },
    /// An attestation that does not verify or does not parse.
    #[error("attestations `{}`: {message}", path.display())]
    Attestation { path: PathBuf, message: String },
    /// A release gantry will not cut (a dirty tree, a version that does not move forward, a
    /// tag that exists), or a release that does not check out.
    #[error("{0}")]
    Release(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    #[must_use]
    pub fn category(&self) -> Category {
        match self {
            Self::Pipeline(_)
            | Self::Key { .. }
            | Self::Attestation { .. }
            | Self::Input { .. }
            | Self::Release(_) => Category::UserInput,
            Self::Usage(_) | Self::Policy(_) => Category::Usage,
            Self::Read { .. } | Self::Write { .. } | Self::Environment { .. } => {
                Category::Environment
            }
            Self::Internal(_) => Category::Internal,
        }
    }

    pub fn read(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Read { path, source }
    }

    pub fn write(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| Self::Write { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
