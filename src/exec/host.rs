//! The host system an exec step sees (`/usr`, `/bin`, `/lib`, `/etc` read-only): compilers,
//! linkers, headers and libraries that no pipeline declares. Its identity is part of every
//! exec step's action key and a material of its link (`/usr`, role `host-system`), so that
//! upgrading gcc invalidates the cache instead of serving results the old one made, and the
//! provenance names every installed package and version.
//!
//! What identifies it: the installed Debian packages with their versions and architectures
//! (`/var/lib/dpkg/status`), where `/etc/alternatives` points (which compiler `cc` is), and
//! the listing of `/usr/local` (what was installed by hand: paths, sizes, times, modes), all
//! read once per run. A host without dpkg is identified by `/usr/local` and the alternatives
//! alone, and says so.

use std::path::Path;

use crate::digest::{Digest, DigestBuilder};

/// The name of the host system's material in links and provenance.
pub const MATERIAL: &str = "/usr";

const DPKG_STATUS: &str = "/var/lib/dpkg/status";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostSystem {
    /// Over everything below: what the action keys and links hold.
    pub digest: Digest,
    /// `name=version arch` of each installed package, sorted; empty without dpkg.
    pub packages: Vec<String>,
    /// `/etc/alternatives`: (name, target), sorted.
    pub alternatives: Vec<(String, String)>,
    /// The listing digest of `/usr/local` (no content read), when it exists.
    pub local: Option<Digest>,
    /// Whether the package list came from dpkg.
    pub dpkg: bool,
}

impl HostSystem {
    /// Reads this machine's: no file's content, so a run pays a few milliseconds.
    #[must_use]
    pub fn identify() -> Self {
        let status =
            crate::bounded::read_to_string(Path::new(DPKG_STATUS), crate::bounded::Kind::Lock);
        let dpkg = status.is_ok();
        let packages = status.map(|text| installed(&text)).unwrap_or_default();
        let alternatives = alternatives(Path::new("/etc/alternatives"));
        let local = Path::new("/usr/local")
            .is_dir()
            .then(|| listing_digest(Path::new("/usr/local")))
            .flatten();
        Self::from_parts(packages, alternatives, local, dpkg)
    }

    #[must_use]
    pub fn from_parts(
        packages: Vec<String>,
        alternatives: Vec<(String, String)>,
        local: Option<Digest>,
        dpkg: bool,
    ) -> Self {
        let mut builder = DigestBuilder::new("gantry-host-system/1");
        builder.str(if dpkg { "dpkg" } else { "no-dpkg" });
        builder.str("packages");
        for package in &packages {
            builder.str(package);
        }
        builder.str("alternatives");
        for (name, target) in &alternatives {
            builder.str(name).str(target);
        }
        builder.str("local");
        if let Some(local) = &local {
            builder.field(local.as_bytes());
        }
        Self {
            digest: builder.finish(),
            packages,
            alternatives,
            local,
            dpkg,
        }
    }

    /// The material a link lists.
    #[must_use]
    pub fn material(&self) -> crate::attest::ResourceDescriptor {
        let mut descriptor =
            crate::attest::ResourceDescriptor::named(MATERIAL.to_owned(), &self.digest);
        descriptor.uri = Some(format!("file://{MATERIAL}"));
        descriptor.annotations = Some(serde_json::Map::from_iter([
            ("role".to_owned(), "host-system".into()),
            ("digestOf".to_owned(), self.digest_of().into()),
            ("packages".to_owned(), self.packages.len().into()),
        ]));
        descriptor
    }

