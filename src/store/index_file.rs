//! The on-disk form of the action cache's per-pipeline index: a small binary format, read in
//! about a millisecond for 5,000 results where JSON took ten. Anything malformed reads as
//! "no index" (the per-key entries remain the truth).
//!
//! The index ends in the run key's signature over everything before it (then the signature's
//! length, u32 LE): an index that verifies vouches for all its results at the cost of one
//! ECDSA check, where checking each result's link would cost one per step.

use crate::digest::Digest;
use crate::store::{ActionResult, OutputRecord, Usage};

const MAGIC: &[u8] = b"gantry-index/8\n";

pub fn encode<'a>(results: impl IntoIterator<Item = &'a ActionResult>) -> Vec<u8> {
    let mut bytes = MAGIC.to_vec();
    for result in results {
        bytes.extend_from_slice(result.key.as_bytes());
        bytes.extend_from_slice(result.attestation.as_bytes());
        bytes.extend_from_slice(result.stdout.as_bytes());
        bytes.extend_from_slice(result.stderr.as_bytes());
        bytes.extend_from_slice(&result.duration_ms.to_le_bytes());
        put_text(&mut bytes, &result.step);
        put_text(&mut bytes, &result.signer);
        put_usage(&mut bytes, result.usage.as_ref());
        put_count(&mut bytes, result.outputs.len());
        for output in &result.outputs {
            put_text(&mut bytes, &output.path);
            bytes.extend_from_slice(output.digest.as_bytes());
            bytes.push(
                u8::from(output.directory)
                    | u8::from(output.executable) << 1
                    | u8::from(output.link.is_some()) << 2,
            );
            if let Some(link) = &output.link {
                put_text(&mut bytes, link);
            }
        }
    }
    bytes
}

/// A presence byte, then the method, the wall time, a bit per figure and the figures present.
fn put_usage(bytes: &mut Vec<u8>, usage: Option<&Usage>) {
    let Some(usage) = usage else {
        bytes.push(0);
        return;
    };
    bytes.push(1);
    put_text(bytes, &usage.method);
    bytes.extend_from_slice(&usage.wall_us.to_le_bytes());
    let figures = usage.figures();
    let present = (figures.iter().enumerate())
        .filter(|(_, figure)| figure.is_some())
        .fold(0u8, |bits, (index, _)| bits | 1 << index);
    bytes.push(present);
    for figure in figures.into_iter().flatten() {
        bytes.extend_from_slice(&figure.to_le_bytes());
    }
    let Some(remote) = &usage.remote else {
        bytes.push(0);
        return;
    };
    bytes.push(1 | u8::from(remote.cache_hit) << 1);
    put_text(bytes, &remote.worker);
    let spans = remote.spans();
    let present = (spans.iter().enumerate())
        .filter(|(_, span)| span.is_some())
        .fold(0u8, |bits, (index, _)| bits | 1 << index);
    bytes.push(present);
    for span in spans.into_iter().flatten() {
        bytes.extend_from_slice(&span.to_le_bytes());
    }
}

fn put_count(bytes: &mut Vec<u8>, count: usize) {
    bytes.extend_from_slice(&u32::try_from(count).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_text(bytes: &mut Vec<u8>, text: &str) {
    put_count(bytes, text.len());
    bytes.extend_from_slice(text.as_bytes());
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, count: usize) -> Option<&'a [u8]> {
        let (head, tail) = self.rest.split_at_checked(count)?;
        self.rest = tail;
        Some(head)
    }

    fn digest(&mut self) -> Option<Digest> {
        Some(Digest::from_raw(self.take(32)?.try_into().ok()?))
    }

    fn count(&mut self) -> Option<usize> {
        usize::try_from(u32::from_le_bytes(self.take(4)?.try_into().ok()?)).ok()
    }

    fn number(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }

    /// A result's usage, `Ok(None)` when it was not measured; `Err` when malformed.
    fn usage(&mut self) -> Result<Option<Usage>, ()> {
        match self.take(1).ok_or(())?[0] {
            0 => Ok(None),
            1 => {
                let method = self.text().ok_or(())?;
                let wall_us = self.number().ok_or(())?;
                let present = self.take(1).ok_or(())?[0];
                let mut figures = [None; 7];
                for (index, figure) in figures.iter_mut().enumerate() {
                    if present & 1 << index != 0 {
                        *figure = Some(self.number().ok_or(())?);
                    }
                }
                let mut usage = Usage::with_figures(method, wall_us, figures);
                let flags = self.take(1).ok_or(())?[0];
                if flags & 1 != 0 {
                    let worker = self.text().ok_or(())?;
                    let present = self.take(1).ok_or(())?[0];
                    let mut spans = [None; 4];
                    for (index, span) in spans.iter_mut().enumerate() {
                        if present & 1 << index != 0 {
                            *span = Some(self.number().ok_or(())?);
                        }
                    }
                    usage.remote = Some(Box::new(crate::store::usage::Remote::with_spans(
                        worker,
                        flags & 2 != 0,
                        spans,
                    )));
                }
                Ok(Some(usage))
            }
            _ => Err(()),
        }
    }

    fn text(&mut self) -> Option<String> {
        let length = self.count()?;
        String::from_utf8(self.take(length)?.to_vec()).ok()
    }
}

