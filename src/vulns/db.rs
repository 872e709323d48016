//! An advisory database on disk, read whole: OSV records (`*.json`, one advisory per file, as
//! OSV's per-ecosystem dumps and RustSec's `osv` branch hold them) and RustSec advisory files
//! (`crates/NAME/RUSTSEC-*.md`), indexed by ecosystem and package. Its snapshot (how many
//! advisories, the newest `modified`, a digest over every file read) names exactly what a
//! scan matched against.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::digest::{Digest, DigestBuilder};
use crate::vulns::osv;
use crate::vulns::rustsec;
use crate::vulns::version::Ecosystem;

/// One advisory, from either format.
#[derive(Clone, Debug)]
pub struct Advisory {
    pub id: String,
    pub aliases: Vec<String>,
    pub summary: String,
    /// RFC 3339 (OSV's `modified`; a RustSec file's `date`).
    pub modified: String,
    /// CVSS vectors (v3.x, v4.0), as given.
    pub vectors: Vec<String>,
    /// The database's own label (GHSA's `MODERATE`, ...), when it gives one.
    pub label: Option<String>,
    /// RustSec's `unsound`, `unmaintained`, `notice`: a warning, not a vulnerability.
    pub informational: Option<String>,
    pub withdrawn: bool,
    /// The file it was read from, relative to the database.
    pub file: String,
    pub matcher: Matcher,
}

#[derive(Clone, Debug)]
pub enum Matcher {
    /// OSV's affected entries, each with its package's ecosystem and name.
    Osv(Vec<(Ecosystem, String, osv::Affected)>),
    /// A RustSec advisory: the crate, and the intervals its fix and unaffected lists name.
    RustSec {
        package: String,
        unaffected: Vec<rustsec::Interval>,
    },
}

/// What the scan matched against.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Snapshot {
    pub advisories: usize,
    /// The newest advisory's `modified` (RFC 3339), empty for an empty database.
    pub last_modified: String,
    /// SHA-256 over every file read: its path relative to the database and its digest.
    pub digest: String,
}

/// An advisory file to read.
pub struct Source {
    pub host: PathBuf,
    /// Its path relative to the database: part of the snapshot's digest.
    pub relative: String,
    pub form: Form,
    /// The digest it was planned with, when a step read it.
    pub expected: Option<Digest>,
}

/// Which of the two formats a file holds, by its name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    Osv,
    RustSec,
}

impl Form {
    /// `*.json` is an OSV record, `RUSTSEC-*.md` a RustSec advisory; anything else (and
    /// anything under a hidden folder, such as `.git`) is not an advisory.
    #[must_use]
    pub fn of(relative: &str) -> Option<Self> {
        let mut parts = relative.split('/');
        let name = parts.next_back()?;
        if relative.split('/').any(|part| part.starts_with('.')) {
            return None;
        }
        if name.starts_with("RUSTSEC-")
            && Path::new(name)
                .extension()
                .is_some_and(|extension| extension == "md")
        {
            Some(Self::RustSec)
        } else if Path::new(name)
            .extension()
            .is_some_and(|extension| extension == "json")
        {
            Some(Self::Osv)
        } else {
            None
        }
    }
}

pub struct Database {
    pub advisories: Vec<Advisory>,
    index: HashMap<(Ecosystem, String), Vec<usize>>,
    pub snapshot: Snapshot,
    /// Files that look like advisories but could not be read, with why.
    pub unreadable: Vec<(PathBuf, String)>,
}

impl Database {
    /// Reads every advisory under `root`. A file that cannot be read is listed in
    /// `unreadable`, not fatal; a root that cannot be walked is.
    pub fn open(root: &Path) -> Result<Self, String> {
        if !root.is_dir() {
            return Err(format!(
                "`{}` is not a folder of advisories (OSV records or a RustSec advisory-db checkout)",
                root.display()
            ));
        }
        let mut files = Vec::new();
        // Sorted once at the end: sorting each folder's entries while walking parses every
        // path again (a tenth of a 10,000-file scan's time).
        for entry in walkdir::WalkDir::new(root) {
            let entry =
                entry.map_err(|error| format!("cannot read `{}`: {error}", root.display()))?;
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let relative = path.strip_prefix(root).unwrap_or(path);
            let relative = relative.to_string_lossy().into_owned();
            if let Some(form) = Form::of(&relative) {
                files.push(Source {
                    host: path.to_owned(),
                    relative,
                    form,
                    expected: None,
                });
            }
        }
        // Folder by folder, as a walk sorted by name visits them (`a/x` before `a-b/x`).
        files.sort_unstable_by(|a, b| by_folder(&a.relative).cmp(by_folder(&b.relative)));
        Self::read(files)
    }

