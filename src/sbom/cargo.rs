//! A Cargo.lock as an inventory: every package with its version, `pkg:cargo` purl, source,
//! the lock's checksum and the lock's dependency graph. Pure: licences come from a lookup the
//! caller provides (the offline registry cache, see [`registry_licence`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::Digest;
use crate::sbom::{Inventory, Package, Subject};

const CRATES_IO: &[&str] = &[
    "registry+https://github.com/rust-lang/crates.io-index",
    "sparse+https://index.crates.io/",
];

#[derive(Deserialize)]
struct LockFile {
    #[serde(default)]
    package: Vec<LockPackage>,
}

#[derive(Deserialize)]
struct LockPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
    #[serde(default)]
    dependencies: Vec<String>,
}

/// Reads a lock file's text. `subject` is what the document is for; `licence` looks up a
/// package's declared licence by name and version (the workspace's own packages included).
pub fn inventory(
    text: &str,
    subject: Subject,
    licence: &dyn Fn(&str, &str) -> Option<String>,
) -> Result<Inventory, String> {
    let lock: LockFile = toml::from_str(text).map_err(|error| error.to_string())?;
    let ids: Vec<String> = lock.package.iter().map(identity).collect();
    let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, package) in lock.package.iter().enumerate() {
        by_name.entry(&package.name).or_default().push(index);
    }
    let mut packages = Vec::with_capacity(lock.package.len());
    let mut seen = BTreeSet::new();
    for (index, package) in lock.package.iter().enumerate() {
        if !seen.insert(ids[index].clone()) {
            return Err(format!(
                "package `{} {}` is listed twice",
                package.name, package.version
            ));
        }
        let mut depends_on = Vec::with_capacity(package.dependencies.len());
        for reference in &package.dependencies {
            let target = resolve(reference, &lock.package, &by_name).ok_or_else(|| {
                format!(
                    "package `{} {}` depends on `{reference}`, which the lock does not list (or lists more than once)",
                    package.name, package.version
                )
            })?;
            depends_on.push(ids[target].clone());
        }
        depends_on.sort();
        depends_on.dedup();
        let sha256 = match &package.checksum {
            Some(hex) => Some(Digest::from_hex(hex).ok_or_else(|| {
                format!(
                    "package `{} {}` has a checksum that is not a SHA-256: `{hex}`",
                    package.name, package.version
                )
            })?),
            None => None,
        };
        packages.push(Package {
            id: ids[index].clone(),
            name: package.name.clone(),
            version: Some(package.version.clone()),
            purl: Some(purl(package)),
            sha256,
            download: download(package),
            // The workspace's own packages too: the lookup knows their manifests when given.
            license: licence(&package.name, &package.version),
            depends_on,
            comment: None,
        });
    }
    packages.sort_by(|left, right| left.id.cmp(&right.id));
    let roots = lock
        .package
        .iter()
        .zip(&ids)
        .filter(|(package, _)| package.source.is_none())
        .map(|(_, id)| id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(Inventory {
        subject,
        also: Vec::new(),
        packages,
        files: Vec::new(),
        roots,
    })
}

fn is_crates_io(source: &str) -> bool {
    CRATES_IO.contains(&source)
}

fn identity(package: &LockPackage) -> String {
    match &package.source {
        Some(source) if !is_crates_io(source) => {
            format!("cargo:{}@{}#{source}", package.name, package.version)
        }
        _ => format!("cargo:{}@{}", package.name, package.version),
    }
}

/// A `dependencies` entry: `name`, `name version` or `name version (source)`.
fn resolve(
    reference: &str,
    packages: &[LockPackage],
    by_name: &BTreeMap<&str, Vec<usize>>,
) -> Option<usize> {
    let mut parts = reference.splitn(3, ' ');
    let name = parts.next()?;
    let version = parts.next();
    let source = parts
        .next()
        .and_then(|rest| rest.strip_prefix('(')?.strip_suffix(')'));
    let candidates: Vec<usize> = by_name
        .get(name)?
        .iter()
        .copied()
        .filter(|&index| version.is_none_or(|version| packages[index].version == version))
        .filter(|&index| {
            source.is_none_or(|source| packages[index].source.as_deref() == Some(source))
        })
        .collect();
    match candidates.as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

fn purl(package: &LockPackage) -> String {
    let base = format!(
        "pkg:cargo/{}@{}",
        percent_encode(&package.name),
        percent_encode(&package.version)
    );
    match &package.source {
        Some(source) if !is_crates_io(source) => {
            if let Some(git) = source.strip_prefix("git+") {
                format!(
                    "{base}?vcs_url={}",
                    percent_encode(&format!("git+{}", git_location(git)))
                )
            } else {
                let url = source
                    .split_once('+')
                    .map_or(source.as_str(), |(_, url)| url);
                format!("{base}?repository_url={}", percent_encode(url))
            }
        }
        _ => base,
    }
}

/// `https://host/path?branch=x#rev` → `https://host/path@rev`.
fn git_location(git: &str) -> String {
    let (url, revision) = git.split_once('#').unwrap_or((git, ""));
    let url = url.split_once('?').map_or(url, |(url, _)| url);
    if revision.is_empty() {
        url.to_owned()
    } else {
        format!("{url}@{revision}")
    }
}

fn download(package: &LockPackage) -> Option<String> {
    let source = package.source.as_deref()?;
    if is_crates_io(source) {
        return Some(format!(
            "https://crates.io/api/v1/crates/{}/{}/download",
            package.name, package.version
        ));
    }
    source
        .strip_prefix("git+")
        .map(|git| format!("git+{}", git_location(git)))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            let _ = write!(encoded, "%{byte:02X}");
        }
    }
    encoded
}

