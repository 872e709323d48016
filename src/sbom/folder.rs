//! A folder as an inventory: every regular file with its SHA-256 (and the SHA-1 SPDX wants).

use std::io::Read;
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
        let (sha256, sha1) = hash(entry.path())
            .map_err(|error| format!("cannot read `{}`: {error}", entry.path().display()))?;
        files.push(File { path, sha256, sha1 });
    }
    files.sort_by(|left, right| left.path.cmp(&right.path));
    Ok(Inventory {
        subject,
        packages: Vec::new(),
        files,
        roots: Vec::new(),
    })
}

fn hash(path: &Path) -> std::io::Result<(crate::digest::Digest, [u8; 20])> {
    let mut file = std::fs::File::open(path)?;
    let mut sha256 = sha2::Sha256::new();
    let mut sha1 = sha1::Sha1::new();
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        sha256.update(&buffer[..read]);
        sha1.update(&buffer[..read]);
    }
    Ok((
        crate::digest::Digest::from_raw(sha256.finalize().into()),
        sha1.finalize().into(),
    ))
}
