//! A template's pack: its folder as a POSIX ustar archive that the same files always make
//! byte for byte (entries sorted by path; owner 0, mtime 0, mode 0644 or 0755, no names,
//! regular files only), so its SHA-256 names the template and any `tar` lists it. Reading a
//! pack refuses anything else: links, devices, absolute paths or `..`, a size beyond the
//! limits, a header whose checksum is wrong. Pure.

use std::collections::BTreeMap;

/// The most a pack may hold: templates are a manifest and a few scripts.
pub const MOST_BYTES: u64 = 16 << 20;
pub const MOST_FILES: usize = 1000;
const BLOCK: usize = 512;

/// A template's files by path (`/`-separated, relative): their bytes and whether they run.
pub type Files = BTreeMap<String, File>;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub bytes: Vec<u8>,
    pub executable: bool,
}

/// Why a pack could not be made or read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PackError(pub String);

fn error(message: impl Into<String>) -> PackError {
    PackError(message.into())
}

/// The pack of `files`.
pub fn pack(files: &Files) -> Result<Vec<u8>, PackError> {
    if files.len() > MOST_FILES {
        return Err(error(format!(
            "{} files: a template holds at most {MOST_FILES}",
            files.len()
        )));
    }
    let mut out = Vec::new();
    let mut total = 0u64;
    for (path, file) in files {
        check_path(path)?;
        total += file.bytes.len() as u64;
        if total > MOST_BYTES {
            return Err(error(format!(
                "the template is over {} MiB",
                MOST_BYTES >> 20
            )));
        }
        out.extend_from_slice(&header(path, file)?);
        out.extend_from_slice(&file.bytes);
        out.resize(out.len().next_multiple_of(BLOCK), 0);
    }
    out.resize(out.len() + 2 * BLOCK, 0);
    Ok(out)
}

fn header(path: &str, file: &File) -> Result<[u8; BLOCK], PackError> {
    let mut block = [0u8; BLOCK];
    let (prefix, name) = split_name(path)?;
    block[..name.len()].copy_from_slice(name.as_bytes());
    let mode = if file.executable {
        "0000755"
    } else {
        "0000644"
    };
    block[100..107].copy_from_slice(mode.as_bytes());
    block[108..115].copy_from_slice(b"0000000");
    block[116..123].copy_from_slice(b"0000000");
    block[124..135].copy_from_slice(format!("{:011o}", file.bytes.len()).as_bytes());
    block[136..147].copy_from_slice(b"00000000000");
    block[156] = b'0';
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[345..345 + prefix.len()].copy_from_slice(prefix.as_bytes());
    block[148..156].copy_from_slice(b"        ");
    let sum: u32 = block.iter().map(|byte| u32::from(*byte)).sum();
    block[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    Ok(block)
}

/// ustar's name (100 bytes) and prefix (155) for a path, split at a `/`.
fn split_name(path: &str) -> Result<(&str, &str), PackError> {
    if path.len() <= 100 {
        return Ok(("", path));
    }
    path.char_indices()
        .filter(|(_, c)| *c == '/')
        .map(|(at, _)| (&path[..at], &path[at + 1..]))
        .find(|(prefix, name)| prefix.len() <= 155 && name.len() <= 100 && !name.is_empty())
        .ok_or_else(|| error(format!("`{path}` is too long a path for a pack")))
}

/// A relative path of normal parts.
fn check_path(path: &str) -> Result<(), PackError> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path.contains('\\')
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(error(format!("`{path}` is not a plain relative path")));
    }
    Ok(())
}

/// The files of a pack, which must be exactly what [`pack`] makes of them.
pub fn unpack(bytes: &[u8]) -> Result<Files, PackError> {
    let mut files = Files::new();
    let mut at = 0usize;
    loop {
        let block = bytes
            .get(at..at + BLOCK)
            .ok_or_else(|| error("the pack ends inside a header"))?;
        if block.iter().all(|byte| *byte == 0) {
            break;
        }
        let (path, file) = read_entry(block, bytes, at)?;
        at += BLOCK + file.bytes.len().next_multiple_of(BLOCK);
        if files.len() == MOST_FILES {
            return Err(error(format!("more than {MOST_FILES} files")));
        }
        files.insert(path, file);
    }
    // Canonical: repacking gives the same bytes (so no two packs hold the same files).
    if pack(&files)? != bytes {
        return Err(error(
            "the pack is not in gantry's canonical form (sorted, fixed owner, time and modes)",
        ));
    }
    Ok(files)
}

