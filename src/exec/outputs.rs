//! Outputs: collected from a step's scratch folder into the CAS, and materialised into the
//! workspace atomically (a folder output is built beside its target, then swapped in).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use walkdir::WalkDir;

use crate::atomic;
use crate::digest::Digest;
use crate::pipeline::Step;
use crate::store::beneath::{Folder, Kind, Refusal};
use crate::store::{BlobError, Cas, OutputRecord, StatCache, Tree, TreeFile};

/// What [`collect`] stored.
pub struct Collected {
    pub records: Vec<OutputRecord>,
    /// Folder listings by output index.
    pub trees: HashMap<usize, Tree>,
    /// The bytes of every output file stored.
    pub bytes: u64,
}

/// Hashes each declared output found in `work`, moves it into the CAS and returns the
/// records (and folder listings by output index). The slot was written by the step and is
/// read as hostile: every path is walked by descriptor, and a symbolic link anywhere on an
/// output's path fails the step without anything being read, changed or moved through it.
pub fn collect(step: &Step, work: &Path, cas: &Cas) -> Result<Collected, String> {
    let slot =
        Folder::open(work).map_err(|error| format!("cannot open the step's folder: {error}"))?;
    let mut records = Vec::with_capacity(step.outputs.len());
    let mut trees = HashMap::new();
    let mut budget = Budget {
        left: step.limits.output,
        limit: step.limits.output,
    };
    for (index, output) in step.outputs.iter().enumerate() {
        let (parent, name) = match output.path.rsplit_once('/') {
            Some((parent, name)) => (parent, name),
            None => ("", output.path.as_str()),
        };
        let refused = |refusal: Refusal| match refusal {
            Refusal::Link { path } => format!(
                "output `{}`: the step made `{path}` a symbolic link; gantry follows no link when it collects outputs, so nothing was read or moved through it",
                output.path
            ),
            Refusal::Missing { .. } => {
                format!("the step did not produce its output `{}`", output.path)
            }
            other => format!("output `{}`: {other}", output.path),
        };
        let folder = slot.folder(parent).map_err(refused)?;
        let kind = folder
            .kind(OsStr::new(name))
            .map_err(|error| format!("cannot read output `{}`: {error}", output.path))?
            .ok_or_else(|| format!("the step did not produce its output `{}`", output.path))?;
        if output.directory {
            match kind {
                Kind::Folder => {}
                Kind::Link => {
                    return Err(refused(Refusal::Link {
                        path: output.path.clone(),
                    }));
                }
                _ => {
                    return Err(format!(
                        "output `{}/` was declared as a folder but the step made a file",
                        output.path
                    ));
                }
            }
            let inside = folder.folder(name).map_err(refused)?;
            let mut files = Vec::new();
            collect_tree(&output.path, &inside, "", cas, &mut budget, &mut files)?;
            files.sort_by(|left, right| left.path.cmp(&right.path));
            let tree = Tree { files };
            let bytes = serde_json::to_vec(&tree).map_err(|error| error.to_string())?;
            let digest = cas
                .put_bytes(&bytes)
                .map_err(|error| format!("cannot store a folder listing: {error}"))?;
            records.push(OutputRecord {
                path: output.path.clone(),
                digest,
                directory: true,
                executable: false,
                link: None,
            });
            trees.insert(index, tree);
        } else {
            let executable = match kind {
                Kind::File { executable } => executable,
                Kind::Folder => {
                    return Err(format!(
                        "output `{}` is a folder; declare it with a trailing `/`",
                        output.path
                    ));
                }
                Kind::Link | Kind::Other => {
                    return Err(format!(
                        "output `{}` is not a regular file (symlinks and devices are not outputs)",
                        output.path
                    ));
                }
            };
            let digest = adopt(&folder, name, &output.path, cas, &mut budget)?;
            records.push(OutputRecord {
                path: output.path.clone(),
                digest,
                directory: false,
                executable,
                link: None,
            });
        }
    }
    Ok(Collected {
        records,
        trees,
        bytes: budget.limit - budget.left,
    })
}

