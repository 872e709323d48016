//! `gantry release VERSION`: check git (a clean tree, a version that moves forward, a tag that
//! does not exist), run the release pipeline, write the signed manifest and the notes, and
//! tag the built commit with the manifest's digest. Nothing is tagged when anything fails.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use semver::Version;

use crate::atomic;
use crate::attest::provenance::ReleaseParameter;
use crate::attest::{self, PAYLOAD_TYPE, ResourceDescriptor, Statement};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::keys::Signer;
use crate::pipeline::Pipeline;
use crate::release::git::Repository;
use crate::release::manifest::{self, Release};
use crate::release::{FOLDER, MANIFEST, NOTES, TAG_MANIFEST_LINE, notes, version};
use crate::run::RunSummary;

/// What was checked before the run, and what the release will be.
pub struct Plan {
    pub version: Version,
    pub tag: String,
    /// The last release's version and tag.
    pub previous: Option<(Version, String)>,
    /// HEAD when the release started: the commit built and tagged.
    pub commit: String,
    /// Paths that differ from the commit (only with `allow_dirty`).
    pub dirty: Vec<String>,
    pub allow_dirty: bool,
    repository: Repository,
}

/// How many differing paths a refusal lists.
const LISTED: usize = 10;

/// Checks that `version` may be released from the workspace as it is.
pub fn plan(
    pipeline: &Pipeline,
    version_text: &str,
    allow_dirty: bool,
    cache_dir: &Path,
    attestations: &Path,
) -> Result<Plan> {
    let version = version::parse(version_text).map_err(Error::Usage)?;
    let tag = version::tag_name(&version);
    let repository = Repository::open(&pipeline.root).map_err(Error::Release)?;
    if let Some(existing) = repository.tag(&tag).map_err(Error::Release)? {
        return Err(Error::Release(format!(
            "tag `{tag}` exists already (on commit {}): a release is cut once; choose the next version",
            existing.commit
        )));
    }
    let names = repository.tag_names().map_err(Error::Release)?;
    let previous = version::last_release(names.iter().map(String::as_str));
    version::follows(&version, previous.as_ref()).map_err(Error::Release)?;
    let commit = repository.head().map_err(Error::Release)?;
    let generated = crate::git::generated(pipeline, cache_dir, attestations);
    let dirty = repository
        .changed_paths(&pipeline.root, &generated)
        .map_err(Error::Release)?;
    if !dirty.is_empty() && !allow_dirty {
        let mut listed = dirty
            .iter()
            .take(LISTED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if dirty.len() > LISTED {
            let _ = write!(listed, " and {} more", dirty.len() - LISTED);
        }
        return Err(Error::Release(format!(
            "the work tree differs from commit {commit}: {listed}. Commit or stash the changes, or pass --allow-dirty (the provenance and the manifest record it)"
        )));
    }
    Ok(Plan {
        version,
        tag,
        previous,
        commit,
        dirty,
        allow_dirty,
        repository,
    })
}

impl Plan {
    /// What the run's provenance records of the release.
    #[must_use]
    pub fn parameter(&self) -> ReleaseParameter {
        ReleaseParameter {
            version: self.version.to_string(),
            tag: self.tag.clone(),
            allow_dirty: self.allow_dirty,
        }
    }
}

/// A release written (and tagged, unless a dry run).
#[derive(Debug, serde::Serialize)]
pub struct Cut {
    pub version: String,
    pub tag: String,
    /// Whether the tag was created (not with `--dry-run`).
    pub tagged: bool,
    pub commit: String,
    pub run_id: String,
    pub manifest: PathBuf,
    pub manifest_sha256: String,
    pub notes: PathBuf,
    /// (name, sha256) of each artifact.
    pub artifacts: Vec<(String, String)>,
    /// With `--reproduce`: the reproducibility Statement, under the attestations folder.
    pub reproducibility: Option<String>,
    pub previous: Option<String>,
}

/// What a successful release run made: its provenance and the artifacts the manifest will
/// name, with what vouches for each.
pub struct Built {
    pub provenance: ResourceDescriptor,
    pub artifacts: Vec<manifest::Artifact>,
}

impl Built {
    /// The steps that made the artifacts: what `--reproduce` rebuilds (with what they need).
    #[must_use]
    pub fn steps(&self) -> Vec<String> {
        let mut steps: Vec<String> = (self.artifacts.iter())
            .map(|artifact| artifact.step.clone())
            .collect();
        steps.sort();
        steps.dedup();
        steps
    }

    /// Names the reproducibility Statement `statement` (a path under `attestations`) for each
    /// artifact it says reproduced. An artifact it does not cover, or says differs, refuses
    /// the release: `--reproduce` asked for proof.
    pub fn attach_reproducibility(
        &mut self,
        statement: &Path,
        predicate: &crate::repro::predicate::Predicate,
        attestations: &Path,
    ) -> Result<()> {
        let bytes = crate::bounded::read(statement, crate::bounded::Kind::Attestation)
            .map_err(Error::read(statement))?;
        let name = (statement.strip_prefix(attestations))
            .unwrap_or(statement)
            .to_string_lossy()
            .into_owned();
        let descriptor = ResourceDescriptor::named(name, &Digest::of_bytes(&bytes));
        let mut failures = Vec::new();
        for artifact in &mut self.artifacts {
            let result = (predicate.results.iter()).find(|result| {
                result
                    .attested
                    .as_ref()
                    .map(|digests| digests.sha256.as_str())
                    == Some(artifact.sha256.as_str())
            });
            match result {
                Some(result) if result.reproduced => {
                    artifact.reproducibility = Some(descriptor.clone());
                }
                Some(result) => failures.push(format!(
                    "`{}` did not reproduce: {}",
                    artifact.name,
                    result.cause.as_deref().unwrap_or("its rebuild differs")
                )),
                None => failures.push(format!(
                    "`{}` was not rebuilt by the reproduction",
                    artifact.name
                )),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Release(format!(
                "{}; see `{}`. No manifest was written and no tag made",
                failures.join("; "),
                statement.display()
            )))
        }
    }
}

/// After the release run: whether it succeeded, and what it made.
pub fn built(pipeline: &Pipeline, summary: &RunSummary) -> Result<Built> {
    if !summary.success() {
        return Err(Error::Release(format!(
            "the release pipeline failed (run {}): no manifest was written and no tag made",
            summary.run_id
        )));
    }
    // Parsed only: `gantry release verify` checks signatures against a policy.
    let run_files = crate::verify::gather::read_folders(
        std::slice::from_ref(&summary.run_dir),
        &[],
        crate::verify::Signatures::default(),
    )?;
    let provenance = (run_files.iter())
        .find(|file| file.name == crate::attest::run_folder::PROVENANCE)
        .ok_or_else(|| Error::Release(format!("run {} has no provenance", summary.run_id)))?;
    let artifacts = manifest::artifacts(pipeline, &summary.run_id, &run_files, provenance)
        .map_err(Error::Release)?;
    Ok(Built {
        provenance: ResourceDescriptor::named(
            format!("{}/{}", summary.run_id, provenance.name),
            &provenance.digest,
        ),
        artifacts,
    })
}

/// After a successful run (and its reproduction, if asked): the manifest, the notes, then
/// `will_pass` (given the version: the check `release verify` will make, minus the tag), then
/// the tag.
#[expect(clippy::too_many_arguments)]
pub fn finish(
    plan: &Plan,
    pipeline: &Pipeline,
    summary: &RunSummary,
    built: Built,
    attestations: &Path,
    signer: &dyn Signer,
    dry_run: bool,
    will_pass: &dyn Fn(&str) -> Result<()>,
) -> Result<Cut> {
    let head = plan.repository.head().map_err(Error::Release)?;
    if head != plan.commit {
        return Err(Error::Release(format!(
            "HEAD moved from {} to {head} while the release ran: nothing was tagged; start again",
            plan.commit
        )));
    }
    let folder = attestations.join(FOLDER).join(plan.version.to_string());
    let commits = (plan.repository)
        .commits_since(
            &plan.commit,
            plan.previous.as_ref().map(|(_, tag)| tag.as_str()),
        )
        .map_err(Error::Release)?;
    let previous_tag = plan.previous.as_ref().map(|(_, tag)| tag.clone());
    let notes_text = notes::render(&plan.version.to_string(), previous_tag.as_deref(), &commits);
    let notes_path = folder.join(NOTES);
    atomic::write_creating_parents(&notes_path, notes_text.as_bytes())
        .map_err(Error::write(&notes_path))?;

    let relative_pipeline = (pipeline.file.strip_prefix(&pipeline.root))
        .unwrap_or(&pipeline.file)
        .to_string_lossy()
        .into_owned();
    let release = Release {
        purl: manifest::purl(&pipeline.name, &plan.version),
        release_id: pipeline.name.clone(),
        version: plan.version.to_string(),
        tag: plan.tag.clone(),
        commit: plan.commit.clone(),
        previous: previous_tag.clone(),
        dirty: !plan.dirty.is_empty(),
        allow_dirty: plan.allow_dirty,
        pipeline: ResourceDescriptor::named(relative_pipeline, &pipeline.digest),
        run_id: summary.run_id.clone(),
        provenance: built.provenance,
        notes: ResourceDescriptor::named(
            format!("{FOLDER}/{}/{NOTES}", plan.version),
            &Digest::of_bytes(notes_text.as_bytes()),
        ),
        artifacts: built.artifacts,
    };
    let statement = Statement::new(
        release.subjects(),
        crate::attest::predicate::RELEASE,
        &release,
    );
    let body =
        serde_json::to_vec(&statement).map_err(|error| Error::Internal(error.to_string()))?;
    let envelope = attest::dsse::sign_deterministic(PAYLOAD_TYPE, &body, signer);
    let bytes =
        serde_json::to_vec_pretty(&envelope).map_err(|error| Error::Internal(error.to_string()))?;
    let manifest_path = folder.join(MANIFEST);
    atomic::write(&manifest_path, &bytes).map_err(Error::write(&manifest_path))?;
    let manifest_digest = Digest::of_bytes(&bytes);
    will_pass(&plan.version.to_string())?;

    if !dry_run {
        let message = tag_message(
            &plan.version,
            &notes_text,
            &manifest_digest,
            &summary.run_id,
        );
        plan.repository
            .create_tag(&plan.tag, &plan.commit, &message)
            .map_err(Error::Release)?;
    }
    Ok(Cut {
        version: plan.version.to_string(),
        tag: plan.tag.clone(),
        tagged: !dry_run,
        commit: plan.commit.clone(),
        run_id: summary.run_id.clone(),
        manifest: manifest_path,
        manifest_sha256: manifest_digest.hex(),
        notes: notes_path,
        artifacts: (release.artifacts.iter())
            .map(|artifact| (artifact.name.clone(), artifact.sha256.clone()))
            .collect(),
        reproducibility: (release.artifacts.iter())
            .find_map(|artifact| artifact.reproducibility.as_ref())
            .and_then(|descriptor| descriptor.name.clone()),
        previous: previous_tag,
    })
}

/// The annotated tag's message: the notes, then the manifest's digest and the run.
#[must_use]
pub fn tag_message(version: &Version, notes: &str, manifest: &Digest, run_id: &str) -> String {
    let body = notes
        .strip_prefix(&format!("# {version}\n"))
        .unwrap_or(notes)
        .trim();
    format!(
        "Release {version}\n\n{body}\n\n{TAG_MANIFEST_LINE}{}\nRun: {run_id}\n",
        manifest.hex()
    )
}

/// The manifest digest a tag's message names.
#[must_use]
pub fn manifest_of_tag(message: &str) -> Option<Digest> {
    message
        .lines()
        .find_map(|line| line.trim().strip_prefix(TAG_MANIFEST_LINE))
        .and_then(|hex| Digest::from_hex(hex.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_message_carries_the_notes_and_the_manifest_digest() {
        let digest = Digest::of_bytes(b"manifest");
        let version = Version::new(1, 2, 0);
        let message = tag_message(
            &version,
            "# 1.2.0\n\n2 commits since v1.1.0.\n",
            &digest,
            "RUN",
        );
        assert!(
            message.starts_with("Release 1.2.0\n\n2 commits since v1.1.0.\n\nManifest: sha256:")
        );
        assert!(message.ends_with("\nRun: RUN\n"));
        assert_eq!(manifest_of_tag(&message), Some(digest));
        assert_eq!(manifest_of_tag("Release 1.2.0\n"), None);
    }
}