    /// Reads the advisories of `files` (sorted by `relative`); one whose bytes are not
    /// `expected` is an error (the database changed while it was read).
    pub fn read(files: Vec<Source>) -> Result<Self, String> {
        let mut database = Self {
            advisories: Vec::new(),
            index: HashMap::new(),
            snapshot: Snapshot {
                advisories: 0,
                last_modified: String::new(),
                digest: String::new(),
            },
            unreadable: Vec::new(),
        };
        // Reading and parsing on every core; the digest and the order stay the files'.
        let read = crate::parallel::map(&files, |source| {
            let bytes = crate::bounded::read(&source.host, crate::bounded::Kind::Advisory)
                .map_err(|error| error.to_string())?;
            let parsed = match source.form {
                Form::RustSec => read_rustsec(&bytes, &source.relative),
                Form::Osv => read_osv(&bytes, &source.relative),
            };
            Ok::<_, String>((Digest::of_bytes(&bytes), parsed))
        });
        let mut digest = DigestBuilder::new("gantry-advisories/1");
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (source, read) in files.into_iter().zip(read) {
            let Source {
                host: path,
                relative,
                expected,
                ..
            } = source;
            let (file_digest, parsed) = match read {
                Ok(read) => read,
                Err(message) => {
                    database.unreadable.push((path, message));
                    continue;
                }
            };
            if expected.is_some_and(|expected| expected != file_digest) {
                return Err(format!("`{relative}` changed while the scan read it"));
            }
            digest.str(&relative).field(file_digest.as_bytes());
            match parsed {
                Ok(Some(advisory)) => {
                    // The same advisory in both forms (RustSec's files and their OSV export):
                    // the one read last stands.
                    if let Some(&earlier) = seen.get(&advisory.id) {
                        database.advisories[earlier] = advisory;
                    } else {
                        seen.insert(advisory.id.clone(), database.advisories.len());
                        database.advisories.push(advisory);
                    }
                }
                Ok(None) => {}
                Err(message) => database.unreadable.push((path, message)),
            }
        }
        for (number, advisory) in database.advisories.iter().enumerate() {
            for key in packages(&advisory.matcher) {
                database.index.entry(key).or_default().push(number);
            }
        }
        database.snapshot = Snapshot {
            advisories: database.advisories.len(),
            last_modified: (database.advisories.iter())
                .map(|advisory| advisory.modified.as_str())
                .max()
                .unwrap_or_default()
                .to_owned(),
            digest: digest.finish().hex(),
        };
        Ok(database)
    }

    /// The advisories that name this package.
    pub fn for_package(&self, ecosystem: Ecosystem, name: &str) -> impl Iterator<Item = &Advisory> {
        self.index
            .get(&(ecosystem, ecosystem.normalize_name(name)))
            .into_iter()
            .flatten()
            .map(|&number| &self.advisories[number])
    }
}

/// A relative path's bytes in the order a walk sorted by name visits them: `/` below every
/// other byte, so `a/x` comes before `a-b/x` (comparing the parts one by one searches every
/// path for its separators again at each comparison).
fn by_folder(relative: &str) -> impl Iterator<Item = u8> + '_ {
    relative
        .bytes()
        .map(|byte| if byte == b'/' { 0 } else { byte })
}

fn packages(matcher: &Matcher) -> Vec<(Ecosystem, String)> {
    let mut keys: Vec<(Ecosystem, String)> = match matcher {
        Matcher::Osv(entries) => (entries.iter())
            .map(|(ecosystem, name, _)| (*ecosystem, ecosystem.normalize_name(name)))
            .collect(),
        Matcher::RustSec { package, .. } => vec![(Ecosystem::CratesIo, package.clone())],
    };
    keys.sort();
    keys.dedup();
    keys
}

