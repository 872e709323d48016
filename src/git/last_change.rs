//! When each tracked file last changed: the commit time of the newest commit on HEAD's
//! first-parent line that changed it. A step's `SOURCE_DATE_EPOCH` is the newest of these
//! over what it reads (`exec::epoch`), so a commit that touches nothing a step reads leaves
//! the step's environment, and so its action key, as it was.
//!
//! The walk diffs each commit with its first parent, newest first, until every file of
//! HEAD's tree has a time. A commit without a parent in the object database (the first
//! commit, or the edge of a shallow clone) dates every file not seen yet. The walk stops
//! after [`MOST_COMMITS`]: files untouched for longer get the oldest commit walked. The
//! answer is kept in the cache folder per HEAD commit, so a no-op run reads one file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The most commits walked for one HEAD.
pub const MOST_COMMITS: usize = 20_000;

/// Each file of HEAD's tree (by its path in the work tree) and when it last changed.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastChanges {
    /// The work tree's root: paths are relative to it.
    #[serde(skip)]
    pub work_tree: PathBuf,
    pub head: String,
    pub head_time: i64,
    pub times: HashMap<String, i64>,
}

impl LastChanges {
    /// When the file at `host` (absolute) last changed, if git tracks it.
    #[must_use]
    pub fn of(&self, host: &Path) -> Option<i64> {
        let relative = host.strip_prefix(&self.work_tree).ok()?.to_str()?;
        self.times.get(relative).copied()
    }
}

/// The last changes for the repository holding `root`, from `cache` (a folder) when it holds
/// them for the current HEAD, else walked and kept there. `None` outside git or without a
/// commit.
#[must_use]
pub fn load(root: &Path, cache: &Path) -> Option<LastChanges> {
    let repository = git2::Repository::discover(root).ok()?;
    let work_tree = repository.workdir()?.to_path_buf();
    let head = repository.head().ok()?.peel_to_commit().ok()?;
    let file = cache.join(format!("{}.json", head.id()));
    let kept = crate::bounded::read(&file, crate::bounded::Kind::Attestation)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<LastChanges>(&bytes).ok())
        .filter(|kept| kept.head == head.id().to_string());
    if let Some(mut kept) = kept {
        kept.work_tree = work_tree;
        return Some(kept);
    }
    let mut changes = walk(&repository, &head).ok()?;
    changes.work_tree = work_tree;
    // Only a shortcut for the next run: failing to keep it costs one more walk.
    if let Ok(bytes) = serde_json::to_vec(&changes) {
        let _ = crate::atomic::write_creating_parents(&file, &bytes);
    }
    Some(changes)
}

fn walk(
    repository: &git2::Repository,
    head: &git2::Commit<'_>,
) -> Result<LastChanges, git2::Error> {
    let mut pending: std::collections::HashSet<String> = std::collections::HashSet::new();
    head.tree()?
        .walk(git2::TreeWalkMode::PreOrder, |folder, entry| {
            if entry.kind() == Some(git2::ObjectType::Blob)
                && let Some(name) = entry.name()
            {
                pending.insert(format!("{folder}{name}"));
            }
            git2::TreeWalkResult::Ok
        })?;
    let mut times = HashMap::with_capacity(pending.len());
    let mut commit = head.clone();
    for _ in 0..MOST_COMMITS {
        if pending.is_empty() {
            break;
        }
        let time = commit.time().seconds();
        let tree = commit.tree()?;
        let Ok(parent) = commit.parent(0) else {
            // The first commit, or the edge of a shallow clone: everything left is this old.
            for path in pending.drain() {
                times.insert(path, time);
            }
            break;
        };
        let diff = repository.diff_tree_to_tree(Some(&parent.tree()?), Some(&tree), None)?;
        for delta in diff.deltas() {
            let Some(path) = delta.new_file().path().and_then(Path::to_str) else {
                continue;
            };
            if pending.remove(path) {
                times.insert(path.to_owned(), time);
            }
        }
        commit = parent;
    }
    // Untouched for longer than the walk: as old as the oldest commit walked.
    let oldest = commit.time().seconds();
    for path in pending {
        times.insert(path, oldest);
    }
    Ok(LastChanges {
        work_tree: PathBuf::new(),
        head: head.id().to_string(),
        head_time: head.time().seconds(),
        times,
    })
}
