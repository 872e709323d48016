//! `gantry release verify VERSION`: the tag, the signed manifest it names, every document the
//! manifest names, the artifacts in the workspace, and then the verify engine's verdict on the
//! release's run against the policy. Every check is reported, passing or not.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::attest::ResourceDescriptor;
use crate::attest::predicate::RELEASE as PREDICATE_TYPE;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::release::cut::manifest_of_tag;
use crate::release::git::Repository;
use crate::release::manifest::Release;
use crate::release::{FOLDER, MANIFEST, version};
use crate::verify::{self, evidence, gather};

/// What `release verify` reads.
pub struct Request<'a> {
    pub root: &'a Path,
    pub attestations: &'a Path,
    pub version: &'a str,
    pub policy: &'a Path,
    pub now: i64,
    /// Whether the tag must exist: false when `gantry release` checks, before it tags, that
    /// the release it wrote will pass.
    pub tagged: bool,
}

#[derive(Debug, Serialize)]
pub struct ReleaseReport {
    pub passed: bool,
    pub version: String,
    pub tag: String,
    pub manifest: String,
    pub checks: Vec<ReleaseCheck>,
    /// The verify engine's report on the release's run, when the manifest could be read.
    pub verification: Option<verify::Report>,
}

#[derive(Debug, Serialize)]
pub struct ReleaseCheck {
    pub name: &'static str,
    pub passed: bool,
    /// What was found: on success a summary, on failure each fault.
    pub findings: Vec<String>,
}

impl ReleaseCheck {
    fn new(name: &'static str, findings: Vec<String>, summary: String) -> Self {
        if findings.is_empty() {
            Self {
                name,
                passed: true,
                findings: vec![summary],
            }
        } else {
            Self {
                name,
                passed: false,
                findings,
            }
        }
    }
}

#[derive(Deserialize)]
struct ManifestStatement {
    #[serde(rename = "predicateType")]
    predicate_type: String,
    subject: Vec<ResourceDescriptor>,
    predicate: Release,
}

/// Checks the release `request.version`. A version that is not one, or a policy that does
/// not load, is an error; everything else is a check in the report.
pub fn check(request: &Request<'_>) -> Result<ReleaseReport> {
    let version = version::parse(request.version).map_err(Error::Usage)?;
    let tag_name = version::tag_name(&version);
    let manifest_path = (request.attestations)
        .join(FOLDER)
        .join(version.to_string())
        .join(MANIFEST);
    let (_, keys) = gather::policy_and_keys(request.policy)?;
    let mut report = ReleaseReport {
        passed: false,
        version: version.to_string(),
        tag: tag_name.clone(),
        manifest: manifest_path.display().to_string(),
        checks: Vec::new(),
        verification: None,
    };
    let bytes = match crate::bounded::read(&manifest_path, crate::bounded::Kind::Attestation) {
        Ok(bytes) => bytes,
        Err(error) => {
            report.checks.push(ReleaseCheck::new(
                "manifest",
                vec![format!(
                    "cannot read `{}`: {error}",
                    manifest_path.display()
                )],
                String::new(),
            ));
            return Ok(report);
        }
    };
    let manifest_digest = Digest::of_bytes(&bytes);
    let (release, signers) = manifest_check(&mut report, &bytes, &manifest_path, &keys, &version);
    if request.tagged {
        report.checks.push(tag_check(
            request.root,
            &tag_name,
            &manifest_digest,
            release.as_ref(),
        ));
    }
    if let Some(release) = &release {
        report.checks.push(documents_check(release, request));
        let (check, artifacts) = artifacts_check(release, request.root);
        report.checks.push(check);
        let (check, reproductions) = reproducibility_check(release, request.attestations, &keys);
        report.checks.push(check);
        let mut folders = vec![request.attestations.join(&release.run_id)];
        folders.extend(reproductions);
        let verification = gather::verify_files(
            request.policy,
            &folders,
            &artifacts,
            request.now,
            verify::Signatures::default(),
        )?;
        report.checks.push(ReleaseCheck {
            name: "policy",
            passed: verification.passed,
            findings: vec![format!(
                "gantry verify of {} artifact(s) with policy `{}` against run {}: {}",
                artifacts.len(),
                verification.policy.name,
                release.run_id,
                if verification.passed {
                    "passed"
                } else {
                    "FAILED"
                }
            )],
        });
        // The manifest is signed as the run ends: its key must be valid at the run's time, the
        // time the verify engine checked the run's own signatures at.
        let time = crate::time::parse_rfc3339(&verification.time).unwrap_or(request.now);
        if !signers.is_empty() && !signers.iter().any(|index| keys[*index].valid_at(time)) {
            let names: Vec<&str> = (signers.iter())
                .map(|index| keys[*index].spec.id.as_str())
                .collect();
            if let Some(check) = report
                .checks
                .iter_mut()
                .find(|check| check.name == "manifest")
            {
                check.passed = false;
                check.findings = vec![format!(
                    "signed by key {}, which is not valid at the run's time, {} (see its not_before and not_after)",
                    names.join(", "),
                    verification.time
                )];
            }
        }
        report.verification = Some(verification);
    }
    report.passed = !report.checks.is_empty() && report.checks.iter().all(|check| check.passed);
    Ok(report)
}

