//! The components an SBOM lists, by package URL: SPDX 2.3 JSON (`packages[].externalRefs[]`
//! of type `purl`) and `CycloneDX` 1.x JSON (`components[].purl`, nested components too),
//! gantry's own documents and other tools'.

use serde_json::Value;

use crate::vulns::version::Ecosystem;

/// A component a scan can match: its ecosystem, name and version, from its purl.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Component {
    pub ecosystem: Ecosystem,
    pub name: String,
    pub version: String,
    pub purl: String,
}

/// What an SBOM holds: the components with a purl gantry matches, and how many others it
/// lists (no purl, or an ecosystem gantry has no version order for).
#[derive(Debug, Default)]
pub struct Listed {
    pub components: Vec<Component>,
    pub unmatched: usize,
    /// `SPDX-2.3`, `CycloneDX-1.6`, ...
    pub format: String,
    /// The document's own name for what it describes.
    pub describes: Option<String>,
    /// The artifacts it describes, by name and SHA-256: what a scan of it is about.
    pub subjects: Vec<(String, String)>,
}

/// Reads an SBOM's components.
pub fn read(bytes: &[u8]) -> Result<Listed, String> {
    let document: Value =
        serde_json::from_slice(bytes).map_err(|error| format!("not JSON: {error}"))?;
    let mut purls = Vec::new();
    let mut listed = Listed::default();
    if let Some(version) = document.get("spdxVersion").and_then(Value::as_str) {
        read_spdx(&document, version, &mut listed, &mut purls);
    } else if document.get("bomFormat").and_then(Value::as_str) == Some("CycloneDX") {
        read_cyclonedx(&document, &mut listed, &mut purls);
    } else {
        return Err("neither SPDX (`spdxVersion`) nor CycloneDX (`bomFormat`) JSON".to_owned());
    }
    for purl in purls {
        match purl.as_deref().and_then(parse_purl) {
            Some(component) => listed.components.push(component),
            None => listed.unmatched += 1,
        }
    }
    listed.components.sort();
    listed.components.dedup();
    Ok(listed)
}

/// SPDX 2.3: each package's `purl` external reference; the packages the document DESCRIBES
/// with their SHA-256 as the subjects.
fn read_spdx(
    document: &Value,
    version: &str,
    listed: &mut Listed,
    purls: &mut Vec<Option<String>>,
) {
    version.clone_into(&mut listed.format);
    listed.describes = document
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let described: Vec<&str> = (document.get("relationships").and_then(Value::as_array))
        .into_iter()
        .flatten()
        .filter(|relationship| {
            relationship.get("spdxElementId").and_then(Value::as_str) == Some("SPDXRef-DOCUMENT")
                && relationship.get("relationshipType").and_then(Value::as_str) == Some("DESCRIBES")
        })
        .filter_map(|relationship| relationship.get("relatedSpdxElement")?.as_str())
        .collect();
    for package in document
        .get("packages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let purl = (package.get("externalRefs").and_then(Value::as_array))
            .into_iter()
            .flatten()
            .find(|reference| {
                reference.get("referenceType").and_then(Value::as_str) == Some("purl")
            })
            .and_then(|reference| reference.get("referenceLocator"))
            .and_then(Value::as_str);
        purls.push(purl.map(str::to_owned));
        let id = package
            .get("SPDXID")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if described.contains(&id) {
            let sha256 = (package.get("checksums").and_then(Value::as_array))
                .into_iter()
                .flatten()
                .find(|checksum| {
                    checksum.get("algorithm").and_then(Value::as_str) == Some("SHA256")
                })
                .and_then(|checksum| checksum.get("checksumValue")?.as_str());
            let name = package.get("name").and_then(Value::as_str);
            if let (Some(name), Some(sha256)) = (name, sha256) {
                listed
                    .subjects
                    .push((name.to_owned(), sha256.to_ascii_lowercase()));
            }
        }
    }
}

