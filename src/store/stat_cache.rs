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

use crate::atomic;
use crate::digest::Digest;

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

/// On disk: a magic line, then per entry, sorted by path, the path's length (u32 LE), the
/// path, and the fixed fields. Loading is one read and one pass that notes where each entry
/// starts; lookups binary-search the file's bytes. Nothing is decoded or allocated per entry,
/// so a no-op run pays for the entries it looks at, not for every file the cache knows.
const MAGIC: &[u8] = b"gantry-stat-cache/3\n";
const FIXED: usize = 8 + 16 + 16 + 8 + 16 + 32;

fn encode<'a>(entries: impl IntoIterator<Item = (&'a [u8], EntryRef<'a>)>) -> Vec<u8> {
    // References, not copies: 100,000 entries sorted by value were 11 MB at a large run's peak.
    let mut sorted: Vec<(&[u8], EntryRef<'_>)> = entries.into_iter().collect();
    sorted.sort_unstable_by(|left, right| left.0.cmp(right.0));
    sorted.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut bytes = Vec::with_capacity(MAGIC.len() + sorted.len() * (FIXED + 68));
    bytes.extend_from_slice(MAGIC);
    for (path, entry) in sorted {
        let Ok(length) = u32::try_from(path.len()) else {
            continue;
        };
        bytes.extend_from_slice(&length.to_le_bytes());
        bytes.extend_from_slice(path);
        let entry = entry.get();
        bytes.extend_from_slice(&entry.size.to_le_bytes());
        bytes.extend_from_slice(&entry.mtime.to_le_bytes());
        bytes.extend_from_slice(&entry.ctime.to_le_bytes());
        bytes.extend_from_slice(&entry.inode.to_le_bytes());
        bytes.extend_from_slice(&entry.recorded.to_le_bytes());
        bytes.extend_from_slice(entry.digest.as_bytes());
    }
    bytes
}

/// An entry to write: one of the run's own, or one of the saved file's, read when written.
#[derive(Clone, Copy)]
enum EntryRef<'a> {
    Fresh(&'a Entry),
    Saved(&'a Saved, usize),
}

impl EntryRef<'_> {
    fn get(self) -> Entry {
        match self {
            Self::Fresh(entry) => *entry,
            Self::Saved(saved, start) => saved.entry_at(start),
        }
    }
}

/// The saved cache as read: its bytes and where each entry starts, in path order.
#[derive(Default)]
struct Saved {
    bytes: Vec<u8>,
    starts: Vec<usize>,
}

impl Saved {
    /// Indexes [`encode`]'s output; `None` for anything malformed or out of order (the cache
    /// is then empty, and every file is hashed once more).
    fn parse(bytes: Vec<u8>) -> Option<Self> {
        let mut at = MAGIC.len();
        if !bytes.starts_with(MAGIC) {
            return None;
        }
        let mut starts = Vec::new();
        let mut previous: Option<&[u8]> = None;
        while at < bytes.len() {
            let length = u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?);
            let path_end = (at + 4).checked_add(usize::try_from(length).ok()?)?;
            let path = bytes.get(at + 4..path_end)?;
            bytes.get(path_end..path_end + FIXED)?;
            if previous.is_some_and(|previous| previous >= path) {
                return None;
            }
            previous = Some(path);
            starts.push(at);
            at = path_end + FIXED;
        }
        Some(Self { bytes, starts })
    }

    fn path_at(&self, start: usize) -> &[u8] {
        let length = u32::from_le_bytes(self.bytes[start..start + 4].try_into().unwrap_or_default())
            as usize;
        &self.bytes[start + 4..start + 4 + length]
    }

    fn entry_at(&self, start: usize) -> Entry {
        let path_end = start + 4 + self.path_at(start).len();
        let fixed = &self.bytes[path_end..path_end + FIXED];
        let u64_at =
            |at: usize| u64::from_le_bytes(fixed[at..at + 8].try_into().unwrap_or_default());
        let i128_at =
            |at: usize| i128::from_le_bytes(fixed[at..at + 16].try_into().unwrap_or_default());
        let mut digest = [0; 32];
        digest.copy_from_slice(&fixed[64..96]);
        Entry {
            size: u64_at(0),
            mtime: i128_at(8),
            ctime: i128_at(24),
            inode: u64_at(40),
            recorded: i128_at(48),
            digest: Digest::from_raw(digest),
        }
    }

    fn get(&self, path: &[u8]) -> Option<Entry> {
        let found = self
            .starts
            .binary_search_by(|start| self.path_at(*start).cmp(path))
            .ok()?;
        Some(self.entry_at(self.starts[found]))
    }

    fn entries(&self) -> impl Iterator<Item = (&[u8], EntryRef<'_>)> {
        self.starts
            .iter()
            .map(|start| (self.path_at(*start), EntryRef::Saved(self, *start)))
    }
}

