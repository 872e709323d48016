//! Action cache: action key → what running that action produced. Entries are small JSON
//! files under `<cache>/ac/`; the outputs themselves live in the CAS.

use std::fs;
use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::store::atomic;

/// The remembered result of one action.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ActionResult {
    /// The key this entry was stored under; checked on read so a swapped entry is caught.
    pub key: Digest,
    pub step: String,
    pub outputs: Vec<OutputRecord>,
    /// DSSE envelope (JSON) of the step's link attestation, in the CAS.
    pub attestation: Digest,
    pub stdout: Digest,
    pub stderr: Digest,
    pub duration_ms: u64,
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
}

/// The listing of a folder output, stored as a blob; its digest names the folder.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Tree {
    pub files: Vec<TreeFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TreeFile {
    /// Path inside the folder, `/`-separated.
    pub path: String,
    pub digest: Digest,
    #[serde(default)]
    pub executable: bool,
}

#[derive(Clone, Debug)]
pub struct ActionCache {
    directory: PathBuf,
}

/// Why a cache entry could not be used.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Hit(Box<ActionResult>),
    Miss,
    /// The entry was unreadable or named another key; it was discarded.
    Corrupt,
}

impl ActionCache {
    pub fn open(directory: PathBuf) -> io::Result<Self> {
        fs::create_dir_all(&directory)?;
        Ok(Self { directory })
    }

    fn path(&self, key: &Digest) -> PathBuf {
        self.directory.join(key.hex())
    }

    #[must_use]
    pub fn get(&self, key: &Digest) -> Lookup {
        let path = self.path(key);
        let Ok(bytes) = fs::read(&path) else {
            return Lookup::Miss;
        };
        match serde_json::from_slice::<ActionResult>(&bytes) {
            Ok(result) if result.key == *key => Lookup::Hit(Box::new(result)),
            _ => {
                let _ = fs::remove_file(&path);
                Lookup::Corrupt
            }
        }
    }

    pub fn put(&self, result: &ActionResult) -> io::Result<()> {
        let bytes = serde_json::to_vec(result).map_err(io::Error::other)?;
        atomic::write(&self.path(&result.key), &bytes)
    }

    /// Drops an entry that turned out to be unusable (a blob it names is gone or corrupt).
    pub fn remove(&self, key: &Digest) {
        let _ = fs::remove_file(self.path(key));
    }
}
