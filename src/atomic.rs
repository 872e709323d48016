//! The one way gantry writes a file: into a temporary file beside it, then `rename` over the
//! target. A kill at any moment leaves either the old file or the new one, never a torn one.
//!
//! No `fsync`: every blob, cache entry and attestation is checked against its digest or
//! signature when read, so a power loss that tears a file is detected there, and not paying a
//! disk flush per step keeps thousands of small steps fast.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether a file name is one of [`temporary_path`]'s: such a file is a write that a killed
/// gantry never finished, never a source.
#[must_use]
pub fn is_temporary_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some((_, suffix)) = rest.rsplit_once(".tmp-") else {
        return false;
    };
    let mut numbers = suffix.split('-');
    let numeric = |part: Option<&str>| {
        part.is_some_and(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_digit()))
    };
    numeric(numbers.next()) && numeric(numbers.next()) && numbers.next().is_none()
}

/// A temporary path beside `target`, unique within this machine at this moment.
#[must_use]
pub fn temporary_path(target: &Path) -> PathBuf {
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = target
        .file_name()
        .map_or_else(|| "file".into(), |name| name.to_string_lossy());
    target.with_file_name(format!(".{name}.tmp-{}-{count}", std::process::id()))
}

/// Writes `bytes` to `target` atomically with permission bits `mode`.
pub fn write_with_mode(target: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let temporary = temporary_path(target);
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&temporary)?;
        file.write_all(bytes)?;
        fs::rename(&temporary, target)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result
}

/// Writes `bytes` to `target` atomically (mode 0644).
pub fn write(target: &Path, bytes: &[u8]) -> io::Result<()> {
    write_with_mode(target, bytes, 0o644)
}

/// Creates `target`'s parent folders, then writes atomically.
pub fn write_creating_parents(target: &Path, bytes: &[u8]) -> io::Result<()> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent)?;
    }
    write(target, bytes)
}

/// Copies `source` to `target` atomically, returning the temporary file for the caller to
/// check before it is renamed into place.
pub fn copy_to_temporary(source: &Path, target: &Path) -> io::Result<PathBuf> {
    let temporary = temporary_path(target);
    match fs::copy(source, &temporary) {
        Ok(_) => Ok(temporary),
        Err(error) => {
            let _ = fs::remove_file(&temporary);
            Err(error)
        }
    }
}

/// Opens a fresh file that will become `target` once [`commit`] renames it.
pub fn create_temporary(target: &Path) -> io::Result<(File, PathBuf)> {
    let temporary = temporary_path(target);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&temporary)?;
    Ok((file, temporary))
}

/// Renames a finished temporary file over `target`.
pub fn commit(temporary: &Path, target: &Path) -> io::Result<()> {
    fs::rename(temporary, target).inspect_err(|_| {
        let _ = fs::remove_file(temporary);
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_recognised() {
        let temporary = temporary_path(Path::new("/w/out/a.txt"));
        let name = temporary
            .file_name()
            .and_then(|name| name.to_str())
            .expect("name");
        assert!(is_temporary_name(name), "{name}");
        assert!(!is_temporary_name("a.txt"));
        assert!(!is_temporary_name(".a.tmp-x-1"));
        assert!(!is_temporary_name(".hidden"));
    }
}
