//! A worker's local copy of CAS blobs: each blob once per mode, read-only, named by its hash,
//! so an input fetched for one action is not fetched again for the next, and an action's
//! outputs (often the next action's inputs) are kept as they are uploaded. Actions see stash
//! files through read-only bind mounts, never a writable copy.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use crate::atomic;

pub struct Stash {
    root: PathBuf,
}

impl Stash {
    pub fn open(root: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&root)?;
        Ok(Self { root })
    }

    /// Where the blob `hash` is kept: executable copies apart, since a mode belongs to a file.
    #[must_use]
    pub fn path(&self, hash: &str, executable: bool) -> PathBuf {
        let shard = hash.get(..2).unwrap_or("00");
        let name = if executable {
            format!("{hash}.x")
        } else {
            hash.to_owned()
        };
        self.root.join(shard).join(name)
    }

    #[must_use]
    pub fn has(&self, hash: &str, executable: bool) -> bool {
        self.path(hash, executable).exists()
    }

    /// Keeps `bytes` (already checked against `hash`).
    pub fn put(&self, hash: &str, bytes: &[u8], executable: bool) -> io::Result<PathBuf> {
        let path = self.path(hash, executable);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        atomic::write_with_mode(&path, bytes, mode(executable))?;
        Ok(path)
    }

    /// Moves `file` (whose content has digest `hash`) into the stash, or drops it when the
    /// stash already has that blob.
    pub fn adopt(&self, file: &Path, hash: &str, executable: bool) -> io::Result<PathBuf> {
        let path = self.path(hash, executable);
        if path.exists() {
            fs::remove_file(file)?;
            return Ok(path);
        }
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::set_permissions(file, fs::Permissions::from_mode(mode(executable)))?;
        fs::rename(file, &path)?;
        Ok(path)
    }
}

fn mode(executable: bool) -> u32 {
    if executable { 0o555 } else { 0o444 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_is_kept_read_only_once_per_mode() {
        let folder = tempfile::tempdir().unwrap();
        let stash = Stash::open(folder.path().join("stash")).unwrap();
        let hash = "ab12";
        assert!(!stash.has(hash, false));
        let plain = stash.put(hash, b"x", false).unwrap();
        assert!(stash.has(hash, false) && !stash.has(hash, true));
        assert_eq!(
            fs::metadata(&plain).unwrap().permissions().mode() & 0o777,
            0o444
        );
        let output = folder.path().join("out");
        fs::write(&output, b"x").unwrap();
        let executable = stash.adopt(&output, hash, true).unwrap();
        assert_eq!(
            fs::metadata(&executable).unwrap().permissions().mode() & 0o777,
            0o555
        );
        assert!(!output.exists());
        fs::write(&output, b"x").unwrap();
        assert_eq!(stash.adopt(&output, hash, false).unwrap(), plain);
        assert!(!output.exists(), "a blob the stash has is dropped");
    }
}
