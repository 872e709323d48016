//! Scratch folders ("slots") that steps run in, shown as `/build`. A slot is reused from
//! step to step and trimmed to exactly what the next step needs (placeholders for its inputs,
//! parents of its outputs) instead of being deleted and made anew, and the small files trimmed
//! from it wait in a trash folder until the run ends instead of being deleted at once: ext4
//! without a journal will not reuse an inode deleted in the last 60 s (360 s while its inode
//! table block is unwritten) and, each time it allocates one, walks past every such inode of
//! the group, so every file deleted during a run made every later file of the run slower to
//! create (0.85 of the time of 2,000 trivial steps, docs/PERFORMANCE.md).

use std::collections::HashSet;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A pool of slots under one folder.
pub struct Slots {
    folder: PathBuf,
    free: Mutex<Vec<PathBuf>>,
    made: Mutex<usize>,
    /// `gantry repro`: a new slot per step, its entries made in reverse order, removed after.
    reversed: bool,
    trash: Trash,
}

/// Where small files trimmed from slots wait until the run's scratch folder is removed.
struct Trash {
    folder: PathBuf,
    /// Files moved there so far, which names the next one.
    count: AtomicU64,
    /// What they take, each counted as at least one block.
    bytes: AtomicU64,
    /// Off for a pool that outlives any run (a remote worker's): nothing would empty it.
    on: bool,
}

/// Files larger than this are deleted at once: the scan costs by the inode, not the byte.
const TRASH_FILE_LIMIT: u64 = 64 << 10;
/// What the trash may hold in all (at most 65,536 files of one block each): past it, files
/// are deleted at once, so a step that leaves many stray files does not fill the disk.
const TRASH_LIMIT: u64 = 256 << 20;
const BLOCK: u64 = 4096;

impl Trash {
    fn new(folder: PathBuf, on: bool) -> Self {
        Self {
            folder,
            count: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            on,
        }
    }

    /// Moves the entry `path` (a file, link, socket or fifo taking `size` bytes) out of its
    /// slot, or deletes it when it is large, the trash is full or off, or the move fails (a
    /// full disk must not stop the trim that frees it).
    fn discard(&self, path: &Path, size: u64) -> io::Result<()> {
        let charge = size.max(BLOCK);
        if !self.on
            || size > TRASH_FILE_LIMIT
            || self.bytes.fetch_add(charge, Ordering::Relaxed) + charge > TRASH_LIMIT
        {
            return fs::remove_file(path);
        }
        let number = self.count.fetch_add(1, Ordering::Relaxed);
        let target = self.folder.join(number.to_string());
        let mut moved = fs::rename(path, &target);
        if moved
            .as_ref()
            .is_err_and(|error| error.kind() == io::ErrorKind::NotFound)
            && !self.folder.is_dir()
        {
            moved = fs::create_dir_all(&self.folder).and_then(|()| fs::rename(path, &target));
        }
        match moved {
            Err(error) if error.kind() != io::ErrorKind::NotFound => fs::remove_file(path),
            moved => moved,
        }
    }
}

impl Slots {
    #[must_use]
    pub fn new(folder: PathBuf) -> Self {
        Self {
            free: Mutex::default(),
            made: Mutex::new(0),
            reversed: false,
            trash: Trash::new(folder.join("trash"), true),
            folder,
        }
    }

    /// Slots for a pool that lives longer than a run (a remote worker's): what is trimmed is
    /// deleted at once, since no end of a run would empty a trash.
    #[must_use]
    pub fn without_trash(folder: PathBuf) -> Self {
        let mut slots = Self::new(folder);
        slots.trash.on = false;
        slots
    }

    /// Slots that are never reused and whose entries are made in the reverse of the usual
    /// order, so that a step listing an input folder unsorted sees another order (on tmpfs,
    /// which lists entries by creation; ext4 lists them by a hash of the name).
    #[must_use]
    pub fn fresh_reversed(folder: PathBuf) -> Self {
        Self {
            reversed: true,
            ..Self::new(folder)
        }
    }

    /// A slot prepared for a step: it holds an empty file at each of `files`, the folders in
    /// `folders` (and their parents) and the symbolic links `links` (path, target), and
    /// nothing else.
    pub fn take(
        &self,
        files: &[&str],
        folders: &[&str],
        links: &[(&str, &str)],
    ) -> io::Result<Slot<'_>> {
        let reused = if self.reversed {
            None
        } else {
            lock(&self.free).pop()
        };
        let path = if let Some(path) = reused {
            path
        } else {
            let mut made = lock(&self.made);
            *made += 1;
            self.folder.join(format!("slot-{made}"))
        };
        let slot = Slot { pool: self, path };
        if self.reversed {
            prepare_reversed(&slot.path, files, folders, links)?;
        } else {
            prepare(&slot.path, files, folders, links, &self.trash)?;
        }
        Ok(slot)
    }
}

