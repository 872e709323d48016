//! A folder as an inventory: every regular file with its SHA-256 (and the SHA-1 SPDX wants).

use std::path::Path;

use sha1::Digest as _;

use crate::sbom::{File, Inventory, Subject};

/// Every regular file under `folder`, sorted by path. Symlinks are not followed.
pub fn inventory(folder: &Path, subject: Subject) -> Result<Inventory, String> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(folder)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry =
            entry.map_err(|error| format!("cannot list `{}`: {error}", folder.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(folder)
            .map_err(|error| error.to_string())?;
        let path = relative
            .to_str()
            .ok_or_else(|| format!("`{}` is not UTF-8", relative.display()))?
            .to_owned();
        files.push(file(&path, entry.path())?);
    }
    files.sort_by(|left, right| left.path.cmp(&right.path));
    Ok(Inventory {
        subject,
        also: Vec::new(),
        packages: Vec::new(),
        files,
        roots: Vec::new(),
    })
}

/// One file, named `path` in the document, read from `host`.
pub fn file(path: &str, host: &Path) -> Result<File, String> {
    let (sha256, sha1) =
        hash(host).map_err(|error| format!("cannot read `{}`: {error}", host.display()))?;
    Ok(File {
        path: path.to_owned(),
        sha256,
        sha1,
    })
}

/// Both digests from one read: `io::copy` into a writer feeding the two hashers.
fn hash(path: &Path) -> std::io::Result<(crate::digest::Digest, [u8; 20])> {
    struct Both(sha2::Sha256, sha1::Sha1);
    impl std::io::Write for Both {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.update(bytes);
            self.1.update(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut both = Both(sha2::Sha256::new(), sha1::Sha1::new());
    std::io::copy(&mut std::fs::File::open(path)?, &mut both)?;
    Ok((
        crate::digest::Digest::from_raw(both.0.finalize().into()),
        both.1.finalize().into(),
    ))
}
