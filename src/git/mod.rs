//! The workspace's git state through libgit2, shared by provenance (is the tree dirty?) and
//! releases (which paths, before anything runs).

pub mod last_change;

use std::path::{Path, PathBuf};

/// Paths of the work tree that differ from HEAD, untracked files included, ignored files and
/// what gantry writes itself (`generated`: its cache, attestations, declared outputs) not.
pub fn changed_paths(
    repository: &git2::Repository,
    root: &Path,
    generated: &[PathBuf],
) -> Result<Vec<String>, git2::Error> {
    let mut options = git2::StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false);
    let work_tree = repository.workdir().unwrap_or(root);
    let generated: Vec<PathBuf> = generated
        .iter()
        .filter_map(|path| path.strip_prefix(work_tree).ok().map(Path::to_path_buf))
        .collect();
    let statuses = repository.statuses(Some(&mut options))?;
    Ok(statuses
        .iter()
        .filter_map(|entry| {
            let Some(path) = entry.path() else {
                return Some("(a path that is not UTF-8)".to_owned());
            };
            let trimmed = Path::new(path.trim_end_matches('/'));
            (!generated.iter().any(|prefix| trimmed.starts_with(prefix))).then(|| path.to_owned())
        })
        .collect())
}

/// What gantry writes into a workspace: its cache, the attestations folder and every declared
/// output. None of it makes a work tree dirty.
#[must_use]
pub fn generated(
    pipeline: &crate::pipeline::Pipeline,
    cache: &Path,
    attestations: &Path,
) -> Vec<PathBuf> {
    let mut generated = vec![cache.to_path_buf(), attestations.to_path_buf()];
    generated.extend((pipeline.steps.iter()).flat_map(|step| {
        step.outputs
            .iter()
            .map(|output| pipeline.root.join(&output.path))
    }));
    generated
}

/// The commit time of HEAD of the git repository `root` is in.
#[must_use]
pub fn commit_time(root: &std::path::Path) -> Option<i64> {
    let repository = git2::Repository::discover(root).ok()?;
    let commit = repository.head().ok()?.peel_to_commit().ok()?;
    Some(commit.time().seconds())
}