/// A slot in use; goes back to the pool when dropped.
pub struct Slot<'a> {
    pool: &'a Slots,
    pub path: PathBuf,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if self.pool.reversed {
            make_writable(&self.path);
            let _ = fs::remove_dir_all(&self.path);
        } else {
            lock(&self.pool.free).push(std::mem::take(&mut self.path));
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Makes `root` hold exactly `files` (empty) and `folders`, keeping what already matches.
fn prepare(
    root: &Path,
    files: &[&str],
    folders: &[&str],
    links: &[(&str, &str)],
    trash: &Trash,
) -> io::Result<()> {
    let mut wanted_folders: HashSet<&str> = HashSet::new();
    for folder in folders {
        wanted_folders.insert(folder);
        wanted_folders.extend(parents(folder));
    }
    for file in files.iter().chain(links.iter().map(|(path, _)| path)) {
        wanted_folders.extend(parents(file));
    }
    let wanted_files: HashSet<&str> = files.iter().copied().collect();
    fs::create_dir_all(root)?;
    trim(root, "", &wanted_files, &wanted_folders, trash)?;
    let mut sorted: Vec<&&str> = wanted_folders.iter().collect();
    sorted.sort_unstable();
    for folder in sorted {
        let path = root.join(folder);
        if !path.is_dir() {
            fs::create_dir_all(&path)?;
        }
    }
    for file in files {
        let path = root.join(file);
        let empty = fs::symlink_metadata(&path)
            .is_ok_and(|metadata| metadata.is_file() && metadata.len() == 0);
        if !empty {
            File::create(&path)?;
        }
    }
    // `trim` removed every link, so these are made fresh each time.
    for (path, target) in links {
        std::os::unix::fs::symlink(target, root.join(path))?;
    }
    Ok(())
}

/// Makes a new `root` holding `files`, `folders` and `links`, each kind in the reverse of the
/// order [`prepare`] uses (folders before the files in them, as they must be).
fn prepare_reversed(
    root: &Path,
    files: &[&str],
    folders: &[&str],
    links: &[(&str, &str)],
) -> io::Result<()> {
    fs::create_dir_all(root)?;
    let make_parent = |path: &str| match path.rfind('/') {
        Some(slash) => fs::create_dir_all(root.join(&path[..slash])),
        None => Ok(()),
    };
    for (path, target) in links.iter().rev() {
        make_parent(path)?;
        std::os::unix::fs::symlink(target, root.join(path))?;
    }
    let mut files = files.to_vec();
    files.sort_unstable();
    for file in files.iter().rev() {
        make_parent(file)?;
        File::create(root.join(file))?;
    }
    let mut folders = folders.to_vec();
    folders.sort_unstable();
    for folder in folders.iter().rev() {
        fs::create_dir_all(root.join(folder))?;
    }
    Ok(())
}

/// Removes everything under `folder` that is not wanted; `prefix` is `folder`'s path in the
/// slot (`""` or ending in `/`).
fn trim(
    folder: &Path,
    prefix: &str,
    files: &HashSet<&str>,
    folders: &HashSet<&str>,
    trash: &Trash,
) -> io::Result<()> {
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name();
        let relative = format!("{prefix}{}", name.to_string_lossy());
        let file_type = entry.file_type()?;
        let path = entry.path();
        if file_type.is_dir() {
            if folders.contains(relative.as_str()) {
                trim(&path, &format!("{relative}/"), files, folders, trash)?;
            } else {
                make_writable(&path);
                fs::remove_dir_all(&path)?;
            }
        } else if !(file_type.is_file() && files.contains(relative.as_str())) {
            // What it takes on disk, not only its length: blocks allocated past the end
            // (`fallocate` with KEEP_SIZE) count too.
            let size = if file_type.is_file() {
                let metadata = entry.metadata()?;
                metadata
                    .len()
                    .max(std::os::unix::fs::MetadataExt::blocks(&metadata) * 512)
            } else {
                0
            };
            trash.discard(&path, size)?;
        }
    }
    Ok(())
}

/// Removes `folder` and everything in it, read-only folders a step left included.
pub fn remove(folder: &Path) -> io::Result<()> {
    make_writable(folder);
    fs::remove_dir_all(folder)
}

/// A step may leave read-only folders behind; make them removable.
fn make_writable(folder: &Path) {
    use std::os::unix::fs::PermissionsExt;
    for entry in walkdir::WalkDir::new(folder).into_iter().flatten() {
        if entry.file_type().is_dir() {
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755));
        }
    }
}

