//! Everything gantry keeps between runs, under `<root>/.gantry/` (or `GANTRY_CACHE_DIR`):
//! `cas/` blobs by digest, `ac/` action results by key, `stat-cache`, `index/` of last results, and `tmp/` for
//! steps in flight. All writes are atomic; all reads are checked.

pub mod action_cache;
pub mod beneath;
pub mod cas;
pub mod index_file;
pub mod stat_cache;
pub mod usage;

use std::io;
use std::path::{Path, PathBuf};

pub use action_cache::{ActionCache, ActionResult, Lookup, OutputRecord, Tree, TreeFile};
pub use cas::{BlobError, Cas};
pub use stat_cache::StatCache;
pub use usage::Usage;

pub struct Store {
    pub root: PathBuf,
    pub cas: Cas,
    pub actions: ActionCache,
    pub stats: StatCache,
}

impl Store {
    pub fn open(root: &Path) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            cas: Cas::open(root.join("cas"))?,
            actions: ActionCache::open(root.join("ac"))?,
            stats: StatCache::load(root.join("stat-cache")),
        })
    }

    /// Checks that a blob is present and intact without reading it when the stat cache vouches
    /// for it (unchanged size, times and inode since it was last hashed).
    pub fn check(&self, digest: &crate::digest::Digest) -> Result<(), BlobError> {
        let path = self.cas.path(digest);
        match self.stats.digest_of_blob(&path) {
            Ok(actual) if actual == *digest => Ok(()),
            Ok(actual) => {
                self.cas.discard(digest);
                Err(BlobError::Corrupt {
                    expected: *digest,
                    actual,
                })
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                Err(BlobError::Missing(*digest))
            }
            Err(source) => Err(BlobError::Io { path, source }),
        }
    }

    /// Scratch space for steps in flight; cleared at the start of each run.
    #[must_use]
    pub fn scratch(&self) -> PathBuf {
        self.root.join("tmp")
    }
}