fn read_entry(block: &[u8], bytes: &[u8], at: usize) -> Result<(String, File), PackError> {
    let field = |range: std::ops::Range<usize>| {
        let raw = &block[range];
        let end = raw.iter().position(|byte| *byte == 0).unwrap_or(raw.len());
        std::str::from_utf8(&raw[..end]).map_err(|_| error("a header field is not UTF-8"))
    };
    let octal = |range: std::ops::Range<usize>| -> Result<u64, PackError> {
        let text = field(range)?.trim_matches(|c| c == ' ' || c == '\0');
        u64::from_str_radix(text, 8).map_err(|_| error("a header number is not octal"))
    };
    let stored = octal(148..156)?;
    let mut sum: u64 = block.iter().map(|byte| u64::from(*byte)).sum();
    sum -= block[148..156]
        .iter()
        .map(|byte| u64::from(*byte))
        .sum::<u64>();
    sum += 8 * u64::from(b' ');
    if sum != stored {
        return Err(error("a header's checksum is wrong"));
    }
    if block[156] != b'0' {
        return Err(error(
            "the pack holds something other than a regular file (a link, a folder, a device)",
        ));
    }
    let (prefix, name) = (field(345..500)?, field(0..100)?);
    let path = if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}/{name}")
    };
    check_path(&path)?;
    let size = octal(124..136)?;
    if size > MOST_BYTES {
        return Err(error(format!("`{path}` is over {} MiB", MOST_BYTES >> 20)));
    }
    let start = at + BLOCK;
    let content = usize::try_from(size)
        .ok()
        .and_then(|size| bytes.get(start..start + size))
        .ok_or_else(|| error(format!("the pack ends inside `{path}`")))?;
    let executable = octal(100..108)? & 0o111 != 0;
    Ok((
        path,
        File {
            bytes: content.to_vec(),
            executable,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        let mut files = Files::new();
        files.insert(
            "template.toml".to_owned(),
            File {
                bytes: b"[template]\n".to_vec(),
                executable: false,
            },
        );
        files.insert(
            format!("scripts/{}/run.sh", "deep".repeat(30)),
            File {
                bytes: b"#!/bin/sh\necho hi\n".to_vec(),
                executable: true,
            },
        );
        files
    }

    #[test]
    fn a_pack_is_the_same_bytes_every_time_and_reads_back() {
        let packed = pack(&files()).expect("pack");
        assert_eq!(packed, pack(&files()).expect("again"));
        assert_eq!(packed.len() % BLOCK, 0);
        assert_eq!(unpack(&packed).expect("unpack"), files());
    }

    #[test]
    fn a_hostile_pack_is_refused() {
        let packed = pack(&files()).expect("pack");
        let mut flipped = packed.clone();
        flipped[BLOCK * 2 + 5] ^= 1;
        assert!(
            unpack(&flipped).is_err_and(|error| error.0.contains("checksum")),
            "a header edited without its checksum"
        );
        let mut link = packed.clone();
        // The second header (template.toml sorts after scripts/) made a symbolic link's, its
        // checksum made right.
        let second = BLOCK * 2;
        link[second + 156] = b'2';
        link[second + 148..second + 156].copy_from_slice(b"        ");
        let sum: u32 = link[second..second + BLOCK]
            .iter()
            .map(|byte| u32::from(*byte))
            .sum();
        link[second + 148..second + 155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        assert!(
            unpack(&link).is_err_and(|error| error.0.contains("other than a regular file")),
            "a link"
        );
        let mut padded = packed.clone();
        padded.extend_from_slice(&[0; BLOCK]);
        assert!(unpack(&padded).is_err(), "not canonical");
        assert!(unpack(&packed[..BLOCK + 10]).is_err(), "cut short");
        for bad in ["../x", "/etc/passwd", "a//b", "./a"] {
            let mut hostile = Files::new();
            hostile.insert(
                bad.to_owned(),
                File {
                    bytes: vec![],
                    executable: false,
                },
            );
            assert!(pack(&hostile).is_err(), "{bad}");
        }
    }
}