/// `body` followed by `signature` and its length.
#[must_use]
pub fn seal(mut body: Vec<u8>, signature: &[u8]) -> Vec<u8> {
    body.extend_from_slice(signature);
    put_count(&mut body, signature.len());
    body
}

/// The body and the signature of a sealed index.
#[must_use]
pub fn unseal(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (rest, length) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    let length = usize::try_from(u32::from_le_bytes(length.try_into().ok()?)).ok()?;
    let (body, signature) = rest.split_at_checked(rest.len().checked_sub(length)?)?;
    Some((body, signature))
}

/// Where each result of an index's body is: its key and its bytes' range, found without
/// decoding it (no allocation a result); `None` when anything is malformed. A no-op run of
/// 5,000 steps decodes each result where it is used, on the planning threads, instead of all
/// of them before the first step.
#[must_use]
pub fn locate(bytes: &[u8]) -> Option<Vec<(Digest, std::ops::Range<usize>)>> {
    let body = bytes.strip_prefix(MAGIC)?;
    let start = MAGIC.len();
    let mut reader = Reader { rest: body };
    let mut found = Vec::new();
    while !reader.rest.is_empty() {
        let from = start + body.len() - reader.rest.len();
        let key = reader.skip_entry()?;
        let to = start + body.len() - reader.rest.len();
        found.push((key, from..to));
    }
    Some(found)
}

/// The result at `range` of an index's body (from [`locate`]).
#[must_use]
pub fn decode_at(bytes: &[u8], range: std::ops::Range<usize>) -> Option<ActionResult> {
    whole_entry(bytes, range, true)
}

/// The result at `range` without its usage (`usage: None`), which only a usage document
/// needs: a run that executes nothing writes none, and skipping it is what keeps metering off
/// a no-op's path. [`usage_at`] reads it when wanted.
#[must_use]
pub fn decode_without_usage_at(
    bytes: &[u8],
    range: std::ops::Range<usize>,
) -> Option<ActionResult> {
    whole_entry(bytes, range, false)
}

/// The result at `range`, which must be all of it.
fn whole_entry(bytes: &[u8], range: std::ops::Range<usize>, usage: bool) -> Option<ActionResult> {
    let mut reader = Reader {
        rest: bytes.get(range)?,
    };
    let result = reader.entry(usage)?;
    reader.rest.is_empty().then_some(result)
}

/// The usage of the result at `range` (`Some(None)`: not measured), checked to be `key`'s.
#[must_use]
pub fn usage_at(
    bytes: &[u8],
    range: std::ops::Range<usize>,
    key: &Digest,
) -> Option<Option<Usage>> {
    let mut reader = Reader {
        rest: bytes.get(range)?,
    };
    (reader.skip_to_usage()? == *key).then_some(())?;
    reader.usage().ok()
}

#[must_use]
pub fn decode(bytes: &[u8]) -> Option<Vec<ActionResult>> {
    locate(bytes)?
        .into_iter()
        .map(|(_, range)| decode_at(bytes, range))
        .collect()
}

