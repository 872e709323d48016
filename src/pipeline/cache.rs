//! Validated pipelines, remembered by the digest of everything that decides them (gantry's
//! version, the file's path and text, the default root): a re-run of an unchanged
//! 5,000-step file skips parsing and validating it (about 20 ms; the `toml` crate reads
//! about 20 MB/s). Only valid pipelines are stored; a damaged entry is ignored and replaced.

use std::path::{Path, PathBuf};

use crate::atomic;
use crate::digest::{Digest, DigestBuilder};
use crate::pipeline::Pipeline;

/// Bump with any change to the model's types: bincode reads old bytes into new types silently.
const MAGIC: &[u8] = b"gantry-pipeline-model/16\n";

/// Where validated pipelines are kept, for a given key.
pub struct ModelCache {
    folder: PathBuf,
}

impl ModelCache {
    #[must_use]
    pub fn new(folder: PathBuf) -> Self {
        Self { folder }
    }

    #[must_use]
    pub fn key(
        shown: &Path,
        absolute: &Path,
        default_root: &Path,
        text: &str,
        templates: &[String],
    ) -> Digest {
        let mut key = DigestBuilder::new("gantry-pipeline-model/16");
        key.str(env!("CARGO_PKG_VERSION"))
            .field(shown.as_os_str().as_encoded_bytes())
            .field(absolute.as_os_str().as_encoded_bytes())
            .field(default_root.as_os_str().as_encoded_bytes())
            .str(text);
        // The templates it uses: each pack's digest, registry, origin and signer.
        for template in templates {
            key.str(template);
        }
        key.finish()
    }

    #[must_use]
    pub fn read(&self, key: &Digest) -> Option<Pipeline> {
        let bytes = std::fs::read(self.folder.join(key.hex())).ok()?;
        let mut pipeline: Pipeline = bincode::deserialize(bytes.strip_prefix(MAGIC)?).ok()?;
        // Read by doubling, the steps' vector holds up to twice what it needs for the whole
        // run (50,000 steps: 33.5 MB for 25.6); a large block shrinks in place.
        pipeline.steps.shrink_to_fit();
        Some(pipeline)
    }

    /// Best effort: a cache that cannot be written only costs the next run a parse.
    pub fn write(&self, key: &Digest, pipeline: &Pipeline) {
        let Ok(encoded) = bincode::serialize(pipeline) else {
            return;
        };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&encoded);
        let _ = atomic::write_creating_parents(&self.folder.join(key.hex()), &bytes);
    }
}
