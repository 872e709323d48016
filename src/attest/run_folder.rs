//! The names of the files in a run folder (`attestations/RUN_ID/`) and where they are: the
//! run writes them and `verify`, the gauntlet report, `release`, `repro` and `gc` find them
//! through these, never by a name spelled out again. Step names hold no `.`, so each suffix
//! says what a file is.
//!
//! Step attestations are stored once, by content, in `attestations/sha256/XX/HEX.intoto.json`
//! and shared by every run that used them; a run folder holds the run's own documents
//! (provenance, usage, bundles, what a failed step kept) and its `SHA256SUMS`, which names
//! every attestation of the run, its step files included, by name and digest. A folder of the
//! layout before (every file in it) reads the same way: a listed file present in the folder
//! is read there.

use std::path::{Path, PathBuf};

use crate::digest::Digest;

/// What every attestation file's name ends with.
pub const SUFFIX: &str = ".intoto.json";

/// The run's signed SLSA provenance.
pub const PROVENANCE: &str = "provenance.intoto.json";

/// What the run used, signed, about its provenance (docs/usage.md).
pub const USAGE: &str = "usage.intoto.json";

/// The signed reproducibility statement in a `gantry repro` folder.
pub const REPRODUCIBILITY: &str = "reproducibility.intoto.json";

/// Every attestation of the run by name and digest (`sha256sum` format).
pub const SUMS: &str = "SHA256SUMS";

/// The folder, under the attestations folder, that holds step attestations by content.
pub const STORE: &str = "sha256";

/// Where the attestation whose bytes have `digest` is stored under the attestations folder.
#[must_use]
pub fn stored(attestations: &Path, digest: &Digest) -> PathBuf {
    digest.sharded_path(&attestations.join(STORE), SUFFIX)
}

/// The lines of a `SHA256SUMS`: (name, digest) of each well-formed one. A name must be a
/// plain file name (no folder, not `.` or `..`): the file is untrusted, and a name is only
/// ever looked up in its own folder.
#[must_use]
pub fn parse_sums(text: &str) -> Vec<(String, Digest)> {
    text.lines()
        .filter_map(|line| {
            let (hex, name) = line.split_once("  ")?;
            let digest = Digest::from_hex(hex)?;
            let plain = !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains(['/', '\\', '\0']);
            plain.then(|| (name.to_owned(), digest))
        })
        .collect()
}

/// One attestation of a run folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name in the run (`build.intoto.json`).
    pub name: String,
    /// Where its bytes are: in the folder, or in the store beside it.
    pub path: PathBuf,
    /// The digest the folder's `SHA256SUMS` gives it, when it lists it and it is read from the
    /// store (whose file is named by that digest and must hold those bytes).
    pub listed: Option<Digest>,
}

/// Every attestation (`*.intoto.json`) of the run in `folder`, sorted by name: those its
/// `SHA256SUMS` lists (read in the folder when there, else in the store of the attestations
/// folder that holds it) and any other directly in it. Reads the folder.
pub fn list(folder: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries: std::collections::BTreeMap<String, Entry> = std::collections::BTreeMap::new();
    let mut present = std::collections::BTreeSet::new();
    for item in std::fs::read_dir(folder)? {
        let item = item?;
        let name = item.file_name().to_string_lossy().into_owned();
        if name.ends_with(SUFFIX) && item.file_type()?.is_file() {
            present.insert(name);
        }
    }
    let sums = folder.join(SUMS);
    let listed = match crate::bounded::read(&sums, crate::bounded::Kind::Attestation) {
        Ok(bytes) => parse_sums(&String::from_utf8_lossy(&bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error),
    };
    // `.` has no parent to name: the folder as an absolute path has.
    let absolute = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
    let store_root = absolute.parent().unwrap_or(folder);
    for (name, digest) in listed {
        if !name.ends_with(SUFFIX) {
            continue;
        }
        let in_folder = present.contains(&name);
        let path = if in_folder {
            folder.join(&name)
        } else {
            stored(store_root, &digest)
        };
        entries.insert(
            name.clone(),
            Entry {
                name,
                path,
                listed: (!in_folder).then_some(digest),
            },
        );
    }
    for name in present {
        entries.entry(name.clone()).or_insert_with(|| Entry {
            path: folder.join(&name),
            name,
            listed: None,
        });
    }
    Ok(entries.into_values().collect())
}

/// Where the run in `folder` keeps its attestation `name`, if it has one.
pub fn find(folder: &Path, name: &str) -> std::io::Result<Option<PathBuf>> {
    Ok(list(folder)?
        .into_iter()
        .find(|entry| entry.name == name)
        .map(|entry| entry.path))
}

/// A run folder's name, `YYYYMMDDTHHMMSSZ-<8 hex>`: sorts by time, unique without
/// coordination (`random` decides it within a second).
#[must_use]
pub fn run_id(unix_seconds: i64, random: u32) -> String {
    let (year, month, day, hour, minute, second) = crate::time::civil(unix_seconds);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z-{random:08x}")
}

/// Whether `name` is a run folder's name (`YYYYMMDDTHHMMSSZ-<hex>`).
#[must_use]
pub fn looks_like_run_id(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 17
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[16] == b'-'
}

/// What a step left in the run folder, after its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepFile {
    /// Its link (`STEP.intoto.json`).
    Link,
    /// A sbom step's attestation (`STEP.sbom.intoto.json`).
    Sbom,
    /// A gate's verdict (`STEP.gate.intoto.json`).
    Gate,
    /// A rollout's record (`STEP.rollout.intoto.json`).
    Rollout,
    /// A vulnerability scan's statement (`STEP.vulns.intoto.json`).
    Vulns,
}

