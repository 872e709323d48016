//! The release manifest: an in-toto Statement v1 with the release predicate v0.1
//! (<https://github.com/in-toto/attestation/blob/main/spec/predicates/release.md>) whose
//! subjects are the release's artifacts. Its required `purl` (and `releaseId`) come first;
//! gantry's fields after them name, per artifact, every document that vouches for it: the
//! link of the step that made it, SBOMs, signatures, gate verdicts and (where asked) the
//! reproducibility attestation, each by name and SHA-256. Pure: a run's evidence in, the
//! predicate out.

use serde::{Deserialize, Serialize};

use crate::attest::ResourceDescriptor;
use crate::digest::Digest;
use crate::pipeline::{Pipeline, StepKind};
use crate::verify::evidence::{EvidenceFile, Kind};

/// Names in a manifest: workspace files (artifacts, SBOM documents, signatures, the
/// pipeline) relative to the workspace root; attestations (links, verdicts, provenance,
/// notes) relative to the attestations folder, such as `<run-id>/build.intoto.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    /// `pkg:generic/NAME@VERSION`: the release by name and version.
    pub purl: String,
    /// The pipeline's name: stable from release to release.
    pub release_id: String,
    pub version: String,
    pub tag: String,
    /// The commit built, and tagged.
    pub commit: String,
    /// The last release's tag, where there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// Whether the work tree differed from the commit, and whether that was allowed.
    pub dirty: bool,
    pub allow_dirty: bool,
    pub pipeline: ResourceDescriptor,
    pub run_id: String,
    pub provenance: ResourceDescriptor,
    pub notes: ResourceDescriptor,
    pub artifacts: Vec<Artifact>,
}

