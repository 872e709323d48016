//! Reading key files, and the development key gantry makes when none is given.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::OsRng;

use crate::keys::EcdsaSigner;
use crate::store::atomic;

/// A key file that cannot be used. Messages never include key material.
#[derive(Debug, thiserror::Error)]
#[error("signing key `{}`: {message}", path.display())]
pub struct KeyError {
    pub path: PathBuf,
    pub message: String,
    pub hint: Option<String>,
}

fn key_error(path: &Path, message: impl Into<String>, hint: Option<String>) -> KeyError {
    KeyError {
        path: path.to_path_buf(),
        message: message.into(),
        hint,
    }
}

/// Loads an unencrypted PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM P-256 key. The
/// file must not be readable by group or others.
pub fn load_private_key(path: &Path) -> Result<EcdsaSigner, KeyError> {
    let metadata = fs::metadata(path)
        .map_err(|error| key_error(path, format!("cannot read it: {error}"), None))?;
    let mode = metadata.permissions().mode();
    if mode & 0o077 != 0 {
        return Err(key_error(
            path,
            format!(
                "permissions {:04o} let other users read it; refusing to use it",
                mode & 0o7777
            ),
            Some(format!("run `chmod 600 {}`", path.display())),
        ));
    }
    let text = fs::read_to_string(path)
        .map_err(|error| key_error(path, format!("cannot read it: {error}"), None))?;
    parse_private_key(&text)
        .and_then(|key| EcdsaSigner::new(&key))
        .map_err(|message| key_error(path, message, None))
}

fn parse_private_key(text: &str) -> Result<SigningKey, String> {
    let text = text.trim();
    if text.contains("BEGIN ENCRYPTED") {
        return Err("the key is encrypted; pass an unencrypted PKCS#8 PEM key".to_owned());
    }
    if text.contains("BEGIN PRIVATE KEY") {
        return SigningKey::from_pkcs8_pem(text).map_err(|_| {
            "not an ECDSA P-256 private key (make one with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`)".to_owned()
        });
    }
    if text.contains("BEGIN EC PRIVATE KEY") {
        use p256::elliptic_curve::SecretKey;
        return SecretKey::<p256::NistP256>::from_sec1_pem(text)
            .map(SigningKey::from)
            .map_err(|_| "not a P-256 EC private key".to_owned());
    }
    Err("not a PEM private key (expected `-----BEGIN PRIVATE KEY-----`)".to_owned())
}

/// Where the development key lives: `$XDG_DATA_HOME/gantry/dev-signing-key.pem`, else
/// `$HOME/.local/share/gantry/...`. Outside every repository, so it is never committed.
#[must_use]
pub fn default_key_path(xdg_data_home: Option<&Path>, home: Option<&Path>) -> Option<PathBuf> {
    let base = match (xdg_data_home, home) {
        (Some(data), _) if data.is_absolute() => data.to_path_buf(),
        (_, Some(home)) => home.join(".local").join("share"),
        _ => return None,
    };
    Some(base.join("gantry").join("dev-signing-key.pem"))
}

/// Loads the development key at `path`, creating it (mode 0600) when absent. Returns whether
/// it was created.
pub fn load_or_create_development_key(path: &Path) -> Result<(EcdsaSigner, bool), KeyError> {
    if path.exists() {
        return load_private_key(path).map(|signer| (signer, false));
    }
    let key = SigningKey::random(&mut OsRng);
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|error| key_error(path, format!("cannot encode a new key: {error}"), None))?;
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|error| key_error(path, format!("cannot create its folder: {error}"), None))?;
    }
    atomic::write_with_mode(path, pem.as_bytes(), 0o600)
        .map_err(|error| key_error(path, format!("cannot write it: {error}"), None))?;
    let signer = EcdsaSigner::new(&key).map_err(|message| key_error(path, message, None))?;
    Ok((signer, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_echoing_it() {
        let error =
            parse_private_key("-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----")
                .unwrap_err();
        assert!(!error.contains("c2VjcmV0"));
        assert!(parse_private_key("hello").is_err());
    }
}
