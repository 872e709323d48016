//! A signed statement written into the run folder: DSSE (a deterministic signature), atomic,
//! and hashed as it is written, so the digest `SHA256SUMS` and the run log need costs no
//! second read. A body of megabytes (a provenance of thousands of artifacts, a usage
//! document of thousands of steps) is never held twice.

use std::path::Path;

use crate::atomic;
use crate::attest::PAYLOAD_TYPE;
use crate::digest::Digest;
use crate::keys::Signer;

/// Writes `body` (an in-toto statement) signed in a DSSE envelope at `path`; returns the
/// file's digest.
pub fn write(path: &Path, body: &[u8], signer: &dyn Signer) -> Result<Digest, String> {
    let written = (|| {
        let (file, temporary) = atomic::create_temporary(path)?;
        let mut writer = Hashing::new(std::io::BufWriter::with_capacity(1 << 16, file));
        let result = crate::attest::dsse::write_signed(&mut writer, PAYLOAD_TYPE, body, signer)
            .and_then(|()| writer.finish())
            .and_then(|digest| atomic::commit(&temporary, path).map(|()| digest));
        if result.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        result
    })();
    written.map_err(|error| format!("cannot write `{}`: {error}", path.display()))
}

/// A writer that hashes what it passes on: the file's digest without keeping or re-reading it.
struct Hashing<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: std::io::Write> Hashing<W> {
    fn new(inner: W) -> Self {
        use sha2::Digest as _;
        Self {
            inner,
            hasher: sha2::Sha256::new(),
        }
    }

    fn finish(mut self) -> std::io::Result<Digest> {
        use sha2::Digest as _;
        self.inner.flush()?;
        Ok(Digest::from_raw(self.hasher.finalize().into()))
    }
}

impl<W: std::io::Write> std::io::Write for Hashing<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        use sha2::Digest as _;
        let written = self.inner.write(bytes)?;
        self.hasher.update(&bytes[..written]);
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
