//! Version order per ecosystem, as OSV's `ECOSYSTEM` and `SEMVER` ranges need it: SemVer 2.0
//! precedence (crates.io, npm, Go with its `v` and `+incompatible`), PEP 440 (PyPI) and dpkg's
//! order (Debian). Pure; a version an ecosystem cannot parse compares as nothing (`None`),
//! and the matcher then says so instead of guessing.

use std::cmp::Ordering;

/// The package ecosystems gantry matches, by OSV's names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ecosystem {
    CratesIo,
    Npm,
    PyPI,
    Go,
    Debian,
}

impl Ecosystem {
    /// From OSV's `ecosystem` (`Debian:12` is Debian).
    #[must_use]
    pub fn from_osv(name: &str) -> Option<Self> {
        let base = name.split(':').next().unwrap_or(name);
        Some(match base {
            "crates.io" => Self::CratesIo,
            "npm" => Self::Npm,
            "PyPI" => Self::PyPI,
            "Go" => Self::Go,
            "Debian" => Self::Debian,
            _ => return None,
        })
    }

    /// From a purl's type (`pkg:cargo/...`).
    #[must_use]
    pub fn from_purl_type(kind: &str) -> Option<Self> {
        Some(match kind {
            "cargo" => Self::CratesIo,
            "npm" => Self::Npm,
            "pypi" => Self::PyPI,
            "golang" => Self::Go,
            "deb" => Self::Debian,
            _ => return None,
        })
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::CratesIo => "crates.io",
            Self::Npm => "npm",
            Self::PyPI => "PyPI",
            Self::Go => "Go",
            Self::Debian => "Debian",
        }
    }

    /// A package name as the ecosystem compares names: PyPI's are case- and
    /// separator-insensitive (PEP 503), the others exact.
    #[must_use]
    pub fn normalize_name(self, name: &str) -> String {
        match self {
            Self::PyPI => {
                let mut normal = String::with_capacity(name.len());
                let mut separator = false;
                for c in name.chars() {
                    if matches!(c, '-' | '_' | '.') {
                        separator = true;
                    } else {
                        if separator && !normal.is_empty() {
                            normal.push('-');
                        }
                        separator = false;
                        normal.push(c.to_ascii_lowercase());
                    }
                }
                normal
            }
            _ => name.to_owned(),
        }
    }

    /// `a` against `b` in this ecosystem's order; `None` when either does not parse.
    #[must_use]
    pub fn compare(self, a: &str, b: &str) -> Option<Ordering> {
        match self {
            Self::CratesIo | Self::Npm => Some(SemVer::parse(a)?.cmp(&SemVer::parse(b)?)),
            Self::Go => Some(SemVer::parse_go(a)?.cmp(&SemVer::parse_go(b)?)),
            Self::PyPI => Some(Pep440::parse(a)?.cmp(&Pep440::parse(b)?)),
            Self::Debian => debian_compare(a, b),
        }
    }

    /// Whether `version` parses in this ecosystem.
    #[must_use]
    pub fn parses(self, version: &str) -> bool {
        self.compare(version, version).is_some()
    }
}

/// A SemVer 2.0 version under §11's precedence (build metadata ignored). Missing minor and
/// patch parts are zero, as npm's and Go's shorthands mean.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SemVer {
    release: [u64; 3],
    pre: Vec<Identifier>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Identifier {
    // Numeric identifiers sort below alphanumeric ones: the variant order says so.
    Number(u64),
    Text(String),
}

impl SemVer {
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let text = text.strip_prefix(['v', '=']).unwrap_or(text);
        let text = text.split_once('+').map_or(text, |(version, _)| version);
        let (core, pre) = match text.split_once('-') {
            Some((core, pre)) => (core, Some(pre)),
            None => (text, None),
        };
        let mut release = [0u64; 3];
        let mut parts = core.split('.');
        for (index, slot) in release.iter_mut().enumerate() {
            match parts.next() {
                Some(part) => *slot = number(part)?,
                None if index > 0 => break,
                None => return None,
            }
        }
        if parts.next().is_some() {
            return None;
        }
        let pre = match pre {
            None => Vec::new(),
            Some(pre) => pre
                .split('.')
                .map(|identifier| {
                    if identifier.is_empty()
                        || !identifier
                            .bytes()
                            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
                    {
                        None
                    } else if identifier.bytes().all(|byte| byte.is_ascii_digit()) {
                        identifier.parse().ok().map(Identifier::Number)
                    } else {
                        Some(Identifier::Text(identifier.to_owned()))
                    }
                })
                .collect::<Option<Vec<_>>>()?,
        };
        Some(Self { release, pre })
    }

    /// Go's versions: `v` optional, `+incompatible` ignored (it is build metadata).
    #[must_use]
    pub fn parse_go(text: &str) -> Option<Self> {
        Self::parse(text)
    }
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

