//! The NAR (the Nix archive format) serialisation of a path, hashed as it is produced: the SHA-256 that
//! `nix hash path` prints and `nix path-info` calls `narHash`. gantry attests Nix outputs by
//! that hash; computing it here lets an auditor check an out-link on a machine without Nix.
//!
//! The format (Dolstra's thesis, figure 5.2): every string is its length as a little-endian
//! u64, its bytes, and zeros up to a multiple of 8. A node is `(`, `type`, then `regular`
//! (with `executable` and an empty string when the owner may execute it) and `contents`,
//! `symlink` and `target`, or `directory` and its entries sorted by name bytes, each
//! `entry ( name NAME node NODE )`; then `)`.

use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// SHA-256 of the NAR serialisation of `path` (not following it if it is a symlink).
pub fn hash_path(path: &Path) -> io::Result<Digest> {
    let mut hasher = Sha256::new();
    dump(path, &mut |bytes| hasher.update(bytes))?;
    Ok(Digest::from_raw(hasher.finalize().into()))
}

/// Feeds the NAR serialisation of `path` to `sink`.
pub fn dump(path: &Path, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    string(sink, b"nix-archive-1");
    node(path, sink)
}

fn string(sink: &mut dyn FnMut(&[u8]), bytes: &[u8]) {
    sink(&(bytes.len() as u64).to_le_bytes());
    sink(bytes);
    pad(sink, bytes.len() as u64);
}

fn pad(sink: &mut dyn FnMut(&[u8]), length: u64) {
    let rest = (8 - length % 8) % 8;
    if rest > 0 {
        sink(&[0u8; 8][..usize::try_from(rest).unwrap_or(0)]);
    }
}

fn node(path: &Path, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    let metadata = fs::symlink_metadata(path)?;
    string(sink, b"(");
    string(sink, b"type");
    let kind = metadata.file_type();
    if kind.is_symlink() {
        string(sink, b"symlink");
        string(sink, b"target");
        string(sink, fs::read_link(path)?.as_os_str().as_bytes());
    } else if kind.is_dir() {
        string(sink, b"directory");
        let mut names: Vec<_> = fs::read_dir(path)?
            .map(|entry| entry.map(|entry| entry.file_name()))
            .collect::<io::Result<_>>()?;
        names.sort_by(|left, right| left.as_bytes().cmp(right.as_bytes()));
        for name in names {
            string(sink, b"entry");
            string(sink, b"(");
            string(sink, b"name");
            string(sink, name.as_bytes());
            string(sink, b"node");
            node(&path.join(&name), sink)?;
            string(sink, b")");
        }
    } else if kind.is_file() {
        string(sink, b"regular");
        if metadata.permissions().mode() & 0o100 != 0 {
            string(sink, b"executable");
            string(sink, b"");
        }
        string(sink, b"contents");
        contents(path, metadata.len(), sink)?;
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "`{}` is neither a file, a folder nor a symlink: a NAR cannot hold it",
                path.display()
            ),
        ));
    }
    string(sink, b")");
    Ok(())
}

/// A file's bytes as a NAR string, streamed; a file whose length changes while it is read is
/// an error, not a wrong hash.
fn contents(path: &Path, length: u64, sink: &mut dyn FnMut(&[u8])) -> io::Result<()> {
    sink(&length.to_le_bytes());
    let mut file = fs::File::open(path)?;
    let mut buffer = vec![0u8; 256 * 1024];
    let mut read = 0u64;
    loop {
        let count = file.read(&mut buffer)?;
        if count == 0 {
            break;
        }
        read += count as u64;
        if read > length {
            break;
        }
        sink(&buffer[..count]);
    }
    if read != length {
        return Err(io::Error::other(format!(
            "`{}` changed while it was read ({length} bytes, then {read})",
            path.display()
        )));
    }
    pad(sink, length);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nar_string(out: &mut Vec<u8>, bytes: &[u8]) {
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
        out.resize(out.len().div_ceil(8) * 8, 0);
    }

    #[test]
    fn a_file_a_link_and_a_folder_serialise_as_nix_writes_them() {
        let folder = tempfile::tempdir().unwrap();
        let root = folder.path().join("out");
        fs::create_dir(&root).unwrap();
        fs::write(root.join("run"), b"#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("run"), fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(root.join("a"), b"hi\n").unwrap();
        std::os::unix::fs::symlink("a", root.join("b")).unwrap();
        let mut written = Vec::new();
        dump(&root, &mut |bytes| written.extend_from_slice(bytes)).unwrap();

        let mut expected = Vec::new();
        for token in ["nix-archive-1", "(", "type", "directory"] {
            nar_string(&mut expected, token.as_bytes());
        }
        let entry = |expected: &mut Vec<u8>, name: &str, body: &[&[u8]]| {
            for token in ["entry", "(", "name", name, "node", "(", "type"] {
                nar_string(expected, token.as_bytes());
            }
            for token in body {
                nar_string(expected, token);
            }
            nar_string(expected, b")");
            nar_string(expected, b")");
        };
        entry(&mut expected, "a", &[b"regular", b"contents", b"hi\n"]);
        entry(&mut expected, "b", &[b"symlink", b"target", b"a"]);
        entry(
            &mut expected,
            "run",
            &[b"regular", b"executable", b"", b"contents", b"#!/bin/sh\n"],
        );
        nar_string(&mut expected, b")");
        assert_eq!(written, expected);
        assert_eq!(hash_path(&root).unwrap(), Digest::of_bytes(&expected));
    }

    #[test]
    fn what_a_nar_cannot_hold_is_an_error() {
        let folder = tempfile::tempdir().unwrap();
        let fifo = folder.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        assert!(hash_path(&fifo).is_err());
        assert!(hash_path(&folder.path().join("missing")).is_err());
    }
}