impl StepFile {
    #[must_use]
    pub const fn suffix(self) -> &'static str {
        match self {
            Self::Link => SUFFIX,
            Self::Sbom => ".sbom.intoto.json",
            Self::Gate => ".gate.intoto.json",
            Self::Rollout => ".rollout.intoto.json",
            Self::Vulns => ".vulns.intoto.json",
        }
    }

    /// The file's name for `step`.
    #[must_use]
    pub fn name(self, step: &str) -> String {
        format!("{step}{}", self.suffix())
    }

    /// What a file in a run folder is, and of which step; `None` for the provenance and for
    /// names no step file has.
    #[must_use]
    pub fn parse(file_name: &str) -> Option<(Self, &str)> {
        if file_name == PROVENANCE || file_name == USAGE {
            return None;
        }
        [
            Self::Sbom,
            Self::Gate,
            Self::Rollout,
            Self::Vulns,
            Self::Link,
        ]
        .into_iter()
        .find_map(|kind| {
            let step = file_name.strip_suffix(kind.suffix())?;
            (!step.is_empty() && !step.contains(['.', '/'])).then_some((kind, step))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_reads_back_as_what_it_is() {
        for kind in [
            StepFile::Link,
            StepFile::Sbom,
            StepFile::Gate,
            StepFile::Rollout,
            StepFile::Vulns,
        ] {
            assert_eq!(
                StepFile::parse(&kind.name("build-1")),
                Some((kind, "build-1"))
            );
        }
        assert_eq!(StepFile::parse(PROVENANCE), None);
        assert_eq!(StepFile::parse("a.b.intoto.json"), None);
        assert_eq!(StepFile::parse(".intoto.json"), None);
        assert_eq!(StepFile::parse("notes.txt"), None);
        let id = run_id(1_764_000_000, 0x0a1b_2c3d);
        assert_eq!(id, "20251124T160000Z-0a1b2c3d");
        assert!(looks_like_run_id(&id));
    }

    #[test]
    fn sums_name_plain_files_only() {
        let digest = Digest::of_bytes(b"a");
        let hex = digest.hex();
        let text = format!(
            "{hex}  build.intoto.json\n{hex}  ../escape.intoto.json\n{hex}  a/b.intoto.json\nzz  bad.intoto.json\n{hex} one-space\n{hex}  ..\n"
        );
        assert_eq!(
            parse_sums(&text),
            vec![("build.intoto.json".to_owned(), digest)]
        );
    }

    #[test]
    fn a_run_lists_what_its_sums_name_and_what_lies_in_it() {
        let attestations = tempfile::tempdir().expect("tempdir");
        let run = attestations.path().join("20261207T000000Z-00000001");
        std::fs::create_dir_all(&run).expect("run folder");
        let stored_bytes = b"stored link";
        let digest = Digest::of_bytes(stored_bytes);
        let path = stored(attestations.path(), &digest);
        std::fs::create_dir_all(path.parent().expect("shard")).expect("shard");
        std::fs::write(&path, stored_bytes).expect("stored");
        std::fs::write(run.join("kept.gate.intoto.json"), b"kept").expect("kept");
        std::fs::write(run.join("old.intoto.json"), b"old").expect("old");
        let kept = Digest::of_bytes(b"kept");
        std::fs::write(
            run.join(SUMS),
            format!(
                "{}  build.intoto.json\n{}  kept.gate.intoto.json\n{}  build.sigstore.json\n",
                digest.hex(),
                kept.hex(),
                digest.hex()
            ),
        )
        .expect("sums");
        let entries = list(&run).expect("listed");
        let names: Vec<&str> = entries.iter().map(|entry| entry.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "build.intoto.json",
                "kept.gate.intoto.json",
                "old.intoto.json"
            ]
        );
        assert_eq!(entries[0].path, path);
        assert_eq!(entries[0].listed, Some(digest));
        assert_eq!(entries[1].path, run.join("kept.gate.intoto.json"));
        assert_eq!(entries[1].listed, None, "read in the folder, as before");
        assert_eq!(entries[2].listed, None);
        assert_eq!(find(&run, "build.intoto.json").expect("found"), Some(path));
    }
}
