//! Signing keys. `Signer` and `Verifier` are the extension points (a KMS or a hardware key
//! plugs in here); ECDSA P-256 over SHA-256 with DER signatures is the built-in kind, the
//! same as cosign's.

pub mod cosign;
mod ecdsa;
mod file;
mod pem;

pub use ecdsa::{EcdsaSigner, EcdsaVerifier, key_id, public_key_hint};
pub use file::{
    KeyError, Password, default_key_path, generate, load_or_create_development_key,
    load_private_key,
};

/// Signs messages; never reveals the private key.
pub trait Signer: Send + Sync {
    /// The in-toto key id of the public key.
    fn key_id(&self) -> &str;
    /// A DER-encoded ECDSA signature over SHA-256 of `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
    /// A DER-encoded ECDSA signature over a SHA-256 digest the caller computed: what
    /// `cosign sign-blob` makes. File keys sign deterministically (RFC 6979), so a signed
    /// artifact reproduces.
    fn sign_digest(&self, digest: &crate::digest::Digest) -> Vec<u8>;
    /// The public key as PKIX PEM (with a final newline).
    fn public_key_pem(&self) -> &str;
}

/// A signer shared by a run and by what signs after it (`gantry repro`).
impl<T: Signer + ?Sized> Signer for std::sync::Arc<T> {
    fn key_id(&self) -> &str {
        (**self).key_id()
    }
    fn sign(&self, message: &[u8]) -> Vec<u8> {
        (**self).sign(message)
    }
    fn sign_digest(&self, digest: &crate::digest::Digest) -> Vec<u8> {
        (**self).sign_digest(digest)
    }
    fn public_key_pem(&self) -> &str {
        (**self).public_key_pem()
    }
}

/// Checks signatures made by one key.
pub trait Verifier: Send + Sync {
    fn key_id(&self) -> &str;
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
}

/// Checks signatures made by any of several keys (a log whose runs were signed by a rotated
/// key, say). Its key id is the first key's.
pub struct AnyKey(pub Vec<Box<dyn Verifier>>);

impl Verifier for AnyKey {
    fn key_id(&self) -> &str {
        self.0.first().map_or("", |key| key.key_id())
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        self.0.iter().any(|key| key.verify(message, signature))
    }
}
