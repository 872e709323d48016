//! The run log's records and the checks `gantry log verify` makes. Pure: bytes in, findings
//! out.
//!
//! Each line of `.gantry/log` is a compact DSSE envelope whose payload is one [`Record`]; each
//! record holds its position (`seq`, from 1) and the SHA-256 of the line before it. The head
//! file holds a signed [`Head`]: the number of records and the digest of the last line, so
//! that cutting records off the end is caught too.

use serde::{Deserialize, Serialize};

use crate::attest::{self, Envelope};
use crate::digest::Digest;
use crate::keys::{Signer, Verifier};

pub const RECORD_TYPE: &str = "application/vnd.gantry.run-log-record.v1+json";
pub const HEAD_TYPE: &str = "application/vnd.gantry.run-log-head.v1+json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub seq: u64,
    pub run_id: String,
    /// RFC 3339, UTC.
    pub time: String,
    pub pipeline: String,
    /// SHA-256 of the pipeline file.
    pub pipeline_digest: String,
    /// `success`, `failed` or `interrupted`.
    pub result: String,
    /// Steps executed, cached, failed and skipped.
    pub steps: StepCounts,
    /// SHA-256 of the run folder's `SHA256SUMS` (every attestation in it, by digest).
    pub attestations: String,
    /// SHA-256 of the run's provenance, when it wrote one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<String>,
    /// SHA-256 of the run's usage document, when it wrote one (docs/usage.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    /// A run that executed nothing and names the provenance of the run before it (whose id
    /// this is) instead of writing the same again; `provenance` and `attestations` are that
    /// run's (docs/provenance.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reused: Option<String>,
    /// SHA-256 of the previous line; 64 zeros for the first record.
    pub previous: String,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepCounts {
    pub executed: usize,
    pub cached: usize,
    pub failed: usize,
    pub skipped: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Head {
    pub records: u64,
    /// SHA-256 of the last line.
    pub last: String,
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One signed line, without its newline.
#[must_use]
pub fn sign_line(record: &Record, signer: &dyn Signer) -> Vec<u8> {
    let body = serde_json::to_vec(record).unwrap_or_default();
    serde_json::to_vec(&attest::dsse::sign(RECORD_TYPE, &body, signer)).unwrap_or_default()
}

#[must_use]
pub fn sign_head(head: &Head, signer: &dyn Signer) -> Vec<u8> {
    let body = serde_json::to_vec(head).unwrap_or_default();
    let mut bytes = serde_json::to_vec_pretty(&attest::dsse::sign(HEAD_TYPE, &body, signer))
        .unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// The first thing wrong with a log, naming the first bad record (1-based line number).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogProblem {
    #[error("record {line} is truncated (the log ends in the middle of it)")]
    Truncated { line: u64 },
    #[error("record {line} is not a signed record (edited or damaged)")]
    Damaged { line: u64 },
    #[error("record {line} does not verify with the key (edited, or signed by another key)")]
    Signature { line: u64 },
    #[error("record {line} says it is record {seq}: records before it were removed or reordered")]
    Sequence { line: u64, seq: u64 },
    #[error(
        "record {line} does not follow record {previous}: a record between them was removed, reordered or edited"
    )]
    Chain { line: u64, previous: u64 },
    #[error("the head file does not verify with the key (edited, or signed by another key)")]
    HeadSignature,
    #[error(
        "the log ends after record {records}, but the head says it has {expected}: records were cut off the end"
    )]
    CutOff { records: u64, expected: u64 },
    #[error(
        "record {line} is the last, but it is not the record the head names (the end of the log was replaced)"
    )]
    HeadMismatch { line: u64 },
    #[error("the log has {records} records but no head file (deleted?)")]
    NoHead { records: u64 },
    #[error(
        "run {run_id} wrote a signed provenance, but the log has no record of it (the log was deleted, cut or replaced)"
    )]
    Unlogged { run_id: String },
}

/// The head's fields without checking its signature (for appending, which must not sign over
/// a log that no longer ends where its head says; `verify` checks the signature).
#[must_use]
pub fn read_head_unverified(bytes: &[u8]) -> Option<Head> {
    let envelope: Envelope = serde_json::from_slice(bytes).ok()?;
    if envelope.payload_type != HEAD_TYPE {
        return None;
    }
    let body = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &envelope.payload,
    )
    .ok()?;
    serde_json::from_slice(&body).ok()
}

