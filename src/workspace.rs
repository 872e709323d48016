//! The workspace's source files: everything under the root that is not gantry's own folders,
//! git's, the attestation folder, or a declared step output.

use std::collections::HashSet;
use std::path::Path;

use walkdir::WalkDir;

use crate::atomic;
use crate::error::{Error, Result};
use crate::pipeline::path::RESERVED;

/// Sorted, `/`-separated paths of the workspace's source files, relative to the root.
#[derive(Clone, Debug, Default)]
pub struct SourceFiles {
    pub files: Vec<String>,
    /// Symlinks left out because they lead outside the workspace or to a folder.
    pub escaping: Vec<String>,
}

/// Walks `root`. `skip` holds relative paths (files or folders) left out: declared outputs
/// and any gantry-owned folder that lies inside the workspace.
pub fn scan(root: &Path, skip: &[String]) -> Result<SourceFiles> {
    let skip: HashSet<&str> = skip.iter().map(String::as_str).collect();
    let mut files = Vec::new();
    let mut escaping = Vec::new();
    let mut walker = WalkDir::new(root).follow_links(false).into_iter();
    while let Some(entry) = walker.next() {
        let entry = entry.map_err(|error| {
            let path = error.path().unwrap_or(root).to_path_buf();
            Error::Read {
                path,
                source: error.into(),
            }
        })?;
        if entry.depth() == 0 {
            continue;
        }
        let Ok(relative) = entry.path().strip_prefix(root) else {
            continue;
        };
        let Some(relative) = relative.to_str() else {
            // Paths that are not UTF-8 cannot be named by a pipeline; they are not sources.
            if entry.file_type().is_dir() {
                walker.skip_current_dir();
            }
            continue;
        };
        let first = relative.split('/').next().unwrap_or(relative);
        // Skipped folders are never entered, so only the path itself needs checking.
        let skipped = RESERVED.contains(&first) || skip.contains(relative);
        if entry.file_type().is_dir() {
            if skipped {
                walker.skip_current_dir();
            }
            continue;
        }
        if skipped || atomic::is_temporary_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        if entry.file_type().is_symlink() && !symlink_stays_inside(entry.path(), root) {
            // A source may not reach outside the workspace (a repository's `src -> /root`
            // must not hand a step the host's files), nor be a link to a folder.
            escaping.push(relative.to_owned());
            continue;
        }
        files.push(relative.to_owned());
    }
    files.sort_unstable();
    escaping.sort_unstable();
    Ok(SourceFiles { files, escaping })
}

/// True when the symlink at `path` resolves to a regular file inside `root`.
fn symlink_stays_inside(path: &Path, root: &Path) -> bool {
    let (Ok(target), Ok(root)) = (std::fs::canonicalize(path), std::fs::canonicalize(root)) else {
        return false;
    };
    target.starts_with(&root) && target.is_file()
}
