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

use std::os::unix::ffi::OsStrExt;

use crate::digest::Digest;
use crate::store::atomic;

const SETTLE_NANOS: i128 = 1_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    size: u64,
    mtime: i128,
    ctime: i128,
    inode: u64,
    /// When the digest was computed; entries whose mtime is too close to it are not trusted.
    recorded: i128,
    digest: Digest,
}

/// On disk: a magic line, then per entry the path's length (u32 LE), the path, and the fixed
/// fields. A small binary format: a no-op run of thousands of steps loads it in about a
/// millisecond, where JSON took over ten.
const MAGIC: &[u8] = b"gantry-stat-cache/2\n";
const FIXED: usize = 8 + 16 + 16 + 8 + 16 + 32;

fn encode(entries: &HashMap<PathBuf, Entry>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(MAGIC.len() + entries.len() * (FIXED + 64));
    bytes.extend_from_slice(MAGIC);
    for (path, entry) in entries {
        let path = path.as_os_str().as_encoded_bytes();
        let Ok(length) = u32::try_from(path.len()) else {
            continue;
        };
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(path);
        bytes.extend_from_slice(&entry.size.to_le_bytes());
        bytes.extend_from_slice(&entry.mtime.to_le_bytes());
        bytes.extend_from_slice(&entry.ctime.to_le_bytes());
        bytes.extend_from_slice(&entry.inode.to_le_bytes());
        bytes.extend_from_slice(&entry.recorded.to_le_bytes());
        bytes.extend_from_slice(entry.digest.as_bytes());
    }
    bytes
}

/// Decodes [`encode`]'s output; `None` for anything malformed (the cache is then empty).
fn decode(bytes: &[u8]) -> Option<HashMap<PathBuf, Entry>> {
    let mut rest = bytes.strip_prefix(MAGIC)?;
    let mut entries = HashMap::new();
    let mut take = |count: usize| -> Option<&[u8]> {
        let (head, tail) = rest.split_at_checked(count)?;
        rest = tail;
        Some(head)
    };
    while let Some(length) = take(4) {
        let length = usize::try_from(u32::from_le_bytes(length.try_into().ok()?)).ok()?;
        let path = take(length)?;
        let fixed = take(FIXED)?;
        let u64_at =
            |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().unwrap_or_default());
        let i128_at =
            |at: usize| i128::from_le_bytes(fixed[at..at + 16].try_into().unwrap_or_default());
        let entry = Entry {
            size: u64_at(0),
            mtime: i128_at(8),
            ctime: i128_at(24),
            inode: u64_at(40),
            recorded: i128_at(48),
            digest: Digest::from_raw(fixed[64..96].try_into().ok()?),
        };
        let path = PathBuf::from(std::ffi::OsStr::from_bytes(path));
        entries.insert(path, entry);
    }
    Some(entries)
}

pub struct StatCache {
    file: PathBuf,
    entries: Mutex<HashMap<PathBuf, Entry>>,
    dirty: AtomicBool,
    /// How many files were actually read and hashed (the rest came from the cache).
    hashed: std::sync::atomic::AtomicU64,
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
            .and_then(|bytes| decode(&bytes))
            .unwrap_or_default();
        Self {
            file,
            entries: Mutex::new(entries),
            dirty: AtomicBool::new(false),
            hashed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The digest of `path`, hashing it only when its metadata changed since last time.
    pub fn digest(&self, path: &Path) -> io::Result<Digest> {
        self.digest_checking(path, true).map(|(digest, _)| digest)
    }

    /// The digest and the permission bits, from one `stat`.
    pub fn digest_and_mode(&self, path: &Path) -> io::Result<(Digest, u32)> {
        self.digest_checking(path, true)
            .map(|(digest, metadata)| (digest, metadata.mode()))
    }

    /// Like [`digest`](Self::digest), for store blobs: gantry hard-links them into every run
    /// folder, and each new link changes the inode's ctime, so ctime is not compared. A blob
    /// is read-only and never rewritten in place; size, mtime and inode still catch a change.
    pub fn digest_of_blob(&self, path: &Path) -> io::Result<Digest> {
        self.digest_checking(path, false).map(|(digest, _)| digest)
    }

    fn digest_checking(
        &self,
        path: &Path,
        compare_ctime: bool,
    ) -> io::Result<(Digest, fs::Metadata)> {
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
            && (entry.ctime == ctime || !compare_ctime)
            && entry.inode == inode
            && entry.recorded - mtime.max(if compare_ctime { ctime } else { mtime }) > SETTLE_NANOS
        {
            return Ok((entry.digest, metadata));
        }
        let recorded = now_nanos();
        let digest = Digest::of_file(path)?;
        self.hashed.fetch_add(1, Ordering::Relaxed);
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
        Ok((digest, metadata))
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

    /// Files read and hashed so far (not served from the cache).
    #[must_use]
    pub fn files_hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    /// Writes the cache back if anything changed.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let entries = self.lock().clone();
        let bytes = encode(&entries);
        atomic::write(&self.file, &bytes)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_format_round_trips_and_rejects_garbage() {
        let mut entries = HashMap::new();
        let entry = Entry {
            size: 3,
            mtime: -5,
            ctime: 7,
            inode: 9,
            recorded: 1 << 70,
            digest: Digest::of_bytes(b"x"),
        };
        entries.insert(PathBuf::from("/a/b"), entry);
        entries.insert(PathBuf::from("/é"), Entry { size: 0, ..entry });
        let bytes = encode(&entries);
        assert_eq!(decode(&bytes), Some(entries));
        assert_eq!(decode(b"garbage"), None);
        assert_eq!(decode(&bytes[..bytes.len() - 1]), None);
    }

    #[test]
    fn an_unchanged_settled_file_is_not_hashed_again_but_a_changed_one_is() {
        let folder = tempfile::tempdir().expect("tempdir");
        let path = folder.path().join("file");
        fs::write(&path, "one").expect("write");
        // Old enough that a change within the same timestamp tick is impossible.
        let past = SystemTime::now() - std::time::Duration::from_secs(10);
        fs::File::options()
            .write(true)
            .open(&path)
            .expect("open")
            .set_modified(past)
            .expect("mtime");
        // Setting the mtime moved the ctime to now; let it settle past the racy-clean window.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let cache = StatCache::load(folder.path().join("cache"));
        let first = cache.digest(&path).expect("digest");
        assert_eq!(cache.files_hashed(), 1);
        cache.save().expect("save");
        let reloaded = StatCache::load(folder.path().join("cache"));
        assert_eq!(reloaded.digest(&path).expect("digest"), first);
        assert_eq!(
            reloaded.files_hashed(),
            0,
            "served from the saved cache without reading the file"
        );
        fs::write(&path, "two").expect("write");
        assert_eq!(
            reloaded.digest(&path).expect("digest"),
            Digest::of_bytes(b"two")
        );
        assert_eq!(reloaded.files_hashed(), 1);
    }
}
