//! Sigstore bundle v0.3 with a public-key hint (no certificate, no transparency log entry):
//! what `cosign sign-blob --key --new-bundle-format` writes for a key pair, and what
//! sigstore-js's `@sigstore/verify` accepts given the public key.
//! <https://github.com/sigstore/protobuf-specs/blob/main/protos/sigstore_bundle.proto>

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::attest::Envelope;
use crate::digest::Digest;

pub const MEDIA_TYPE: &str = "application/vnd.dev.sigstore.bundle.v0.3+json";

/// Protobuf-JSON field names, as the specification's JSON form spells them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Bundle {
    pub media_type: String,
    pub verification_material: VerificationMaterial,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_signature: Option<MessageSignature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dsse_envelope: Option<Envelope>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct VerificationMaterial {
    pub public_key: PublicKeyIdentifier,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublicKeyIdentifier {
    pub hint: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MessageSignature {
    pub message_digest: HashOutput,
    /// Base64 of the DER ECDSA signature.
    pub signature: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct HashOutput {
    pub algorithm: String,
    /// Base64 of the digest bytes.
    pub digest: String,
}

/// A bundle for a signature over an artifact whose SHA-256 is `digest`.
#[must_use]
pub fn for_artifact(digest: &Digest, signature_der: &[u8], hint: &str) -> Bundle {
    Bundle {
        media_type: MEDIA_TYPE.to_owned(),
        verification_material: material(hint),
        message_signature: Some(MessageSignature {
            message_digest: HashOutput {
                algorithm: "SHA2_256".to_owned(),
                digest: STANDARD.encode(digest.as_bytes()),
            },
            signature: STANDARD.encode(signature_der),
        }),
        dsse_envelope: None,
    }
}

/// A bundle carrying a signed DSSE envelope (an attestation).
#[must_use]
pub fn for_envelope(envelope: &Envelope, hint: &str) -> Bundle {
    Bundle {
        media_type: MEDIA_TYPE.to_owned(),
        verification_material: material(hint),
        message_signature: None,
        dsse_envelope: Some(envelope.clone()),
    }
}

/// [`for_envelope`] as the JSON gantry writes (pretty, final newline), the hint taken from
/// the public key the envelope was signed with.
pub fn envelope_json(envelope: &Envelope, public_key_pem: &str) -> Result<Vec<u8>, String> {
    let hint = crate::keys::public_key_hint(public_key_pem)
        .ok_or("the signing key has no P-256 public key")?;
    let mut json = serde_json::to_vec_pretty(&for_envelope(envelope, &hint))
        .map_err(|error| format!("encoding the bundle: {error}"))?;
    json.push(b'\n');
    Ok(json)
}

fn material(hint: &str) -> VerificationMaterial {
    VerificationMaterial {
        public_key: PublicKeyIdentifier {
            hint: hint.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_follow_the_protobuf_json_form() {
        let bundle = for_artifact(&Digest::of_bytes(b"x"), &[1, 2], "aGludA==");
        let json = serde_json::to_value(&bundle).expect("json");
        assert_eq!(json["mediaType"], MEDIA_TYPE);
        assert_eq!(
            json["verificationMaterial"]["publicKey"]["hint"],
            "aGludA=="
        );
        assert_eq!(
            json["messageSignature"]["messageDigest"]["algorithm"],
            "SHA2_256"
        );
        assert_eq!(json["messageSignature"]["signature"], "AQI=");
        assert!(json.get("dsseEnvelope").is_none());
    }
}
