//! Template registries: a folder, or a static HTTP(S) site serving the same files, so any static
//! host is one (docs/templates.md):
//!
//! ```text
//! index/PUBLISHER/NAME.json                    every version: digest, yanked, key id, gantry range, interface
//! packs/PUBLISHER/NAME/VERSION.tar             the canonical pack
//! packs/PUBLISHER/NAME/VERSION.tar.intoto.json its statement, signed by the publisher (DSSE)
//! ```
//!
//! The index is a catalogue, not a trust root: what a run uses is the pack whose digest the
//! lock names and whose statement verifies with a key the pipeline trusts.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::manifest::{Interface, Name};
use crate::http::HttpUrl;

const TIMEOUT: Duration = Duration::from_secs(30);

/// One template's versions, as the registry lists them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub name: String,
    pub versions: Vec<Entry>,
}

/// One published version.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub version: String,
    /// SHA-256 of the pack, hex.
    pub sha256: String,
    #[serde(default)]
    pub yanked: bool,
    /// The in-toto key id of the publisher's key that signed it.
    pub key: String,
    /// The gantry versions it works with.
    pub gantry: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub interface: Interface,
}

/// Where a registry's files are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Folder(PathBuf),
    Http(HttpUrl),
    /// An `https://` site, read with the host's curl (its CA store, `CURL_CA_BUNDLE`).
    Https(String),
}

impl Location {
    /// `http://HOST:PORT/PATH`, or a folder (relative to `base`, the pipeline's folder).
    pub fn parse(text: &str, base: &Path) -> Result<Self, String> {
        if let Some(rest) = text.strip_prefix("https://") {
            if rest.is_empty() || rest.contains(['\0', ' ', '\n', '\r']) {
                return Err(format!("`{text}` is not a URL gantry can reach"));
            }
            return Ok(Self::Https(text.trim_end_matches('/').to_owned()));
        }
        if text.contains("://") {
            return HttpUrl::parse(text).map(Self::Http);
        }
        if text.is_empty() {
            return Err("an empty registry location".to_owned());
        }
        Ok(Self::Folder(base.join(text)))
    }

    /// The bytes at `relative`; `None` when the registry has no such file.
    pub fn get(&self, relative: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Self::Folder(folder) => {
                let path = folder.join(relative);
                match crate::bounded::read(&path, crate::bounded::Kind::Template) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(error) => Err(format!("cannot read `{}`: {error}", path.display())),
                }
            }
            Self::Http(url) => {
                let target = format!("{}/{relative}", url.path.trim_end_matches('/'));
                let (status, body) = crate::http::get(url, &target, TIMEOUT)?;
                match status {
                    200 => Ok(Some(body)),
                    404 | 410 => Ok(None),
                    _ => Err(format!("{url}{relative}: HTTP {status}")),
                }
            }
            Self::Https(base) => https_get(&format!("{base}/{relative}")),
        }
    }

    /// Where `relative` is, as a URI (for the provenance).
    #[must_use]
    pub fn uri(&self, relative: &str) -> String {
        match self {
            Self::Folder(folder) => {
                let absolute = std::path::absolute(folder).unwrap_or_else(|_| folder.clone());
                format!("file://{}/{relative}", absolute.display())
            }
            Self::Http(url) => format!(
                "http://{}:{}{}/{relative}",
                url.host,
                url.port,
                url.path.trim_end_matches('/')
            ),
            Self::Https(base) => format!("{base}/{relative}"),
        }
    }
}

