//! The in-toto link predicate v0.3: what one step read, ran and produced.
//! <https://github.com/in-toto/attestation/blob/main/spec/predicates/link.md>
//!
//! The spec leaves `byproducts` and `environment` open; gantry's are typed here, one type for
//! the kinds that write them and the auditors (`verify`, `repro`, `logs`) that read them.
//! Every field defaults when absent, so a link from another tool, or from an older gantry,
//! reads; a field of the wrong type does not.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

use crate::attest::statement::{DescriptorSummary, ResourceDescriptor};

pub const LINK_PREDICATE_TYPE: &str = "https://in-toto.io/attestation/link/v0.3";

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Link {
    pub name: String,
    pub command: Vec<String>,
    pub materials: Vec<ResourceDescriptor>,
    pub byproducts: Byproducts,
    pub environment: Environment,
}

/// What an auditor reads of a link (verify reads thousands): parsed straight from the JSON
/// of a [`Link`] with everything else skipped unbuilt. Same fields, same names;
/// `the_summary_reads_what_the_link_writes` keeps the two in step.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct LinkSummary {
    pub name: String,
    pub materials: Vec<DescriptorSummary>,
    pub environment: EnvironmentSummary,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct EnvironmentSummary {
    pub sandbox: Option<SandboxSummary>,
    pub template: Option<TemplateSummary>,
}

/// A link's template: which pack.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct TemplateSummary {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct SandboxSummary {
    pub network: bool,
}

/// What the step left besides its products: a process's exit status and streams (by digest:
/// the bytes are in the store, `gantry logs` shows them), an in-process kind's result.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Byproducts {
    #[serde(rename = "return-value", skip_serializing_if = "Option::is_none")]
    pub return_value: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stdout: Option<Stream>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stderr: Option<Stream>,
    /// A gate's (`pass`) or a rollout's (`promoted`) result.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
    /// A rollout's requests to the canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_requests: Option<u64>,
    /// An SBOM step's document: its predicate type, how many packages and files it lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicate_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub packages: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<u64>,
}

/// One output stream of the step's process.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Stream {
    pub sha256: String,
    /// The stream was cut at this many bytes (the sandbox's log limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truncated_at: Option<u64>,
}

/// A step's template: the version, its pack's digest, where it came from, who signed it, and
/// the step's name in it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Template {
    pub name: String,
    pub version: String,
    pub sha256: String,
    pub uri: String,
    /// The key id of the publisher's key that signed the pack's statement.
    pub publisher_key: String,
    pub step: String,
}

/// Where and how the step ran. `actionKey` is always there; the rest by kind: `variables`
/// and `sandbox` for a command, `nix` and `drvPath` for a Nix build, `signer` for a
/// signature, `sourceDateEpoch` for an SBOM.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Environment {
    /// The command's environment, in the pipeline's order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variables: Option<IndexMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<Sandbox>,
    /// Nix's settings that decide how hermetic its build is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nix: Option<crate::nix::Settings>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drv_path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signer: Option<Signer>,
    /// An SBOM step copied another tool's document rather than writing its own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub imported: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub action_key: String,
    /// The time an SBOM step wrote into its document.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_date_epoch: Option<i64>,
    /// The Nix store path an SBOM step described.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_path: Option<String>,
    /// The warm folders the command found, and how many runs had written to each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warm: Vec<Warm>,
    /// The template the step was expanded from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<Template>,
    /// What `gantry repro` varied in this execution.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub varied: Vec<String>,
    /// The Nix builders the step allowed, and which built what (derivation → machine).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub builders: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub built_on: IndexMap<String, String>,
    /// A Nix rebuild (`nix build --rebuild`), and the outputs it could not compare because
    /// Nix kept no copy of the different result.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rebuild: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub differed_without_copy: Vec<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Sandbox {
    /// The sandbox settings every action key holds (`docs/sandbox.md`).
    pub settings: String,
    pub network: bool,
    /// `local` or the remote executor's name.
    pub executor: String,
    pub limits: Limits,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_cache_hit: Option<bool>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Limits {
    pub processes: u64,
    pub memory: u64,
    pub tmp: u64,
    pub output: u64,
    /// `rlimits`, or what the executor enforced them with (`cgroups`).
    pub enforced_by: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Warm {
    pub path: String,
    pub runs_before: u64,
}

/// The key a `sign` step signed with.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, rename_all = "camelCase")]
pub struct Signer {
    pub keyid: String,
    pub public_key_hint: String,
    pub public_key: String,
    pub scheme: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_in_process_link_says_only_what_it_has() {
        let link = Link {
            name: "gate".to_owned(),
            byproducts: Byproducts {
                result: Some("pass".to_owned()),
                ..Byproducts::default()
            },
            environment: Environment {
                action_key: "ab".to_owned(),
                ..Environment::default()
            },
            ..Link::default()
        };
        assert_eq!(
            serde_json::to_string(&link).expect("json"),
            r#"{"name":"gate","command":[],"materials":[],"byproducts":{"result":"pass"},"environment":{"actionKey":"ab"}}"#
        );
    }

    #[test]
    fn the_summary_reads_what_the_link_writes() {
        let mut material =
            ResourceDescriptor::named("result", &crate::digest::Digest::of_bytes(b"x"));
        material.annotations = Some(serde_json::Map::from_iter([
            ("outLink".to_owned(), "/nix/store/x".into()),
            ("role".to_owned(), "output".into()),
        ]));
        let link = Link {
            name: "build".to_owned(),
            command: vec!["make".to_owned()],
            materials: vec![material.clone()],
            byproducts: Byproducts {
                return_value: Some(0),
                ..Byproducts::default()
            },
            environment: Environment {
                sandbox: Some(Sandbox {
                    network: true,
                    settings: "s".to_owned(),
                    ..Sandbox::default()
                }),
                action_key: "ab".to_owned(),
                ..Environment::default()
            },
        };
        let json = serde_json::to_string(&link).expect("json");
        let summary: LinkSummary = serde_json::from_str(&json).expect("summary");
        assert_eq!(summary.name, link.name);
        assert!(
            summary
                .environment
                .sandbox
                .is_some_and(|sandbox| sandbox.network)
        );
        let [read] = <[DescriptorSummary; 1]>::try_from(summary.materials).expect("one");
        assert_eq!(read.name, "result");
        assert_eq!(
            read.digest.sha256,
            material.sha256().map(|digest| digest.hex())
        );
        assert_eq!(read.annotations.out_link.as_deref(), Some("/nix/store/x"));
    }

    #[test]
    fn a_foreign_link_reads_and_a_wrong_type_does_not() {
        let link: Link = serde_json::from_str(
            r#"{"name":"x","environment":{"sandbox":{"network":true},"other":1},"byproducts":{"return-value":2}}"#,
        )
        .expect("a link with fields gantry does not write");
        assert!(
            link.environment
                .sandbox
                .is_some_and(|sandbox| sandbox.network)
        );
        assert_eq!(link.byproducts.return_value, Some(2));
        assert!(
            serde_json::from_str::<Link>(r#"{"environment":{"sandbox":{"network":"yes"}}}"#)
                .is_err()
        );
    }
}
