//! Appending to `.gantry/log` and writing its head; reading both back. The run lock makes one
//! writer at a time.

use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::digest::Digest;
use crate::keys::Signer;
use crate::runlog::record::{self, GENESIS, Head, Record};

/// `<cache>/log` and `<cache>/log.head`.
#[derive(Clone, Debug)]
pub struct LogFiles {
    pub log: PathBuf,
    pub head: PathBuf,
}

impl LogFiles {
    #[must_use]
    pub fn in_folder(cache_dir: &Path) -> Self {
        Self {
            log: cache_dir.join("log"),
            head: cache_dir.join("log.head"),
        }
    }

    /// The log's bytes and the head's, `None` for a file that does not exist.
    pub fn read(&self) -> io::Result<(Vec<u8>, Option<Vec<u8>>)> {
        let optional =
            |path: &Path| match crate::bounded::read(path, crate::bounded::Kind::Attestation) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(error) => Err(error),
            };
        Ok((
            optional(&self.log)?.unwrap_or_default(),
            optional(&self.head)?,
        ))
    }
}

/// What appending did.
#[derive(Debug)]
pub struct Appended {
    pub seq: u64,
    /// Bytes of a record a crash left half-written, cut off before appending.
    pub cut_partial: usize,
}

/// Appends `record` (its `seq` and `previous` are filled in here), signed, then rewrites the
/// head. The line is one `write` on an `O_APPEND` descriptor; a crash can leave at most a
/// partial last line, which the next append cuts off (the head never named it).
///
/// The log is appended to only where the head says it ends: its last complete record must be
/// the one the head names, or the one after it (a run that stopped between its record and its
/// head). A log that lost records the head names, or a head without a log, is refused and left
/// as it is for `gantry log verify` to report: repairing it would sign over the loss.
pub fn append(files: &LogFiles, mut record: Record, signer: &dyn Signer) -> io::Result<Appended> {
    let head = match fs::read(&files.head) {
        Ok(bytes) => record::read_head_unverified(&bytes),
        Err(error) if error.kind() == io::ErrorKind::NotFound => None,
        Err(error) => return Err(error),
    };
    let mut file = File::options()
        .read(true)
        .append(true)
        .create(true)
        .open(&files.log)?;
    let (last, partial) = last_line(&mut file)?;
    check_ends_where_the_head_says(last.as_deref(), head.as_ref())?;
    let cut_partial = match partial {
        Some((start, keep, cut)) => {
            file.set_len(start + keep)?;
            cut
        }
        None => 0,
    };
    if let Some(line) = last {
        let last_seq = record::read_unverified(&line)
            .first()
            .cloned()
            .flatten()
            .map_or_else(|| count_lines(&files.log), |last| last.seq);
        record.seq = last_seq + 1;
        record.previous = Digest::of_bytes(&line).hex();
    } else {
        record.seq = 1;
        GENESIS.clone_into(&mut record.previous);
    }
    let mut line = record::sign_line(&record, signer);
    line.push(b'\n');
    file.write_all(&line)?;
    let head = Head {
        records: record.seq,
        last: Digest::of_bytes(&line[..line.len() - 1]).hex(),
    };
    atomic::write(&files.head, &record::sign_head(&head, signer))?;
    Ok(Appended {
        seq: record.seq,
        cut_partial,
    })
}

/// Refuses to append unless the log's last complete line is the head's record or the next.
fn check_ends_where_the_head_says(last: Option<&[u8]>, head: Option<&Head>) -> io::Result<()> {
    let refuse = |what: String| {
        Err(io::Error::other(format!(
            "{what}; gantry will not append to it (that would sign over the loss): check it with `gantry log verify`, then move the log and its head aside to start a new one"
        )))
    };
    let Some(line) = last else {
        return match head {
            Some(head) if head.records > 0 => refuse(format!(
                "the run log is missing or empty, but its head names {} records",
                head.records
            )),
            _ => Ok(()),
        };
    };
    let Some(head) = head else {
        return refuse("the run log has records but its head file is missing".to_owned());
    };
    let record = record::read_unverified(line).into_iter().next().flatten();
    let digest = Digest::of_bytes(line).hex();
    let named = record
        .as_ref()
        .is_some_and(|record| record.seq == head.records)
        && digest == head.last;
    let next = record
        .as_ref()
        .is_some_and(|record| record.seq == head.records + 1 && record.previous == head.last);
    if named || next {
        return Ok(());
    }
    refuse(format!(
        "the run log does not end where its head says (record {} with digest {}): records the head names were cut or replaced",
        head.records, head.last
    ))
}

/// The last complete line (without its newline), and where a partial line after it starts
/// (`(start of the tail, bytes to keep, bytes to cut)`), which the caller cuts off once it
/// has decided to append.
#[expect(clippy::type_complexity, reason = "a private helper's plain tuple")]
fn last_line(file: &mut File) -> io::Result<(Option<Vec<u8>>, Option<(u64, u64, usize)>)> {
    const TAIL: u64 = 64 * 1024;
    let length = file.seek(SeekFrom::End(0))?;
    let mut start = length.saturating_sub(TAIL);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail)?;
    // Records are a few hundred bytes; a tail without two line ends means something odd,
    // and the whole file is read instead.
    if start > 0 && tail.split(|&byte| byte == b'\n').nth(2).is_none() {
        start = 0;
        file.seek(SeekFrom::Start(0))?;
        tail.clear();
        file.read_to_end(&mut tail)?;
    }
    let mut partial = None;
    if tail.last().is_some_and(|&byte| byte != b'\n') {
        let keep = tail
            .iter()
            .rposition(|&byte| byte == b'\n')
            .map_or(0, |at| at + 1);
        partial = Some((start, keep as u64, tail.len() - keep));
        tail.truncate(keep);
    }
    if tail.is_empty() {
        return Ok((None, partial));
    }
    let body = &tail[..tail.len() - 1];
    let begin = body
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    Ok((Some(body[begin..].to_vec()), partial))
}

fn count_lines(path: &Path) -> u64 {
    fs::read(path).map_or(0, |bytes| {
        bytes.split(|&byte| byte == b'\n').count().saturating_sub(1) as u64
    })
}
