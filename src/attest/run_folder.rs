//! The names of the files in a run folder (`attestations/RUN_ID/`): the run writes them and
//! `verify`, the gauntlet report, `release` and `repro` find them through these, never by a
//! name spelled out again. Step names hold no `.`, so each suffix says what a file is.

/// What every attestation file's name ends with.
pub const SUFFIX: &str = ".intoto.json";

/// The run's signed SLSA provenance.
pub const PROVENANCE: &str = "provenance.intoto.json";

/// What the run used, signed, about its provenance (docs/usage.md).
pub const USAGE: &str = "usage.intoto.json";

/// The signed reproducibility statement in a `gantry repro` folder.
pub const REPRODUCIBILITY: &str = "reproducibility.intoto.json";

/// A run folder's name, `YYYYMMDDTHHMMSSZ-<8 hex>`: sorts by time, unique without
/// coordination (`random` decides it within a second).
#[must_use]
pub fn run_id(unix_seconds: i64, random: u32) -> String {
    let (year, month, day, hour, minute, second) = crate::time::civil(unix_seconds);
    format!("{year:04}{month:02}{day:02}T{hour:02}{minute:02}{second:02}Z-{random:08x}")
}

/// Whether `name` is a run folder's name (`YYYYMMDDTHHMMSSZ-<hex>`).
#[must_use]
pub fn looks_like_run_id(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() > 17
        && bytes[..8].iter().all(u8::is_ascii_digit)
        && bytes[8] == b'T'
        && bytes[15] == b'Z'
        && bytes[16] == b'-'
}

/// What a step left in the run folder, after its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepFile {
    /// Its link (`STEP.intoto.json`).
    Link,
    /// A sbom step's attestation (`STEP.sbom.intoto.json`).
    Sbom,
    /// A gate's verdict (`STEP.gate.intoto.json`).
    Gate,
    /// A rollout's record (`STEP.rollout.intoto.json`).
    Rollout,
    /// A vulnerability scan's statement (`STEP.vulns.intoto.json`).
    Vulns,
}

impl StepFile {
    #[must_use]
    pub const fn suffix(self) -> &'static str {
        match self {
            Self::Link => SUFFIX,
            Self::Sbom => ".sbom.intoto.json",
            Self::Gate => ".gate.intoto.json",
            Self::Rollout => ".rollout.intoto.json",
            Self::Vulns => ".vulns.intoto.json",
        }
    }

    /// The file's name for `step`.
    #[must_use]
    pub fn name(self, step: &str) -> String {
        format!("{step}{}", self.suffix())
    }

    /// What a file in a run folder is, and of which step; `None` for the provenance and for
    /// names no step file has.
    #[must_use]
    pub fn parse(file_name: &str) -> Option<(Self, &str)> {
        if file_name == PROVENANCE || file_name == USAGE {
            return None;
        }
        [
            Self::Sbom,
            Self::Gate,
            Self::Rollout,
            Self::Vulns,
            Self::Link,
        ]
        .into_iter()
        .find_map(|kind| {
            let step = file_name.strip_suffix(kind.suffix())?;
            (!step.is_empty() && !step.contains(['.', '/'])).then_some((kind, step))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_reads_back_as_what_it_is() {
        for kind in [
            StepFile::Link,
            StepFile::Sbom,
            StepFile::Gate,
            StepFile::Rollout,
            StepFile::Vulns,
        ] {
            assert_eq!(
                StepFile::parse(&kind.name("build-1")),
                Some((kind, "build-1"))
            );
        }
        assert_eq!(StepFile::parse(PROVENANCE), None);
        assert_eq!(StepFile::parse("a.b.intoto.json"), None);
        assert_eq!(StepFile::parse(".intoto.json"), None);
        assert_eq!(StepFile::parse("notes.txt"), None);
        let id = run_id(1_764_000_000, 0x0a1b_2c3d);
        assert_eq!(id, "20251124T160000Z-0a1b2c3d");
        assert!(looks_like_run_id(&id));
    }
}
