//! DSSE envelopes: <https://github.com/secure-systems-lab/dsse/blob/master/envelope.md>.
//! What is signed is the pre-authentication encoding (PAE) of the payload type and body.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::keys::{Signer, Verifier};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<Signature>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Signature {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub keyid: String,
    pub sig: String,
}

/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
#[must_use]
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut message = pae_header(payload_type, body.len()).into_bytes();
    message.extend_from_slice(body);
    message
}

/// The PAE up to the body.
fn pae_header(payload_type: &str, body_length: usize) -> String {
    format!(
        "DSSEv1 {} {payload_type} {body_length} ",
        payload_type.len()
    )
}

/// Signs `body` and wraps it in an envelope.
#[must_use]
pub fn sign(payload_type: &str, body: &[u8], signer: &dyn Signer) -> Envelope {
    let signature = signer.sign(&pae(payload_type, body));
    envelope(payload_type, body, signer, &signature)
}

/// Like [`sign`], with a deterministic signature (RFC 6979 for file keys): the same statement
/// and key give the same envelope, byte for byte, so an attestation that is a build output
/// (an SBOM's) reproduces. The signature is the same ECDSA over SHA-256 of the PAE.
pub fn sign_deterministic(payload_type: &str, body: &[u8], signer: &dyn Signer) -> Envelope {
    let digest = crate::digest::Digest::of_bytes(&pae(payload_type, body));
    let signature = signer.sign_digest(&digest);
    envelope(payload_type, body, signer, &signature)
}

fn envelope(payload_type: &str, body: &[u8], signer: &dyn Signer, signature: &[u8]) -> Envelope {
    Envelope {
        payload_type: payload_type.to_owned(),
        payload: STANDARD.encode(body),
        signatures: vec![Signature {
            keyid: signer.key_id().to_owned(),
            sig: STANDARD.encode(signature),
        }],
    }
}

/// [`sign_deterministic`] for a large body, written straight to `writer` as
/// `serde_json::to_writer_pretty` writes the [`Envelope`]: the PAE is hashed without being
/// built and the body is base64-encoded piece by piece. A provenance of 50,000 artifacts has a
/// 19 MB body; the PAE, the encoded payload and the envelope's JSON would be 70 MB more.
pub fn write_signed(
    writer: &mut impl std::io::Write,
    payload_type: &str,
    body: &[u8],
    signer: &dyn Signer,
) -> std::io::Result<()> {
    use sha2::Digest as _;
    let mut pae = sha2::Sha256::new();
    pae.update(pae_header(payload_type, body.len()));
    pae.update(body);
    let digest = crate::digest::Digest::from_raw(pae.finalize().into());
    let signature = STANDARD.encode(signer.sign_digest(&digest));
    let json = |text: &str| serde_json::to_string(text).map_err(std::io::Error::other);
    write!(
        writer,
        "{{\n  \"payloadType\": {},\n  \"payload\": \"",
        json(payload_type)?
    )?;
    // Whole 3-byte groups per piece, so that only the last one is padded.
    let mut encoded = String::with_capacity(4 * 16_384);
    for piece in body.chunks(3 * 16_384) {
        encoded.clear();
        STANDARD.encode_string(piece, &mut encoded);
        writer.write_all(encoded.as_bytes())?;
    }
    writer.write_all(b"\",\n  \"signatures\": [\n    {\n")?;
    if !signer.key_id().is_empty() {
        writeln!(writer, "      \"keyid\": {},", json(signer.key_id())?)?;
    }
    write!(
        writer,
        "      \"sig\": {}\n    }}\n  ]\n}}",
        json(&signature)?
    )
}

/// Why an envelope did not verify.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("payload is not valid base64")]
    Payload,
    #[error("no signature verifies with the given key")]
    NoValidSignature,
}

/// Verifies that some signature of `envelope` is `verifier`'s; returns the payload bytes.
pub fn verify(envelope: &Envelope, verifier: &dyn Verifier) -> Result<Vec<u8>, EnvelopeError> {
    let body = STANDARD
        .decode(&envelope.payload)
        .map_err(|_| EnvelopeError::Payload)?;
    let message = pae(&envelope.payload_type, &body);
    let valid = envelope.signatures.iter().any(|signature| {
        STANDARD
            .decode(&signature.sig)
            .is_ok_and(|bytes| verifier.verify(&message, &bytes))
    });
    if valid {
        Ok(body)
    } else {
        Err(EnvelopeError::NoValidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_spec_example() {
        // From the DSSE protocol document.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn a_written_envelope_is_the_signed_one_byte_for_byte() {
        use p256::ecdsa::SigningKey;
        let signer = crate::keys::EcdsaSigner::new(&SigningKey::from_slice(&[7; 32]).expect("key"))
            .expect("signer");
        // Lengths around the piece size, to catch padding in the middle.
        for length in [
            0,
            1,
            2,
            3,
            3 * 16_384 - 1,
            3 * 16_384,
            3 * 16_384 + 1,
            200_000,
        ] {
            let body: Vec<u8> = (0..length)
                .map(|index| u8::try_from(index % 251).unwrap_or(0))
                .collect();
            let mut written = Vec::new();
            write_signed(&mut written, "application/vnd.in-toto+json", &body, &signer)
                .expect("write");
            let expected = sign_deterministic("application/vnd.in-toto+json", &body, &signer);
            let pretty = serde_json::to_vec_pretty(&expected).expect("json");
            assert_eq!(
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&pretty)
            );
            let envelope: Envelope = serde_json::from_slice(&written).expect("parses");
            assert_eq!(
                verify(&envelope, &signer.verifier()).expect("verifies"),
                body
            );
        }
    }

    #[test]
    fn deterministic_envelopes_repeat_and_verify_like_any_other() {
        use p256::ecdsa::SigningKey;
        let signer = crate::keys::EcdsaSigner::new(&SigningKey::from_slice(&[7; 32]).expect("key"))
            .expect("signer");
        let verifier = signer.verifier();
        let first = sign_deterministic("t", b"body", &signer);
        assert_eq!(first, sign_deterministic("t", b"body", &signer));
        assert_ne!(first, sign_deterministic("t", b"other", &signer));
        assert_eq!(verify(&first, &verifier).expect("verifies"), b"body");
        assert_ne!(
            sign("t", b"body", &signer),
            first,
            "ring's nonces are random"
        );
    }
}
