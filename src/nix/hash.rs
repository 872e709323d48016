//! Nix's spellings of a SHA-256 hash: SRI (`sha256-<base64>`, what `nix path-info --json`
//! prints as `narHash`), `sha256:<nixbase32>` (what older Nix and `ca` fields print) and hex.

use base64::Engine;

use crate::digest::Digest;

/// Nix's base-32 alphabet (no e, o, u, t).
const ALPHABET: &[u8; 32] = b"0123456789abcdfghijklmnpqrsvwxyz";

/// Parses any of Nix's spellings of a SHA-256 hash.
#[must_use]
pub fn parse(text: &str) -> Option<Digest> {
    if let Some(base64) = text.strip_prefix("sha256-") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64)
            .ok()?;
        return Some(Digest::from_raw(bytes.try_into().ok()?));
    }
    let body = text.strip_prefix("sha256:").unwrap_or(text);
    match body.len() {
        64 => Digest::from_hex(body),
        52 => decode_base32(body).map(Digest::from_raw),
        _ => None,
    }
}

/// Nix's base 32: the bytes read as one little-endian number, printed from the most
/// significant 5-bit digit down.
fn decode_base32(text: &str) -> Option<[u8; 32]> {
    let mut bytes = [0u8; 32];
    for (position, character) in text.bytes().rev().enumerate() {
        let digit = ALPHABET.iter().position(|&c| c == character)?;
        let bit = position * 5;
        let (index, shift) = (bit / 8, bit % 8);
        let value = u16::try_from(digit).ok()? << shift;
        let [low, high] = value.to_le_bytes();
        *bytes.get_mut(index)? |= low;
        if high != 0 {
            // The top digit may carry bits past the last byte only if they are zero.
            *bytes.get_mut(index + 1)? |= high;
        }
    }
    Some(bytes)
}

/// The SRI spelling Nix prints (`sha256-<base64>`).
#[must_use]
pub fn sri(digest: &Digest) -> String {
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest.as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // One NAR hash as Nix 2.8 printed it three ways (`nix path-info --json`, `nix hash path
    // --base16`, `nix hash path --base32`) for the same store path.
    const HEX: &str = "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13";
    const SRI: &str = "sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=";
    const BASE32: &str = "04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw";

    #[test]
    fn every_spelling_names_the_same_digest() {
        let expected = Digest::from_hex(HEX).expect("hex");
        assert_eq!(parse(SRI), Some(expected));
        assert_eq!(parse(&format!("sha256:{BASE32}")), Some(expected));
        assert_eq!(parse(BASE32), Some(expected));
        assert_eq!(parse(HEX), Some(expected));
        assert_eq!(sri(&expected), SRI);
    }

    #[test]
    fn malformed_hashes_are_refused() {
        for text in [
            "",
            "sha256-",
            "sha256-abc",
            "md5-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=",
            "sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqe",
            "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        ] {
            assert_eq!(parse(text), None, "{text}");
        }
    }
}