    /// The provenance's entry: the material, with every package and alternative named.
    #[must_use]
    pub fn dependency(&self) -> crate::attest::ResourceDescriptor {
        let mut descriptor = self.material();
        let annotations = descriptor
            .annotations
            .get_or_insert_with(serde_json::Map::new);
        annotations.insert("packages".to_owned(), self.packages.clone().into());
        let alternatives: serde_json::Map<String, serde_json::Value> = (self.alternatives.iter())
            .map(|(name, target)| (name.clone(), target.clone().into()))
            .collect();
        annotations.insert("alternatives".to_owned(), alternatives.into());
        if let Some(local) = &self.local {
            annotations.insert(
                "usrLocal".to_owned(),
                serde_json::json!({ "sha256": local.hex() }),
            );
        }
        descriptor
    }

    fn digest_of(&self) -> &'static str {
        if self.dpkg {
            "dpkg packages, /etc/alternatives, /usr/local"
        } else {
            "/etc/alternatives, /usr/local (no dpkg: packages unknown)"
        }
    }
}

/// `/usr/local` by each entry's path, kind, size, modification time and mode (a link by its
/// target): what a hand install or a rebuilt tool changes, read without reading any content
/// (it can hold hundreds of megabytes, and every fresh workspace would hash them again).
fn listing_digest(root: &Path) -> Option<Digest> {
    use std::os::unix::fs::MetadataExt as _;
    let mut builder = DigestBuilder::new("gantry-host-listing/1");
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.ok()?;
        let metadata = entry.metadata().ok()?;
        builder.str(&entry.path().strip_prefix(root).ok()?.to_string_lossy());
        if entry.file_type().is_symlink() {
            builder
                .str("link")
                .str(&std::fs::read_link(entry.path()).ok()?.to_string_lossy());
        } else {
            builder
                .str(if metadata.is_dir() { "dir" } else { "file" })
                .str(&metadata.len().to_string())
                .str(&metadata.mtime().to_string())
                .str(&metadata.mtime_nsec().to_string())
                .str(&(metadata.mode() & 0o7777).to_string());
        }
    }
    Some(builder.finish())
}

/// `name=version arch` of each package dpkg's status calls installed, sorted.
#[must_use]
pub fn installed(status: &str) -> Vec<String> {
    let mut packages = Vec::new();
    for stanza in status.split("\n\n") {
        let field = |name: &str| {
            stanza
                .lines()
                .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
                .map(str::trim)
        };
        if field("Status").is_some_and(|status| status.ends_with(" installed"))
            && let (Some(name), Some(version)) = (field("Package"), field("Version"))
        {
            let arch = field("Architecture").unwrap_or("all");
            packages.push(format!("{name}={version} {arch}"));
        }
    }
    packages.sort();
    packages.dedup();
    packages
}

fn alternatives(folder: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(folder) else {
        return Vec::new();
    };
    let mut found: Vec<(String, String)> = entries
        .flatten()
        .filter_map(|entry| {
            let target = std::fs::read_link(entry.path()).ok()?;
            Some((
                entry.file_name().to_string_lossy().into_owned(),
                target.to_string_lossy().into_owned(),
            ))
        })
        .collect();
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_installed_packages_count_with_their_versions() {
        let status = "Package: gcc-12\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.2.0-14\nDescription: x\n continued\n\nPackage: old\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: make\nStatus: install ok installed\nVersion: 4.3-4.1\nArchitecture: amd64\n";
        assert_eq!(
            installed(status),
            ["gcc-12=12.2.0-14 amd64", "make=4.3-4.1 amd64"]
        );
    }

    #[test]
    fn another_compiler_version_is_another_host() {
        let host = |gcc: &str| {
            HostSystem::from_parts(vec![format!("gcc-12={gcc} amd64")], Vec::new(), None, true)
        };
        assert_eq!(host("12.2.0-14").digest, host("12.2.0-14").digest);
        assert_ne!(host("12.2.0-14").digest, host("12.2.0-15").digest);
        let pointed = |target: &str| {
            HostSystem::from_parts(Vec::new(), vec![("cc".into(), target.into())], None, true)
        };
        assert_ne!(
            pointed("/usr/bin/gcc").digest,
            pointed("/usr/bin/clang").digest
        );
    }
}