/// An OSV record; `None` for a JSON object that names no advisory or no ecosystem gantry
/// matches.
fn read_osv(bytes: &[u8], relative: &str) -> Result<Option<Advisory>, String> {
    let record: osv::Record =
        serde_json::from_slice(bytes).map_err(|error| format!("not an OSV record: {error}"))?;
    if record.id.is_empty() || record.affected.is_empty() {
        return Ok(None);
    }
    let vectors = (record.severity.iter())
        .chain(
            record
                .affected
                .iter()
                .flat_map(|affected| &affected.severity),
        )
        .filter(|severity| severity.kind.starts_with("CVSS_V3") || severity.kind == "CVSS_V4")
        .map(|severity| severity.score.clone())
        .collect();
    let label = (record.database_specific.as_ref())
        .and_then(|specific| specific.severity.as_ref()?.as_str())
        .map(str::to_owned);
    let informational = (record.affected.iter())
        .filter_map(|affected| affected.database_specific.as_ref())
        .find_map(|specific| specific.informational.as_ref()?.as_str().map(str::to_owned));
    // The affected entries are moved, not copied: they are most of a record.
    let entries: Vec<(Ecosystem, String, osv::Affected)> = (record.affected.into_iter())
        .filter_map(|affected| {
            let ecosystem = Ecosystem::from_osv(&affected.package.ecosystem)?;
            Some((ecosystem, affected.package.name.clone(), affected))
        })
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    Ok(Some(Advisory {
        id: record.id,
        aliases: record.aliases,
        summary: record.summary.unwrap_or_default(),
        modified: record.modified,
        vectors,
        label,
        informational,
        withdrawn: record.withdrawn.is_some(),
        file: relative.to_owned(),
        matcher: Matcher::Osv(entries),
    }))
}

fn read_rustsec(bytes: &[u8], relative: &str) -> Result<Option<Advisory>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
    let (advisory, title) = rustsec::parse(text)?;
    if advisory.advisory.source.is_some() {
        // A crate of another registry: crates.io's purls do not name it.
        return Ok(None);
    }
    let unaffected = advisory.unaffected()?;
    let metadata = advisory.advisory;
    Ok(Some(Advisory {
        id: metadata.id,
        aliases: metadata.aliases,
        summary: title,
        modified: format!("{}T00:00:00Z", metadata.date),
        vectors: metadata.cvss.into_iter().collect(),
        label: None,
        informational: metadata.informational,
        withdrawn: metadata.withdrawn.is_some(),
        file: relative.to_owned(),
        matcher: Matcher::RustSec {
            package: metadata.package,
            unaffected,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sort_folder_by_folder() {
        let mut paths = vec!["a-b/x", "a/y", "a/x", "a", "a.b/c", "ab", "a/x/z", "b"];
        let mut expected = paths.clone();
        expected.sort_by(|a, b| a.split('/').cmp(b.split('/')));
        paths.sort_by(|a, b| by_folder(a).cmp(by_folder(b)));
        assert_eq!(paths, expected);
    }

    #[test]
    fn both_formats_read_and_index_by_package() {
        let root = tempfile::tempdir().expect("folder");
        std::fs::create_dir_all(root.path().join("crates/smallvec")).expect("mkdir");
        crate::atomic::write(
            &root.path().join("crates/smallvec/RUSTSEC-2021-0003.md"),
            b"```toml\n[advisory]\nid = \"RUSTSEC-2021-0003\"\npackage = \"smallvec\"\ndate = \"2021-01-08\"\n\n[versions]\npatched = [\">= 1.6.1\"]\n```\n\n# Overflow\n",
        )
        .expect("write");
        crate::atomic::write(
            &root.path().join("GHSA-x.json"),
            br#"{"id": "GHSA-x", "modified": "2024-05-01T00:00:00Z", "aliases": ["CVE-1"], "database_specific": {"severity": "HIGH"}, "affected": [{"package": {"ecosystem": "PyPI", "name": "Zope.Interface"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "5.0"}]}]}]}"#,
        )
        .expect("write");
        crate::atomic::write(&root.path().join("broken.json"), b"{").expect("write");
        let database = Database::open(root.path()).expect("database");
        assert_eq!(database.snapshot.advisories, 2);
        assert_eq!(database.snapshot.last_modified, "2024-05-01T00:00:00Z");
        assert_eq!(database.unreadable.len(), 1);
        let python: Vec<&str> = (database.for_package(Ecosystem::PyPI, "zope-interface"))
            .map(|advisory| advisory.id.as_str())
            .collect();
        assert_eq!(python, ["GHSA-x"]);
        assert_eq!(
            database
                .for_package(Ecosystem::CratesIo, "smallvec")
                .count(),
            1
        );
        assert!(Database::open(&root.path().join("missing")).is_err());
    }
}
