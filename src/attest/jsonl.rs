//! The in-toto attestation bundle (`*.intoto.jsonl`: one DSSE envelope per line) as gantry
//! hands a run to an auditor (`gantry export bundle`) and reads one back (`gantry verify
//! --attestations FILE`). A line holds no name, and a run's files are named by digest in
//! its provenance and links; so each line is read back as the file it came from: gantry
//! writes every envelope in serde's pretty form (with or without a final newline), which the
//! line's envelope, printed that way again, reproduces byte for byte; the form whose digest
//! another line names is the file's. Names follow the run folder's rules (a link by its
//! step, a step's document by the link that lists it as made, the provenance and usage by
//! their predicate types). Pure: bytes in, named bytes out.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;

use crate::attest::Envelope;
use crate::attest::run_folder::{self, StepFile};
use crate::digest::Digest;

/// One line of a bundle for `bytes`, an envelope file: the envelope on one line.
pub fn line(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    let mut line = serde_json::to_vec(&envelope).map_err(|error| error.to_string())?;
    line.push(b'\n');
    Ok(line)
}

/// A file read back from a bundle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// What a statement says that names other files or itself.
#[derive(Default)]
struct Said {
    predicate_type: String,
    /// A link's step.
    step: Option<String>,
    /// (name, sha256) of each subject, and of each provenance byproduct.
    named: Vec<(Option<String>, String)>,
    subjects: Vec<String>,
}

fn said(envelope: &Envelope) -> Said {
    let Ok(payload) = base64::engine::general_purpose::STANDARD.decode(&envelope.payload) else {
        return Said::default();
    };
    let Ok(statement) = serde_json::from_slice::<serde_json::Value>(&payload) else {
        return Said::default();
    };
    let descriptors = |value: Option<&serde_json::Value>| -> Vec<(Option<String>, String)> {
        (value
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten())
        .filter_map(|item| {
            let sha = item.pointer("/digest/sha256")?.as_str()?.to_owned();
            Some((
                item.get("name").and_then(|n| n.as_str()).map(str::to_owned),
                sha,
            ))
        })
        .collect()
    };
    let subjects: Vec<String> = descriptors(statement.get("subject"))
        .into_iter()
        .map(|(_, sha)| sha)
        .collect();
    let mut named = descriptors(statement.pointer("/predicate/runDetails/byproducts"));
    named.extend(subjects.iter().map(|sha| (None, sha.clone())));
    Said {
        predicate_type: (statement.get("predicateType").and_then(|t| t.as_str()))
            .unwrap_or_default()
            .to_owned(),
        step: (statement
            .pointer("/predicate/name")
            .and_then(|n| n.as_str()))
        .map(str::to_owned),
        named,
        subjects,
    }
}

