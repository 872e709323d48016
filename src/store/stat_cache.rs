//! Stat cache: remembers each file's digest with its size, times and inode, so a no-op run
//! hashes nothing (like ninja's and git's index). A file changed within a second of being
//! hashed is not trusted ("racy clean", as git calls it) and is hashed again next time.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::atomic;

const SETTLE_NANOS: i128 = 1_000_000_000;

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Entry {
    #[serde(rename = "s")]
    size: u64,
    #[serde(rename = "m")]
    mtime: i128,
    #[serde(rename = "c")]
    ctime: i128,
    #[serde(rename = "i")]
    inode: u64,
    /// When the digest was computed; entries whose mtime is too close to it are not trusted.
    #[serde(rename = "r")]
    recorded: i128,
    #[serde(rename = "d")]
    digest: Digest,
}

#[derive(Serialize, Deserialize)]
struct OnDisk {
    version: u32,
    entries: HashMap<PathBuf, Entry>,
}

pub struct StatCache {
    file: PathBuf,
    entries: Mutex<HashMap<PathBuf, Entry>>,
    dirty: AtomicBool,
}

fn nanos(seconds: i64, nanoseconds: i64) -> i128 {
    i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds)
}

fn now_nanos() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i128::try_from(elapsed.as_nanos()).unwrap_or(0))
}

impl StatCache {
    /// Loads the cache; an unreadable or foreign file is treated as empty.
    #[must_use]
    pub fn load(file: PathBuf) -> Self {
        let entries = fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<OnDisk>(&bytes).ok())
            .filter(|on_disk| on_disk.version == 1)
            .map(|on_disk| on_disk.entries)
            .unwrap_or_default();
        Self {
            file,
            entries: Mutex::new(entries),
            dirty: AtomicBool::new(false),
        }
    }

    /// The digest of `path`, hashing it only when its metadata changed since last time.
    pub fn digest(&self, path: &Path) -> io::Result<Digest> {
        let metadata = fs::metadata(path)?;
        if !metadata.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file",
            ));
        }
        let size = metadata.size();
        let mtime = nanos(metadata.mtime(), metadata.mtime_nsec());
        let ctime = nanos(metadata.ctime(), metadata.ctime_nsec());
        let inode = metadata.ino();
        if let Some(entry) = self.lock().get(path)
            && entry.size == size
            && entry.mtime == mtime
            && entry.ctime == ctime
            && entry.inode == inode
            && entry.recorded - mtime.max(ctime) > SETTLE_NANOS
        {
            return Ok(entry.digest);
        }
        let recorded = now_nanos();
        let digest = Digest::of_file(path)?;
        self.lock().insert(
            path.to_path_buf(),
            Entry {
                size,
                mtime,
                ctime,
                inode,
                recorded,
                digest,
            },
        );
        self.dirty.store(true, Ordering::Relaxed);
        Ok(digest)
    }

    /// Records the digest of a file gantry has just written itself.
    pub fn record(&self, path: &Path, digest: Digest) {
        let Ok(metadata) = fs::metadata(path) else {
            return;
        };
        let entry = Entry {
            size: metadata.size(),
            mtime: nanos(metadata.mtime(), metadata.mtime_nsec()),
            ctime: nanos(metadata.ctime(), metadata.ctime_nsec()),
            inode: metadata.ino(),
            recorded: now_nanos(),
            digest,
        };
        self.lock().insert(path.to_path_buf(), entry);
        self.dirty.store(true, Ordering::Relaxed);
    }

    /// Writes the cache back if anything changed.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let entries = self.lock().clone();
        let bytes = serde_json::to_vec(&OnDisk {
            version: 1,
            entries,
        })
        .map_err(io::Error::other)?;
        atomic::write(&self.file, &bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
