//! `gantry gc`: keeps the newest runs and what they need, removes the rest. A mark and sweep:
//! the kept run and repro folders (and every run a release names) mark their files (hard links
//! into the store) and the action-cache entries whose links they hold; those entries mark
//! their outputs, folder listings and logs; every other entry and blob goes. The caller holds
//! the store's run lock.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::store::action_cache::{ActionResult, Tree};

pub struct Options {
    /// Run folders to keep (the newest), and as many repro folders.
    pub keep_runs: usize,
    /// Also remove every warm folder.
    pub warm: bool,
    /// Say what would go; remove nothing.
    pub dry_run: bool,
}

/// What was (or, with `dry_run`, would be) removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Freed {
    pub runs: usize,
    pub repros: usize,
    pub entries: usize,
    pub blobs: usize,
    /// Bytes of blobs no kept file links to, and of warm folders.
    pub bytes: u64,
    pub kept_runs: usize,
    /// Stored attestations (`attestations/sha256/`) that nothing kept names.
    pub attestations: usize,
}

/// Run folders under `folder`, oldest first: by the second in their id, then (runs of one
/// second) by when their provenance, or the folder, was last written.
fn runs(folder: &Path) -> Vec<PathBuf> {
    let mut runs: Vec<PathBuf> = fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter(|entry| {
            (entry.file_name().to_str()).is_some_and(crate::attest::run_folder::looks_like_run_id)
        })
        .map(|entry| entry.path())
        .collect();
    let written = |run: &Path| {
        fs::metadata(run.join(crate::attest::run_folder::PROVENANCE))
            .or_else(|_| fs::metadata(run))
            .and_then(|metadata| metadata.modified())
            .ok()
    };
    runs.sort_by_cached_key(|run| {
        let name = run
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        (
            name.unwrap_or_default()
                .split('-')
                .next()
                .map(str::to_owned),
            written(run),
        )
    });
    runs
}

/// The text of every release's files: a run they name is kept whatever its age.
fn release_texts(attestations: &Path) -> String {
    let mut text = String::new();
    for entry in walkdir::WalkDir::new(attestations.join("releases"))
        .max_depth(2)
        .into_iter()
        .flatten()
        .filter(|entry| entry.file_type().is_file())
    {
        // A manifest's payload is base64: its run ids are inside.
        text.push_str(&attestation_text(entry.path()));
    }
    text
}

/// What the files under `folder` keep: their (device, inode), which their store blobs share
/// when they are hard links, and the digests of those that are copies (an attestation folder
/// on another filesystem).
#[derive(Default)]
struct Kept {
    inodes: HashSet<(u64, u64)>,
    copies: HashSet<Digest>,
}

impl Kept {
    fn add(&mut self, folder: &Path) {
        for entry in walkdir::WalkDir::new(folder).into_iter().flatten() {
            if entry.file_type().is_file()
                && let Ok(metadata) = entry.metadata()
            {
                self.inodes.insert((metadata.dev(), metadata.ino()));
                if metadata.nlink() == 1
                    && let Ok(digest) = Digest::of_file(entry.path())
                {
                    self.copies.insert(digest);
                }
            }
        }
    }

    fn holds(&self, metadata: &fs::Metadata) -> bool {
        self.inodes.contains(&(metadata.dev(), metadata.ino()))
    }
}

/// Every SHA-256 written in `text` (64 hex digits not part of a longer run of them).
fn digests_in(text: &str, into: &mut HashSet<Digest>) {
    let bytes = text.as_bytes();
    let mut start = 0;
    while start < bytes.len() {
        if !bytes[start].is_ascii_hexdigit() {
            start += 1;
            continue;
        }
        let end = (start..bytes.len())
            .find(|&index| !bytes[index].is_ascii_hexdigit())
            .unwrap_or(bytes.len());
        if end - start == 64
            && let Some(digest) = Digest::from_hex(&text[start..end])
        {
            into.insert(digest);
        }
        start = end;
    }
}

/// The text of an attestation file and, when it is an envelope, of its payload.
fn attestation_text(path: &Path) -> String {
    let Ok(bytes) = crate::bounded::read(path, crate::bounded::Kind::Attestation) else {
        return String::new();
    };
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if let Ok(envelope) = serde_json::from_slice::<crate::attest::Envelope>(&bytes)
        && let Ok(payload) = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            &envelope.payload,
        )
    {
        text.push_str(&String::from_utf8_lossy(&payload));
    }
    text
}

