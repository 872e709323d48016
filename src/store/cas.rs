//! Content-addressed blobs: `<cache>/cas/<first two hex digits>/<sha256 hex>`. A blob is
//! written once, never changed, and checked against its name whenever it is read.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::atomic;
use crate::digest::Digest;

#[derive(Debug)]
pub struct Cas {
    directory: PathBuf,
    known: Mutex<HashSet<Digest>>,
}

/// A blob that is missing or whose content no longer matches its name.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob {0} is missing from the store")]
    Missing(Digest),
    #[error("blob {expected} is corrupt (its content hashes to {actual}); it was discarded")]
    Corrupt { expected: Digest, actual: Digest },
    #[error("store I/O on `{}`: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl Cas {
    pub fn open(directory: PathBuf) -> io::Result<Self> {
        // All 256 shard folders up front, so storing a blob never needs a `mkdir`.
        if !directory.join("ff").is_dir() {
            for shard in 0..=255u8 {
                fs::create_dir_all(directory.join(crate::hex::encode(&[shard])))?;
            }
        }
        Ok(Self {
            directory,
            known: Mutex::default(),
        })
    }

    /// Whether the blob was stored or checked during this run (saves a `stat` per blob that
    /// thousands of steps share, such as an empty log).
    fn known(&self, digest: &Digest) -> bool {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(digest)
    }

    /// Deletes a blob found corrupt.
    pub fn discard(&self, digest: &Digest) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(digest);
        let _ = fs::remove_file(self.path(digest));
    }

    fn remember(&self, digest: Digest) {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(digest);
    }

    #[must_use]
    pub fn path(&self, digest: &Digest) -> PathBuf {
        digest.sharded_path(&self.directory, "")
    }

    /// `f` of the blob's path, built on the stack: a lookup per step of a no-op run needs the
    /// path only for a moment.
    pub fn with_path<R>(&self, digest: &Digest, f: impl FnOnce(&Path) -> R) -> R {
        use std::os::unix::ffi::OsStrExt as _;
        let folder = self.directory.as_os_str().as_bytes();
        let mut buffer = [0u8; 512];
        let length = folder.len() + 68;
        if length > buffer.len() {
            return f(&self.path(digest));
        }
        let digits = digest.hex_digits();
        buffer[..folder.len()].copy_from_slice(folder);
        buffer[folder.len()] = b'/';
        buffer[folder.len() + 1..folder.len() + 3].copy_from_slice(&digits[..2]);
        buffer[folder.len() + 3] = b'/';
        buffer[folder.len() + 4..length].copy_from_slice(&digits);
        f(Path::new(std::ffi::OsStr::from_bytes(&buffer[..length])))
    }

    #[must_use]
    pub fn contains(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// Stores bytes, returning their digest.
    pub fn put_bytes(&self, bytes: &[u8]) -> io::Result<Digest> {
        let digest = Digest::of_bytes(bytes);
        if self.known(&digest) {
            return Ok(digest);
        }
        let path = self.path(&digest);
        if !path.is_file() {
            atomic::write_with_mode(&path, bytes, 0o444)?;
        }
        self.remember(digest);
        Ok(digest)
    }

    /// Moves a file already hashed to `digest` into the store (same filesystem: a rename).
    /// When the blob exists already the file is left where it is.
    pub fn adopt(&self, file: &Path, digest: &Digest) -> io::Result<()> {
        let path = self.path(digest);
        if path.is_file() {
            return Ok(());
        }
        fs::set_permissions(file, fs::Permissions::from_mode(0o444))?;
        match fs::rename(file, &path) {
            Ok(()) => Ok(()),
            // Another filesystem (GANTRY_CACHE_DIR elsewhere): copy, then rename into place.
            Err(error) if error.raw_os_error() == Some(libc::EXDEV) => {
                let temporary = atomic::copy_to_temporary(file, &path)?;
                atomic::commit(&temporary, &path)
            }
            Err(error) => Err(error),
        }
    }

    /// Moves the open regular file `name` of `folder`, already hashed to `digest`, into the
    /// store: made read-only and gantry's own (a root gantry's steps run as another user),
    /// then renamed relative to the folder's descriptor, never through a path a step could
    /// have redirected. The blob is checked to be the very file that was hashed.
    pub fn adopt_from(
        &self,
        file: &fs::File,
        folder: &super::beneath::Folder,
        name: &std::ffi::OsStr,
        digest: &Digest,
    ) -> io::Result<()> {
        use std::os::unix::fs::MetadataExt;
        let path = self.path(digest);
        if path.is_file() {
            return Ok(());
        }
        file.set_permissions(fs::Permissions::from_mode(0o444))?;
        let metadata = file.metadata()?;
        // SAFETY: trivial getters.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        if metadata.uid() != euid || metadata.gid() != egid {
            std::os::unix::fs::fchown(file, Some(euid), Some(egid))?;
        }
        match folder.rename_to(name, &path) {
            Ok(()) => {
                let placed = fs::symlink_metadata(&path)?;
                if placed.ino() != metadata.ino() || placed.dev() != metadata.dev() {
                    let _ = fs::remove_file(&path);
                    return Err(io::Error::other("the file changed while it was stored"));
                }
                Ok(())
            }
            // Another filesystem (GANTRY_CACHE_DIR elsewhere): copy what was hashed, checked.
            Err(error) if error.raw_os_error() == Some(libc::EXDEV) => {
                let (mut temporary_file, temporary) = atomic::create_temporary(&path)?;
                let mut source = file;
                std::io::Seek::seek(&mut source, std::io::SeekFrom::Start(0))?;
                let copied = Digest::of_reader(TeeReader {
                    inner: source,
                    copy: &mut temporary_file,
                })?;
                drop(temporary_file);
                if copied != *digest {
                    let _ = fs::remove_file(&temporary);
                    return Err(io::Error::other("the file changed while it was stored"));
                }
                fs::set_permissions(&temporary, fs::Permissions::from_mode(0o444))?;
                atomic::commit(&temporary, &path)
            }
            Err(error) => Err(error),
        }
    }

    /// Reads a blob and checks its digest; a corrupt blob is deleted.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, BlobError> {
        let path = self.path(digest);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Err(BlobError::Missing(*digest));
            }
            Err(source) => return Err(BlobError::Io { path, source }),
        };
        let actual = Digest::of_bytes(&bytes);
        if actual != *digest {
            self.discard(digest);
            return Err(BlobError::Corrupt {
                expected: *digest,
                actual,
            });
        }
        Ok(bytes)
    }

    /// Copies a blob to `target` atomically, checking its digest on the way; a corrupt blob is
    /// deleted and `target` is left untouched.
    pub fn restore(
        &self,
        digest: &Digest,
        target: &Path,
        executable: bool,
    ) -> Result<(), BlobError> {
        let path = self.path(digest);
        if !path.is_file() {
            return Err(BlobError::Missing(*digest));
        }
        let io_error = |source| BlobError::Io {
            path: target.to_path_buf(),
            source,
        };
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io_error)?;
        }
        let temporary = atomic::copy_to_temporary(&path, target).map_err(io_error)?;
        let actual = Digest::of_file(&temporary).map_err(io_error)?;
        if actual != *digest {
            let _ = fs::remove_file(&temporary);
            self.discard(digest);
            return Err(BlobError::Corrupt {
                expected: *digest,
                actual,
            });
        }
        let mode = if executable { 0o755 } else { 0o644 };
        fs::set_permissions(&temporary, fs::Permissions::from_mode(mode)).map_err(io_error)?;
        atomic::commit(&temporary, target).map_err(io_error)
    }
}

/// Reads from `inner` and writes what it read to `copy`.
struct TeeReader<'a, R> {
    inner: R,
    copy: &'a mut fs::File,
}

impl<R: io::Read> io::Read for TeeReader<'_, R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        io::Write::write_all(self.copy, &buffer[..read])?;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blob_path_built_on_the_stack_is_its_path() {
        let folder = tempfile::tempdir().expect("tempdir");
        let cas = Cas::open(folder.path().join("cas")).expect("cas");
        let digest = Digest::of_bytes(b"blob");
        let path = cas.path(&digest);
        assert!(path.ends_with(format!("{}/{}", &digest.hex()[..2], digest.hex())));
        assert_eq!(cas.with_path(&digest, Path::to_path_buf), path);
        let long = Cas::open(folder.path().join("x".repeat(200)).join("y".repeat(200)))
            .expect("a long folder");
        assert_eq!(
            long.with_path(&digest, Path::to_path_buf),
            long.path(&digest)
        );
    }
}
