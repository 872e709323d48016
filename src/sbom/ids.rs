//! Identifiers in SBOM documents: SPDX element ids and content-derived UUIDs.

use sha1::{Digest as _, Sha1};

use crate::digest::Digest;

/// RFC 4122's URL namespace.
const NAMESPACE_URL: [u8; 16] = [
    0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
];

/// A name-based UUID (RFC 4122 version 5: SHA-1 of a namespace and a name).
#[must_use]
pub fn uuid_v5(namespace: &[u8; 16], name: &[u8]) -> [u8; 16] {
    let mut hasher = Sha1::new();
    hasher.update(namespace);
    hasher.update(name);
    let hash = hasher.finalize();
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&hash[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x50;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

/// The UUID gantry names a document with: version 5 in the namespace of the URL
/// `https://gantry.dev/sbom`, named by the SHA-256 of the document's content.
#[must_use]
pub fn content_uuid(content: &Digest) -> String {
    let namespace = uuid_v5(&NAMESPACE_URL, b"https://gantry.dev/sbom");
    format_uuid(&uuid_v5(&namespace, content.hex().as_bytes()))
}

#[must_use]
pub fn format_uuid(uuid: &[u8; 16]) -> String {
    let hex = crate::hex::encode(uuid);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// `SPDXRef-<kind>-<readable part>-<8 hex of the identity>`: only the characters SPDX allows
/// (letters, digits, `.` and `-`), and distinct for distinct identities even when their
/// readable parts are not (`a_b` and `a-b` both read `a-b`).
#[must_use]
pub fn spdx_id(kind: &str, readable: &str, identity: &str) -> String {
    let mut id = format!("SPDXRef-{kind}-");
    for character in readable.chars() {
        id.push(
            if character.is_ascii_alphanumeric() || character == '.' || character == '-' {
                character
            } else {
                '-'
            },
        );
    }
    id.push('-');
    id.push_str(&Digest::of_bytes(identity.as_bytes()).hex()[..8]);
    id
}

/// SHA-1 of `bytes`.
#[must_use]
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_v5_matches_rfc_4122_examples() {
        // Python: uuid.uuid5(uuid.NAMESPACE_URL, "https://gantry.dev/sbom")
        assert_eq!(
            format_uuid(&uuid_v5(&NAMESPACE_URL, b"https://gantry.dev/sbom")),
            "108bfb42-a58d-566c-bd0c-4b86f534242d"
        );
        // Python: uuid.uuid5(uuid.NAMESPACE_URL, "http://python.org/")
        assert_eq!(
            format_uuid(&uuid_v5(&NAMESPACE_URL, b"http://python.org/")),
            "4c565f0d-3f5a-5890-b41b-20cf47701c5e"
        );
    }

    #[test]
    fn spdx_ids_keep_only_allowed_characters_and_stay_distinct() {
        let one = spdx_id("Package", "a_b@1.0", "cargo:a_b@1.0");
        let two = spdx_id("Package", "a-b@1.0", "cargo:a-b@1.0");
        assert!(one.starts_with("SPDXRef-Package-a-b-1.0-"), "{one}");
        assert_ne!(one, two);
        assert!(
            one.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
        );
    }
}