/// The manifest: signed by a policy key that may attest `release`, a release Statement for
/// this version whose subjects are its artifacts.
fn manifest_check(
    report: &mut ReleaseReport,
    bytes: &[u8],
    path: &Path,
    keys: &[verify::policy::TrustedKey],
    version: &semver::Version,
) -> (Option<Release>, Vec<usize>) {
    let mut findings = Vec::new();
    let parsed = evidence::parse_signed(path.to_path_buf(), 0, bytes, keys);
    let signers: Vec<usize> = match &parsed.content {
        Ok(content) => (content.signed_by.iter())
            .copied()
            .filter(|index| keys[*index].allows("release"))
            .collect(),
        Err(error) => {
            findings.push(format!("`{}`: {error}", path.display()));
            Vec::new()
        }
    };
    if parsed.content.is_ok() && signers.is_empty() {
        findings.push(
            "no signature by a policy key that may attest `release` (the key that signed the run)"
                .to_owned(),
        );
    }
    let statement = decode(bytes);
    let release = match statement {
        Ok(statement) => {
            if statement.predicate_type != PREDICATE_TYPE {
                findings.push(format!(
                    "predicateType is `{}`, not `{PREDICATE_TYPE}`",
                    statement.predicate_type
                ));
            }
            if statement.predicate.version != version.to_string() {
                findings.push(format!(
                    "the manifest is for {}, not {version}",
                    statement.predicate.version
                ));
            }
            if statement.subject != statement.predicate.subjects() {
                findings
                    .push("the subjects differ from the artifacts the predicate lists".to_owned());
            }
            Some(statement.predicate)
        }
        Err(error) => {
            findings.push(error);
            None
        }
    };
    let summary = format!(
        "{} signed by {}, {} artifact(s)",
        path.display(),
        (signers.iter())
            .map(|index| keys[*index].spec.id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        release
            .as_ref()
            .map_or(0, |release| release.artifacts.len())
    );
    report
        .checks
        .push(ReleaseCheck::new("manifest", findings, summary));
    (release, signers)
}

fn decode(bytes: &[u8]) -> std::result::Result<ManifestStatement, String> {
    #[derive(Deserialize)]
    struct Envelope {
        payload: String,
    }
    let envelope: Envelope =
        serde_json::from_slice(bytes).map_err(|error| format!("not a DSSE envelope: {error}"))?;
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope.payload)
        .map_err(|error| format!("payload is not base64: {error}"))?;
    serde_json::from_slice(&payload)
        .map_err(|error| format!("payload is not a release Statement: {error}"))
}

