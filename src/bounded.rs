//! Reading files gantry does not trust: a pipeline, a policy, an attestation, a report or a lock
//! file is read only when it is a regular file, and only up to a cap for its kind, so `gantry
//! check /dev/zero` is an error instead of an endless read, and a FIFO given to `verify` is
//! an error instead of a hang (it is opened with `O_NONBLOCK`, which never waits for a writer).

use std::fs::File;
use std::io::{self, Read as _};
use std::os::unix::fs::{FileTypeExt as _, OpenOptionsExt as _};
use std::path::Path;

/// What is read, and the most of it gantry reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A pipeline file: 50,000 steps are about 4 MB.
    Pipeline,
    /// A verification policy, a key, a rate card: small by nature.
    Policy,
    /// An attestation or a manifest: a 50,000-step provenance is about 40 MB.
    Attestation,
    /// Test, coverage, SARIF and benchmark reports.
    Evidence,
    /// A lock file (Cargo.lock, flake.lock).
    Lock,
    /// One advisory of a vulnerability database (an OSV record, a RustSec file).
    Advisory,
    /// A template's pack, statement or index in a registry.
    Template,
}

impl Kind {
    /// The cap in bytes.
    #[must_use]
    pub const fn cap(self) -> u64 {
        match self {
            Self::Pipeline | Self::Lock => 64 << 20,
            Self::Policy | Self::Advisory | Self::Template => 16 << 20,
            Self::Attestation | Self::Evidence => 512 << 20,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Pipeline => "a pipeline file",
            Self::Policy => "a policy or key",
            Self::Attestation => "an attestation",
            Self::Evidence => "a report",
            Self::Lock => "a lock file",
            Self::Advisory => "an advisory",
            Self::Template => "a template's file",
        }
    }
}

/// `path` opened for reading when it is a regular file (of any size: an artifact to hash);
/// anything else is refused without waiting for it.
pub fn open_regular(path: &Path, what: &str) -> io::Result<(File, std::fs::Metadata)> {
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let metadata = file.metadata()?;
    let file_type = metadata.file_type();
    if !file_type.is_file() {
        let kind = if file_type.is_fifo() {
            "a FIFO"
        } else if file_type.is_char_device() || file_type.is_block_device() {
            "a device"
        } else if file_type.is_socket() {
            "a socket"
        } else if file_type.is_dir() {
            "a folder"
        } else {
            "not a regular file"
        };
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("it is {kind}; gantry reads {what} only from a regular file"),
        ));
    }
    Ok((file, metadata))
}

/// The bytes of `path`, a regular file of at most `kind`'s cap.
pub fn read(path: &Path, kind: Kind) -> io::Result<Vec<u8>> {
    let (file, metadata) = open_regular(path, kind.name())?;
    let cap = kind.cap();
    let too_large = |size: u64| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it is {size} bytes, more than the {} MiB gantry reads of {}",
                cap >> 20,
                kind.name()
            ),
        )
    };
    if metadata.len() > cap {
        return Err(too_large(metadata.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    // A file that grows while it is read stops at the cap too.
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
pub fn read_to_string(path: &Path, kind: Kind) -> io::Result<String> {
    String::from_utf8(read(path, kind)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "it is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_fifos_and_folders_are_refused_without_reading() {
        let folder = tempfile::tempdir().expect("tempdir");
        let fifo = folder.path().join("fifo");
        let path = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("path");
        // SAFETY: mkfifo with a valid path.
        assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
        for (path, words) in [
            (fifo.as_path(), "a FIFO"),
            (Path::new("/dev/zero"), "a device"),
            (folder.path(), "a folder"),
        ] {
            let error = read(path, Kind::Pipeline).expect_err("refused");
            assert!(error.to_string().contains(words), "{error}");
        }
        let file = folder.path().join("file");
        std::fs::write(&file, "x".repeat(17 << 20)).expect("write");
        let error = read(&file, Kind::Policy).expect_err("too large");
        assert!(
            error.to_string().contains("more than the 16 MiB"),
            "{error}"
        );
        assert_eq!(read(&file, Kind::Pipeline).expect("fits").len(), 17 << 20);
    }
}