/// One artifact and what vouches for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub name: String,
    pub sha256: String,
    /// A Nix output (named by its out-link, digested by its NAR hash): the store path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_path: Option<String>,
    /// The step that made it, and that step's link.
    pub step: String,
    pub link: ResourceDescriptor,
    #[serde(default)]
    pub sboms: Vec<Sbom>,
    #[serde(default)]
    pub signatures: Vec<ResourceDescriptor>,
    #[serde(default)]
    pub gates: Vec<Gate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproducibility: Option<ResourceDescriptor>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sbom {
    pub document: ResourceDescriptor,
    pub attestation: ResourceDescriptor,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Gate {
    pub step: String,
    pub stage: String,
    pub result: String,
    pub attestation: ResourceDescriptor,
}

impl Release {
    /// Every document the manifest names, with whether it lives in the attestations folder
    /// (`true`) or the workspace (`false`). Artifacts are not documents.
    #[must_use]
    pub fn documents(&self) -> Vec<(&ResourceDescriptor, bool)> {
        let mut documents = vec![
            (&self.pipeline, false),
            (&self.provenance, true),
            (&self.notes, true),
        ];
        for artifact in &self.artifacts {
            documents.push((&artifact.link, true));
            for sbom in &artifact.sboms {
                documents.push((&sbom.document, false));
                documents.push((&sbom.attestation, true));
            }
            documents.extend(
                artifact
                    .signatures
                    .iter()
                    .map(|signature| (signature, false)),
            );
            documents.extend(artifact.gates.iter().map(|gate| (&gate.attestation, true)));
            documents.extend(artifact.reproducibility.iter().map(|repro| (repro, true)));
        }
        documents
    }

    /// The statement's subjects: each artifact by name and SHA-256.
    #[must_use]
    pub fn subjects(&self) -> Vec<ResourceDescriptor> {
        (self.artifacts.iter())
            .filter_map(|artifact| {
                Digest::from_hex(&artifact.sha256)
                    .map(|digest| ResourceDescriptor::named(artifact.name.clone(), &digest))
            })
            .collect()
    }
}

/// `pkg:generic/NAME@VERSION`, with the characters purl reserves percent-encoded.
#[must_use]
pub fn purl(name: &str, version: &semver::Version) -> String {
    let encode = |text: &str| {
        text.bytes()
            .map(|byte| match byte {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                    char::from(byte).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect::<String>()
    };
    format!(
        "pkg:generic/{}@{}",
        encode(name),
        encode(&version.to_string())
    )
}

/// A run folder's file as a manifest names it.
fn in_run(run_id: &str, file: &EvidenceFile) -> ResourceDescriptor {
    ResourceDescriptor::named(format!("{run_id}/{}", file.name), &file.digest)
}

/// The release's artifacts and their evidence, from the run's folder (`evidence`, parsed;
/// signatures are not checked here, `gantry release verify` does that against a policy): the
/// provenance's subjects that an exec or nix step made. Each needs its step's link; SBOMs,
/// signatures and gates are whatever the run made for it.
pub fn artifacts(
    pipeline: &Pipeline,
    run_id: &str,
    evidence: &[EvidenceFile],
    provenance: &EvidenceFile,
) -> Result<Vec<Artifact>, String> {
    fn parsed(file: &EvidenceFile) -> Option<&crate::verify::evidence::Parsed> {
        file.content.as_ref().ok()
    }
    let Some(Kind::Provenance { .. }) = parsed(provenance).map(|content| &content.kind) else {
        return Err(format!(
            "`{}` is not a provenance attestation",
            provenance.name
        ));
    };
    let kind_of = |step: &str| pipeline.step_id(step).map(|id| &pipeline.steps[id].kind);
    let mut artifacts = Vec::new();
    let subjects = parsed(provenance).map_or(&[][..], |content| &content.subjects[..]);
    for subject in subjects {
        let Some(sha256) = subject.sha256.clone() else {
            continue;
        };
        let maker = evidence.iter().find_map(|file| {
            let content = parsed(file)?;
            let Kind::Link { name, .. } = &content.kind else {
                return None;
            };
            // A nix step's link names the store path, with the out-link as an annotation.
            let made = content.subjects.iter().find(|made| {
                (made.name == subject.name || made.out_link.as_ref() == Some(&subject.name))
                    && made.sha256.as_deref() == Some(&sha256)
            })?;
            Some((name, file, made))
        });
        let Some((step, link, made)) = maker else {
            return Err(format!(
                "no link in the run folder made `{}` (sha256 {sha256})",
                subject.name
            ));
        };
        if !kind_of(step).is_some_and(StepKind::consumes_inputs)
            || is_gate_evidence(pipeline, &subject.name)
            || !pipeline.is_artifact(&subject.name)
        {
            continue;
        }
        artifacts.push(Artifact {
            name: subject.name.clone(),
            store_path: (made.name != subject.name).then(|| made.name.clone()),
            step: step.clone(),
            link: in_run(run_id, link),
            sboms: sboms(pipeline, run_id, evidence, &sha256),
            signatures: signatures(pipeline, evidence, &sha256),
            gates: gates(run_id, evidence, &sha256),
            reproducibility: None,
            sha256,
        });
    }
    for declared in pipeline.artifacts.iter().flatten() {
        let found = (artifacts.iter())
            .any(|artifact| crate::pipeline::path::is_within(&artifact.name, declared));
        if !found {
            return Err(format!(
                "`{declared}` is an artifact (`[pipeline] artifacts`), but the run made no such output"
            ));
        }
    }
    if artifacts.is_empty() {
        return Err(
            "the run made no artifact: no exec or nix step's output is a subject of its provenance"
                .into(),
        );
    }
    Ok(artifacts)
}

/// Reports that gates judge are evidence about the artifacts, not artifacts.
fn is_gate_evidence(pipeline: &Pipeline, name: &str) -> bool {
    use crate::pipeline::model::Evidence;
    pipeline.steps.iter().any(|step| match &step.kind {
        StepKind::Gate(gate) => match &gate.evidence {
            Evidence::Report { path, .. } => path == name,
            Evidence::Criterion { folder, .. } => name
                .strip_prefix(folder.trim_end_matches('/'))
                .is_some_and(|rest| rest.starts_with('/')),
            Evidence::Drill { .. } => false,
        },
        _ => false,
    })
}

fn about(file: &EvidenceFile, sha256: &str) -> bool {
    file.content.as_ref().is_ok_and(|content| {
        (content.subjects.iter()).any(|subject| subject.sha256.as_deref() == Some(sha256))
    })
}

/// SBOM attestations about the artifact, with the document their step wrote.
fn sboms(pipeline: &Pipeline, run_id: &str, evidence: &[EvidenceFile], sha256: &str) -> Vec<Sbom> {
    let suffix = crate::attest::run_folder::StepFile::Sbom.suffix();
    (evidence.iter())
        .filter(|file| {
            about(file, sha256)
                && file
                    .content
                    .as_ref()
                    .is_ok_and(|content| matches!(content.kind, Kind::Sbom { .. }))
        })
        .filter_map(|file| {
            let step = file.name.strip_suffix(suffix)?;
            let StepKind::Sbom(sbom) = &pipeline.steps[pipeline.step_id(step)?].kind else {
                return None;
            };
            let document = made_by(evidence, step, &sbom.output)?;
            Some(Sbom {
                document,
                attestation: in_run(run_id, file),
            })
        })
        .collect()
}

/// What the link of `step` says it made at `name`.
fn made_by(evidence: &[EvidenceFile], step: &str, name: &str) -> Option<ResourceDescriptor> {
    evidence.iter().find_map(|file| {
        let content = file.content.as_ref().ok()?;
        let Kind::Link { name: linked, .. } = &content.kind else {
            return None;
        };
        if linked != step {
            return None;
        }
        let made = content.subjects.iter().find(|made| made.name == name)?;
        let digest = Digest::from_hex(made.sha256.as_deref()?)?;
        Some(ResourceDescriptor::named(name, &digest))
    })
}

/// The signature files of sign steps that read the artifact.
fn signatures(
    pipeline: &Pipeline,
    evidence: &[EvidenceFile],
    sha256: &str,
) -> Vec<ResourceDescriptor> {
    let mut signatures = Vec::new();
    for file in evidence {
        let Ok(content) = &file.content else {
            continue;
        };
        let Kind::Link {
            name, materials, ..
        } = &content.kind
        else {
            continue;
        };
        let signs = matches!(
            pipeline.step_id(name).map(|id| &pipeline.steps[id].kind),
            Some(StepKind::Sign(_))
        );
        let Some(material) =
            (materials.iter()).find(|material| material.sha256.as_deref() == Some(sha256))
        else {
            continue;
        };
        if !signs {
            continue;
        }
        for suffix in crate::pipeline::model::SIGNATURE_SUFFIXES {
            let wanted = format!("{}{suffix}", material.name);
            if let Some(made) = made_by(evidence, name, &wanted) {
                signatures.push(made);
            }
        }
    }
    signatures
}

/// Passing gate verdicts about the artifact.
fn gates(run_id: &str, evidence: &[EvidenceFile], sha256: &str) -> Vec<Gate> {
    (evidence.iter())
        .filter(|file| about(file, sha256))
        .filter_map(|file| {
            let Kind::TestResult(verdict) = &file.content.as_ref().ok()?.kind else {
                return None;
            };
            Some(Gate {
                step: verdict.step.clone().unwrap_or_default(),
                stage: verdict.stage.clone().unwrap_or_default(),
                result: verdict.result.clone(),
                attestation: in_run(run_id, file),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_are_generic_with_reserved_characters_encoded() {
        let version = semver::Version::parse("1.2.0-rc.1+build.5").unwrap();
        assert_eq!(
            purl("gantry", &version),
            "pkg:generic/gantry@1.2.0-rc.1%2Bbuild.5"
        );
        assert_eq!(
            purl("my app", &semver::Version::new(1, 0, 0)),
            "pkg:generic/my%20app@1.0.0"
        );
    }
}