impl Reader<'_> {
    /// One result; its usage left out (`None`) unless `usage` is asked for.
    fn entry(&mut self, usage: bool) -> Option<ActionResult> {
        let key = self.digest()?;
        let attestation = self.digest()?;
        let stdout = self.digest()?;
        let stderr = self.digest()?;
        let duration_ms = u64::from_le_bytes(self.take(8)?.try_into().ok()?);
        let step = self.text()?;
        let signer = self.text()?;
        let usage = if usage {
            self.usage().ok()?
        } else {
            self.skip_usage()?;
            None
        };
        let count = self.count()?;
        let mut outputs = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let path = self.text()?;
            let digest = self.digest()?;
            let flags = self.take(1)?[0];
            let link = if flags & 4 == 0 {
                None
            } else {
                Some(self.text()?)
            };
            outputs.push(OutputRecord {
                path,
                digest,
                directory: flags & 1 != 0,
                executable: flags & 2 != 0,
                link,
            });
        }
        Some(ActionResult {
            key,
            step,
            outputs,
            attestation,
            signer,
            stdout,
            stderr,
            duration_ms,
            usage,
        })
    }

    /// Passes over a result's usage as [`usage`](Self::usage) reads it, checking the same.
    fn skip_usage(&mut self) -> Option<()> {
        match self.take(1)?[0] {
            0 => {}
            1 => {
                self.skip_text()?;
                self.take(8)?;
                let present = self.take(1)?[0];
                self.take(8 * (present & 0x7f).count_ones() as usize)?;
                let flags = self.take(1)?[0];
                if flags & 1 != 0 {
                    self.skip_text()?;
                    let present = self.take(1)?[0];
                    self.take(8 * (present & 0x0f).count_ones() as usize)?;
                }
            }
            _ => return None,
        }
        Some(())
    }

    /// Passes over what precedes a result's usage; its key.
    fn skip_to_usage(&mut self) -> Option<Digest> {
        let key = self.digest()?;
        self.take(3 * 32 + 8)?;
        self.skip_text()?;
        self.skip_text()?;
        Some(key)
    }

    /// Passes over one result as [`entry`](Self::entry) reads it, checking the same; its key.
    fn skip_entry(&mut self) -> Option<Digest> {
        let key = self.digest()?;
        self.take(3 * 32 + 8)?;
        self.skip_text()?;
        self.skip_text()?;
        self.skip_usage()?;
        for _ in 0..self.count()? {
            self.skip_text()?;
            self.take(32)?;
            if self.take(1)?[0] & 4 != 0 {
                self.skip_text()?;
            }
        }
        Some(key)
    }

    fn skip_text(&mut self) -> Option<()> {
        let length = self.count()?;
        std::str::from_utf8(self.take(length)?).ok().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let result = ActionResult {
            key: Digest::of_bytes(b"k"),
            step: "build-é".to_owned(),
            outputs: vec![
                OutputRecord {
                    path: "out/a".to_owned(),
                    digest: Digest::of_bytes(b"a"),
                    directory: false,
                    executable: true,
                    link: None,
                },
                OutputRecord {
                    path: "out/d".to_owned(),
                    digest: Digest::of_bytes(b"d"),
                    directory: true,
                    executable: false,
                    link: None,
                },
                OutputRecord {
                    path: "result-hello".to_owned(),
                    digest: Digest::of_bytes(b"nar"),
                    directory: false,
                    executable: false,
                    link: Some("/nix/store/fvchbymk0m4jvldpb9m5hy0bjy2lf30k-hello".to_owned()),
                },
            ],
            attestation: Digest::of_bytes(b"att"),
            signer: "ab12".to_owned(),
            stdout: Digest::of_bytes(b""),
            stderr: Digest::of_bytes(b"e"),
            duration_ms: 12,
            usage: Some(crate::store::Usage {
                remote: Some(Box::new(crate::store::usage::Remote::with_spans(
                    "bot-1".to_owned(),
                    true,
                    [None, Some(2), Some(30), None],
                ))),
                ..crate::store::Usage::with_figures(
                    "wait4".to_owned(),
                    12_345,
                    [
                        Some(1),
                        None,
                        Some(3 << 40),
                        Some(0),
                        None,
                        Some(7),
                        Some(2),
                    ],
                )
            }),
        };
        let unmeasured = ActionResult {
            usage: None,
            ..result.clone()
        };
        let bytes = encode([&result, &unmeasured]);
        assert_eq!(decode(&bytes), Some(vec![result.clone(), unmeasured]));
        let located = locate(&bytes).expect("located");
        assert_eq!(located[0].0, result.key);
        assert_eq!(
            decode_at(&bytes, located[0].1.clone()),
            Some(result.clone())
        );
        // Planning reads a result without its usage; a usage document reads the usage alone,
        // from the right key only.
        assert_eq!(
            decode_without_usage_at(&bytes, located[0].1.clone()),
            Some(ActionResult {
                usage: None,
                ..result.clone()
            })
        );
        assert_eq!(
            usage_at(&bytes, located[0].1.clone(), &result.key),
            Some(result.usage.clone())
        );
        assert_eq!(
            usage_at(&bytes, located[1].1.clone(), &result.key),
            Some(None)
        );
        assert_eq!(
            usage_at(&bytes, located[0].1.clone(), &Digest::of_bytes(b"other")),
            None
        );
        assert_eq!(decode(&bytes[..bytes.len() - 3]), None);
        assert_eq!(decode(b"{\"json\": true}"), None);
        assert_eq!(decode(MAGIC), Some(Vec::new()));
    }
}