/// Removes each stored attestation (`attestations/sha256/`) that no kept run folder's
/// `SHA256SUMS`, kept `gantry repro` folder, or release names: an audit of anything kept
/// finds every attestation it names. Returns how many went (would go).
fn sweep_attestation_store(
    attestations: &Path,
    releases: &str,
    dry_run: bool,
) -> io::Result<usize> {
    let store = attestations.join(crate::attest::run_folder::STORE);
    // Never through a link: only a real folder is swept, and only the real folders in it.
    if !fs::symlink_metadata(&store).is_ok_and(|metadata| metadata.is_dir()) {
        return Ok(0);
    }
    let mut named = HashSet::new();
    digests_in(releases, &mut named);
    let kept_folders = (fs::read_dir(attestations).into_iter().flatten().flatten())
        .chain(
            fs::read_dir(attestations.join("repro"))
                .into_iter()
                .flatten()
                .flatten(),
        )
        .filter(|entry| {
            (entry.file_name().to_str()).is_some_and(crate::attest::run_folder::looks_like_run_id)
        });
    for folder in kept_folders {
        for file in fs::read_dir(folder.path()).into_iter().flatten().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name == crate::attest::run_folder::SUMS {
                if let Ok(bytes) =
                    crate::bounded::read(&file.path(), crate::bounded::Kind::Attestation)
                {
                    named.extend(
                        crate::attest::run_folder::parse_sums(&String::from_utf8_lossy(&bytes))
                            .into_iter()
                            .map(|(_, digest)| digest),
                    );
                }
            } else if name == crate::attest::run_folder::REPRODUCIBILITY {
                digests_in(&attestation_text(&file.path()), &mut named);
            }
        }
    }
    let mut removed = 0;
    for shard in fs::read_dir(&store)?.flatten() {
        if !shard.file_type().is_ok_and(|kind| kind.is_dir()) {
            continue;
        }
        for file in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
            // Only files: anything else in a shard is not gantry's to remove.
            if !file
                .file_type()
                .is_ok_and(|kind| kind.is_file() || kind.is_symlink())
            {
                continue;
            }
            let name = file.file_name().to_string_lossy().into_owned();
            let digest = name
                .strip_suffix(crate::attest::run_folder::SUFFIX)
                .and_then(Digest::from_hex);
            if digest.is_some_and(|digest| named.contains(&digest)) {
                continue;
            }
            removed += 1;
            if !dry_run {
                fs::remove_file(file.path())?;
            }
        }
    }
    Ok(removed)
}

fn size(folder: &Path) -> u64 {
    walkdir::WalkDir::new(folder)
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|metadata| metadata.len())
        .sum()
}

fn blob_path(cas: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    cas.join(&hex[..2]).join(hex)
}

pub fn collect(store: &Path, attestations: &Path, options: &Options) -> io::Result<Freed> {
    let mut freed = Freed::default();
    let releases = release_texts(attestations);
    let named = |run: &Path| {
        run.file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| releases.contains(name))
    };
    let mut kept = Kept::default();
    for (folder, count) in [
        (attestations.to_owned(), &mut freed.runs),
        (attestations.join("repro"), &mut freed.repros),
    ] {
        let all = runs(&folder);
        let newest = all.len().saturating_sub(options.keep_runs);
        for (index, run) in all.iter().enumerate() {
            if index >= newest || named(run) {
                kept.add(run);
                freed.kept_runs += usize::from(folder == attestations);
            } else {
                *count += 1;
                if !options.dry_run {
                    crate::exec::scratch::remove(run)?;
                }
            }
        }
    }

    freed.attestations = sweep_attestation_store(attestations, &releases, options.dry_run)?;
    kept.add(&attestations.join(crate::attest::run_folder::STORE));

    let cas = store.join("cas");
    let linked = |digest: &Digest| {
        kept.copies.contains(digest)
            || fs::metadata(blob_path(&cas, digest)).is_ok_and(|metadata| kept.holds(&metadata))
    };
    let mut live: HashSet<Digest> = HashSet::new();
    let ac = store.join("ac");
    for entry in fs::read_dir(&ac).into_iter().flatten().flatten() {
        let path = entry.path();
        let result = fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<ActionResult>(&bytes).ok());
        match result {
            Some(result) if linked(&result.attestation) => {
                live.extend([result.attestation, result.stdout, result.stderr]);
                for output in &result.outputs {
                    live.insert(output.digest);
                    if output.directory
                        && let Ok(bytes) = fs::read(blob_path(&cas, &output.digest))
                        && let Ok(tree) = serde_json::from_slice::<Tree>(&bytes)
                    {
                        live.extend(tree.files.iter().map(|file| file.digest));
                    }
                }
            }
            _ => {
                freed.entries += 1;
                if !options.dry_run {
                    fs::remove_file(&path)?;
                }
            }
        }
    }

    for shard in fs::read_dir(&cas).into_iter().flatten().flatten() {
        for blob in fs::read_dir(shard.path()).into_iter().flatten().flatten() {
            let Ok(metadata) = blob.metadata() else {
                continue;
            };
            let keep = (blob.file_name().to_str())
                .and_then(Digest::from_hex)
                .is_some_and(|digest| live.contains(&digest))
                || kept.holds(&metadata);
            if !keep {
                freed.blobs += 1;
                freed.bytes += metadata.len();
                if !options.dry_run {
                    fs::remove_file(blob.path())?;
                }
            }
        }
    }

    let warm = store.join("warm");
    if options.warm && warm.exists() {
        freed.bytes += size(&warm);
        if !options.dry_run {
            crate::exec::scratch::remove(&warm)?;
        }
    }
    Ok(freed)
}
