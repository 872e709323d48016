//! Explaining a difference with diffoscope (<https://diffoscope.org>): a text report that
//! looks inside archives, binaries and folders, saved next to the reproducibility
//! attestation.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use crate::nix::Ended;

/// One comparison to explain.
pub struct Pair<'a> {
    pub attested: &'a Path,
    pub rebuilt: &'a Path,
    /// Files are shown as `attested/<label>` and `rebuilt/<label>` in the report; folders
    /// (Nix outputs) by their own paths.
    pub label: &'a str,
}

pub const INSTALL_HINT: &str = "install diffoscope (Debian: `apt-get install diffoscope`)";

/// Where diffoscope is: `explicit` (`$GANTRY_DIFFOSCOPE`), else on `path` (`$PATH`).
#[must_use]
pub fn locate(explicit: Option<&OsStr>, path: Option<&OsStr>) -> Option<PathBuf> {
    if let Some(program) = explicit {
        return Some(PathBuf::from(program));
    }
    std::env::split_paths(path?)
        .map(|folder| folder.join("diffoscope"))
        .find(|candidate| candidate.is_file())
}

/// Runs diffoscope on `pair`, writing its text report to `report` (atomically); `work` is an
/// empty folder it may use. Returns the first lines of the difference.
pub fn explain(
    program: &Path,
    pair: &Pair<'_>,
    work: &Path,
    report: &Path,
    cancel: &AtomicBool,
) -> Result<String, String> {
    let (left, right) = if pair.attested.is_dir() {
        (pair.attested.to_path_buf(), pair.rebuilt.to_path_buf())
    } else {
        let left = Path::new("attested").join(pair.label);
        let right = Path::new("rebuilt").join(pair.label);
        place(pair.attested, &work.join(&left))?;
        place(pair.rebuilt, &work.join(&right))?;
        (left, right)
    };
    if let Some(parent) = report.parent() {
        fs::create_dir_all(parent)
            .map_err(|error| format!("cannot make `{}`: {error}", parent.display()))?;
    }
    let temporary = crate::atomic::temporary_path(report);
    let arguments: Vec<OsString> = vec![
        "--text".into(),
        temporary.clone().into(),
        "--no-progress".into(),
        left.into(),
        right.into(),
    ];
    let captured = crate::host_tool::run(
        program,
        &arguments,
        work,
        Some(Duration::from_secs(600)),
        cancel,
    )
    .map_err(|error| format!("cannot run diffoscope: {error}"))?;
    // 0: no difference diffoscope can see (e.g. only the NAR's metadata); 1: differences.
    if !matches!(captured.ended, Ended::Exited(0 | 1)) {
        let _ = fs::remove_file(&temporary);
        return Err(format!(
            "diffoscope failed ({}): {}",
            captured.ended,
            crate::exec::commit::tail(&captured.stderr, 3, 1024)
        ));
    }
    let written = if temporary.exists() {
        crate::atomic::commit(&temporary, report)
    } else {
        crate::atomic::write(
            report,
            b"diffoscope found no difference in content or metadata\n",
        )
    };
    written.map_err(|error| format!("cannot write `{}`: {error}", report.display()))?;
    let text = fs::read_to_string(report).unwrap_or_default();
    Ok(excerpt(&text, 12))
}

/// A hard link when possible (same filesystem), else a copy.
fn place(source: &Path, target: &Path) -> Result<(), String> {
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).map_err(|error| error.to_string())?;
    }
    if fs::hard_link(source, target).is_ok() {
        return Ok(());
    }
    fs::copy(source, target)
        .map(|_| ())
        .map_err(|error| format!("cannot copy `{}`: {error}", source.display()))
}

/// The first `lines` lines of a report after its `---`/`+++` header, each at most 120
/// characters.
#[must_use]
pub fn excerpt(report: &str, lines: usize) -> String {
    report
        .lines()
        .skip_while(|line| line.starts_with("--- ") || line.starts_with("+++ "))
        .take(lines)
        .map(|line| {
            if line.chars().count() > 120 {
                let cut: String = line.chars().take(117).collect();
                format!("{cut}...")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_excerpt_skips_the_header_and_cuts_long_lines() {
        let report = format!(
            "--- attested/t\n+++ rebuilt/t\n@@ -1 +1 @@\n-1\n+{}\n",
            "2".repeat(200)
        );
        let excerpt = excerpt(&report, 12);
        assert!(excerpt.starts_with("@@ -1 +1 @@\n-1\n+222"));
        assert!(excerpt.ends_with("..."));
        assert!(excerpt.lines().all(|line| line.chars().count() <= 120));
    }
}
