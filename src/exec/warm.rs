//! Warm folders (`warm = ["target"]`): a step's own state kept from one run of it to the next,
//! such as a cargo target folder or a ccache. A warm folder is never a material and never part
//! of the action key, so the step's result must not depend on it; `gantry repro` rebuilds
//! without it, which shows it did not. The link names each warm folder a run used and how many
//! runs had written to it before.
//!
//! Between runs a warm folder lives in `.gantry/warm/<id>/folder`, `id` naming the pipeline
//! file, the step and the path. While the step runs it is renamed into the build folder, and
//! afterwards back, through descriptors that follow no link: the step may have turned any
//! part of it into a link, and its content is never read by gantry (outputs inside it are
//! collected like any other, by descriptor).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::digest::DigestBuilder;
use crate::store::beneath::{Folder, Kind};

/// One warm folder as a run of the step used it: recorded in the step's link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    /// The folder, relative to the build folder.
    pub path: String,
    /// How many runs of the step wrote to it before this one (0: it started empty).
    pub runs_before: u64,
}

/// The warm folders of one execution, in the build folder until dropped.
pub struct Lease {
    slot: PathBuf,
    held: Vec<Held>,
}

struct Held {
    path: String,
    home: PathBuf,
    runs_before: u64,
}

/// Where the warm folders of a step live between runs: `.gantry/warm/<id>`.
fn home(store: &Path, pipeline: &Path, step: &str, path: &str) -> PathBuf {
    let mut id = DigestBuilder::new("gantry-warm/1");
    id.str(&pipeline.to_string_lossy()).str(step).str(path);
    store.join("warm").join(&id.finish().hex()[..32])
}

impl Lease {
    /// Moves each of `paths` into `slot` (a kept folder, or a new empty one) for a run of
    /// `step`. The slot is gantry's and the step has not started: what is there is trusted.
    pub fn take(
        store: &Path,
        pipeline: &Path,
        step: &str,
        paths: &[String],
        slot: &Path,
    ) -> io::Result<Self> {
        let mut lease = Self {
            slot: slot.to_owned(),
            held: Vec::with_capacity(paths.len()),
        };
        for path in paths {
            let home = home(store, pipeline, step, path);
            fs::create_dir_all(&home)?;
            let kept = home.join("folder");
            refuse_links_on_the_way(slot, path)?;
            let place = slot.join(path);
            // Folders gantry made for outputs inside the warm folder make way for it.
            if fs::symlink_metadata(&place).is_ok() {
                crate::exec::scratch::remove(&place)?;
            }
            if let Some(parent) = place.parent() {
                fs::create_dir_all(parent)?;
            }
            let warm = fs::symlink_metadata(&kept).is_ok_and(|metadata| metadata.is_dir());
            let runs_before = if warm {
                fs::rename(&kept, &place)?;
                fs::read_to_string(home.join("runs"))
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .unwrap_or(0)
            } else {
                if fs::symlink_metadata(&kept).is_ok() {
                    let _ = fs::remove_file(&kept);
                }
                fs::create_dir(&place)?;
                0
            };
            lease.held.push(Held {
                path: path.clone(),
                home,
                runs_before,
            });
        }
        Ok(lease)
    }

    /// The warm folders this execution holds.
    #[must_use]
    pub fn uses(&self) -> Vec<Use> {
        (self.held.iter())
            .map(|held| Use {
                path: held.path.clone(),
                runs_before: held.runs_before,
            })
            .collect()
    }

    /// Moves one warm folder back to its home; what is no longer a plain folder at its place,
    /// or is reached only through a link, stays in the slot (which is trimmed) and the next
    /// run starts empty.
    fn give_back(&self, held: &Held) -> io::Result<()> {
        let (parent, name) = match held.path.rfind('/') {
            Some(slash) => (&held.path[..slash], &held.path[slash + 1..]),
            None => ("", held.path.as_str()),
        };
        let folder = Folder::open(&self.slot)?
            .folder(parent)
            .map_err(|refusal| io::Error::other(refusal.to_string()))?;
        let name = std::ffi::OsStr::new(name);
        if folder.kind(name)? != Some(Kind::Folder) {
            return Ok(());
        }
        let kept = held.home.join("folder");
        if fs::symlink_metadata(&kept).is_ok() {
            crate::exec::scratch::remove(&kept)?;
        }
        folder.rename_to(name, &kept)?;
        crate::atomic::write(
            &held.home.join("runs"),
            (held.runs_before + 1).to_string().as_bytes(),
        )
    }
}