/// Where `NAME-VERSION/Cargo.toml` of a vendored folder is, if it is there.
pub type FindInVendored<'a> = dyn Fn(&str) -> Option<PathBuf> + 'a;

/// Where each crate's licence is read, in this order: the workspace's own manifests (`own`,
/// by name and version), else a vendored folder (`NAME-VERSION/Cargo.toml` in it, found by
/// `vendored`; then nowhere else), else the registry folders of a cargo home.
pub struct Licences<'a> {
    pub own: std::collections::HashMap<(String, String), String>,
    pub vendored: Option<&'a FindInVendored<'a>>,
    pub registry: Vec<PathBuf>,
}

impl Licences<'_> {
    /// The workspace's packages' licences, from their manifests.
    #[must_use]
    pub fn own_from(
        manifests: impl IntoIterator<Item = PathBuf>,
    ) -> std::collections::HashMap<(String, String), String> {
        (manifests.into_iter())
            .filter_map(|manifest| manifest_package(&manifest))
            .filter_map(|(name, version, licence)| Some(((name, version?), licence?)))
            .collect()
    }

    #[must_use]
    pub fn of(&self, name: &str, version: &str) -> Option<String> {
        if let Some(licence) = self.own.get(&(name.to_owned(), version.to_owned())) {
            return Some(licence.clone());
        }
        match self.vendored {
            Some(find) => find(&format!("{name}-{version}/Cargo.toml"))
                .and_then(|manifest| manifest_licence(&manifest)),
            None => registry_licence(&self.registry, name, version),
        }
    }
}

/// The registry source folders of a cargo home (`$CARGO_HOME/registry/src/*`), sorted.
#[must_use]
pub fn registry_folders(cargo_home: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(cargo_home.join("registry").join("src"))
        .into_iter()
        .flatten()
        .filter_map(|entry| Some(entry.ok()?.path()))
        .filter(|path| path.is_dir())
        .collect();
    folders.sort();
    folders
}

/// The licence a crate's Cargo.toml declares, when the crate is unpacked in one of the
/// registry folders; the old `MIT/Apache-2.0` form is read as `MIT OR Apache-2.0`.
#[must_use]
pub fn registry_licence(folders: &[PathBuf], name: &str, version: &str) -> Option<String> {
    folders.iter().find_map(|folder| {
        manifest_licence(&folder.join(format!("{name}-{version}")).join("Cargo.toml"))
    })
}

/// The licence a crate's `Cargo.toml` declares, as an SPDX expression.
#[must_use]
pub fn manifest_licence(manifest: &std::path::Path) -> Option<String> {
    manifest_package(manifest).and_then(|(_, _, licence)| licence)
}

/// A `Cargo.toml`'s package: name, version (absent when inherited from the workspace) and
/// licence as an SPDX expression.
#[must_use]
pub fn manifest_package(
    manifest: &std::path::Path,
) -> Option<(String, Option<String>, Option<String>)> {
    #[derive(Deserialize)]
    struct Manifest {
        package: ManifestPackage,
    }
    #[derive(Deserialize)]
    struct ManifestPackage {
        name: String,
        version: Option<toml::Value>,
        license: Option<toml::Value>,
    }
    let text = crate::bounded::read_to_string(manifest, crate::bounded::Kind::Lock).ok()?;
    let manifest: Manifest = toml::from_str(&text).ok()?;
    let package = manifest.package;
    let text =
        |value: Option<toml::Value>| value.and_then(|value| value.as_str().map(str::to_owned));
    Some((
        package.name,
        text(package.version),
        text(package.license).and_then(|licence| normalise_licence(&licence)),
    ))
}

