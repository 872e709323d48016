//! REAPI digests: the lowercase hex SHA-256 of a blob and its size.

use prost::Message;

use super::reapi;
use crate::digest::Digest;

/// The REAPI digest of `bytes`.
#[must_use]
pub fn of_bytes(bytes: &[u8]) -> reapi::Digest {
    from(&Digest::of_bytes(bytes), bytes.len() as u64)
}

/// A gantry digest and size as a REAPI digest.
#[must_use]
pub fn from(digest: &Digest, size: u64) -> reapi::Digest {
    reapi::Digest {
        hash: digest.hex(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
    }
}

/// A message's wire bytes and their digest: what goes to the CAS.
#[must_use]
pub fn encoded(message: &impl Message) -> (reapi::Digest, Vec<u8>) {
    let bytes = message.encode_to_vec();
    (of_bytes(&bytes), bytes)
}

/// The digest's hash as a gantry digest and its size, when it is well formed.
#[must_use]
pub fn parse(digest: &reapi::Digest) -> Option<(Digest, u64)> {
    let size = u64::try_from(digest.size_bytes).ok()?;
    Some((Digest::from_hex(&digest.hash)?, size))
}

/// A digest from its `hash/size` form.
#[must_use]
pub fn parse_display(text: &str) -> Option<reapi::Digest> {
    let (hash, size) = text.split_once('/')?;
    let digest = reapi::Digest {
        hash: hash.to_owned(),
        size_bytes: size.parse().ok()?,
    };
    parse(&digest).map(|_| digest)
}

/// `hash/size`, as `ByteStream` resource names and messages write a digest.
#[must_use]
pub fn display(digest: &reapi::Digest) -> String {
    format!("{}/{}", digest.hash, digest.size_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_empty_blob_has_the_well_known_digest() {
        let digest = of_bytes(b"");
        assert_eq!(
            display(&digest),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855/0"
        );
        assert_eq!(parse(&digest).map(|(_, size)| size), Some(0));
        let bad = reapi::Digest {
            hash: "XYZ".to_owned(),
            size_bytes: -1,
        };
        assert!(parse(&bad).is_none());
    }
}
