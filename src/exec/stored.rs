//! The attestation store a run places step attestations in (`attestations/sha256/XX/`,
//! `attest::run_folder`): whether a cached step's attestation is there already, by one
//! `fstatat` in its shard's folder. A no-op run asks this for every step; a path looked up
//! from the root each time cost a path walk and several allocations a step, and the
//! allocations serialised the planning threads on the allocator's locks.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::attest::run_folder;
use crate::digest::Digest;

/// What a stat of a stored file says, as the stat cache compares it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i128,
    pub inode: u64,
}

pub struct StoredAttestations {
    /// The attestations folder (the run folder's parent).
    attestations: PathBuf,
    /// Each shard folder, opened on first use once it exists.
    shards: Vec<OnceLock<OwnedFd>>,
}

impl StoredAttestations {
    #[must_use]
    pub fn new(attestations: &Path) -> Self {
        Self {
            attestations: attestations.to_path_buf(),
            shards: (0..256).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Where the attestation with `digest` is stored.
    #[must_use]
    pub fn path(&self, digest: &Digest) -> PathBuf {
        run_folder::stored(&self.attestations, digest)
    }

    /// The stored file's stat, when a regular file is there.
    #[must_use]
    pub fn stat(&self, digest: &Digest) -> Option<Stat> {
        let shard = self.shard(digest)?;
        let digits = digest.hex_digits();
        let mut name = [0u8; 64 + run_folder::SUFFIX.len() + 1];
        name[..64].copy_from_slice(&digits);
        name[64..64 + run_folder::SUFFIX.len()].copy_from_slice(run_folder::SUFFIX.as_bytes());
        // SAFETY: a zeroed stat is a valid out-buffer; `name` ends in a NUL (the array's last
        // byte), and the descriptor is open for the call.
        let stat = unsafe {
            let mut stat: libc::stat = std::mem::zeroed();
            let done = libc::fstatat(
                shard.as_raw_fd(),
                name.as_ptr().cast(),
                &raw mut stat,
                libc::AT_SYMLINK_NOFOLLOW,
            );
            (done == 0).then_some(stat)
        }?;
        (stat.st_mode & libc::S_IFMT == libc::S_IFREG).then(|| Stat {
            size: u64::try_from(stat.st_size).unwrap_or(0),
            mtime: i128::from(stat.st_mtime) * 1_000_000_000 + i128::from(stat.st_mtime_nsec),
            inode: stat.st_ino,
        })
    }

    fn shard(&self, digest: &Digest) -> Option<&OwnedFd> {
        let slot = &self.shards[usize::from(digest.as_bytes()[0])];
        if let Some(fd) = slot.get() {
            return Some(fd);
        }
        let folder = self.path(digest);
        let folder = CString::new(folder.parent()?.as_os_str().as_bytes()).ok()?;
        // SAFETY: a NUL-terminated path; the descriptor returned is ours to own.
        let fd = unsafe {
            libc::open(
                folder.as_ptr(),
                libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            )
        };
        if fd < 0 {
            return None;
        }
        // SAFETY: `fd` was just opened and nothing else owns it.
        let _ = slot.set(unsafe { OwnedFd::from_raw_fd(fd) });
        slot.get()
    }
}
