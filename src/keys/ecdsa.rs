//! ECDSA P-256 keys (what cosign and in-toto's `ecdsa-sha2-nistp256` use).

use p256::ecdsa::{SigningKey, VerifyingKey};
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

/// The Sigstore bundle's `publicKey.hint`, as sigstore-go computes it: base64 of the
/// SHA-256 of the key's PKIX DER. `None` for a PEM that is not a P-256 public key.
#[must_use]
pub fn public_key_hint(public_key_pem: &str) -> Option<String> {
    use base64::Engine as _;
    use p256::pkcs8::DecodePublicKey;
    let key = VerifyingKey::from_public_key_pem(public_key_pem.trim()).ok()?;
    let der = key.to_public_key_der().ok()?;
    Some(
        base64::engine::general_purpose::STANDARD
            .encode(Digest::of_bytes(der.as_bytes()).as_bytes()),
    )
}

/// Signs with `ring` (about 20 µs a signature here; the pure-Rust `p256` took 190 µs, which
/// was a tenth of the cost of a trivial step). `p256` still parses and writes key files.
pub struct EcdsaSigner {
    key: ring::signature::EcdsaKeyPair,
    random: ring::rand::SystemRandom,
    /// For `sign_digest`: ring signs only whole messages, with random nonces.
    deterministic: SigningKey,
    verifying: VerifyingKey,
    key_id: String,
    public_pem: String,
}

impl EcdsaSigner {
    pub fn new(key: &SigningKey) -> Result<Self, String> {
        use p256::pkcs8::EncodePrivateKey;
        let public_pem = public_pem(key.verifying_key());
        let document = key
            .to_pkcs8_der()
            .map_err(|error| format!("cannot encode the key: {error}"))?;
        let random = ring::rand::SystemRandom::new();
        let pair = ring::signature::EcdsaKeyPair::from_pkcs8(
            &ring::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            document.as_bytes(),
            &random,
        )
        .map_err(|error| format!("the key is not usable for ECDSA P-256: {error}"))?;
        Ok(Self {
            key: pair,
            random,
            deterministic: key.clone(),
            verifying: *key.verifying_key(),
            key_id: key_id(&public_pem),
            public_pem,
        })
    }

    #[must_use]
    pub fn verifier(&self) -> EcdsaVerifier {
        EcdsaVerifier::new(self.verifying)
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
        // Nonces are random, so two signatures of one statement differ; the statements
        // themselves are reproducible, and verification does not care.
        self.key
            .sign(&self.random, message)
            .map(|signature| signature.as_ref().to_vec())
            .unwrap_or_default()
    }

    fn sign_digest(&self, digest: &Digest) -> Vec<u8> {
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let signature: Result<p256::ecdsa::Signature, _> =
            self.deterministic.sign_prehash(digest.as_bytes());
        signature
            .map(|signature| signature.to_der().as_bytes().to_vec())
            .unwrap_or_default()
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

/// Verification goes through ring, several times faster than p256's pure-Rust arithmetic
/// (docs/PERFORMANCE.md): `gantry verify` checks a signature per attestation.
pub struct EcdsaVerifier {
    key: ring::signature::UnparsedPublicKey<Vec<u8>>,
    key_id: String,
}

impl EcdsaVerifier {
    #[must_use]
    pub fn new(key: VerifyingKey) -> Self {
        let point = key.to_encoded_point(false).as_bytes().to_vec();
        Self {
            key_id: key_id(&public_pem(&key)),
            key: ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                point,
            ),
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
        self.key.verify(message, signature).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn signatures_round_trip_and_reject_tampering() {
        let signer = EcdsaSigner::new(&SigningKey::random(&mut OsRng)).expect("signer");
        let verifier = signer.verifier();
        let signature = signer.sign(b"message");
        assert!(verifier.verify(b"message", &signature));
        assert!(!verifier.verify(b"massage", &signature));
        assert_eq!(signer.key_id(), verifier.key_id());
        assert!(verifier.verify(b"message", &signer.sign(b"message")));
    }

    #[test]
    fn digest_signatures_are_deterministic_and_verify_over_the_message() {
        let signer = EcdsaSigner::new(&SigningKey::random(&mut OsRng)).expect("signer");
        let digest = Digest::of_bytes(b"artifact");
        let signature = signer.sign_digest(&digest);
        assert_eq!(signature, signer.sign_digest(&digest));
        assert!(signer.verifier().verify(b"artifact", &signature));
        assert!(!signer.verifier().verify(b"artifacT", &signature));
    }
}