/// A GET over HTTPS with the host's curl: TLS verified against its CA store, https only
/// (a redirect to another scheme is refused), at most 16 MiB, 30 s; `None` on 404 or 410.
fn https_get(url: &str) -> Result<Option<Vec<u8>>, String> {
    let arguments: Vec<std::ffi::OsString> = [
        // No ~/.curlrc; the URL taken as written, never as a glob.
        "-q",
        "--globoff",
        "--silent",
        "--show-error",
        "--location",
        "--proto",
        "=https",
        "--proto-redir",
        "=https",
        "--max-filesize",
        "16777216",
        "--max-time",
        "30",
        "--write-out",
        "%{http_code}",
        "--output",
        "-",
        url,
    ]
    .iter()
    .map(std::ffi::OsString::from)
    .collect();
    let never = std::sync::atomic::AtomicBool::new(false);
    let captured = crate::host_tool::run(
        Path::new("curl"),
        &arguments,
        Path::new("/"),
        Some(TIMEOUT + Duration::from_secs(5)),
        &never,
    )
    .map_err(|error| format!("{url}: cannot run curl (apt-get install curl): {error}"))?;
    if captured.ended != crate::host_tool::Ended::Exited(0) {
        return Err(format!(
            "{url}: {}",
            String::from_utf8_lossy(&captured.stderr).trim()
        ));
    }
    let mut body = captured.stdout;
    let code = body.split_off(body.len().saturating_sub(3));
    match &code[..] {
        b"200" => Ok(Some(body)),
        b"404" | b"410" => Ok(None),
        other => Err(format!("{url}: HTTP {}", String::from_utf8_lossy(other))),
    }
}

#[must_use]
pub fn index_path(name: &Name) -> String {
    format!("index/{}/{}.json", name.publisher, name.name)
}

#[must_use]
pub fn pack_path(name: &Name, version: &str) -> String {
    format!("packs/{}/{}/{version}.tar", name.publisher, name.name)
}

#[must_use]
pub fn statement_path(name: &Name, version: &str) -> String {
    format!("{}.intoto.json", pack_path(name, version))
}

/// A template's index; `None` when the registry does not hold the template.
pub fn read_index(location: &Location, name: &Name) -> Result<Option<Index>, String> {
    let Some(bytes) = location.get(&index_path(name))? else {
        return Ok(None);
    };
    let index: Index = serde_json::from_slice(&bytes)
        .map_err(|error| format!("the index of `{name}` is not one: {error}"))?;
    if index.name != name.to_string() {
        return Err(format!("the index of `{name}` says it is `{}`", index.name));
    }
    Ok(Some(index))
}

impl Index {
    /// The entry of `version`.
    #[must_use]
    pub fn entry(&self, version: &str) -> Option<&Entry> {
        self.versions.iter().find(|entry| entry.version == version)
    }

    /// The versions as the resolver sees them (entries whose version does not parse are left
    /// out).
    #[must_use]
    pub fn candidates(&self) -> Vec<super::constraint::Candidate> {
        (self.versions.iter())
            .filter_map(|entry| {
                Some(super::constraint::Candidate {
                    version: super::constraint::version(&entry.version).ok()?,
                    yanked: entry.yanked,
                })
            })
            .collect()
    }

    /// The index's JSON, versions in precedence order.
    #[must_use]
    pub fn render(&self) -> Vec<u8> {
        let mut sorted = self.clone();
        sorted.versions.sort_by(|a, b| {
            match (
                super::constraint::version(&a.version),
                super::constraint::version(&b.version),
            ) {
                (Ok(a), Ok(b)) => super::constraint::precedence(&a, &b),
                _ => a.version.cmp(&b.version),
            }
        });
        let mut bytes = serde_json::to_vec_pretty(&sorted).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_folders_or_plain_http() {
        let base = Path::new("/w");
        assert_eq!(
            Location::parse("../registry", base),
            Ok(Location::Folder(PathBuf::from("/w/../registry")))
        );
        let http = Location::parse("http://127.0.0.1:8080/templates/", base).expect("http");
        assert_eq!(
            http.uri("index/a/b.json"),
            "http://127.0.0.1:8080/templates/index/a/b.json"
        );
        assert_eq!(
            Location::parse("https://example.com/templates/", base),
            Ok(Location::Https("https://example.com/templates".to_owned()))
        );
        assert!(Location::parse("https://", base).is_err());
        assert!(Location::parse("ftp://example.com/", base).is_err());
    }
}
