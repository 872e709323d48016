//! Puts step attestations into the attestation store on a thread of its own.
//!
//! A new attestation becomes a hard link to the blob in the store. On ext4 a link costs about
//! 13 µs under its folder's lock; one thread doing every link overlaps them with the rest of
//! the run (cache checks, planning, the provenance) instead of adding them to it. A cache hit
//! whose attestation is stored already places nothing.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::atomic;

struct Job {
    source: PathBuf,
    target: PathBuf,
}

pub struct Placer {
    sender: Mutex<Option<Sender<Job>>>,
    /// Returns the placements that failed, as messages.
    thread: Mutex<Option<JoinHandle<Vec<String>>>>,
    /// Failures a [`flush`](Self::flush) collected, for `finish` to report.
    failed: Mutex<Vec<String>>,
    /// Placements queued and not yet done.
    backlog: Arc<AtomicUsize>,
}

impl Placer {
    #[must_use]
    pub fn start() -> Self {
        let (sender, receiver) = channel::<Job>();
        let backlog = Arc::new(AtomicUsize::new(0));
        let done = Arc::clone(&backlog);
        let thread = std::thread::Builder::new()
            .name("gantry-placer".to_owned())
            .spawn(move || {
                (receiver.into_iter())
                    .filter_map(|job| {
                        let placed = place(&job);
                        done.fetch_sub(1, Ordering::Relaxed);
                        placed.err()
                    })
                    .collect()
            })
            .ok();
        Self {
            sender: Mutex::new(thread.is_some().then_some(sender)),
            thread: Mutex::new(thread),
            failed: Mutex::new(Vec::new()),
            backlog,
        }
    }

    /// How many placements wait for the thread: when it falls behind (ext4, where each link
    /// is slow), the scheduler plans on one core fewer and leaves that core to it.
    #[must_use]
    pub fn backlog(&self) -> usize {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Places `source` at `target`, now or soon; [`finish`](Self::finish) waits for it.
    pub fn place(&self, source: PathBuf, target: PathBuf) -> Result<(), String> {
        let job = Job { source, target };
        let job = match lock(&self.sender).as_ref() {
            Some(sender) => {
                self.backlog.fetch_add(1, Ordering::Relaxed);
                match sender.send(job) {
                    Ok(()) => return Ok(()),
                    Err(returned) => {
                        self.backlog.fetch_sub(1, Ordering::Relaxed);
                        returned.0
                    }
                }
            }
            None => job,
        };
        place(&job)
    }

    /// Waits until every placement is done; the first failure, if any. Later calls (and
    /// placements after it) work inline.
    pub fn finish(&self) -> Result<(), String> {
        self.flush();
        match lock(&self.failed).drain(..).next() {
            Some(first) => Err(first),
            None => Ok(()),
        }
    }

    /// Waits until every placement queued so far is done, for a step that reads the run
    /// folder (a rollout verifying this run); later placements work inline.
    pub fn flush(&self) {
        drop(lock(&self.sender).take());
        let Some(thread) = lock(&self.thread).take() else {
            return;
        };
        let failures = thread
            .join()
            .unwrap_or_else(|_| vec!["the thread placing attestations stopped".to_owned()]);
        // Nothing waits any more, even if the thread stopped with jobs queued.
        self.backlog.store(0, Ordering::Relaxed);
        lock(&self.failed).extend(failures);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn place(job: &Job) -> Result<(), String> {
    // Never through a link: the target's folder and the one above it (a store shard and the
    // store) must be real folders, or a planted link would have gantry write elsewhere.
    for folder in job.target.ancestors().skip(1).take(2) {
        if fs::symlink_metadata(folder).is_ok_and(|metadata| metadata.file_type().is_symlink()) {
            return Err(format!(
                "cannot write the attestation `{}`: `{}` is a link",
                job.target.display(),
                folder.display()
            ));
        }
    }
    // A hard link appears whole or not at all, so it needs no temporary name. A store shard
    // is made on first use; a file already there with other bytes is replaced.
    let mut linked = fs::hard_link(&job.source, &job.target);
    if let Err(error) = &linked
        && error.kind() == std::io::ErrorKind::NotFound
        && let Some(parent) = job.target.parent()
        && fs::create_dir_all(parent).is_ok()
    {
        linked = fs::hard_link(&job.source, &job.target);
    }
    match linked {
        Ok(()) => return Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            // Already a link to the blob: done (a rename onto another link to the same file
            // does nothing, and would leave the temporary name behind).
            if same_file(&job.source, &job.target) {
                return Ok(());
            }
            let temporary = atomic::temporary_path(&job.target);
            let replaced = fs::hard_link(&job.source, &temporary)
                .and_then(|()| atomic::commit(&temporary, &job.target));
            let _ = fs::remove_file(&temporary);
            if replaced.is_ok() {
                return Ok(());
            }
        }
        Err(_) => {}
    }
    let temporary = atomic::temporary_path(&job.target);
    fs::copy(&job.source, &temporary)
        .and_then(|_| atomic::commit(&temporary, &job.target))
        .map_err(|error| {
            let _ = fs::remove_file(&temporary);
            format!(
                "cannot write the attestation `{}`: {error}",
                job.target.display()
            )
        })
}

fn same_file(one: &std::path::Path, other: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    match (fs::symlink_metadata(one), fs::symlink_metadata(other)) {
        (Ok(one), Ok(other)) => one.dev() == other.dev() && one.ino() == other.ino(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_every_file_and_reports_the_first_failure() {
        let folder = tempfile::tempdir().expect("tempdir");
        let source = folder.path().join("blob");
        fs::write(&source, "attested").expect("write");
        let placer = Placer::start();
        for name in ["a", "b", "c"] {
            placer
                .place(source.clone(), folder.path().join(name))
                .expect("queued");
        }
        placer
            .place(
                folder.path().join("missing"),
                folder.path().join("nowhere/d"),
            )
            .expect("queued");
        let error = placer.finish().expect_err("one failed");
        assert!(error.contains("nowhere/d"), "{error}");
        for name in ["a", "b", "c"] {
            assert_eq!(
                fs::read_to_string(folder.path().join(name)).expect("placed"),
                "attested"
            );
        }
        // A place that already holds the file, or another file, ends up holding it, with
        // nothing left beside it.
        let again = Placer::start();
        again
            .place(source.clone(), folder.path().join("a"))
            .expect("queued");
        fs::write(folder.path().join("other"), "other").expect("other");
        again
            .place(source.clone(), folder.path().join("other"))
            .expect("queued");
        assert_eq!(again.finish(), Ok(()));
        assert_eq!(
            fs::read_to_string(folder.path().join("other")).expect("replaced"),
            "attested"
        );
        let names: Vec<String> = fs::read_dir(folder.path())
            .expect("folder")
            .flatten()
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|name| name.contains(".tmp")), "{names:?}");
        // After `finish`, placements happen inline.
        placer
            .place(source, folder.path().join("e"))
            .expect("inline");
        assert!(folder.path().join("e").exists());
        assert_eq!(placer.finish(), Ok(()));
    }
}
