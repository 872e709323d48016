//! The verdict as a SLSA Verification Summary Attestation
//! (`https://slsa.dev/verification_summary/v1`): subjects the artifacts, the policy and every
//! input attestation by digest, signed like any gantry attestation.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::attest::{PAYLOAD_TYPE, ResourceDescriptor, Statement};
use crate::keys::Signer;
use crate::verify::report::Report;

pub const VERIFIER_ID: &str = "https://gantry.dev/verifier/v1";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate {
    verifier: Verifier,
    time_verified: String,
    resource_uri: String,
    policy: Reference,
    input_attestations: Vec<Reference>,
    verification_result: &'static str,
    verified_levels: Vec<&'static str>,
    dependency_levels: BTreeMap<String, u32>,
    slsa_version: &'static str,
}

#[derive(Serialize)]
struct Verifier {
    id: &'static str,
    version: BTreeMap<&'static str, &'static str>,
}

#[derive(Serialize)]
struct Reference {
    uri: String,
    digest: BTreeMap<&'static str, String>,
}

fn reference(uri: &str, sha256: &str) -> Reference {
    Reference {
        uri: uri.to_owned(),
        digest: BTreeMap::from([("sha256", sha256.to_owned())]),
    }
}

/// The signed VSA of `report`, verified at `time` (Unix seconds), as envelope JSON bytes.
pub fn write(report: &Report, time: i64, signer: &dyn Signer) -> Result<Vec<u8>, String> {
    let subjects = report
        .artifacts
        .iter()
        .map(|artifact| {
            let digest = crate::digest::Digest::from_hex(&artifact.sha256)
                .ok_or_else(|| format!("internal: bad digest of `{}`", artifact.name))?;
            Ok(ResourceDescriptor::named(artifact.name.clone(), &digest))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let passed = report.passed;
    let predicate = Predicate {
        verifier: Verifier {
            id: VERIFIER_ID,
            version: BTreeMap::from([("gantry", env!("CARGO_PKG_VERSION"))]),
        },
        time_verified: crate::time::rfc3339(time),
        resource_uri: report
            .artifacts
            .first()
            .map(|artifact| artifact.name.clone())
            .unwrap_or_default(),
        policy: reference(&report.policy.path, &report.policy.sha256),
        input_attestations: report
            .attestations
            .iter()
            .map(|attestation| reference(&attestation.name, &attestation.sha256))
            .collect(),
        verification_result: if passed { "PASSED" } else { "FAILED" },
        // A gantry run on a developer's or CI machine is not a hosted, hardened builder:
        // a passing verdict vouches for build level 1 (provenance that says how it was made).
        verified_levels: vec![if passed {
            "SLSA_BUILD_LEVEL_1"
        } else {
            "SLSA_BUILD_LEVEL_0"
        }],
        dependency_levels: BTreeMap::new(),
        slsa_version: "1.0",
    };
    let statement = Statement::new(subjects, crate::attest::predicate::VSA, predicate);
    let body = serde_json::to_vec(&statement).map_err(|error| error.to_string())?;
    let envelope = crate::attest::dsse::sign(PAYLOAD_TYPE, &body, signer);
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}
