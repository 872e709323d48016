//! Finding and checking the usage documents a report counts: every `usage.intoto.json` in the
//! run folders given (a run folder, or a folder of run folders such as `attestations/`), each
//! verified with the keys given before anything in it is believed. A document that does not
//! verify, does not parse or is about something else is refused with its reason, never
//! counted.

use std::path::{Path, PathBuf};

use crate::attest::predicate::usage::{RunUsage, URI};
use crate::attest::{Envelope, PAYLOAD_TYPE, Statement, run_folder};
use crate::digest::Digest;
use crate::keys::Verifier;
use crate::usage::price::MeteredRun;
use crate::usage::report::Refused;

/// The usage documents under `places`, in a stable order (each place's, sorted by path).
pub fn find(places: &[PathBuf]) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for place in places {
        if place.is_file() {
            files.push(place.clone());
            continue;
        }
        let own = place.join(run_folder::USAGE);
        if own.is_file() {
            files.push(own);
            continue;
        }
        let mut found = Vec::new();
        for entry in std::fs::read_dir(place)? {
            let entry = entry?;
            let document = entry.path().join(run_folder::USAGE);
            if entry.file_type()?.is_dir() && document.is_file() {
                found.push(document);
            }
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Reads and verifies each file; what verifies is a [`MeteredRun`], the rest [`Refused`].
pub fn check(files: &[PathBuf], keys: &dyn Verifier) -> (Vec<MeteredRun>, Vec<Refused>) {
    let checked = crate::parallel::map(files, |path| one(path, keys));
    let mut runs = Vec::new();
    let mut refused = Vec::new();
    for (path, checked) in files.iter().zip(checked) {
        match checked {
            Ok(run) => runs.push(run),
            Err(reason) => refused.push(Refused {
                file: path.display().to_string(),
                run_id: None,
                reason,
            }),
        }
    }
    (runs, refused)
}

fn one(path: &Path, keys: &dyn Verifier) -> Result<MeteredRun, String> {
    let bytes = crate::bounded::read(path, crate::bounded::Kind::Attestation)
        .map_err(|error| format!("cannot read it: {error}"))?;
    let envelope: Envelope =
        serde_json::from_slice(&bytes).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "its payload type is `{}`, not an in-toto statement",
            envelope.payload_type
        ));
    }
    let body = crate::attest::dsse::verify(&envelope, keys)
        .map_err(|error| format!("its signature does not verify: {error}"))?;
    let statement: Statement<RunUsage> =
        serde_json::from_slice(&body).map_err(|error| format!("not a usage statement: {error}"))?;
    if statement.predicate_type != URI {
        return Err(format!(
            "its predicate is `{}`, not gantry's usage",
            statement.predicate_type
        ));
    }
    let predicate = &statement.predicate;
    let provenance = match (statement.subject.as_slice(), predicate.succeeded()) {
        ([subject], true) if subject.name.as_deref() == Some(run_folder::PROVENANCE) => {
            subject.sha256().ok_or("its subject has no SHA-256")?.hex()
        }
        ([subject], false)
            if subject.name.as_deref() == Some(predicate.pipeline.path.as_str())
                && subject.sha256().map(|digest| digest.hex()).as_deref()
                    == Some(predicate.pipeline.sha256.as_str()) =>
        {
            String::new()
        }
        (_, true) => return Err("its subject is not one run's provenance".to_owned()),
        (_, false) => {
            return Err(format!(
                "a {} run's document whose subject is not its pipeline file",
                predicate.result
            ));
        }
    };
    let started = crate::time::parse_rfc3339(&statement.predicate.started_on)
        .ok_or("its `startedOn` is not an RFC 3339 time")?;
    if crate::time::parse_rfc3339(&statement.predicate.finished_on).is_none() {
        return Err("its `finishedOn` is not an RFC 3339 time".to_owned());
    }
    Ok(MeteredRun {
        file: path.display().to_string(),
        usage: Digest::of_bytes(&bytes).hex(),
        provenance,
        predicate: statement.predicate,
        started,
    })
}
