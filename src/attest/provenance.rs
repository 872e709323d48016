//! SLSA provenance v1 (<https://slsa.dev/spec/v1.0/provenance>): how a run made its release
//! artifacts. gantry's build type is documented in `docs/provenance.md`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::attest::{DigestSet, ResourceDescriptor};

pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What `externalParameters` and `internalParameters` mean: see `docs/provenance.md`.
pub const BUILD_TYPE: &str = "https://gantry.dev/provenance/pipeline/v1";
/// A run on the machine gantry runs on; CI passes its own id with `--builder-id`.
pub const LOCAL_BUILDER_ID: &str = "https://gantry.dev/builders/local/v1";
/// The media type of each step's attestation (a DSSE envelope, JSON).
pub const ENVELOPE_MEDIA_TYPE: &str = "application/vnd.dsse.envelope.v1+json";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub build_definition: BuildDefinition,
    pub run_details: RunDetails,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    pub build_type: String,
    pub external_parameters: ExternalParameters,
    pub internal_parameters: InternalParameters,
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// What the person who started the run chose; an auditor compares these with what they expect.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ExternalParameters {
    pub pipeline: PipelineParameter,
    /// The steps the run ran, in file order.
    pub steps: Vec<String>,
    /// `--param NAME=VALUE` values the run was started with.
    pub parameters: BTreeMap<String, String>,
    /// The release this run was cut for (`gantry release`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<ReleaseParameter>,
    /// Who the run's usage is for (`[pipeline] tenant`, `gantry run --tenant`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// What `gantry release VERSION` ran for: the version, its tag, and whether a work tree
/// that differs from the commit was allowed (`--allow-dirty`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseParameter {
    pub version: String,
    pub tag: String,
    pub allow_dirty: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PipelineParameter {
    pub name: String,
    /// The pipeline file, relative to the workspace root.
    pub path: String,
    pub digest: BTreeMap<String, String>,
}

/// What gantry itself set up; the same for every run with the same gantry and machine setup.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct InternalParameters {
    /// The sandbox settings every step's action key holds (`docs/sandbox.md`).
    pub sandbox: String,
    /// `SOURCE_DATE_EPOCH` given to steps: the commit time of HEAD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<i64>,
    /// Each step's warm folders (`warm = [...]`): state kept between runs, in no action key;
    /// the step links say which runs used them, and `gantry repro` rebuilds without them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub warm_folders: BTreeMap<String, Vec<String>>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    pub builder: Builder,
    /// Every step's attestation in the run folder, by digest.
    pub byproducts: Vec<ResourceDescriptor>,
    /// Last, so that a run's statement is everything but its id and times up to a fixed
    /// suffix: what a no-op run compares with the run before it (`run::provenance::Body`).
    pub metadata: Metadata,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Builder {
    pub id: String,
    pub version: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub invocation_id: String,
    pub started_on: String,
    pub finished_on: String,
}

/// One `flake.lock` input, as `resolvedDependencies` records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockedInput {
    pub name: String,
    pub uri: String,
    pub rev: Option<String>,
    pub nar_hash: Option<String>,
    /// The lock file, relative to the workspace root.
    pub lock_file: String,
}

/// The inputs of a flake's lock file (every node but the root that has a `locked` entry).
/// Malformed lock files give no inputs: Nix itself would have refused them.
#[must_use]
pub fn locked_inputs(lock_file: &str, text: &str) -> Vec<LockedInput> {
    let Ok(lock) = serde_json::from_str::<serde_json::Value>(text) else {
        return Vec::new();
    };
    let root = lock["root"].as_str().unwrap_or("root");
    let Some(nodes) = lock["nodes"].as_object() else {
        return Vec::new();
    };
    let text_of = |value: &serde_json::Value| value.as_str().map(str::to_owned);
    nodes
        .iter()
        .filter(|(name, _)| name.as_str() != root)
        .filter_map(|(name, node)| {
            let locked = node.get("locked")?;
            let rev = text_of(&locked["rev"]);
            let uri = match locked["type"].as_str()? {
                "github" | "gitlab" | "sourcehut" => format!(
                    "{}:{}/{}/{}",
                    locked["type"].as_str()?,
                    locked["owner"].as_str()?,
                    locked["repo"].as_str()?,
                    rev.as_deref()?
                ),
                "git" => match &rev {
                    Some(rev) => format!("git+{}?rev={rev}", locked["url"].as_str()?),
                    None => format!("git+{}", locked["url"].as_str()?),
                },
                "path" => format!("path:{}", locked["path"].as_str()?),
                _ => locked["url"].as_str()?.to_owned(),
            };
            Some(LockedInput {
                name: name.clone(),
                uri,
                rev,
                nar_hash: text_of(&locked["narHash"]),
                lock_file: lock_file.to_owned(),
            })
        })
        .collect()
}

impl LockedInput {
    #[must_use]
    pub fn descriptor(&self) -> ResourceDescriptor {
        let mut annotations = serde_json::Map::new();
        annotations.insert("flakeInput".to_owned(), self.name.clone().into());
        annotations.insert("lockFile".to_owned(), self.lock_file.clone().into());
        if let Some(hash) = &self.nar_hash {
            annotations.insert("narHash".to_owned(), hash.clone().into());
        }
        ResourceDescriptor {
            name: Some(self.name.clone()),
            uri: Some(self.uri.clone()),
            digest: self
                .rev
                .iter()
                .map(|rev| ("gitCommit", rev.clone()))
                .collect(),
            annotations: Some(annotations),
            ..ResourceDescriptor::default()
        }
    }
}

/// The workspace's git state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GitSource {
    /// Absolute path of the repository's work tree.
    pub path: String,
    pub commit: String,
    pub reference: Option<String>,
    /// Whether tracked files differ from the commit, or untracked files exist.
    pub dirty: bool,
}

impl GitSource {
    #[must_use]
    pub fn descriptor(&self) -> ResourceDescriptor {
        let mut annotations = serde_json::Map::new();
        annotations.insert("dirty".to_owned(), self.dirty.into());
        if let Some(reference) = &self.reference {
            annotations.insert("ref".to_owned(), reference.clone().into());
        }
        ResourceDescriptor {
            uri: Some(format!("git+file://{}", self.path)),
            digest: DigestSet::one("gitCommit", self.commit.clone()),
            annotations: Some(annotations),
            ..ResourceDescriptor::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_inputs_become_uris_with_their_commit() {
        let lock = r#"{
          "nodes": {
            "nixpkgs": {"locked": {"lastModified": 1, "narHash": "sha256-abc=", "owner": "NixOS",
              "repo": "nixpkgs", "rev": "0123abcd", "type": "github"},
              "original": {"owner": "NixOS", "repo": "nixpkgs", "type": "github"}},
            "tools": {"locked": {"type": "git", "url": "https://example.org/tools.git", "rev": "feed"}},
            "root": {"inputs": {"nixpkgs": "nixpkgs", "tools": "tools"}}
          },
          "root": "root", "version": 7
        }"#;
        let inputs = locked_inputs("nix/flake.lock", lock);
        assert_eq!(inputs.len(), 2);
        assert_eq!(inputs[0].uri, "github:NixOS/nixpkgs/0123abcd");
        assert_eq!(inputs[1].uri, "git+https://example.org/tools.git?rev=feed");
        let descriptor = inputs[0].descriptor();
        assert_eq!(descriptor.digest.get("gitCommit"), Some("0123abcd"));
        assert_eq!(
            descriptor.annotations.expect("annotations")["narHash"],
            "sha256-abc="
        );
        assert!(locked_inputs("x", "not json").is_empty());
    }
}