/// An SPDX licence expression from a Cargo `license` field, or `None` when it is not one.
#[must_use]
pub fn normalise_licence(licence: &str) -> Option<String> {
    let spaced = licence
        .replace('/', " OR ")
        .replace('(', " ( ")
        .replace(')', " ) ");
    let tokens: Vec<&str> = spaced.split_whitespace().collect();
    let mut expect_term = true;
    let mut depth = 0usize;
    let mut out: Vec<String> = Vec::new();
    for token in tokens {
        let upper = token.to_ascii_uppercase();
        match token {
            "(" if expect_term => depth += 1,
            ")" if !expect_term && depth > 0 => depth -= 1,
            _ if matches!(upper.as_str(), "AND" | "OR" | "WITH") && !expect_term => {
                expect_term = true;
                out.push(upper);
                continue;
            }
            _ if expect_term
                && token
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'))
                && token
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphanumeric()) =>
            {
                expect_term = false;
            }
            _ => return None,
        }
        out.push(token.to_owned());
    }
    if expect_term || depth != 0 {
        return None;
    }
    Some(out.join(" ").replace("( ", "(").replace(" )", ")"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"
dependencies = [
 "serde",
 "rand 0.8.5",
 "forked",
]

[[package]]
name = "serde"
version = "1.0.200"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "ddc6f9cc94d67c0e21aaf7eda3a010fd3af78ebf6e096aa6e2e13c79749cce4f"

[[package]]
name = "rand"
version = "0.8.5"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "34af8d1a0e25924bc5b7c43c079c942339d8f0a8b57c39049bef581b46327404"

[[package]]
name = "rand"
version = "0.9.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "3779b94aeb87e8bd4e834cee3650289ee9e0d5677f976ecdb6d219e5f4f6cd94"

[[package]]
name = "forked"
version = "0.2.0"
source = "git+https://github.com/example/forked?branch=main#0123456789abcdef0123456789abcdef01234567"
"#;

    fn subject() -> Subject {
        Subject {
            name: "Cargo.lock".to_owned(),
            digest: Some(Digest::of_bytes(LOCK.as_bytes())),
            about: None,
        }
    }

    #[test]
    fn reads_packages_dependencies_and_sources() {
        let licence =
            |name: &str, _: &str| (name == "serde").then(|| "MIT OR Apache-2.0".to_owned());
        let inventory = inventory(LOCK, subject(), &licence).expect("reads");
        let ids: Vec<&str> = inventory.packages.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "cargo:app@0.1.0",
                "cargo:forked@0.2.0#git+https://github.com/example/forked?branch=main#0123456789abcdef0123456789abcdef01234567",
                "cargo:rand@0.8.5",
                "cargo:rand@0.9.0",
                "cargo:serde@1.0.200",
            ]
        );
        assert_eq!(inventory.roots, ["cargo:app@0.1.0"]);
        let app = &inventory.packages[0];
        assert_eq!(app.depends_on.len(), 3);
        assert!(app.depends_on.contains(&"cargo:rand@0.8.5".to_owned()));
        assert_eq!(app.download, None);
        assert_eq!(app.license, None);
        let forked = &inventory.packages[1];
        assert_eq!(
            forked.purl.as_deref(),
            Some(
                "pkg:cargo/forked@0.2.0?vcs_url=git%2Bhttps%3A%2F%2Fgithub.com%2Fexample%2Fforked%400123456789abcdef0123456789abcdef01234567"
            )
        );
        assert_eq!(
            forked.download.as_deref(),
            Some("git+https://github.com/example/forked@0123456789abcdef0123456789abcdef01234567")
        );
        let serde = &inventory.packages[4];
        assert_eq!(serde.purl.as_deref(), Some("pkg:cargo/serde@1.0.200"));
        assert_eq!(serde.license.as_deref(), Some("MIT OR Apache-2.0"));
        assert_eq!(
            serde.download.as_deref(),
            Some("https://crates.io/api/v1/crates/serde/1.0.200/download")
        );
        assert!(serde.sha256.is_some());
    }

    #[test]
    fn an_ambiguous_or_missing_dependency_is_an_error() {
        let ambiguous = LOCK.replace("\"rand 0.8.5\"", "\"rand\"");
        let error = inventory(&ambiguous, subject(), &|_, _| None).expect_err("ambiguous");
        assert!(error.contains("`app 0.1.0` depends on `rand`"), "{error}");
        let broken = "[[package]]\nname = \"a\"\nversion = 1\n";
        let error = inventory(broken, subject(), &|_, _| None).expect_err("bad toml");
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn licences_become_spdx_expressions_or_nothing() {
        assert_eq!(
            normalise_licence("MIT/Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(
            normalise_licence("(MIT OR Apache-2.0) AND Unicode-3.0").as_deref(),
            Some("(MIT OR Apache-2.0) AND Unicode-3.0")
        );
        assert_eq!(
            normalise_licence("Apache-2.0 WITH LLVM-exception").as_deref(),
            Some("Apache-2.0 WITH LLVM-exception")
        );
        assert_eq!(
            normalise_licence("MIT or Apache-2.0").as_deref(),
            Some("MIT OR Apache-2.0")
        );
        assert_eq!(normalise_licence("see LICENSE file"), None);
        assert_eq!(normalise_licence("MIT OR"), None);
        assert_eq!(normalise_licence(""), None);
    }
}
