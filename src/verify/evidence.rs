//! The attestations an auditor hands to `gantry verify`: every `*.intoto.json` of the given
//! folders, parsed into what the checks read, with who signed them. Parsing is pure;
//! `list_folder` finds the files.

use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::attest::link::LinkSummary;
use crate::attest::predicate::reproducibility::Predicate as Reproducibility;
use crate::attest::predicate::rollout::Rollout;
use crate::attest::predicate::test_result::TestResult;
use crate::attest::statement::DescriptorSummary;
use crate::attest::{LINK_PREDICATE_TYPE, PAYLOAD_TYPE, predicate};
use crate::digest::Digest;
use crate::keys::Verifier as _;
use crate::verify::policy::TrustedKey;
use crate::verify::statement;

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
    /// Indices of the policy's keys that signed the envelope (empty until
    /// [`super::signed::check`] has run).
    pub signed_by: Vec<usize>,
    /// `signed_by` was established through a verified provenance that lists this file's
    /// exact bytes, not by checking the file's own signatures.
    pub vouched: bool,
    /// What the signatures sign and the signatures, until they are checked.
    pub unchecked: Option<Box<Signed>>,
    pub subjects: Vec<Descriptor>,
    pub kind: Kind,
}

/// What a statement is, by its predicate type, with the fields the checks read.
#[derive(Clone, Debug)]
pub enum Kind {
    Link {
        name: String,
        materials: Vec<Descriptor>,
        /// The step had the host's network (`network = true`): what it fetched is vouched for
        /// by nothing but its own checks.
        network: bool,
        /// The template the step came from: its name and its pack's SHA-256.
        template: Option<(String, String)>,
    },
    Provenance {
        invocation_id: String,
        /// `runDetails.metadata.finishedOn`, as Unix seconds.
        finished_on: Option<i64>,
        /// SHA-256 of the pipeline file the run executed.
        pipeline: Option<String>,
        byproducts: Vec<Descriptor>,
        resolved: Vec<Descriptor>,
    },
    Sbom {
        predicate_type: String,
    },
    /// A gate's verdict (in-toto test-result).
    TestResult(Box<GateVerdict>),
    /// A rollout's signed record: its step, `promoted` or `rolled-back`, and why.
    Rollout {
        step: String,
        result: String,
        reason: Option<String>,
    },
    /// A vulnerability scan (in-toto vulns v0.2).
    Vulns(Box<ScanSummary>),
    /// What a run used (docs/usage.md); its subject is the run's provenance.
    Usage,
    Reproducibility {
        run_id: String,
        /// (output name, attested sha256, reproduced).
        results: Vec<(String, Option<String>, bool)>,
    },
    Other {
        predicate_type: String,
    },
}

/// What a signed vulnerability scan says.
#[derive(Clone, Debug, Default)]
pub struct ScanSummary {
    /// The database's newest advisory (`scanner.db.lastUpdate`), as Unix seconds.
    pub last_update: Option<i64>,
    /// `metadata.scanFinishedOn`, as Unix seconds.
    pub finished: Option<i64>,
    /// Each vulnerability: its id and severity (unknown: `None`). Warnings (gantry's
    /// `informational` annotation) are left out.
    pub vulnerabilities: Vec<(String, Option<crate::vulns::severity::Level>)>,
}

/// What a gate's signed verdict says.
#[derive(Clone, Debug, Default)]
pub struct GateVerdict {
    /// `PASSED` or `FAILED` (`pass` or `fail` before 2026-12).
    pub result: String,
    /// The gate's step, as its pipeline annotation names it.
    pub step: Option<String>,
    pub stage: Option<String>,
    /// The evidence's kind (`junit`, `drill`, ...) and name (a path, a command).
    pub evidence: Option<String>,
    pub report: String,
    /// The names behind a failing number (failed tests, slower benchmarks).
    pub failing: Vec<String>,
    /// SHA-256 of the pipeline whose thresholds were judged.
    pub pipeline: Option<String>,
    /// The thresholds with what was measured.
    pub thresholds: Vec<crate::gauntlet::Verdict>,
    pub failed: Vec<String>,
}

impl GateVerdict {
    /// Whether the test-result says the gate passed: `PASSED` or `WARNED`, as the in-toto
    /// test-result predicate writes it (and `pass`, as gantry wrote it before 2026-12).
    #[must_use]
    pub fn says_passed(&self) -> bool {
        matches!(self.result.as_str(), "PASSED" | "WARNED" | "pass")
    }
}

/// An envelope's pre-authentication encoding and its signatures, each with its `keyid` hint.
#[derive(Clone, Debug)]
pub struct Signed {
    pub message: Vec<u8>,
    pub signatures: Vec<(String, Vec<u8>)>,
}

