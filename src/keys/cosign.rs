//! cosign's encrypted private key format: PEM `ENCRYPTED SIGSTORE PRIVATE KEY` (older cosign:
//! `ENCRYPTED COSIGN PRIVATE KEY`) around JSON that holds a PKCS#8 DER key sealed with `NaCl`
//! secretbox (XSalsa20-Poly1305) under a key derived from the password with scrypt.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crypto_secretbox::XSalsa20Poly1305;
use crypto_secretbox::aead::{Aead, KeyInit};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::keys::pem;

pub const LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
pub const LEGACY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// `cosign generate-key-pair`'s cost: N = 2^16, r = 8, p = 1.
pub const LOG2_N: u8 = 16;
const R: u32 = 8;
const P: u32 = 1;
/// scrypt needs 128·r·N bytes; a key file may not ask for more than 1 GiB.
const MAX_MEMORY: u64 = 1 << 30;

#[derive(Serialize, Deserialize)]
struct Sealed {
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum CosignKeyError {
    #[error("the encrypted key is damaged: {0}")]
    Damaged(&'static str),
    #[error("unsupported key derivation `{0}` (cosign keys use scrypt)")]
    Kdf(String),
    #[error("unsupported scrypt parameters N={n}, r={r}, p={p}")]
    KdfParams { n: u64, r: u32, p: u32 },
    #[error("unsupported cipher `{0}` (cosign keys use nacl/secretbox)")]
    Cipher(String),
    #[error("wrong password (or the key file was modified)")]
    WrongPassword,
}

/// Seals a PKCS#8 DER private key as cosign does, with a fresh random salt and nonce.
#[must_use]
pub fn encrypt(pkcs8_der: &[u8], password: &[u8], salt: [u8; 32], nonce: [u8; 24]) -> String {
    encrypt_with_cost(pkcs8_der, password, salt, nonce, LOG2_N)
}

pub(crate) fn encrypt_with_cost(
    pkcs8_der: &[u8],
    password: &[u8],
    salt: [u8; 32],
    nonce: [u8; 24],
    log2_n: u8,
) -> String {
    let key = derive(password, &salt, log2_n, R, P).unwrap_or_default();
    let cipher = XSalsa20Poly1305::new(key.as_slice().into());
    // Sealing a buffer in memory does not fail.
    let ciphertext = cipher.encrypt(&nonce.into(), pkcs8_der).unwrap_or_default();
    let sealed = Sealed {
        kdf: Kdf {
            name: "scrypt".to_owned(),
            params: KdfParams {
                n: 1 << log2_n,
                r: R,
                p: P,
            },
            salt: STANDARD.encode(salt),
        },
        cipher: Cipher {
            name: "nacl/secretbox".to_owned(),
            nonce: STANDARD.encode(nonce),
        },
        ciphertext: STANDARD.encode(ciphertext),
    };
    pem::encode(LABEL, &serde_json::to_vec(&sealed).unwrap_or_default())
}

/// Opens the sealed JSON (a PEM block's bytes); returns the PKCS#8 DER key.
pub fn decrypt(sealed: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, CosignKeyError> {
    let sealed: Sealed = serde_json::from_slice(sealed)
        .map_err(|_| CosignKeyError::Damaged("its JSON does not parse"))?;
    if sealed.kdf.name != "scrypt" {
        return Err(CosignKeyError::Kdf(sealed.kdf.name));
    }
    if sealed.cipher.name != "nacl/secretbox" {
        return Err(CosignKeyError::Cipher(sealed.cipher.name));
    }
    let KdfParams { n, r, p } = sealed.kdf.params;
    let unsupported = CosignKeyError::KdfParams { n, r, p };
    if !n.is_power_of_two() || n < 2 || r == 0 || p == 0 || p > 16 {
        return Err(unsupported);
    }
    if 128 * u64::from(r) * n > MAX_MEMORY {
        return Err(unsupported);
    }
    let log2_n =
        u8::try_from(n.trailing_zeros()).map_err(|_| CosignKeyError::KdfParams { n, r, p })?;
    let salt = STANDARD
        .decode(&sealed.kdf.salt)
        .map_err(|_| CosignKeyError::Damaged("its salt is not base64"))?;
    let nonce: [u8; 24] = STANDARD
        .decode(&sealed.cipher.nonce)
        .ok()
        .and_then(|nonce| nonce.try_into().ok())
        .ok_or(CosignKeyError::Damaged(
            "its nonce is not 24 bytes of base64",
        ))?;
    let ciphertext = STANDARD
        .decode(&sealed.ciphertext)
        .map_err(|_| CosignKeyError::Damaged("its ciphertext is not base64"))?;
    let key = derive(password, &salt, log2_n, r, p).ok_or(unsupported)?;
    let cipher = XSalsa20Poly1305::new(key.as_slice().into());
    cipher
        .decrypt(&nonce.into(), ciphertext.as_slice())
        .map(Zeroizing::new)
        .map_err(|_| CosignKeyError::WrongPassword)
}

fn derive(password: &[u8], salt: &[u8], log2_n: u8, r: u32, p: u32) -> Option<Zeroizing<[u8; 32]>> {
    let params = scrypt::Params::new(log2_n, r, p, 32).ok()?;
    let mut key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password, salt, &params, key.as_mut_slice()).ok()?;
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(text: &str, password: &[u8]) -> Result<Zeroizing<Vec<u8>>, CosignKeyError> {
        let (label, bytes) = pem::decode(text).expect("pem");
        assert_eq!(label, LABEL);
        decrypt(&bytes, password)
    }

    #[test]
    fn round_trips_and_rejects_a_wrong_password() {
        let text = encrypt_with_cost(b"secret key", b"hunter2", [1; 32], [2; 24], 10);
        assert_eq!(
            open(&text, b"hunter2").expect("opens").as_slice(),
            b"secret key"
        );
        assert_eq!(open(&text, b"hunter3"), Err(CosignKeyError::WrongPassword));
    }

    #[test]
    fn refuses_costs_that_would_exhaust_memory() {
        let text = encrypt_with_cost(b"k", b"", [1; 32], [2; 24], 10);
        let (_, bytes) = pem::decode(&text).expect("pem");
        let json = String::from_utf8(bytes)
            .expect("utf-8")
            .replace("\"N\":1024", "\"N\":1073741824");
        assert!(matches!(
            decrypt(json.as_bytes(), b""),
            Err(CosignKeyError::KdfParams { .. })
        ));
    }
}