impl Ord for SemVer {
    fn cmp(&self, other: &Self) -> Ordering {
        self.release.cmp(&other.release).then_with(|| {
            match (self.pre.is_empty(), other.pre.is_empty()) {
                (true, true) => Ordering::Equal,
                // A pre-release sorts below its release.
                (true, false) => Ordering::Greater,
                (false, true) => Ordering::Less,
                // Element by element; a prefix sorts first.
                (false, false) => self.pre.cmp(&other.pre),
            }
        })
    }
}

impl PartialOrd for SemVer {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A PEP 440 version as `packaging` orders it: epoch, release (trailing zeros ignored),
/// pre-release, post-release, dev-release, local label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pep440 {
    epoch: u64,
    release: Vec<u64>,
    /// (phase: a 0, b 1, rc 2, number)
    pre: Option<(u8, u64)>,
    post: Option<u64>,
    dev: Option<u64>,
    local: Vec<Identifier>,
}

impl Pep440 {
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let lower = text.trim().to_ascii_lowercase();
        let text = lower.strip_prefix('v').unwrap_or(&lower);
        let (public, local) = match text.split_once('+') {
            Some((public, local)) => (public, Some(local)),
            None => (text, None),
        };
        let (epoch, rest) = match public.split_once('!') {
            Some((epoch, rest)) => (number(epoch)?, rest),
            None => (0, public),
        };
        let mut scanner = Scanner { rest };
        let mut release = vec![scanner.number()?];
        while scanner.rest.starts_with('.')
            && scanner.rest[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            scanner.rest = &scanner.rest[1..];
            release.push(scanner.number()?);
        }
        let mut version = Self {
            epoch,
            release,
            pre: None,
            post: None,
            dev: None,
            local: Vec::new(),
        };
        // Pre-release: [-_.]?(a|b|c|rc|alpha|beta|pre|preview)[-_.]?N?
        let save = scanner.rest;
        scanner.separator();
        if let Some(phase) = scanner.word(&[
            ("alpha", 0),
            ("beta", 1),
            ("preview", 2),
            ("pre", 2),
            ("rc", 2),
            ("a", 0),
            ("b", 1),
            ("c", 2),
        ]) {
            version.pre = Some((phase, scanner.optional_number()));
        } else {
            scanner.rest = save;
        }
        // Post-release: [-_.]?(post|rev|r)[-_.]?N? or -N.
        let save = scanner.rest;
        if let Some(rest) = scanner.rest.strip_prefix('-')
            && rest.starts_with(|c: char| c.is_ascii_digit())
        {
            scanner.rest = rest;
            version.post = Some(scanner.number()?);
        } else {
            scanner.separator();
            if scanner.word(&[("post", 0), ("rev", 0), ("r", 0)]).is_some() {
                version.post = Some(scanner.optional_number());
            } else {
                scanner.rest = save;
            }
        }
        // Dev-release: [-_.]?dev[-_.]?N?
        let save = scanner.rest;
        scanner.separator();
        if scanner.word(&[("dev", 0)]).is_some() {
            version.dev = Some(scanner.optional_number());
        } else {
            scanner.rest = save;
        }
        if !scanner.rest.is_empty() {
            return None;
        }
        if let Some(local) = local {
            version.local = local
                .split(['.', '-', '_'])
                .map(|part| {
                    if part.is_empty() || !part.bytes().all(|byte| byte.is_ascii_alphanumeric()) {
                        None
                    } else if let Some(value) = number(part) {
                        Some(Identifier::Number(value))
                    } else {
                        Some(Identifier::Text(part.to_owned()))
                    }
                })
                .collect::<Option<Vec<_>>>()?;
        }
        Some(version)
    }

    /// `packaging`'s comparison key, in the order the fields compare.
    fn key(&self) -> Pep440Key<'_> {
        let mut release = self.release.clone();
        while release.len() > 1 && release.last() == Some(&0) {
            release.pop();
        }
        let pre = match (self.pre, self.post, self.dev) {
            // `1.0.dev0` sorts before `1.0a0`.
            (None, None, Some(_)) => (-1, 0, 0),
            (None, _, _) => (1, 0, 0),
            (Some((phase, number)), _, _) => (0, phase, number),
        };
        let post = self.post.map_or((-1, 0), |number| (0, number));
        let dev = self.dev.map_or((1, 0), |number| (0, number));
        (self.epoch, release, pre, post, dev, LocalKey(&self.local))
    }
}

