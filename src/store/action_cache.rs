//! Action cache: action key → what running that action produced. Entries are small JSON
//! files under `<cache>/ac/`; the outputs themselves live in the CAS.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::atomic;
use crate::digest::Digest;
use crate::keys::{Signer, Verifier};

/// The remembered result of one action.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActionResult {
    /// The key this entry was stored under; checked on read so a swapped entry is caught.
    pub key: Digest,
    pub step: String,
    pub outputs: Vec<OutputRecord>,
    /// DSSE envelope (JSON) of the step's link attestation, in the CAS.
    pub attestation: Digest,
    /// Key id of the key that signed `attestation`; a run with another key signs the same
    /// statement again instead of running the step.
    #[serde(default)]
    pub signer: String,
    pub stdout: Digest,
    pub stderr: Digest,
    pub duration_ms: u64,
    /// What the execution that made it used, when measured: what a hit saves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<crate::store::Usage>,
}

/// One declared output: a file's digest, or for a folder the digest of its [`Tree`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputRecord {
    pub path: String,
    pub digest: Digest,
    #[serde(default)]
    pub directory: bool,
    #[serde(default)]
    pub executable: bool,
    /// For a Nix step's out-link: the store path it points to (the digest is its NAR's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The listing of a folder output, stored as a blob; its digest names the folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tree {
    pub files: Vec<TreeFile>,
}

impl Tree {
    /// The folder's files, its links aside: what a link lists as subjects (a link's target is
    /// listed itself) and what the stat cache records.
    pub fn regular_files(&self) -> impl Iterator<Item = &TreeFile> {
        self.files.iter().filter(|file| file.link.is_none())
    }