impl Signed {
    /// Whether one of the signatures verifies with `key`.
    #[must_use]
    pub fn verifies(&self, key: &TrustedKey) -> bool {
        (self.signatures.iter()).any(|(_, signature)| key.verifier.verify(&self.message, signature))
    }

    /// Whether a signature names `key` as its signer.
    #[must_use]
    pub fn names(&self, key: &TrustedKey) -> bool {
        let id = key.verifier.key_id();
        self.signatures.iter().any(|(keyid, _)| keyid == id)
    }
}

/// A resource descriptor, reduced to what the checks compare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Descriptor {
    pub name: String,
    pub sha256: Option<String>,
    /// A Nix output's out-link in the workspace (`annotations.outLink`).
    pub out_link: Option<String>,
    /// A template's name and the key id of its publisher (`annotations.template`,
    /// `annotations.publisherKey`).
    pub template: Option<(String, String)>,
}

/// Every attestation of the run (or plain folder of attestations) in `folder`, sorted by name:
/// what its `SHA256SUMS` names, wherever it is stored, and every `*.intoto.json` in it
/// ([`crate::attest::run_folder::list`]).
pub fn list_folder(folder: &Path) -> std::io::Result<Vec<crate::attest::run_folder::Entry>> {
    crate::attest::run_folder::list(folder)
}

/// Parses one listed file's bytes under its name in the run. A file whose bytes are not the
/// ones its run folder's `SHA256SUMS` names (an attestation changed in the store) is kept
/// with why, like any file that does not parse.
#[must_use]
pub fn parse_listed(
    entry: &crate::attest::run_folder::Entry,
    folder: usize,
    bytes: &[u8],
) -> EvidenceFile {
    let mut file = parse(entry.path.clone(), folder, bytes);
    file.name.clone_from(&entry.name);
    if let Some(listed) = entry.listed
        && listed != file.digest
    {
        file.content = Err(format!(
            "its bytes (sha256 {}) are not those its run's SHA256SUMS names (sha256 {}): it was changed where it is stored, `{}`",
            file.digest.hex(),
            listed.hex(),
            entry.path.display()
        ));
    }
    file
}

/// Parses one file's bytes; its signatures are checked later, by [`super::signed::check`]. A
/// file that is not an envelope around a Statement is kept, with why, so that the report names
/// it.
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

/// [`parse`], with every signature checked against `keys`: for a file read on its own.
#[must_use]
pub fn parse_signed(
    path: PathBuf,
    folder: usize,
    bytes: &[u8],
    keys: &[TrustedKey],
) -> EvidenceFile {
    let mut file = parse(path, folder, bytes);
    super::signed::check(
        std::slice::from_mut(&mut file),
        keys,
        super::Signatures::Every,
    );
    file
}

fn parse_envelope(bytes: &[u8]) -> Result<Parsed, String> {
    let envelope: statement::Envelope =
        serde_json::from_slice(bytes).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(format!(
            "payloadType is `{}`, not `{PAYLOAD_TYPE}`",
            envelope.payload_type
        ));
    }
    let base64 = base64::engine::general_purpose::STANDARD;
    let (message, body_start) = pae_of(&envelope.payload)?;
    let body = &message[body_start..];
    let statement: statement::Statement = serde_json::from_slice(body)
        .map_err(|error| format!("payload is not a Statement: {error}"))?;
    if statement.kind != "https://in-toto.io/Statement/v1" {
        return Err("payload is not an in-toto Statement v1".to_owned());
    }
    let subjects = descriptors(statement.subject);
    let predicate_type = statement.predicate_type.as_ref();
    let kind = match predicate_type {
        LINK_PREDICATE_TYPE => {
            let link: LinkSummary = predicate(statement.predicate)?;
            Kind::Link {
                name: link.name,
                materials: descriptors(link.materials),
                network: (link.environment.sandbox).is_some_and(|sandbox| sandbox.network),
                template: (link.environment.template)
                    .map(|template| (template.name, template.sha256)),
            }
        }
        predicate::PROVENANCE => {
            let provenance: statement::Provenance = predicate(statement.predicate)?;
            let run = provenance.run_details;
            Kind::Provenance {
                invocation_id: run.metadata.invocation_id,
                finished_on: (run.metadata.finished_on.as_deref())
                    .and_then(crate::time::parse_rfc3339),
                pipeline: (provenance.build_definition.external_parameters.pipeline)
                    .and_then(|pipeline| pipeline.digest.sha256),
                byproducts: descriptors(run.byproducts),
                resolved: descriptors(provenance.build_definition.resolved_dependencies),
            }
        }
        predicate::TEST_RESULT => {
            let verdict: TestResult = predicate(statement.predicate)?;
            Kind::TestResult(Box::new(gate_verdict(verdict)))
        }
        predicate::ROLLOUT => {
            let record: Rollout = predicate(statement.predicate)?;
            Kind::Rollout {
                step: record.step,
                result: record.result,
                reason: record.reason,
            }
        }
        predicate::USAGE => Kind::Usage,
        predicate::vulns::URI => {
            let scan: predicate::vulns::Vulns = predicate(statement.predicate)?;
            Kind::Vulns(Box::new(scan_summary(scan)))
        }
        predicate::SPDX | predicate::CYCLONEDX => Kind::Sbom {
            predicate_type: predicate_type.to_owned(),
        },
        predicate::REPRODUCIBILITY => {
            let check: Reproducibility = predicate(statement.predicate)?;
            Kind::Reproducibility {
                run_id: check.checked.run_id,
                results: (check.results.into_iter())
                    .map(|result| {
                        let attested = result.attested.map(|digests| digests.sha256);
                        (result.name, attested, result.reproduced)
                    })
                    .collect(),
            }
        }
        other => Kind::Other {
            predicate_type: other.to_owned(),
        },
    };
    let signatures: Vec<(String, Vec<u8>)> = (envelope.signatures.iter())
        .filter_map(|signature| {
            let bytes = base64.decode(signature.sig.as_bytes()).ok()?;
            Some((signature.keyid.clone().into_owned(), bytes))
        })
        .collect();
    Ok(Parsed {
        signed_by: Vec::new(),
        vouched: false,
        unchecked: Some(Box::new(Signed {
            message,
            signatures,
        })),
        subjects,
        kind,
    })
}