/// What the step's outputs may still add up to (`limits.output`).
struct Budget {
    left: u64,
    limit: u64,
}

/// Hashes the file `name` of `folder` through one descriptor and moves that very file into
/// the CAS.
fn adopt(
    folder: &Folder,
    name: &str,
    shown: &str,
    cas: &Cas,
    budget: &mut Budget,
) -> Result<Digest, String> {
    let read_error = |error: std::io::Error| format!("cannot read output `{shown}`: {error}");
    let file = folder.open_file(OsStr::new(name)).map_err(read_error)?;
    let size = file.metadata().map_err(read_error)?.len();
    budget.left = budget.left.checked_sub(size).ok_or_else(|| {
        format!(
            "the step's outputs add up to more than its limit of {} (`limits.output`); `{shown}` alone is {size} bytes",
            crate::pipeline::limits::show_size(budget.limit)
        )
    })?;
    let digest = Digest::of_reader(&file).map_err(read_error)?;
    cas.adopt_from(&file, folder, OsStr::new(name), &digest)
        .map_err(|error| format!("cannot store output `{shown}`: {error}"))?;
    Ok(digest)
}

/// Every regular file under `folder` (whose path in the output is `prefix`), in name order.
fn collect_tree(
    output: &str,
    folder: &Folder,
    prefix: &str,
    cas: &Cas,
    budget: &mut Budget,
    files: &mut Vec<TreeFile>,
) -> Result<(), String> {
    let read_error =
        |error: std::io::Error| format!("cannot read output folder `{output}`: {error}");
    for name in folder.entries().map_err(read_error)? {
        let Some(name) = name.to_str() else {
            return Err(format!(
                "output folder `{output}` holds a file whose name is not UTF-8"
            ));
        };
        let relative = format!("{prefix}{name}");
        match folder.kind(OsStr::new(name)).map_err(read_error)? {
            Some(Kind::Folder) => {
                let inside = folder
                    .folder(name)
                    .map_err(|refusal| format!("output folder `{output}`: {refusal}"))?;
                collect_tree(output, &inside, &format!("{relative}/"), cas, budget, files)?;
            }
            Some(Kind::File { executable }) => {
                let digest = adopt(folder, name, &format!("{output}/{relative}"), cas, budget)?;
                files.push(TreeFile {
                    path: relative,
                    digest,
                    executable,
                    link: None,
                });
            }
            Some(Kind::Link) => {
                let target = folder.read_link(OsStr::new(name)).map_err(read_error)?;
                let target = target.to_str().ok_or_else(|| {
                    format!("output folder `{output}` holds `{relative}`, a link whose target is not UTF-8")
                })?;
                if !crate::store::action_cache::link_stays_inside(&relative, target) {
                    return Err(format!(
                        "output folder `{output}` holds `{relative}`, a symbolic link to `{target}`, outside the folder; only links that stay inside it are outputs"
                    ));
                }
                files.push(TreeFile {
                    path: relative,
                    digest: crate::digest::Digest::of_bytes(target.as_bytes()),
                    executable: false,
                    link: Some(target.to_owned()),
                });
            }
            Some(Kind::Other) => {
                return Err(format!(
                    "output folder `{output}` holds `{relative}`, which is not a regular file"
                ));
            }
            None => {}
        }
    }
    Ok(())
}