pub struct StatCache {
    file: PathBuf,
    saved: Saved,
    /// What [`save`](Self::save) wrote, which then replaces `saved` and `entries` as what
    /// lookups read: a run of 50,000 steps whose outputs were all re-hashed frees 17 MB of
    /// map before it writes its provenance, and later lookups still find what it hashed.
    written: std::sync::OnceLock<Saved>,
    /// What this run hashed or wrote; it overrides `saved`.
    entries: Mutex<HashMap<PathBuf, Entry>>,
    dirty: AtomicBool,
    /// Whether `entries` ever held anything: most lookups of a no-op run then skip hashing
    /// the path for a map that is empty.
    fresh: AtomicBool,
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
        let saved = fs::read(&file)
            .ok()
            .and_then(Saved::parse)
            .unwrap_or_default();
        Self {
            file,
            saved,
            written: std::sync::OnceLock::new(),
            entries: Mutex::new(HashMap::new()),
            dirty: AtomicBool::new(false),
            fresh: AtomicBool::new(false),
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
        if let Some(entry) = self.lookup(path)
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
        self.fresh.store(true, Ordering::Release);
        Ok((digest, metadata))
    }

    /// The digest recorded for the store blob at `path`, when a stat of it (or of another
    /// link to its inode) shows what was recorded: size, mtime and inode, settled. No
    /// system call: the caller has the stat.
    #[must_use]
    pub fn blob_unchanged(
        &self,
        path: &Path,
        size: u64,
        mtime: i128,
        inode: u64,
    ) -> Option<Digest> {
        self.lookup(path)
            .filter(|entry| {
                entry.size == size
                    && entry.mtime == mtime
                    && entry.inode == inode
                    && entry.recorded - mtime > SETTLE_NANOS
            })
            .map(|entry| entry.digest)
    }

    /// Whether `path` is still what was hashed: its size, times and inode are those recorded
    /// when its digest was taken (a file hashed this run, or vouched for by the saved cache).
    /// A file whose stat data moved, or that was never hashed, is not.
    #[must_use]
    pub fn unchanged(&self, path: &Path) -> bool {
        let Ok(metadata) = fs::metadata(path) else {
            return false;
        };
        self.lookup(path).is_some_and(|entry| {
            entry.size == metadata.size()
                && entry.mtime == nanos(metadata.mtime(), metadata.mtime_nsec())
                && entry.ctime == nanos(metadata.ctime(), metadata.ctime_nsec())
                && entry.inode == metadata.ino()
        })
    }

    /// What the cache vouches for at `path`: its digest, the stat it was taken with (size,
    /// mtime, ctime, inode; times in nanoseconds) and when it was taken, when that entry is
    /// settled (taken more than a second after the file last changed). No system call.
    #[must_use]
    pub fn vouched(&self, path: &Path) -> Option<(Digest, [i64; 4], i64)> {
        let entry = self.lookup(path)?;
        (entry.recorded - entry.mtime.max(entry.ctime) > SETTLE_NANOS).then_some(())?;
        Some((
            entry.digest,
            [
                i64::try_from(entry.size).ok()?,
                i64::try_from(entry.mtime).ok()?,
                i64::try_from(entry.ctime).ok()?,
                i64::try_from(entry.inode).ok()?,
            ],
            i64::try_from(entry.recorded).ok()?,
        ))
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
        self.fresh.store(true, Ordering::Release);
    }

    /// Files read and hashed so far (not served from the cache).
    #[must_use]
    pub fn files_hashed(&self) -> u64 {
        self.hashed.load(Ordering::Relaxed)
    }