/// Every part of `path` that exists in `slot` is a real folder (or, the last, anything but a
/// link): the slot was just trimmed, and this keeps it so if it was not.
fn refuse_links_on_the_way(slot: &Path, path: &str) -> io::Result<()> {
    let mut walked = slot.to_owned();
    for part in path.split('/') {
        walked.push(part);
        match fs::symlink_metadata(&walked) {
            Ok(metadata) if metadata.file_type().is_symlink() => {
                return Err(io::Error::other(format!(
                    "`{}` in the build folder is a link",
                    walked.display()
                )));
            }
            Ok(metadata) if !metadata.is_dir() => {
                return Err(io::Error::other(format!(
                    "`{}` in the build folder is not a folder",
                    walked.display()
                )));
            }
            Ok(_) => {}
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

impl Drop for Lease {
    fn drop(&mut self) {
        for held in &self.held {
            // A warm folder lost is a slower next run, never a wrong one.
            let _ = self.give_back(held);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warm_folder_comes_back_and_counts_its_runs() {
        let base = tempfile::tempdir().expect("tempdir");
        let store = base.path().join("store");
        let slot = base.path().join("slot");
        fs::create_dir_all(slot.join("target/release")).expect("slot");
        let pipeline = Path::new("/p/pipeline.toml");
        let paths = ["target".to_owned()];
        {
            let lease = Lease::take(&store, pipeline, "build", &paths, &slot).expect("take");
            assert_eq!(lease.uses()[0].runs_before, 0);
            fs::write(slot.join("target/state"), "1").expect("write");
        }
        assert!(!slot.join("target").exists());
        {
            let lease = Lease::take(&store, pipeline, "build", &paths, &slot).expect("take");
            assert_eq!(lease.uses()[0].runs_before, 1);
            assert_eq!(
                fs::read_to_string(slot.join("target/state")).expect("kept"),
                "1"
            );
        }
        // Another step's warm folder of the same path is its own.
        let other = Lease::take(&store, pipeline, "test", &paths, &slot).expect("take");
        assert_eq!(other.uses()[0].runs_before, 0);
        assert!(!slot.join("target/state").exists());
    }

    #[test]
    fn a_warm_folder_reached_through_a_link_is_not_taken_back() {
        let base = tempfile::tempdir().expect("tempdir");
        let store = base.path().join("store");
        let slot = base.path().join("slot");
        let outside = base.path().join("outside");
        fs::create_dir_all(outside.join("target")).expect("outside");
        fs::write(outside.join("target/host-file"), "host").expect("write");
        fs::create_dir_all(&slot).expect("slot");
        let paths = ["a/target".to_owned()];
        let pipeline = Path::new("/p/pipeline.toml");
        {
            let _lease = Lease::take(&store, pipeline, "build", &paths, &slot).expect("take");
            // The step swaps the warm folder's parent for a link to a host folder.
            fs::remove_dir_all(slot.join("a")).expect("remove");
            std::os::unix::fs::symlink(&outside, slot.join("a")).expect("link");
        }
        assert_eq!(
            fs::read_to_string(outside.join("target/host-file")).expect("untouched"),
            "host"
        );
        assert!(Lease::take(&store, pipeline, "build", &paths, &slot).is_err());
        // The slot's trim removes links before the next step.
        fs::remove_file(slot.join("a")).expect("trim");
        let lease = Lease::take(&store, pipeline, "build", &paths, &slot).expect("take");
        assert_eq!(lease.uses()[0].runs_before, 0);
    }
}