/// Every run folder that wrote a provenance must have its record in the log, with that
/// provenance's digest: a deleted or replaced log (head and all) then does not pass as empty.
/// `runs` holds (run id, the provenance file's SHA-256).
pub fn check_runs(records: &[Record], runs: &[(String, String)]) -> Result<(), LogProblem> {
    for (run_id, digest) in runs {
        let logged = records.iter().any(|record| {
            &record.run_id == run_id && record.provenance.as_deref() == Some(digest.as_str())
        });
        if !logged {
            return Err(LogProblem::Unlogged {
                run_id: run_id.clone(),
            });
        }
    }
    Ok(())
}

/// Reads every record of `log` (the file's bytes) and checks the chain, the signatures and
/// the head. Returns the records when all is well.
pub fn verify(
    log: &[u8],
    head: Option<&[u8]>,
    verifier: &dyn Verifier,
) -> Result<Vec<Record>, LogProblem> {
    let mut records = Vec::new();
    let mut digests = vec![GENESIS.to_owned()];
    let mut rest = log;
    let mut line_number = 0;
    while !rest.is_empty() {
        line_number += 1;
        let Some(end) = rest.iter().position(|&byte| byte == b'\n') else {
            return Err(LogProblem::Truncated { line: line_number });
        };
        let line = &rest[..end];
        rest = &rest[end + 1..];
        let record = open_record(line, line_number, verifier)?;
        if record.seq != line_number {
            return Err(LogProblem::Sequence {
                line: line_number,
                seq: record.seq,
            });
        }
        if digests.last() != Some(&record.previous) {
            return Err(LogProblem::Chain {
                line: line_number,
                previous: line_number - 1,
            });
        }
        digests.push(Digest::of_bytes(line).hex());
        records.push(record);
    }
    let count = line_number;
    let Some(head) = head else {
        return if count == 0 {
            Ok(records)
        } else {
            Err(LogProblem::NoHead { records: count })
        };
    };
    let head: Head = open(head, HEAD_TYPE, verifier).ok_or(LogProblem::HeadSignature)?;
    if head.records > count {
        return Err(LogProblem::CutOff {
            records: count,
            expected: head.records,
        });
    }
    // One record past the head is a run that stopped between appending its record and
    // writing the head; anything else means the end of the log was rewritten.
    let named = usize::try_from(head.records)
        .ok()
        .and_then(|index| digests.get(index));
    if named != Some(&head.last) || count > head.records + 1 {
        return Err(LogProblem::HeadMismatch { line: count });
    }
    Ok(records)
}

fn open_record(line: &[u8], number: u64, verifier: &dyn Verifier) -> Result<Record, LogProblem> {
    let envelope: Envelope =
        serde_json::from_slice(line).map_err(|_| LogProblem::Damaged { line: number })?;
    if envelope.payload_type != RECORD_TYPE {
        return Err(LogProblem::Damaged { line: number });
    }
    let body = attest::dsse::verify(&envelope, verifier)
        .map_err(|_| LogProblem::Signature { line: number })?;
    serde_json::from_slice(&body).map_err(|_| LogProblem::Damaged { line: number })
}

fn open<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    payload_type: &str,
    verifier: &dyn Verifier,
) -> Option<T> {
    let envelope: Envelope = serde_json::from_slice(bytes).ok()?;
    if envelope.payload_type != payload_type {
        return None;
    }
    let body = attest::dsse::verify(&envelope, verifier).ok()?;
    serde_json::from_slice(&body).ok()
}

/// The records of a log without checking anything (for `gantry log show` on a damaged log):
/// each line's record, or `None` where it does not parse.
#[must_use]
pub fn read_unverified(log: &[u8]) -> Vec<Option<Record>> {
    log.split(|&byte| byte == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            let envelope: Envelope = serde_json::from_slice(line).ok()?;
            let body = base64::Engine::decode(
                &base64::engine::general_purpose::STANDARD,
                &envelope.payload,
            )
            .ok()?;
            serde_json::from_slice(&body).ok()
        })
        .collect()
}
