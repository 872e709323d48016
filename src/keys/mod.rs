//! Signing keys. `Signer` and `Verifier` are the extension points (a KMS or a hardware key
//! plugs in here); ECDSA P-256 over SHA-256 with DER signatures is the built-in kind, the
//! same as cosign's.

mod ecdsa;
mod file;

pub use ecdsa::{EcdsaSigner, EcdsaVerifier, key_id};
pub use file::{KeyError, default_key_path, load_or_create_development_key, load_private_key};

/// Signs messages; never reveals the private key.
pub trait Signer: Send + Sync {
    /// The in-toto key id of the public key.
    fn key_id(&self) -> &str;
    /// A DER-encoded ECDSA signature over SHA-256 of `message`.
    fn sign(&self, message: &[u8]) -> Vec<u8>;
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
    fn public_key_pem(&self) -> &str {
        (**self).public_key_pem()
    }
}

/// Checks signatures made by one key.
pub trait Verifier: Send + Sync {
    fn key_id(&self) -> &str;
    fn verify(&self, message: &[u8], signature: &[u8]) -> bool;
}