/// The tag: it exists, is annotated, names this manifest's digest, and points at the commit
/// the manifest says was built.
fn tag_check(
    root: &Path,
    name: &str,
    manifest: &Digest,
    release: Option<&Release>,
) -> ReleaseCheck {
    let mut findings = Vec::new();
    let tag = Repository::open(root).and_then(|repository| repository.tag(name));
    let summary = match tag {
        Err(error) => {
            findings.push(error);
            String::new()
        }
        Ok(None) => {
            findings.push(format!(
                "there is no tag `{name}` (a --dry-run release is not tagged)"
            ));
            String::new()
        }
        Ok(Some(tag)) => {
            match tag.message.as_deref().map(manifest_of_tag) {
                None => findings.push(format!(
                    "`{name}` is a lightweight tag; a release tag is annotated"
                )),
                Some(None) => {
                    findings.push(format!("tag `{name}`'s message names no manifest digest"));
                }
                Some(Some(named)) if named != *manifest => findings.push(format!(
                    "tag `{name}` names manifest sha256:{}, but the manifest is sha256:{}",
                    named.hex(),
                    manifest.hex()
                )),
                Some(Some(_)) => {}
            }
            if let Some(release) = release
                && release.commit != tag.commit
            {
                findings.push(format!(
                    "tag `{name}` points at {}, but the release was built from {}",
                    tag.commit, release.commit
                ));
            }
            format!(
                "{name} on {}, naming manifest sha256:{}",
                tag.commit,
                manifest.hex()
            )
        }
    };
    ReleaseCheck::new("tag", findings, summary)
}

/// Every document the manifest names, byte for byte.
fn documents_check(release: &Release, request: &Request<'_>) -> ReleaseCheck {
    let mut findings = Vec::new();
    let documents = release.documents();
    for (document, in_attestations) in &documents {
        let name = document.name.as_deref().unwrap_or_default();
        let base = if *in_attestations {
            request.attestations
        } else {
            request.root
        };
        let mut path = base.join(name);
        // A run's step attestation is stored by content beside the run folders.
        if *in_attestations
            && !path.exists()
            && let Some(digest) = document.sha256()
        {
            path = crate::attest::run_folder::stored(base, &digest);
        }
        findings.extend(compare(&path, name, document.sha256(), Digest::of_file).1);
    }
    ReleaseCheck::new(
        "documents",
        findings,
        format!("{} documents match their digests", documents.len()),
    )
}

/// The file's digest, when it can be read, and what is wrong with it, if anything.
fn compare(
    path: &Path,
    name: &str,
    expected: Option<Digest>,
    digest: fn(&Path) -> std::io::Result<Digest>,
) -> (Option<Digest>, Option<String>) {
    let found = digest(path);
    let finding = match (&found, expected) {
        (_, None) => Some(format!("`{name}` has no sha256 in the manifest")),
        (Ok(found), Some(expected)) if *found == expected => None,
        (Ok(found), Some(expected)) => Some(format!(
            "`{name}` is sha256:{}, the manifest names sha256:{}",
            found.hex(),
            expected.hex()
        )),
        (Err(error), Some(_)) => Some(format!(
            "`{name}`: cannot read `{}`: {error}",
            path.display()
        )),
    };
    (found.ok(), finding)
}

/// The artifacts in the workspace, as the manifest names them: files by their bytes, Nix
/// outputs by their NAR hash (computed here, without Nix), reached through their out-links.
fn artifacts_check(release: &Release, root: &Path) -> (ReleaseCheck, Vec<verify::Artifact>) {
    let mut findings = Vec::new();
    let mut artifacts = Vec::new();
    for artifact in &release.artifacts {
        let path: PathBuf = root.join(&artifact.name);
        if let Some(store_path) = &artifact.store_path {
            match std::fs::read_link(&path) {
                Ok(target) if target == Path::new(store_path) => {}
                Ok(target) => findings.push(format!(
                    "out-link `{}` points at `{}`, not at the released `{store_path}`",
                    artifact.name,
                    target.display(),
                )),
                Err(error) => findings.push(format!("out-link `{}`: {error}", artifact.name)),
            }
        }
        let expected = Digest::from_hex(&artifact.sha256);
        let (found, finding) = compare(&path, &artifact.name, expected, gather::artifact_digest);
        findings.extend(finding);
        if let Some(digest) = found {
            artifacts.push(verify::Artifact {
                name: artifact.name.clone(),
                digest,
            });
        }
    }
    let check = ReleaseCheck::new(
        "artifacts",
        findings,
        format!(
            "{} artifact(s) in the workspace match the manifest",
            release.artifacts.len()
        ),
    );
    (check, artifacts)
}