/// Epoch, release, pre-, post- and dev-release, local label: compared in that order.
type Pep440Key<'a> = (
    u64,
    Vec<u64>,
    (i8, u8, u64),
    (i8, u64),
    (i8, u64),
    LocalKey<'a>,
);

/// A local label: none sorts first; numbers above words; a prefix first.
#[derive(PartialEq, Eq)]
struct LocalKey<'a>(&'a [Identifier]);

impl Ord for LocalKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        let rank = |identifier: &Identifier| match identifier {
            Identifier::Text(_) => 0,
            Identifier::Number(_) => 1,
        };
        for (a, b) in self.0.iter().zip(other.0) {
            let order = rank(a).cmp(&rank(b)).then_with(|| a.cmp(b));
            if order != Ordering::Equal {
                return order;
            }
        }
        self.0.len().cmp(&other.0.len())
    }
}

impl PartialOrd for LocalKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Pep440 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Pep440 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

struct Scanner<'a> {
    rest: &'a str,
}

impl Scanner<'_> {
    fn number(&mut self) -> Option<u64> {
        let end = self
            .rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(self.rest.len());
        let value = number(&self.rest[..end])?;
        self.rest = &self.rest[end..];
        Some(value)
    }

    /// A number after an optional separator, 0 when there is none.
    fn optional_number(&mut self) -> u64 {
        let save = self.rest;
        self.separator();
        if self.rest.starts_with(|c: char| c.is_ascii_digit()) {
            self.number().unwrap_or(0)
        } else {
            self.rest = save;
            0
        }
    }

    fn separator(&mut self) {
        if let Some(rest) = self.rest.strip_prefix(['-', '_', '.']) {
            self.rest = rest;
        }
    }

    fn word(&mut self, words: &[(&str, u8)]) -> Option<u8> {
        let (word, value) = words.iter().find(|(word, _)| self.rest.starts_with(word))?;
        self.rest = &self.rest[word.len()..];
        Some(*value)
    }
}

/// dpkg's order of `[epoch:]upstream[-revision]` (deb-version(7)).
fn debian_compare(a: &str, b: &str) -> Option<Ordering> {
    let split = |text: &str| -> Option<(u64, String, String)> {
        let text = text.trim();
        if text.is_empty() {
            return None;
        }
        let (epoch, rest) = match text.split_once(':') {
            Some((epoch, rest)) => (number(epoch)?, rest),
            None => (0, text),
        };
        let (upstream, revision) = match rest.rsplit_once('-') {
            Some((upstream, revision)) => (upstream, revision),
            None => (rest, ""),
        };
        if upstream.is_empty() || !upstream.starts_with(|c: char| c.is_ascii_digit()) {
            return None;
        }
        Some((epoch, upstream.to_owned(), revision.to_owned()))
    };
    let (epoch_a, upstream_a, revision_a) = split(a)?;
    let (epoch_b, upstream_b, revision_b) = split(b)?;
    Some(
        epoch_a
            .cmp(&epoch_b)
            .then_with(|| verrevcmp(&upstream_a, &upstream_b))
            .then_with(|| verrevcmp(&revision_a, &revision_b)),
    )
}