/// Makes the workspace hold exactly `record` at its path, restoring from the CAS what
/// differs. Returns whether anything was written.
pub fn materialize(
    root: &Path,
    record: &OutputRecord,
    tree: Option<&Tree>,
    cas: &Cas,
    stats: &StatCache,
) -> Result<bool, BlobError> {
    let target = root.join(&record.path);
    let refuse_symlinks = || {
        refuse_symlinked_parents(root, &record.path).map_err(|source| BlobError::Io {
            path: target.clone(),
            source,
        })
    };
    if !record.directory {
        // Reading through a symlinked folder writes nothing; only a write must refuse it.
        if stats.digest_and_mode(&target).is_ok_and(|(digest, mode)| {
            digest == record.digest && (mode & 0o111 != 0) == record.executable
        }) {
            return Ok(false);
        }
        refuse_symlinks()?;
        remove_folder_in_the_way(&target);
        cas.restore(&record.digest, &target, record.executable)?;
        stats.record(&target, record.digest);
        return Ok(true);
    }
    let tree = tree.ok_or(BlobError::Missing(record.digest))?;
    if folder_matches(&target, tree, stats) {
        return Ok(false);
    }
    refuse_symlinks()?;
    let io_error = |source| BlobError::Io {
        path: target.clone(),
        source,
    };
    let staging = atomic::temporary_path(&target);
    fs::create_dir_all(&staging).map_err(io_error)?;
    for file in &tree.files {
        let place = staging.join(&file.path);
        let restored = match &file.link {
            Some(target) => place
                .parent()
                .map_or(Ok(()), fs::create_dir_all)
                .and_then(|()| std::os::unix::fs::symlink(target, &place))
                .map_err(|source| BlobError::Io {
                    path: place.clone(),
                    source,
                }),
            None => cas.restore(&file.digest, &place, file.executable),
        };
        if let Err(error) = restored {
            let _ = fs::remove_dir_all(&staging);
            return Err(error);
        }
    }
    // Swap: the old folder moves aside, the new one takes its place, the old one goes.
    let old = atomic::temporary_path(&target);
    let had_old = fs::symlink_metadata(&target).is_ok();
    if had_old {
        fs::rename(&target, &old).map_err(io_error)?;
    }
    fs::rename(&staging, &target).map_err(io_error)?;
    if had_old {
        let _ = fs::remove_dir_all(&old).or_else(|_| fs::remove_file(&old));
    }
    for file in tree.regular_files() {
        stats.record(&target.join(&file.path), file.digest);
    }
    Ok(true)
}

/// Refuses to write through a symlinked folder of the workspace: a repository whose `out` is a
/// link to `/etc` must not get gantry to write there.
fn refuse_symlinked_parents(root: &Path, relative: &str) -> std::io::Result<()> {
    let mut path = root.to_path_buf();
    let mut parts = relative.split('/').peekable();
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            break;
        }
        path.push(part);
        if fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.file_type().is_symlink()) {
            return Err(std::io::Error::other(format!(
                "`{}` is a symlink; gantry writes outputs only into real folders of the workspace",
                path.strip_prefix(root).unwrap_or(&path).display()
            )));
        }
    }
    Ok(())
}

fn executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|metadata| metadata.permissions().mode() & 0o111 != 0)
}

fn remove_folder_in_the_way(target: &Path) {
    if fs::symlink_metadata(target).is_ok_and(|metadata| metadata.is_dir()) {
        let _ = fs::remove_dir_all(target);
    }
}

/// True when the folder holds exactly the tree's files with their digests and modes.
fn folder_matches(folder: &Path, tree: &Tree, stats: &StatCache) -> bool {
    let mut expected: HashMap<&str, &TreeFile> = tree
        .files
        .iter()
        .map(|file| (file.path.as_str(), file))
        .collect();
    if !folder.is_dir() {
        return false;
    }
    for entry in WalkDir::new(folder) {
        let Ok(entry) = entry else { return false };
        if entry.file_type().is_dir() {
            continue;
        }
        let Some(relative) = entry
            .path()
            .strip_prefix(folder)
            .ok()
            .and_then(Path::to_str)
        else {
            return false;
        };
        let Some(file) = expected.remove(relative) else {
            return false;
        };
        if let Some(target) = &file.link {
            if fs::read_link(entry.path()).ok().as_deref() != Some(Path::new(target)) {
                return false;
            }
            continue;
        }
        if !entry.file_type().is_file()
            || !stats
                .digest(entry.path())
                .is_ok_and(|digest| digest == file.digest)
            || executable(entry.path()) != file.executable
        {
            return false;
        }
    }
    expected.is_empty()
}