/// The reproducibility Statements the manifest names (a release cut with `--reproduce`):
/// each signed by a policy key that may attest `reproducibility`, about the release's run, and
/// saying its artifact reproduced. Returns their folders, for the policy's `reproduced`.
fn reproducibility_check(
    release: &Release,
    attestations: &Path,
    keys: &[verify::policy::TrustedKey],
) -> (ReleaseCheck, Vec<PathBuf>) {
    let mut folders: Vec<PathBuf> = Vec::new();
    if release
        .artifacts
        .iter()
        .all(|artifact| artifact.reproducibility.is_none())
    {
        let check = ReleaseCheck::new(
            "reproducibility",
            Vec::new(),
            "not asked: the release was cut without --reproduce".to_owned(),
        );
        return (check, folders);
    }
    let mut findings = Vec::new();
    for artifact in &release.artifacts {
        let Some(descriptor) = &artifact.reproducibility else {
            findings.push(format!(
                "`{}` has no reproducibility attestation, though the release's others do",
                artifact.name
            ));
            continue;
        };
        let name = descriptor.name.as_deref().unwrap_or_default();
        let path = attestations.join(name);
        let bytes = match crate::bounded::read(&path, crate::bounded::Kind::Attestation) {
            Ok(bytes) => bytes,
            Err(error) => {
                findings.push(format!("cannot read `{}`: {error}", path.display()));
                continue;
            }
        };
        findings.extend(reproduced(
            &evidence::parse_signed(path.clone(), 0, &bytes, keys),
            name,
            artifact,
            &release.run_id,
            keys,
        ));
        if let Some(folder) = path.parent()
            && !folders.iter().any(|known| known == folder)
        {
            folders.push(folder.to_path_buf());
        }
    }
    let check = ReleaseCheck::new(
        "reproducibility",
        findings,
        format!(
            "a rebuild reproduced each of the {} artifact(s): {}",
            release.artifacts.len(),
            (folders.iter())
                .map(|folder| folder.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    (check, folders)
}

/// What is wrong with a reproducibility Statement as evidence for `artifact`, if anything.
fn reproduced(
    file: &evidence::EvidenceFile,
    name: &str,
    artifact: &crate::release::manifest::Artifact,
    run_id: &str,
    keys: &[verify::policy::TrustedKey],
) -> Vec<String> {
    let content = match &file.content {
        Ok(content) => content,
        Err(error) => return vec![format!("`{name}`: {error}")],
    };
    let mut findings = Vec::new();
    if !(content.signed_by.iter()).any(|index| keys[*index].allows("reproducibility")) {
        findings.push(format!(
            "`{name}` has no signature by a policy key that may attest `reproducibility`"
        ));
    }
    match &content.kind {
        evidence::Kind::Reproducibility {
            run_id: checked,
            results,
        } => {
            if checked != run_id {
                findings.push(format!(
                    "`{name}` checks run {checked}, not the release's run {run_id}"
                ));
            }
            let says = (results.iter()).any(|(_, attested, reproduced)| {
                *reproduced && attested.as_deref() == Some(artifact.sha256.as_str())
            });
            if !says {
                findings.push(format!(
                    "`{name}` does not say that `{}` (sha256:{}) reproduced",
                    artifact.name, artifact.sha256
                ));
            }
        }
        _ => findings.push(format!("`{name}` is not a reproducibility Statement")),
    }
    findings
}

impl ReleaseReport {
    /// The report for people: each check, then the verify engine's report.
    #[must_use]
    pub fn render(&self) -> String {
        let mut text = format!("release {} ({})\n", self.version, self.tag);
        for check in &self.checks {
            let mark = if check.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(text, "  {mark} {}", check.name);
            for finding in &check.findings {
                let _ = writeln!(text, "         {finding}");
            }
        }
        if let Some(verification) = &self.verification {
            text.push('\n');
            text.push_str(&verification.render());
        }
        let _ = writeln!(
            text,
            "\nrelease {}: {}",
            self.version,
            if self.passed {
                "VERIFIED"
            } else {
                "NOT VERIFIED"
            }
        );
        text
    }
}