/// dpkg's `verrevcmp`: non-digit runs by character weight (`~` below the end, letters below
/// other characters), digit runs by value.
fn verrevcmp(left: &str, right: &str) -> Ordering {
    fn weight(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(b'~') => -1,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(c) => i32::from(c) + 256,
        }
    }
    let (left, right) = (left.as_bytes(), right.as_bytes());
    let (mut at_left, mut at_right) = (0, 0);
    let digit = |text: &[u8], at: usize| text.get(at).is_some_and(u8::is_ascii_digit);
    while at_left < left.len() || at_right < right.len() {
        while (at_left < left.len() && !digit(left, at_left))
            || (at_right < right.len() && !digit(right, at_right))
        {
            let order =
                weight(left.get(at_left).copied()).cmp(&weight(right.get(at_right).copied()));
            if order != Ordering::Equal {
                return order;
            }
            at_left += 1;
            at_right += 1;
        }
        while left.get(at_left) == Some(&b'0') {
            at_left += 1;
        }
        while right.get(at_right) == Some(&b'0') {
            at_right += 1;
        }
        let start = (at_left, at_right);
        while digit(left, at_left) {
            at_left += 1;
        }
        while digit(right, at_right) {
            at_right += 1;
        }
        let (digits_a, digits_b) = (&left[start.0..at_left], &right[start.1..at_right]);
        let order = digits_a
            .len()
            .cmp(&digits_b.len())
            .then_with(|| digits_a.cmp(digits_b));
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ascending(ecosystem: Ecosystem, chain: &[&str]) {
        for pair in chain.windows(2) {
            assert_eq!(
                ecosystem.compare(pair[0], pair[1]),
                Some(Ordering::Less),
                "{ecosystem:?}: {} < {}",
                pair[0],
                pair[1]
            );
            assert_eq!(
                ecosystem.compare(pair[1], pair[0]),
                Some(Ordering::Greater),
                "{ecosystem:?}: {} > {}",
                pair[1],
                pair[0]
            );
        }
    }

    #[test]
    fn semver_precedence_is_section_11s() {
        ascending(
            Ecosystem::CratesIo,
            &[
                "0.0.0-0",
                "1.0.0-alpha",
                "1.0.0-alpha.1",
                "1.0.0-alpha.beta",
                "1.0.0-beta",
                "1.0.0-beta.2",
                "1.0.0-beta.11",
                "1.0.0-rc.1",
                "1.0.0",
                "1.2.3",
                "1.2.4-0",
                "1.2.4",
                "1.10.0",
            ],
        );
        assert_eq!(
            Ecosystem::Npm.compare("1.0.0+build.5", "1.0.0"),
            Some(Ordering::Equal)
        );
        assert_eq!(Ecosystem::CratesIo.compare("1.0", "x"), None);
        assert_eq!(Ecosystem::CratesIo.compare("1.0.0.0", "1.0.0"), None);
    }

    #[test]
    fn go_strips_its_v_and_incompatible_and_orders_pseudo_versions() {
        ascending(
            Ecosystem::Go,
            &[
                "v0.0.0-20220314234659-1baeb1ce4c0b",
                "v0.1.0",
                "v1.2.3",
                "v1.2.4-0.20230101000000-abcdefabcdef",
                "v1.2.4",
                "2.1.0",
            ],
        );
        assert_eq!(
            Ecosystem::Go.compare("v2.1.0+incompatible", "2.1.0"),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn pep_440_orders_as_packaging_does() {
        // PEP 440's own example chain, checked with `packaging` 26.4.
        ascending(
            Ecosystem::PyPI,
            &[
                "1.dev0",
                "1.0.dev456",
                "1.0a1",
                "1.0a2.dev456",
                "1.0a12.dev456",
                "1.0a12",
                "1.0b1.dev456",
                "1.0b2",
                "1.0b2.post345.dev456",
                "1.0b2.post345",
                "1.0rc1.dev456",
                "1.0rc1",
                "1.0",
                "1.0+abc.5",
                "1.0+abc.7",
                "1.0+5",
                "1.0.post456.dev34",
                "1.0.post456",
                "1.0.15",
                "1.1.dev1",
                "1!0.1",
            ],
        );
        for (a, b) in [
            ("1.0-1", "1.0.post1"),
            ("v1.0", "1.0.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0-preview-2", "1.0rc2"),
        ] {
            assert_eq!(
                Ecosystem::PyPI.compare(a, b),
                Some(Ordering::Equal),
                "{a} == {b}"
            );
        }
        assert_eq!(Ecosystem::PyPI.compare("1.0 junk", "1.0"), None);
        assert_eq!(
            Ecosystem::PyPI.normalize_name("Zope.Interface__x"),
            "zope-interface-x"
        );
    }

    #[test]
    fn debian_orders_as_dpkg_does() {
        // Each pair checked with `dpkg --compare-versions A lt B`.
        ascending(
            Ecosystem::Debian,
            &[
                "1.0~rc1",
                "1.0",
                "1.0a",
                "1.0+b",
                "1.0.1",
                "1.0.1-1",
                "1.0.1-1+deb12u1",
                "1.0.1-2",
                "2.0",
                "1:0.1",
            ],
        );
        assert_eq!(
            Ecosystem::Debian.compare("1.0-0", "1.0"),
            Some(Ordering::Equal)
        );
        assert_eq!(
            Ecosystem::Debian.compare("1.002", "1.2"),
            Some(Ordering::Equal)
        );
    }

    #[test]
    fn ecosystems_come_from_osv_and_purl_names() {
        assert_eq!(Ecosystem::from_osv("Debian:12"), Some(Ecosystem::Debian));
        assert_eq!(Ecosystem::from_osv("crates.io"), Some(Ecosystem::CratesIo));
        assert_eq!(Ecosystem::from_osv("Maven"), None);
        assert_eq!(
            Ecosystem::from_purl_type("cargo"),
            Some(Ecosystem::CratesIo)
        );
        assert_eq!(Ecosystem::from_purl_type("golang"), Some(Ecosystem::Go));
    }
}
