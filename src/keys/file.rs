//! Reading key files, and the development key gantry makes when none is given.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use crate::atomic;
use crate::keys::{EcdsaSigner, cosign, pem};

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

/// Asked for a key's password, only when the key file is encrypted.
pub type Password<'a> = &'a mut dyn FnMut() -> Result<Zeroizing<String>, String>;

/// Loads a P-256 private key: cosign's encrypted format (asking `password`), PKCS#8
/// (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM. The file must not be readable by group or
/// others.
pub fn load_private_key(path: &Path, password: Password<'_>) -> Result<EcdsaSigner, KeyError> {
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
    let text = Zeroizing::new(
        crate::bounded::read_to_string(path, crate::bounded::Kind::Policy)
            .map_err(|error| key_error(path, format!("cannot read it: {error}"), None))?,
    );
    parse_private_key(&text, password)
        .and_then(|key| EcdsaSigner::new(&key))
        .map_err(|message| key_error(path, message, None))
}

fn parse_private_key(text: &str, password: Password<'_>) -> Result<SigningKey, String> {
    let (label, der) = pem::decode(text).map_err(|error| error.to_string())?;
    let der = Zeroizing::new(der);
    match label.as_str() {
        cosign::LABEL | cosign::LEGACY_LABEL => {
            let password = password()?;
            let der = cosign::decrypt(&der, password.as_bytes())
                .map_err(|error| error.to_string())?;
            signing_key_from_pkcs8(&der)
        }
        "PRIVATE KEY" => signing_key_from_pkcs8(&der),
        "EC PRIVATE KEY" => {
            use p256::elliptic_curve::SecretKey;
            SecretKey::<p256::NistP256>::from_sec1_der(&der)
                .map(SigningKey::from)
                .map_err(|_| "not a P-256 EC private key (gantry signs with ECDSA P-256, as cosign does)".to_owned())
        }
        "ENCRYPTED PRIVATE KEY" => Err(
            "an OpenSSL-encrypted PKCS#8 key, which gantry does not read: make a cosign key with `gantry keys generate`, or decrypt it with `openssl pkcs8 -in KEY -out PLAIN.pem` (and `chmod 600 PLAIN.pem`)".to_owned(),
        ),
        "RSA PRIVATE KEY" => Err(
            "an RSA key: gantry signs with ECDSA P-256, as cosign does (`gantry keys generate` makes one)".to_owned(),
        ),
        other => Err(format!(
            "a PEM `{other}` block, not a private key (expected `ENCRYPTED SIGSTORE PRIVATE KEY` or `PRIVATE KEY`)"
        )),
    }
}

/// A PKCS#8 key, checked to be ECDSA P-256 first so that other keys get a precise message.
fn signing_key_from_pkcs8(der: &[u8]) -> Result<SigningKey, String> {
    use p256::pkcs8::{ObjectIdentifier, PrivateKeyInfo};
    const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
    let info = PrivateKeyInfo::try_from(der)
        .map_err(|_| "not a PKCS#8 private key (the file is damaged)".to_owned())?;
    let name = |oid: ObjectIdentifier| match oid.to_string().as_str() {
        "1.3.101.112" => "Ed25519".to_owned(),
        "1.2.840.113549.1.1.1" => "RSA".to_owned(),
        "1.3.132.0.34" => "ECDSA P-384".to_owned(),
        "1.3.132.0.35" => "ECDSA P-521".to_owned(),
        "1.3.132.0.10" => "ECDSA secp256k1".to_owned(),
        other => format!("of algorithm {other}"),
    };
    let curve = info.algorithm.parameters_oid().ok();
    if info.algorithm.oid != EC_PUBLIC_KEY || curve != Some(P256) {
        let kind = if info.algorithm.oid == EC_PUBLIC_KEY {
            curve.map_or_else(|| "ECDSA on an unnamed curve".to_owned(), name)
        } else {
            name(info.algorithm.oid)
        };
        return Err(format!(
            "the key is {kind}; gantry signs with ECDSA P-256 only, as cosign does (`gantry keys generate` makes one)"
        ));
    }
    SigningKey::from_pkcs8_der(der).map_err(|_| "not a valid ECDSA P-256 private key".to_owned())
}

/// A new cosign-compatible key pair: the encrypted private key PEM and the PKIX public key PEM.
pub fn generate(password: &[u8]) -> Result<(Zeroizing<String>, String), String> {
    let key = SigningKey::random(&mut OsRng);
    let der = key
        .to_pkcs8_der()
        .map_err(|error| format!("cannot encode the new key: {error}"))?;
    let mut salt = [0u8; 32];
    let mut nonce = [0u8; 24];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let private = Zeroizing::new(cosign::encrypt(der.as_bytes(), password, salt, nonce));
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|error| format!("cannot encode the public key: {error}"))?;
    Ok((private, public))
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
        let mut no_password = || Err("the development key is never encrypted".to_owned());
        return load_private_key(path, &mut no_password).map(|signer| (signer, false));
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
    use crate::keys::Signer as _;

    fn parse(text: &str, password: &str) -> Result<SigningKey, String> {
        let password = password.to_owned();
        parse_private_key(text, &mut || Ok(Zeroizing::new(password.clone())))
    }

    #[test]
    fn rejects_garbage_without_echoing_it() {
        let error = parse(
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----",
            "",
        )
        .unwrap_err();
        assert!(!error.contains("c2VjcmV0"));
        assert!(parse("hello", "").is_err());
    }

    #[test]
    fn generated_keys_open_with_their_password_only() {
        let (private, public) = generate(b"correct horse").expect("generate");
        assert!(private.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        let key = parse(&private, "correct horse").expect("opens");
        let signer = EcdsaSigner::new(&key).expect("signer");
        assert_eq!(signer.public_key_pem(), public);
        let error = parse(&private, "battery staple").unwrap_err();
        assert!(error.contains("wrong password"), "{error}");
    }

    #[test]
    fn names_the_curve_of_a_key_that_is_not_p256() {
        use p256::pkcs8::EncodePrivateKey as _;
        let p384 = p384_pkcs8();
        let sealed = cosign::encrypt_with_cost(&p384, b"", [3; 32], [4; 24], 10);
        let error = parse(&sealed, "").unwrap_err();
        assert!(error.contains("ECDSA P-384"), "{error}");
        let plain = pem::encode("PRIVATE KEY", &p384);
        assert!(parse(&plain, "").unwrap_err().contains("ECDSA P-384"));
        let p256 = SigningKey::random(&mut OsRng).to_pkcs8_der().expect("der");
        assert!(parse(&pem::encode("PRIVATE KEY", p256.as_bytes()), "").is_ok());
    }

    /// A P-384 PKCS#8 key as openssl writes it (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-384`): only its algorithm identifier matters here.
    fn p384_pkcs8() -> Vec<u8> {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(P384_KEY)
            .expect("base64")
    }

    const P384_KEY: &str = "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDCq0pz90a9xdvPsvxGr94MDcqCVq71gpEMEmPFZrr9CjjrWTbF/SRH1lvY8l2JcedOhZANiAATUQ+CVLZDrmYhv3vfpFIVbOjK0dBWpjRJF+EYRK+bjxnvFSVxG/z1CTn9R81vnJhY0jTkIBtmyWL9nu8r24O/SN4wxPXQklCSX21kOsR8B7vNrWtltW7VT0FVnN0FUuj0=";
}
