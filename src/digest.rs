//! The one content digest type: SHA-256, shown as lowercase hex everywhere.

use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A SHA-256 digest. gantry names every blob, action and attestation by one.
///
/// Only SHA-256 exists today; the algorithm is part of the type's name in JSON
/// (`{"sha256": "<hex>"}`) so a second one can be added without ambiguity.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    pub const ALGORITHM: &'static str = "sha256";

    #[must_use]
    pub fn of_bytes(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// Hashes everything `reader` yields.
    pub fn of_reader(mut reader: impl Read) -> io::Result<Self> {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 256 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            hasher.update(&buffer[..read]);
        }
        Ok(Self(hasher.finalize().into()))
    }

    pub fn of_file(path: &Path) -> io::Result<Self> {
        let mut file = std::fs::File::open(path)?;
        let length = file.metadata()?.len();
        // Small files (most build outputs) in one read, without a large zeroed buffer.
        if length <= 1 << 20 {
            let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0) + 1);
            file.read_to_end(&mut bytes)?;
            return Ok(Self::of_bytes(&bytes));
        }
        Self::of_reader(file)
    }

    #[must_use]
    pub fn from_raw(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    #[must_use]
    pub fn hex(&self) -> String {
        crate::hex::encode(&self.0)
    }

    /// The 64 lowercase hex digits, without allocating (paths built per step).
    #[must_use]
    pub fn hex_digits(&self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut digits = [0u8; 64];
        for (index, byte) in self.0.iter().enumerate() {
            digits[2 * index] = DIGITS[usize::from(byte >> 4)];
            digits[2 * index + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        digits
    }

    /// `folder/XX/HEX` + `suffix` in one allocation: the store's and the attestation store's
    /// layout, built for every step of a run.
    #[must_use]
    pub fn sharded_path(&self, folder: &std::path::Path, suffix: &str) -> std::path::PathBuf {
        use std::os::unix::ffi::OsStrExt as _;
        let digits = self.hex_digits();
        let folder = folder.as_os_str().as_bytes();
        let mut bytes = Vec::with_capacity(folder.len() + 68 + suffix.len());
        bytes.extend_from_slice(folder);
        bytes.push(b'/');
        bytes.extend_from_slice(&digits[..2]);
        bytes.push(b'/');
        bytes.extend_from_slice(&digits);
        bytes.extend_from_slice(suffix.as_bytes());
        std::path::PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes),
        )
    }

    /// Parses 64 lowercase or uppercase hex digits.
    #[must_use]
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = crate::hex::decode(text)?;
        Some(Self(bytes.try_into().ok()?))
    }
}

/// Feeds a sequence of labelled fields into one digest without ambiguity: every field is
/// length-prefixed, so `("ab","c")` and `("a","bc")` differ.
#[derive(Default)]
pub struct DigestBuilder(Sha256);

impl DigestBuilder {
    #[must_use]
    pub fn new(domain: &str) -> Self {
        let mut builder = Self(Sha256::new());
        builder.field(domain.as_bytes());
        builder
    }

    pub fn field(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.update((bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
        self
    }

    pub fn str(&mut self, text: &str) -> &mut Self {
        self.field(text.as_bytes())
    }

    #[must_use]
    pub fn finish(self) -> Digest {
        Digest(self.0.finalize().into())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Digest({})", self.hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::from_hex(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a sha256 hex digest: `{text}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_the_known_sha256() {
        assert_eq!(
            Digest::of_bytes(b"").hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn hex_round_trips() {
        let digest = Digest::of_bytes(b"gantry");
        assert_eq!(Digest::from_hex(&digest.hex()), Some(digest));
        assert_eq!(Digest::from_hex("zz"), None);
    }

    #[test]
    fn builder_fields_are_unambiguous() {
        let mut first = DigestBuilder::new("t");
        first.str("ab").str("c");
        let mut second = DigestBuilder::new("t");
        second.str("a").str("bc");
        assert_ne!(first.finish(), second.finish());
    }
}
