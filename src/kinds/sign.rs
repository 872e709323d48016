//! The `sign` step kind: for each input artifact, `ARTIFACT.sig` (base64 of a DER ECDSA
//! signature over its SHA-256, as `cosign sign-blob` writes it) and `ARTIFACT.sigstore.json`
//! (a Sigstore bundle v0.3 with the public key's hint). Runs in gantry, never in a sandbox, so
//! the private key never reaches a step.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::attest::{bundle, link};
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::commit::Failure;
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::keys::{self, Signer};
use crate::kinds::in_process::{InProcess, LinkParts, Made, store_file};
use crate::pipeline::StepId;
use crate::pipeline::model::SIGNATURE_SUFFIXES;

/// Bump when what a sign step writes changes: old cache entries stop matching.
const VERSION: u32 = 1;

pub struct SignAction {
    key: Digest,
    inputs: Vec<InputFile>,
    signer: Arc<dyn Signer>,
}

impl InProcess for SignAction {
    fn key(&self) -> Digest {
        self.key
    }

    fn inputs(&self) -> &[InputFile] {
        &self.inputs
    }

    fn make(&self, context: &Context, _: StepId) -> Result<Made, Failure> {
        make(context, self)
    }
}

/// Resolves the artifacts and computes the action key: the artifacts' digests and the key.
pub(crate) fn plan(context: &Context, id: StepId) -> Result<SignAction, String> {
    let step = &context.pipeline.steps[id];
    let signer = context
        .artifact_keys
        .by_step
        .get(&step.name)
        .cloned()
        .ok_or_else(|| format!("internal: no signing key was loaded for `{}`", step.name))?;
    let resolved = inputs::resolve(context, id)?;
    let mut artifacts = Vec::with_capacity(step.inputs.len());
    for pattern in &step.inputs {
        let input = resolved
            .iter()
            .find(|input| input.path == pattern.pattern)
            .ok_or_else(|| format!("`{}` is not a file this step can sign", pattern.pattern))?;
        artifacts.push(input.clone());
    }
    let mut key = ActionKey::of_step(step, step.kind.name(), VERSION);
    key.text("key id", signer.key_id())
        .text("public key", signer.public_key_pem());
    for input in &artifacts {
        key.input(&input.path, &input.digest);
    }
    Ok(SignAction {
        key: key.finish(),
        inputs: artifacts,
        signer,
    })
}

/// Signs every artifact, stores the signature files and the step's link, and records the
/// result in the action cache (in that order, as for commands).
fn make(context: &Context, action: &SignAction) -> Result<Made, Failure> {
    let public_key = action.signer.public_key_pem();
    let hint = keys::public_key_hint(public_key)
        .ok_or_else(|| Failure::input("the signing key's public key is not a P-256 PEM"))?;
    let mut records = Vec::with_capacity(2 * action.inputs.len());
    for input in &action.inputs {
        let signature = action.signer.sign_digest(&input.digest);
        if signature.is_empty() {
            return Err(Failure::environment(format!(
                "the key could not sign `{}`",
                input.path
            )));
        }
        let bundle = bundle::for_artifact(&input.digest, &signature, &hint);
        let mut bundle_bytes = serde_json::to_vec_pretty(&bundle)
            .map_err(|error| Failure::internal(error.to_string()))?;
        bundle_bytes.push(b'\n');
        // cosign prints the signature as one base64 line without a newline; so does gantry.
        let contents = [STANDARD.encode(&signature).into_bytes(), bundle_bytes];
        for (suffix, bytes) in SIGNATURE_SUFFIXES.iter().zip(contents) {
            records.push(store_file(
                context,
                format!("{}{suffix}", input.path),
                &bytes,
            )?);
        }
    }
    Ok(Made {
        records,
        link: link_parts(action, &hint),
    })
}

fn link_parts(action: &SignAction, hint: &str) -> LinkParts {
    let mut command = vec!["gantry".to_owned(), "sign".to_owned()];
    command.extend(action.inputs.iter().map(|input| input.path.clone()));
    let environment = link::Environment {
        signer: Some(link::Signer {
            keyid: action.signer.key_id().to_owned(),
            public_key_hint: hint.to_owned(),
            public_key: action.signer.public_key_pem().to_owned(),
            scheme: "ecdsa-sha2-nistp256".to_owned(),
        }),
        action_key: action.key.hex(),
        ..link::Environment::default()
    };
    LinkParts {
        command,
        byproducts: link::Byproducts::default(),
        environment,
    }
}