/// The files of a bundle's `text`, each named as in the run folder it came from; a line that
/// is not an envelope is an error naming it.
pub fn read(text: &[u8], stem: &str) -> Result<Vec<Named>, String> {
    let mut lines = Vec::new();
    for (index, line) in text.split(|&byte| byte == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let envelope: Envelope = serde_json::from_slice(line)
            .map_err(|error| format!("line {} is not a DSSE envelope: {error}", index + 1))?;
        lines.push((index + 1, line.to_vec(), envelope));
    }
    let said: Vec<Said> = lines
        .iter()
        .map(|(_, _, envelope)| said(envelope))
        .collect();
    // Every digest some line names, with the name it gives (a provenance's byproducts).
    let mut known: HashMap<String, Option<String>> = HashMap::new();
    for statement in &said {
        for (name, sha) in &statement.named {
            let entry = known.entry(sha.clone()).or_default();
            if entry.is_none() {
                entry.clone_from(name);
            }
        }
    }
    // The files as they were: the form whose digest another line names.
    let files: Vec<Vec<u8>> = lines
        .iter()
        .map(|(_, line, envelope)| {
            let pretty = serde_json::to_vec_pretty(envelope).unwrap_or_default();
            let mut terminated = pretty.clone();
            terminated.push(b'\n');
            [pretty, terminated, line.clone()]
                .into_iter()
                .find(|form| known.contains_key(&Digest::of_bytes(form).hex()))
                .unwrap_or_else(|| line.clone())
        })
        .collect();
    // Which step's link lists each digest as made.
    let made_by: HashMap<&str, &str> = said
        .iter()
        .filter(|statement| statement.predicate_type == crate::attest::LINK_PREDICATE_TYPE)
        .filter_map(|statement| Some((statement.step.as_deref()?, &statement.subjects)))
        .flat_map(|(step, subjects)| subjects.iter().map(move |sha| (sha.as_str(), step)))
        .collect();
    let mut named: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (((number, _, _), statement), bytes) in lines.iter().zip(&said).zip(files) {
        let digest = Digest::of_bytes(&bytes).hex();
        let step_file = |kind: StepFile| made_by.get(digest.as_str()).map(|step| kind.name(step));
        let name = match statement.predicate_type.as_str() {
            crate::attest::LINK_PREDICATE_TYPE => {
                (known.get(&digest).cloned().flatten()).or_else(|| {
                    statement
                        .step
                        .as_deref()
                        .map(|step| StepFile::Link.name(step))
                })
            }
            crate::attest::predicate::PROVENANCE => Some(run_folder::PROVENANCE.to_owned()),
            crate::attest::predicate::USAGE => Some(run_folder::USAGE.to_owned()),
            crate::attest::predicate::REPRODUCIBILITY => {
                Some(run_folder::REPRODUCIBILITY.to_owned())
            }
            crate::attest::predicate::TEST_RESULT => step_file(StepFile::Gate),
            crate::attest::predicate::ROLLOUT => step_file(StepFile::Rollout),
            crate::attest::predicate::VULNS => step_file(StepFile::Vulns),
            crate::attest::predicate::SPDX | crate::attest::predicate::CYCLONEDX => {
                step_file(StepFile::Sbom)
            }
            _ => None,
        }
        .filter(|name| !named.contains_key(name))
        .unwrap_or_else(|| format!("{stem}-line-{number}{}", run_folder::SUFFIX));
        named.insert(name, bytes);
    }
    Ok(named
        .into_iter()
        .map(|(name, bytes)| Named { name, bytes })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pretty_file_comes_back_byte_for_byte_when_another_line_names_it() {
        let link = crate::attest::Statement::new(
            vec![crate::attest::ResourceDescriptor::named(
                "out/a",
                &Digest::of_bytes(b"a"),
            )],
            crate::attest::LINK_PREDICATE_TYPE,
            serde_json::json!({"name": "build"}),
        );
        let envelope = Envelope {
            payload_type: crate::attest::PAYLOAD_TYPE.to_owned(),
            payload: base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(&link).expect("json")),
            signatures: vec![crate::attest::dsse::Signature {
                keyid: "k".to_owned(),
                sig: "c2ln".to_owned(),
            }],
        };
        let file = serde_json::to_vec_pretty(&envelope).expect("pretty");
        let provenance = serde_json::json!({
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [],
            "predicateType": crate::attest::predicate::PROVENANCE,
            "predicate": {"runDetails": {"byproducts": [
                {"name": "build.intoto.json", "digest": {"sha256": Digest::of_bytes(&file).hex()}}
            ]}},
        });
        let provenance_envelope = Envelope {
            payload_type: crate::attest::PAYLOAD_TYPE.to_owned(),
            payload: base64::engine::general_purpose::STANDARD
                .encode(serde_json::to_vec(&provenance).expect("json")),
            signatures: Vec::new(),
        };
        let mut bundle = line(&file).expect("line");
        bundle
            .extend(line(&serde_json::to_vec(&provenance_envelope).expect("json")).expect("line"));
        assert_eq!(String::from_utf8_lossy(&bundle).lines().count(), 2);
        let files = read(&bundle, "run").expect("read");
        let names: Vec<&str> = files.iter().map(|file| file.name.as_str()).collect();
        assert_eq!(names, ["build.intoto.json", "provenance.intoto.json"]);
        assert_eq!(files[0].bytes, file, "the link's very bytes");
        assert!(read(b"{not json\n", "run").is_err());
    }
}
