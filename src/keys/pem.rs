//! PEM (RFC 7468): one labelled block of base64. Only what key files need; errors never
//! quote the file's contents.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum PemError {
    #[error("not a PEM file (no `-----BEGIN ...-----` line)")]
    NoBlock,
    #[error("the file is truncated: `-----BEGIN {0}-----` has no matching END line")]
    Truncated(String),
    #[error("the `{0}` block is not valid base64 (the file is damaged)")]
    Base64(String),
}

/// The first PEM block of `text`: its label and decoded bytes.
pub(super) fn decode(text: &str) -> Result<(String, Vec<u8>), PemError> {
    let mut lines = text.lines().map(str::trim);
    let label = lines
        .by_ref()
        .find_map(|line| line.strip_prefix("-----BEGIN ")?.strip_suffix("-----"))
        .ok_or(PemError::NoBlock)?
        .to_owned();
    let end = format!("-----END {label}-----");
    let mut body = String::new();
    let mut ended = false;
    for line in lines {
        if line == end {
            ended = true;
            break;
        }
        body.push_str(line);
    }
    if !ended {
        return Err(PemError::Truncated(label));
    }
    let bytes = STANDARD
        .decode(body.as_bytes())
        .map_err(|_| PemError::Base64(label.clone()))?;
    Ok((label, bytes))
}

/// `bytes` as a PEM block with 64-character lines and a final newline.
#[must_use]
pub(super) fn encode(label: &str, bytes: &[u8]) -> String {
    let body = STANDARD.encode(bytes);
    let mut text = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        text.push('\n');
    }
    text + "-----END " + label + "-----\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_names_truncation() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = encode("TEST KEY", &bytes);
        assert!(
            text.lines()
                .all(|line| line.len() <= 64 || line.starts_with("-----"))
        );
        assert_eq!(decode(&text), Ok(("TEST KEY".to_owned(), bytes)));
        let cut = &text[..text.len() / 2];
        assert_eq!(decode(cut), Err(PemError::Truncated("TEST KEY".to_owned())));
        assert_eq!(decode("hello"), Err(PemError::NoBlock));
        assert_eq!(
            decode("-----BEGIN X-----\n!!\n-----END X-----\n"),
            Err(PemError::Base64("X".to_owned()))
        );
    }
}