/// `a/b/c` → `a/b`, `a`.
fn parents(path: &str) -> Vec<&str> {
    let mut parents = Vec::new();
    let mut rest = path;
    while let Some(slash) = rest.rfind('/') {
        rest = &rest[..slash];
        parents.push(rest);
    }
    parents
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trimmed_small_entries_wait_in_the_trash_and_large_ones_are_deleted() {
        let base = tempfile::tempdir().expect("tempdir");
        let slots = Slots::new(base.path().to_path_buf());
        let first = slots.take(&[], &["out"], &[]).expect("slot");
        let path = first.path.clone();
        fs::write(path.join("out/small"), "x").expect("write");
        fs::write(path.join("out/large"), vec![0u8; 65 << 10]).expect("write");
        std::os::unix::fs::symlink("/nowhere", path.join("out/link")).expect("link");
        drop(first);
        let trash = base.path().join("trash");
        let listed = |folder: &Path| -> Vec<String> {
            let mut names: Vec<String> = fs::read_dir(folder)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|entry| entry.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            names.sort();
            names
        };
        let second = slots.take(&[], &["out"], &[]).expect("slot");
        assert!(listed(&path.join("out")).is_empty(), "the slot is trimmed");
        assert_eq!(listed(&trash).len(), 2, "the small file and the link wait");
        let kept: Vec<Vec<u8>> = listed(&trash)
            .iter()
            .filter_map(|name| fs::read(trash.join(name)).ok())
            .collect();
        assert_eq!(kept, [b"x".to_vec()], "the large file is gone, not moved");
        // A full trash takes nothing more.
        slots.trash.bytes.store(TRASH_LIMIT, Ordering::Relaxed);
        fs::write(second.path.join("out/more"), "y").expect("write");
        drop(second);
        let third = slots.take(&[], &["out"], &[]).expect("slot");
        assert!(listed(&third.path.join("out")).is_empty());
        assert_eq!(listed(&trash).len(), 2);
    }

    /// A file of no length with blocks allocated past its end counts by its blocks; a pool
    /// without a trash deletes what it trims.
    #[test]
    fn preallocated_files_and_pools_without_a_trash_delete_at_once() {
        use std::os::fd::AsRawFd as _;
        let base = tempfile::tempdir().expect("tempdir");
        let slots = Slots::new(base.path().join("pool"));
        let first = slots.take(&[], &["out"], &[]).expect("slot");
        let file = File::create(first.path.join("out/hollow")).expect("create");
        // SAFETY: fallocate on a file we own.
        let allocated =
            unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 1 << 20) };
        drop(file);
        drop(first);
        let _second = slots.take(&[], &["out"], &[]).expect("slot");
        if allocated == 0 {
            assert!(
                !base.path().join("pool/trash").exists(),
                "a megabyte of blocks is not small"
            );
        }
        let plain = Slots::without_trash(base.path().join("plain"));
        let first = plain.take(&[], &["out"], &[]).expect("slot");
        fs::write(first.path.join("out/small"), "x").expect("write");
        drop(first);
        let second = plain.take(&[], &["out"], &[]).expect("slot");
        assert!(!second.path.join("out/small").exists());
        assert!(!base.path().join("plain/trash").exists());
    }

    #[test]
    fn a_reused_slot_holds_exactly_what_the_next_step_needs() {
        let base = tempfile::tempdir().expect("tempdir");
        let slots = Slots::new(base.path().to_path_buf());
        let first = slots
            .take(
                &["src/a.txt", "src/b.txt"],
                &["out"],
                &[("lib/result", "/nowhere")],
            )
            .expect("slot");
        let path = first.path.clone();
        fs::write(path.join("out/result"), "x").expect("write");
        fs::write(path.join("stray"), "x").expect("write");
        fs::create_dir_all(path.join("junk/deep")).expect("mkdir");
        drop(first);
        let second = slots
            .take(&["src/a.txt"], &["out/dir", "gen"], &[])
            .expect("slot");
        assert_eq!(second.path, path, "the slot is reused");
        let mut listing: Vec<String> = walkdir::WalkDir::new(&path)
            .min_depth(1)
            .into_iter()
            .flatten()
            .map(|entry| {
                entry
                    .path()
                    .strip_prefix(&path)
                    .expect("prefix")
                    .display()
                    .to_string()
            })
            .collect();
        listing.sort();
        assert_eq!(listing, ["gen", "out", "out/dir", "src", "src/a.txt"]);
        assert_eq!(fs::metadata(path.join("src/a.txt")).expect("a").len(), 0);
    }

    #[test]
    fn reversed_slots_are_fresh_and_removed_after_use() {
        let base = tempfile::tempdir().expect("tempdir");
        let slots = Slots::fresh_reversed(base.path().to_path_buf());
        let first = slots
            .take(&["src/a.txt", "src/b.txt"], &["out"], &[])
            .expect("slot");
        let path = first.path.clone();
        assert!(path.join("src/a.txt").is_file() && path.join("out").is_dir());
        drop(first);
        assert!(!path.exists(), "a reversed slot is removed");
        let second = slots.take(&["src/a.txt"], &[], &[]).expect("slot");
        assert_ne!(second.path, path, "never reused");
    }
}