    /// Writes the cache back if anything changed. The first save also makes what it wrote
    /// the base that lookups read, and frees the map.
    pub fn save(&self) -> io::Result<()> {
        if !self.dirty.swap(false, Ordering::Relaxed) {
            return Ok(());
        }
        let mut fresh = self.lock();
        let base = self.base();
        let bytes = encode(
            fresh
                .iter()
                .map(|(path, entry)| (path.as_os_str().as_bytes(), EntryRef::Fresh(entry)))
                .chain(base.entries().filter(|(path, _)| {
                    !fresh.contains_key(Path::new(std::ffi::OsStr::from_bytes(path)))
                })),
        );
        atomic::write(&self.file, &bytes)?;
        if self.written.get().is_none()
            && let Some(written) = Saved::parse(bytes)
            && self.written.set(written).is_ok()
        {
            // Under the lock: a lookup either finds an entry in the map or, once the map is
            // empty, in what was written.
            *fresh = HashMap::new();
            self.fresh.store(false, Ordering::Release);
        }
        Ok(())
    }

    /// What lookups read below this run's own map.
    fn base(&self) -> &Saved {
        self.written.get().unwrap_or(&self.saved)
    }

    fn lookup(&self, path: &Path) -> Option<Entry> {
        if self.fresh.load(Ordering::Acquire)
            && let Some(entry) = self.lock().get(path)
        {
            return Some(*entry);
        }
        self.base().get(path.as_os_str().as_bytes())
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
        let entry = Entry {
            size: 3,
            mtime: -5,
            ctime: 7,
            inode: 9,
            recorded: 1 << 70,
            digest: Digest::of_bytes(b"x"),
        };
        let other = Entry { size: 0, ..entry };
        let paths: [&[u8]; 3] = [b"/z", "/é".as_bytes(), b"/a/b"];
        let bytes = encode([
            (paths[0], EntryRef::Fresh(&entry)),
            (paths[1], EntryRef::Fresh(&other)),
            (paths[2], EntryRef::Fresh(&entry)),
        ]);
        let saved = Saved::parse(bytes.clone()).expect("parses");
        assert_eq!(saved.get(b"/a/b"), Some(entry));
        assert_eq!(saved.get("/é".as_bytes()), Some(other));
        assert_eq!(saved.get(b"/z"), Some(entry));
        assert_eq!(saved.get(b"/a"), None);
        let listed: Vec<&[u8]> = saved.entries().map(|(path, _)| path).collect();
        assert_eq!(listed, [b"/a/b".as_slice(), b"/z", "/é".as_bytes()]);
        assert!(Saved::parse(b"garbage".to_vec()).is_none());
        assert!(Saved::parse(bytes[..bytes.len() - 1].to_vec()).is_none());
        // Out of order: not trusted.
        let mut swapped = MAGIC.to_vec();
        for path in [b"/b", b"/a"] {
            swapped.extend_from_slice(&2u32.to_le_bytes());
            swapped.extend_from_slice(path);
            swapped.extend_from_slice(&[0; FIXED]);
        }
        assert!(Saved::parse(swapped).is_none());
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

    #[test]
    fn a_saved_cache_frees_its_map_and_still_answers_from_what_it_wrote() {
        let folder = tempfile::tempdir().expect("tempdir");
        let (one, two) = (folder.path().join("one"), folder.path().join("two"));
        fs::write(&one, "one").expect("write");
        fs::write(&two, "two").expect("write");
        let past = SystemTime::now() - std::time::Duration::from_secs(10);
        for path in [&one, &two] {
            (fs::File::options().write(true).open(path))
                .expect("open")
                .set_modified(past)
                .expect("mtime");
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let cache = StatCache::load(folder.path().join("cache"));
        cache.digest(&one).expect("digest");
        cache.save().expect("save");
        assert!(cache.lock().is_empty(), "the map is freed once written");
        assert_eq!(
            cache.digest(&one).expect("digest"),
            Digest::of_bytes(b"one")
        );
        assert_eq!(cache.files_hashed(), 1, "answered from what was written");
        // A file hashed after the save is saved along with everything before it.
        cache.digest(&two).expect("digest");
        cache.save().expect("save");
        let reloaded = StatCache::load(folder.path().join("cache"));
        assert_eq!(
            reloaded.digest(&one).expect("digest"),
            Digest::of_bytes(b"one")
        );
        assert_eq!(
            reloaded.digest(&two).expect("digest"),
            Digest::of_bytes(b"two")
        );
        assert_eq!(reloaded.files_hashed(), 0);
    }
}
