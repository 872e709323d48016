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

/// A report written: its first lines, and whether it was cut at the size limit.
pub struct Written {
    pub excerpt: String,
    pub cut: bool,
}

/// Runs diffoscope on `pair`, writing its text report to `report` (atomically); `work` is an
/// empty folder it may use. A report longer than `limit` bytes is cut there (at a line's end)
/// and says so in its last line: a binary that differs everywhere makes a report of hundreds
/// of megabytes, and its first screen says where the difference starts.
pub fn explain(
    program: &Path,
    pair: &Pair<'_>,
    work: &Path,
    report: &Path,
    limit: Option<u64>,
    cancel: &AtomicBool,
) -> Result<Written, String> {
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
    let mut arguments: Vec<OsString> = vec![
        "--text".into(),
        temporary.clone().into(),
        "--no-progress".into(),
    ];
    if let Some(limit) = limit {
        // diffoscope's own limits stop between blocks and bound what it keeps of each block;
        // the cut below makes the limit exact.
        arguments.extend([
            "--max-text-report-size".into(),
            limit.max(1).to_string().into(),
            "--max-diff-block-lines-saved".into(),
            (limit / 16).max(64).to_string().into(),
        ]);
    } else {
        // All of it: diffoscope otherwise keeps 1,024 lines of each block.
        arguments.extend(["--max-diff-block-lines".into(), "0".into()]);
    }
    arguments.extend([left.into_os_string(), right.into_os_string()]);
    let too_long = || {
        limit.is_some_and(|limit| {
            fs::metadata(&temporary)
                .is_ok_and(|metadata| metadata.len() > limit.saturating_add(CUT_SLACK))
        })
    };
    let captured = crate::host_tool::run_until(
        program,
        &arguments,
        work,
        Some(Duration::from_secs(600)),
        cancel,
        &too_long,
    )
    .map_err(|error| format!("cannot run diffoscope: {error}"))?;
    // 0: no difference diffoscope can see (e.g. only the NAR's metadata); 1: differences;
    // stopped: its report had grown past the limit.
    if !matches!(captured.ended, Ended::Exited(0 | 1) | Ended::Stopped) {
        let _ = fs::remove_file(&temporary);
        return Err(format!(
            "diffoscope failed ({}): {}",
            captured.ended,
            crate::exec::commit::tail(&captured.stderr, 3, 1024)
        ));
    }
    let cut = match limit {
        Some(limit) if temporary.exists() => {
            cut_at(&temporary, limit).map_err(|error| format!("cannot cut the report: {error}"))?
        }
        _ => false,
    };
    let written = if temporary.exists() {
        crate::atomic::commit(&temporary, report)
    } else {
        crate::atomic::write(
            report,
            b"diffoscope found no difference in content or metadata\n",
        )
    };
    written.map_err(|error| format!("cannot write `{}`: {error}", report.display()))?;
    Ok(Written {
        excerpt: excerpt(&head(report), 12),
        cut,
    })
}

/// Bytes a report may pass its limit by before diffoscope is stopped: it is cut exactly
/// afterwards, and a little room lets it finish the line or block it is writing.
const CUT_SLACK: u64 = 64 << 10;

/// Cuts `file` to at most `limit` bytes, at the end of a line, and says so in a last line.
/// Whether it was cut.
fn cut_at(file: &Path, limit: u64) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mut opened = fs::OpenOptions::new().read(true).write(true).open(file)?;
    let length = opened.metadata()?.len();
    if length <= limit {
        return Ok(false);
    }
    // The last line end at or before the limit, looked for in the 64 KiB before it.
    let window = limit.min(64 << 10);
    opened.seek(SeekFrom::Start(limit - window))?;
    let mut tail = vec![0; usize::try_from(window).unwrap_or(0)];
    opened.read_exact(&mut tail)?;
    // No line end there (a line of more than 64 KiB): at the limit itself, backed off to the
    // start of a UTF-8 character.
    let keep = tail.iter().rposition(|byte| *byte == b'\n').map_or_else(
        || {
            // The window may start inside a character: from the next one.
            let skip = (tail.iter().take(3))
                .take_while(|byte| (**byte & 0xC0) == 0x80)
                .count();
            let end = match std::str::from_utf8(&tail[skip..]) {
                Err(error) if error.error_len().is_none() => skip + error.valid_up_to(),
                _ => tail.len(),
            };
            limit - window + end as u64
        },
        |at| limit - window + at as u64 + 1,
    );
    let at_line_end = keep == 0 || {
        let mut last = [0];
        opened.seek(SeekFrom::Start(keep - 1))?;
        opened.read_exact(&mut last)?;
        last[0] == b'\n'
    };
    opened.set_len(keep)?;
    opened.seek(SeekFrom::End(0))?;
    writeln!(
        opened,
        "{}[gantry: the report is cut here, at {keep} bytes of {length} or more (the limit: {}); \
         `--diffoscope-limit none` writes all of it]",
        if at_line_end { "" } else { "\n" },
        crate::pipeline::limits::show_size(limit),
    )?;
    opened.sync_all()?;
    Ok(true)
}

/// The first 64 KiB of a report, enough for its excerpt.
fn head(report: &Path) -> String {
    use std::io::Read;
    let mut bytes = Vec::new();
    if let Ok(file) = fs::File::open(report) {
        let _ = file.take(64 << 10).read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
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
    fn a_report_is_cut_at_a_line_end_within_its_limit_and_says_so() {
        let folder = tempfile::tempdir().expect("temp");
        let file = folder.path().join("report.txt");
        let text = (0..1000).fold(String::new(), |mut text, line| {
            use std::fmt::Write as _;
            let _ = writeln!(text, "line {line}");
            text
        });
        fs::write(&file, &text).expect("write");
        assert!(cut_at(&file, 100).expect("cut"));
        let cut = fs::read_to_string(&file).expect("read");
        let (kept, last) = cut.trim_end().rsplit_once('\n').expect("lines");
        assert!(text.starts_with(&format!("{kept}\n")), "{kept}");
        assert!(kept.len() < 100 && kept.len() > 80, "{}", kept.len());
        assert!(
            last.contains("cut here, at 94 bytes of 8890 or more"),
            "{last}"
        );

        // One long line: cut at the limit, not before a character's last byte.
        fs::write(&file, "é".repeat(100)).expect("write");
        assert!(cut_at(&file, 51).expect("cut"));
        let cut = fs::read_to_string(&file).expect("UTF-8 still");
        assert!(
            cut.starts_with(&format!("{}\n[gantry:", "é".repeat(25))),
            "{cut}"
        );

        fs::write(&file, "short\n").expect("write");
        assert!(!cut_at(&file, 100).expect("not cut"));
        assert_eq!(fs::read_to_string(&file).expect("read"), "short\n");
    }

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
