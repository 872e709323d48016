//! ECDSA P-256 keys (what cosign and in-toto's `ecdsa-sha2-nistp256` use).

use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};

use crate::digest::Digest;
use crate::keys::{Signer, Verifier};

/// The in-toto key id: SHA-256 of the key's canonical JSON, as securesystemslib computes it
/// (sorted keys, no whitespace, only `\` and `"` escaped; the PEM keeps its newlines).
#[must_use]
pub fn key_id(public_key_pem: &str) -> String {
    let escaped = public_key_pem.replace('\\', "\\\\").replace('"', "\\\"");
    let canonical = format!(
        r#"{{"keytype":"ecdsa","keyval":{{"public":"{escaped}"}},"scheme":"ecdsa-sha2-nistp256"}}"#
    );
    Digest::of_bytes(canonical.as_bytes()).hex()
}

pub struct EcdsaSigner {
    key: SigningKey,
    key_id: String,
    public_pem: String,
}

impl EcdsaSigner {
    #[must_use]
    pub fn new(key: SigningKey) -> Self {
        let public_pem = public_pem(key.verifying_key());
        Self {
            key_id: key_id(&public_pem),
            key,
            public_pem,
        }
    }

    #[must_use]
    pub fn verifier(&self) -> EcdsaVerifier {
        EcdsaVerifier::new(*self.key.verifying_key())
    }
}

fn public_pem(key: &VerifyingKey) -> String {
    // Encoding a valid point as SPKI cannot fail; an empty string would only break key ids.
    key.to_public_key_pem(LineEnding::LF).unwrap_or_default()
}

impl Signer for EcdsaSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn sign(&self, message: &[u8]) -> Vec<u8> {
        // RFC 6979 deterministic nonces: the same statement always gets the same signature,
        // which keeps attestations byte-for-byte reproducible.
        let signature: Signature = self.key.sign(message);
        signature.to_der().as_bytes().to_vec()
    }

    fn public_key_pem(&self) -> &str {
        &self.public_pem
    }
}

impl std::fmt::Debug for EcdsaSigner {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("EcdsaSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

pub struct EcdsaVerifier {
    key: VerifyingKey,
    key_id: String,
}

impl EcdsaVerifier {
    #[must_use]
    pub fn new(key: VerifyingKey) -> Self {
        Self {
            key_id: key_id(&public_pem(&key)),
            key,
        }
    }

    /// Parses a PKIX `PUBLIC KEY` PEM.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        use p256::pkcs8::DecodePublicKey;
        VerifyingKey::from_public_key_pem(pem.trim())
            .map(Self::new)
            .map_err(|error| format!("not a P-256 public key: {error}"))
    }
}

impl Verifier for EcdsaVerifier {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        DerSignature::from_bytes(signature)
            .is_ok_and(|signature| self.key.verify(message, &signature).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn signatures_round_trip_and_reject_tampering() {
        let signer = EcdsaSigner::new(SigningKey::random(&mut OsRng));
        let verifier = signer.verifier();
        let signature = signer.sign(b"message");
        assert!(verifier.verify(b"message", &signature));
        assert!(!verifier.verify(b"massage", &signature));
        assert_eq!(signer.key_id(), verifier.key_id());
        assert_eq!(
            signer.sign(b"message"),
            signature,
            "RFC 6979 signatures are deterministic"
        );
    }
}