/// DSSE's pre-authentication encoding of the base64 `payload`, which is what the signatures
/// sign, decoded straight after its header; and where the payload starts in it.
fn pae_of(payload: &str) -> Result<(Vec<u8>, usize), String> {
    let not_base64 = || "payload is not base64".to_owned();
    let padding = payload
        .bytes()
        .rev()
        .take_while(|&byte| byte == b'=')
        .count();
    let length = (payload.len() / 4 * 3)
        .checked_sub(padding)
        .ok_or_else(not_base64)?;
    let mut message =
        format!("DSSEv1 {} {PAYLOAD_TYPE} {length} ", PAYLOAD_TYPE.len()).into_bytes();
    let start = message.len();
    message.reserve(length);
    base64::engine::general_purpose::STANDARD
        .decode_vec(payload, &mut message)
        .map_err(|_| not_base64())?;
    if message.len() - start == length {
        Ok((message, start))
    } else {
        Err(not_base64())
    }
}

fn predicate<'a, T: serde::Deserialize<'a> + Default>(
    raw: Option<&'a serde_json::value::RawValue>,
) -> Result<T, String> {
    raw.map_or_else(
        || Ok(T::default()),
        |raw| {
            serde_json::from_str(raw.get())
                .map_err(|error| format!("payload's predicate is not readable: {error}"))
        },
    )
}

fn descriptors(list: Vec<DescriptorSummary>) -> Vec<Descriptor> {
    list.into_iter()
        .map(|item| Descriptor {
            name: item.name,
            sha256: item.digest.sha256,
            out_link: item.annotations.out_link,
            template: (item.annotations.template)
                .map(|template| (template, item.annotations.publisher_key.unwrap_or_default())),
        })
        .collect()
}

/// The gate's fields from its configuration: the entry annotated with `step` is the pipeline,
/// the one with `thresholds` the report.
fn gate_verdict(verdict: TestResult) -> GateVerdict {
    let mut gate = GateVerdict {
        result: verdict.result,
        failed: verdict.failed_tests,
        ..GateVerdict::default()
    };
    for entry in verdict.configuration {
        let annotations = entry.annotations;
        let sha256 = entry
            .digest
            .get(crate::digest::Digest::ALGORITHM)
            .map(str::to_owned);
        if let Some(step) = annotations.step {
            gate.step = Some(step);
            gate.pipeline = sha256;
        }
        if let Some(thresholds) = annotations.thresholds {
            gate.thresholds = thresholds;
            gate.stage = annotations.stage;
            gate.evidence = annotations.evidence;
            gate.report = entry.name;
            gate.failing = annotations.failing;
        }
    }
    gate
}

/// Each result's severity; warnings left out.
fn scan_summary(scan: predicate::vulns::Vulns) -> ScanSummary {
    use crate::vulns::statement::{level, marked};
    let vulnerabilities = (scan.scanner.result.into_iter())
        .filter(|result| !marked(result, "informational"))
        .map(|result| {
            let level = level(&result);
            (result.id, level)
        })
        .collect();
    ScanSummary {
        last_update: crate::time::parse_rfc3339(&scan.scanner.db.last_update),
        finished: crate::time::parse_rfc3339(&scan.metadata.scan_finished_on),
        vulnerabilities,
    }
}
