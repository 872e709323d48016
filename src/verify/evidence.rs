//! The attestations an auditor hands to `gantry verify`: every `*.intoto.json` of the given
//! folders, parsed into what the checks read. Parsing is pure; `read_folder` reads the files.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::attest::{Envelope, LINK_PREDICATE_TYPE, PAYLOAD_TYPE};
use crate::digest::Digest;

/// One attestation file.
#[derive(Clone, Debug)]
pub struct EvidenceFile {
    /// As found: `<folder>/<name>`.
    pub path: PathBuf,
    /// Which of the given folders it is in.
    pub folder: usize,
    pub name: String,
    /// SHA-256 of its bytes: what provenance byproducts and link products name.
    pub digest: Digest,
    pub content: Result<Parsed, String>,
}

/// An envelope whose payload is an in-toto Statement v1.
#[derive(Clone, Debug)]
pub struct Parsed {
    pub envelope: Envelope,
    pub subjects: Vec<Descriptor>,
    pub kind: Kind,
}

/// What a statement is, by its predicate type, with the fields the checks read.
#[derive(Clone, Debug)]
pub enum Kind {
    Link {
        name: String,
        materials: Vec<Descriptor>,
    },
    Provenance {
        invocation_id: String,
        /// `runDetails.metadata.finishedOn`, as Unix seconds.
        finished_on: Option<i64>,
        byproducts: Vec<Descriptor>,
        resolved: Vec<Descriptor>,
    },
    Sbom {
        predicate_type: String,
    },
    Reproducibility {
        run_id: String,
        /// (output name, attested sha256, reproduced).
        results: Vec<(String, Option<String>, bool)>,
    },
    Other {
        predicate_type: String,
    },
}

/// A resource descriptor, reduced to what the checks compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub name: String,
    pub sha256: Option<String>,
    /// A Nix output's out-link in the workspace (`annotations.outLink`).
    pub out_link: Option<String>,
}

pub const SUFFIX: &str = ".intoto.json";

pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
pub const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";

/// `(path, bytes)` of every `*.intoto.json` directly in `folder`, sorted by name.
pub fn read_folder(folder: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(SUFFIX) && entry.file_type()?.is_file() {
            let path = entry.path();
            let bytes = std::fs::read(&path)?;
            files.push((path, bytes));
        }
    }
    files.sort();
    Ok(files)
}

/// Parses one file's bytes; a file that is not an envelope around a Statement is kept, with
/// why, so that the report names it.
#[must_use]
pub fn parse(path: PathBuf, folder: usize, bytes: &[u8]) -> EvidenceFile {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    EvidenceFile {
        digest: Digest::of_bytes(bytes),
        content: parse_envelope(bytes),
        path,
        folder,
        name,
    }
}

fn parse_envelope(bytes: &[u8]) -> Result<Parsed, String> {
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "payloadType is `{}`, not `{PAYLOAD_TYPE}`",
            envelope.payload_type
        ));
    }
    let body = base64::engine::general_purpose::STANDARD
        .decode(&envelope.payload)
        .map_err(|_| "payload is not base64".to_owned())?;
    let statement: Value =
        serde_json::from_slice(&body).map_err(|error| format!("payload is not JSON: {error}"))?;
    if statement["_type"] != "https://in-toto.io/Statement/v1" {
        return Err("payload is not an in-toto Statement v1".to_owned());
    }
    let subjects = descriptors(&statement["subject"]);
    let predicate = &statement["predicate"];
    let predicate_type = statement["predicateType"].as_str().unwrap_or_default();
    let text = |value: &Value| value.as_str().unwrap_or_default().to_owned();
    let kind = match predicate_type {
        LINK_PREDICATE_TYPE => Kind::Link {
            name: text(&predicate["name"]),
            materials: descriptors(&predicate["materials"]),
        },
        crate::attest::provenance::PREDICATE_TYPE => Kind::Provenance {
            invocation_id: text(&predicate["runDetails"]["metadata"]["invocationId"]),
            finished_on: predicate["runDetails"]["metadata"]["finishedOn"]
                .as_str()
                .and_then(crate::time::parse_rfc3339),
            byproducts: descriptors(&predicate["runDetails"]["byproducts"]),
            resolved: descriptors(&predicate["buildDefinition"]["resolvedDependencies"]),
        },
        SPDX_PREDICATE | CYCLONEDX_PREDICATE => Kind::Sbom {
            predicate_type: predicate_type.to_owned(),
        },
        crate::repro::predicate::PREDICATE_TYPE => Kind::Reproducibility {
            run_id: text(&predicate["checked"]["runId"]),
            results: predicate["results"]
                .as_array()
                .map(|results| {
                    results
                        .iter()
                        .map(|result| {
                            (
                                text(&result["name"]),
                                result["attested"]["sha256"].as_str().map(str::to_owned),
                                result["reproduced"] == true,
                            )
                        })
                        .collect()
                })
                .unwrap_or_default(),
        },
        other => Kind::Other {
            predicate_type: other.to_owned(),
        },
    };
    Ok(Parsed {
        envelope,
        subjects,
        kind,
    })
}

fn descriptors(value: &Value) -> Vec<Descriptor> {
    value
        .as_array()
        .map(|list| {
            list.iter()
                .map(|item| Descriptor {
                    name: item["name"].as_str().unwrap_or_default().to_owned(),
                    sha256: item["digest"]["sha256"].as_str().map(str::to_owned),
                    out_link: item["annotations"]["outLink"].as_str().map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default()
}