/// `CycloneDX`: each component's `purl` (nested ones too); `metadata.component` and its
/// components with their SHA-256 as the subjects.
fn read_cyclonedx(document: &Value, listed: &mut Listed, purls: &mut Vec<Option<String>>) {
    let version = document
        .get("specVersion")
        .and_then(Value::as_str)
        .unwrap_or("?");
    listed.format = format!("CycloneDX-{version}");
    let metadata = document
        .get("metadata")
        .and_then(|metadata| metadata.get("component"));
    listed.describes = metadata
        .and_then(|component| component.get("name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut described: Vec<&Value> = metadata.into_iter().collect();
    while let Some(component) = described.pop() {
        let sha256 = (component.get("hashes").and_then(Value::as_array))
            .into_iter()
            .flatten()
            .find(|hash| hash.get("alg").and_then(Value::as_str) == Some("SHA-256"))
            .and_then(|hash| hash.get("content")?.as_str());
        let name = component.get("name").and_then(Value::as_str);
        if let (Some(name), Some(sha256)) = (name, sha256) {
            listed
                .subjects
                .push((name.to_owned(), sha256.to_ascii_lowercase()));
        }
        described.extend(
            (component.get("components").and_then(Value::as_array))
                .into_iter()
                .flatten(),
        );
    }
    let mut stack: Vec<&Value> = (document.get("components").and_then(Value::as_array))
        .into_iter()
        .flatten()
        .collect();
    while let Some(component) = stack.pop() {
        purls.push(
            component
                .get("purl")
                .and_then(Value::as_str)
                .map(str::to_owned),
        );
        stack.extend(
            (component.get("components").and_then(Value::as_array))
                .into_iter()
                .flatten(),
        );
    }
}

/// `pkg:TYPE/NAMESPACE/NAME@VERSION?QUALIFIERS#SUBPATH` for the ecosystems gantry matches;
/// `None` for another type, or a purl without a version.
#[must_use]
pub fn parse_purl(purl: &str) -> Option<Component> {
    let rest = purl.strip_prefix("pkg:")?;
    let rest = rest.split(['#', '?']).next()?;
    let (kind, path) = rest.split_once('/')?;
    let ecosystem = Ecosystem::from_purl_type(&kind.to_ascii_lowercase())?;
    let (path, version) = path.rsplit_once('@')?;
    let segments: Vec<String> = path.split('/').map(decode).collect();
    let name = match ecosystem {
        // npm's scope and Go's module path are part of the name OSV uses.
        Ecosystem::Npm | Ecosystem::Go => segments.join("/"),
        // `pkg:deb/debian/curl`: the namespace is the distribution.
        Ecosystem::CratesIo | Ecosystem::PyPI | Ecosystem::Debian => segments.last()?.clone(),
    };
    let version = decode(version);
    if name.is_empty() || version.is_empty() {
        return None;
    }
    Some(Component {
        ecosystem,
        name,
        version,
        purl: purl.to_owned(),
    })
}

/// Percent-decoding (`%40` is `@`); a malformed escape is kept as written.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'%'
            && let Some(value) = text
                .get(at + 1..at + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(value);
            at += 3;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purls_of_each_ecosystem() {
        let cases = [
            (
                "pkg:cargo/smallvec@1.6.0",
                Ecosystem::CratesIo,
                "smallvec",
                "1.6.0",
            ),
            (
                "pkg:npm/%40babel/core@7.0.0",
                Ecosystem::Npm,
                "@babel/core",
                "7.0.0",
            ),
            (
                "pkg:pypi/Jinja2@2.10?x=1",
                Ecosystem::PyPI,
                "Jinja2",
                "2.10",
            ),
            (
                "pkg:golang/github.com/google/uuid@v1.6.0",
                Ecosystem::Go,
                "github.com/google/uuid",
                "v1.6.0",
            ),
            (
                "pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64",
                Ecosystem::Debian,
                "curl",
                "7.88.1-10+deb12u5",
            ),
        ];
        for (purl, ecosystem, name, version) in cases {
            let component = parse_purl(purl).expect(purl);
            assert_eq!(
                (
                    component.ecosystem,
                    component.name.as_str(),
                    component.version.as_str()
                ),
                (ecosystem, name, version)
            );
        }
        for other in [
            "pkg:maven/a/b@1",
            "pkg:cargo/nameless",
            "cargo/x@1",
            "pkg:cargo/@1",
        ] {
            assert!(parse_purl(other).is_none(), "{other}");
        }
    }

    #[test]
    fn spdx_and_cyclonedx_list_their_purls() {
        let spdx = br#"{"spdxVersion": "SPDX-2.3", "name": "app", "packages": [
            {"name": "a", "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:cargo/a@1.0.0"}]},
            {"name": "file"}]}"#;
        let listed = read(spdx).expect("spdx");
        assert_eq!(listed.format, "SPDX-2.3");
        assert_eq!(listed.components.len(), 1);
        assert_eq!(listed.unmatched, 1);
        let cyclonedx = br#"{"bomFormat": "CycloneDX", "specVersion": "1.6", "metadata": {"component": {"name": "app"}},
            "components": [{"purl": "pkg:npm/left-pad@1.3.0", "components": [{"purl": "pkg:pypi/six@1.16.0"}]}]}"#;
        let listed = read(cyclonedx).expect("cyclonedx");
        assert_eq!(listed.format, "CycloneDX-1.6");
        assert_eq!(listed.describes.as_deref(), Some("app"));
        assert_eq!(listed.components.len(), 2);
        assert!(read(b"{}").is_err());
        assert!(read(b"not json").is_err());
    }
}