    /// Whether every path is a plain relative path (no `.`, `..`, empty or absolute parts),
    /// sorted and unique: a listing read back from the store is untrusted, and restoring one
    /// that names `../x` would write outside its folder.
    #[must_use]
    pub fn is_plain(&self) -> bool {
        let plain = |path: &str| {
            !path.is_empty()
                && !path.contains('\0')
                && path
                    .split('/')
                    .all(|part| !part.is_empty() && part != "." && part != "..")
        };
        self.files.iter().all(|file| {
            plain(&file.path)
                && file
                    .link
                    .as_deref()
                    .is_none_or(|target| link_stays_inside(&file.path, target))
        }) && self.files.windows(2).all(|pair| {
            pair[0].path < pair[1].path && !pair[1].path.starts_with(&format!("{}/", pair[0].path))
        })
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TreeFile {
    /// Path inside the folder, `/`-separated.
    pub path: String,
    pub digest: Digest,
    #[serde(default)]
    pub executable: bool,
    /// A symbolic link's target (relative, inside the folder); `digest` is then the target's
    /// bytes'. A `make install` tree has them (`libz.so -> libz.so.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// Whether a link at `path` (inside a folder) pointing at `target` stays inside that folder:
/// relative, and never above the folder's root however its `..` fall.
#[must_use]
pub fn link_stays_inside(path: &str, target: &str) -> bool {
    if target.is_empty() || target.starts_with('/') || target.contains('\0') {
        return false;
    }
    let mut depth = path.matches('/').count();
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

/// The action cache. Beside the one-file-per-key entries it keeps an index of the results a
/// pipeline's last run used, read in one go: a no-op run of thousands of steps then reads one
/// file instead of thousands. The index is only a shortcut; every entry in it carries its own
/// key, and anything unreadable falls back to the per-key files.
#[derive(Debug)]
pub struct ActionCache {
    directory: PathBuf,
    /// One lock for everything a lookup touches: a no-op run of 5,000 steps looks up from
    /// two threads at once, and three locks a lookup had them waiting on each other.
    entries: Mutex<Entries>,
    /// Set by [`forget`](Self::forget): the index was saved and must not be overwritten.
    forgotten: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct Entries {
    /// The index's body, and where each of its results is in it: decoded when looked up.
    index: Arc<Vec<u8>>,
    indexed: HashMap<Digest, std::ops::Range<usize>>,
    /// Whether the index's signature verified: its results are vouched for.
    index_signed: bool,
    /// How many results the index held.
    index_size: usize,
    /// Results decoded from the index, and results stored during this run; shared, not
    /// copied, with each step that uses one.
    recent: HashMap<Digest, Arc<ActionResult>>,
    /// Keys this run used: the next index.
    used: HashSet<Digest>,
    /// Whether the next index differs from the one loaded.
    changed: bool,
    /// Keys whose results are vouched for: stored by this run, listed in an index the run's
    /// key signed, or checked against a link a trusted key signed. The store is untrusted
    /// storage; only these may be used.
    vouched: HashSet<Digest>,
}

/// Why a cache entry could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit(Arc<ActionResult>),
    Miss,
    /// The entry was unreadable or named another key; it was discarded.
    Corrupt,
}

impl ActionCache {
    pub fn open(directory: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&directory)?;
        Ok(Self {
            directory,
            entries: Mutex::default(),
            forgotten: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.directory.join(key.hex())
    }

    /// Loads an index written by [`save_index`](Self::save_index); a missing or unreadable
    /// one is ignored. Its results are vouched for when `verifier` checks its signature;
    /// otherwise (another key, or an edited index) they are only candidates, each checked
    /// against its link before use. Returns whether the index verified.
    pub fn load_index(&self, file: &Path, verifier: Option<&dyn Verifier>) -> bool {
        let Ok(mut bytes) = fs::read(file) else {
            return false;
        };
        let Some((body, signature)) = crate::store::index_file::unseal(&bytes) else {
            return false;
        };
        let Some(located) = crate::store::index_file::locate(body) else {
            return false;
        };
        let signed = verifier.is_some_and(|verifier| verifier.verify(body, signature));
        let body_length = body.len();
        bytes.truncate(body_length);
        let mut entries = lock(&self.entries);
        entries.index_size = located.len();
        entries.indexed = located.into_iter().collect();
        entries.index = Arc::new(bytes);
        entries.index_signed = signed;
        signed
    }

    /// Whether the result stored under `key` may be used as it is.
    #[must_use]
    pub fn vouched(&self, key: &Digest) -> bool {
        let entries = lock(&self.entries);
        entries.vouched.contains(key) || (entries.index_signed && entries.indexed.contains_key(key))
    }

    /// Marks `key`'s result as checked against a trusted link.
    pub fn vouch(&self, key: &Digest) {
        lock(&self.entries).vouched.insert(*key);
    }

    /// Frees what this run keeps in memory, once its index is saved: a run of 50,000 steps
    /// holds 16 MB of results here while it writes its provenance. Later lookups go to the
    /// entries on disk, and the index is not saved again (what is left would be a fraction
    /// of it). The loaded index stays, for [`saved_usage`](Self::saved_usage): the usage
    /// document, written after this, reads the usage of the cache hits it vouched for from
    /// it; it goes with the cache.
    pub fn forget(&self) {
        self.forgotten
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let mut entries = lock(&self.entries);
        let recent = std::mem::take(&mut entries.recent);
        entries.used = HashSet::new();
        // Freeing thousands of results costs milliseconds nobody needs to wait for; a large
        // run frees them before its provenance is made, which needs the memory.
        if recent.len() > 10_000 {
            drop(recent);
        } else {
            std::thread::spawn(move || drop(recent));
        }
    }

    /// Writes the results this run used, for the next run of the same pipeline, signed by
    /// the run's key: only results the run vouched for are in it.
    pub fn save_index(&self, file: &Path, signer: &dyn Signer) -> io::Result<()> {
        if self.forgotten.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        let entries = lock(&self.entries);
        // Every result of the index used, and nothing else: the index it would write.
        if !entries.changed && entries.used.len() == entries.index_size {
            return Ok(());
        }
        let vouched = |key: &Digest| {
            entries.vouched.contains(key)
                || (entries.index_signed && entries.indexed.contains_key(key))
        };
        let decoded: Vec<ActionResult> = (entries.used.iter())
            .filter(|key| vouched(key) && !entries.recent.contains_key(key))
            .filter_map(|key| {
                let range = entries.indexed.get(key)?.clone();
                crate::store::index_file::decode_at(&entries.index, range)
            })
            .collect();
        let mut results: Vec<&ActionResult> = (entries.used.iter())
            .filter(|key| vouched(key))
            .filter_map(|key| entries.recent.get(key).map(Arc::as_ref))
            .chain(decoded.iter())
            .collect();
        results.sort_by(|left, right| left.step.cmp(&right.step));
        let body = crate::store::index_file::encode(results);
        let signature = signer.sign(&body);
        let bytes = crate::store::index_file::seal(body, &signature);
        if let Some(parent) = file.parent() {
            fs::create_dir_all(parent)?;
        }
        atomic::write(file, &bytes)
    }

    #[must_use]
    pub fn get(&self, key: &Digest) -> Lookup {
        self.lookup(key, true)
    }

    /// [`get`](Self::get), but a result from the index comes without its usage (`None`):
    /// planning a cached step needs none, and [`saved_usage`](Self::saved_usage) reads it
    /// for the runs that write a usage document.
    #[must_use]
    pub fn get_without_usage(&self, key: &Digest) -> Lookup {
        self.lookup(key, false)
    }

    /// What the execution that made `key`'s result used, when it was measured: from where
    /// [`get`](Self::get) would take the result (this run's results, the loaded index, else
    /// the per-key entry, which the caller has checked against its link as it did the
    /// result).
    #[must_use]
    pub fn saved_usage(&self, key: &Digest) -> Option<crate::store::Usage> {
        let indexed = {
            let entries = lock(&self.entries);
            if let Some(result) = entries.recent.get(key) {
                return result.usage.clone();
            }
            (entries.indexed.get(key)).map(|range| (Arc::clone(&entries.index), range.clone()))
        };
        if let Some((index, range)) = indexed {
            // `locate` checked the whole entry; a usage that does not read is none, not a
            // reason to go to another source.
            return crate::store::index_file::usage_at(&index, range, key).flatten();
        }
        let bytes = fs::read(self.path(key)).ok()?;
        let result = serde_json::from_slice::<ActionResult>(&bytes).ok()?;
        (result.key == *key).then_some(result.usage).flatten()
    }

    fn lookup(&self, key: &Digest, usage: bool) -> Lookup {
        {
            let mut entries = lock(&self.entries);
            if let Some(result) = entries.recent.get(key).cloned() {
                entries.used.insert(*key);
                return Lookup::Hit(result);
            }
        }
        if let Some(result) = self.decode_indexed(key, usage) {
            return Lookup::Hit(result);
        }
        let path = self.path(key);
        let Ok(bytes) = fs::read(&path) else {
            return Lookup::Miss;
        };
        match serde_json::from_slice::<ActionResult>(&bytes) {
            Ok(result) if result.key == *key => {
                let result = Arc::new(result);
                let mut entries = lock(&self.entries);
                entries.used.insert(*key);
                entries.recent.insert(*key, Arc::clone(&result));
                entries.changed = true;
                Lookup::Hit(result)
            }
            _ => {
                let _ = fs::remove_file(&path);
                Lookup::Corrupt
            }
        }
    }

    /// `key`'s result from the loaded index, decoded outside the lock.
    fn decode_indexed(&self, key: &Digest, usage: bool) -> Option<Arc<ActionResult>> {
        let (index, range) = {
            let entries = lock(&self.entries);
            (
                Arc::clone(&entries.index),
                entries.indexed.get(key)?.clone(),
            )
        };
        let decoded = if usage {
            crate::store::index_file::decode_at(&index, range)
        } else {
            crate::store::index_file::decode_without_usage_at(&index, range)
        };
        let Some(result) = decoded.filter(|result| result.key == *key) else {
            // Not the index's to vouch for any more: the per-key entry must vouch for itself.
            lock(&self.entries).indexed.remove(key);
            return None;
        };
        // Not kept decoded: the index's bytes hold it already, and 50,000 results twice were
        // 20 MB at a no-op run's peak.
        lock(&self.entries).used.insert(*key);
        Some(Arc::new(result))
    }

    pub fn put(&self, result: &ActionResult) -> io::Result<()> {
        let bytes = serde_json::to_vec(result).map_err(io::Error::other)?;
        atomic::write(&self.path(&result.key), &bytes)?;
        let mut entries = lock(&self.entries);
        entries.vouched.insert(result.key);
        entries.used.insert(result.key);
        entries.recent.insert(result.key, Arc::new(result.clone()));
        entries.changed = true;
        Ok(())
    }

    /// Drops an entry that turned out to be unusable (a blob it names is gone or corrupt).
    pub fn remove(&self, key: &Digest) {
        {
            let mut entries = lock(&self.entries);
            entries.vouched.remove(key);
            entries.indexed.remove(key);
            entries.recent.remove(key);
            entries.used.remove(key);
            entries.changed = true;
        }
        let _ = fs::remove_file(self.path(key));
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod link_tests {
    use super::link_stays_inside;

    #[test]
    fn a_link_stays_inside_its_folder_or_is_refused() {
        assert!(link_stays_inside("lib/libz.so", "libz.so.1"));
        assert!(link_stays_inside("lib/libz.so", "../include/zlib.h"));
        assert!(!link_stays_inside("libz.so", "../etc/passwd"));
        assert!(!link_stays_inside("lib/a", "../../x"));
        assert!(!link_stays_inside("a", "/etc/passwd"));
        assert!(!link_stays_inside("a", ""));
    }
}
