//! SPDX 2.3 JSON (<https://spdx.github.io/spdx-spec/v2.3/>), written with serde types of
//! gantry's own: `spdx-rs` is unmaintained and writes `SPDX-2.2` and nanosecond times that the
//! reference validator rejects (ARCHITECTURE.md has the comparison).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sbom::ids::{content_uuid, spdx_id};
use crate::sbom::{Inventory, Package};

const NOASSERTION: &str = "NOASSERTION";

// Field names here are the format's.
#[expect(clippy::struct_field_names)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: &'a str,
    document_namespace: String,
    creation_info: CreationInfo,
    packages: Vec<SpdxPackage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<SpdxFile>,
    relationships: Vec<Relationship>,
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxPackage<'a> {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<&'a str>,
    /// The artifact's path when `name` is the product's (`about`).
    #[serde(skip_serializing_if = "Option::is_none")]
    package_file_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplier: Option<&'a str>,
    download_location: &'a str,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_verification_code: Option<VerificationCode>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    has_files: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    license_declared: &'a str,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    comment: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VerificationCode {
    package_verification_code_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SpdxFile {
    file_name: String,
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    copyright_text: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[expect(clippy::struct_field_names)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef<'a> {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: &'a str,
}

#[expect(clippy::struct_field_names)]
#[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

fn package_id(package: &Package) -> String {
    let readable = match &package.version {
        Some(version) => format!("{}-{version}", package.name),
        None => package.name.clone(),
    };
    spdx_id("Package", &readable, &package.id)
}

fn sha256(digest: &crate::digest::Digest) -> Checksum {
    Checksum {
        algorithm: "SHA256",
        checksum_value: digest.hex(),
    }
}

/// The document, pretty JSON with a final newline.
#[must_use]
pub fn render(inventory: &Inventory, time: i64) -> Vec<u8> {
    let subject = &inventory.subject;
    let subject_id = spdx_id("Subject", &subject.name, &subject.name);
    let ids: BTreeMap<&str, String> = inventory
        .packages
        .iter()
        .map(|package| (package.id.as_str(), package_id(package)))
        .collect();
    let files = files(inventory);
    let also_ids: Vec<String> = (inventory.also.iter())
        .map(|also| spdx_id("Subject", &also.name, &also.name))
        .collect();
    let relationships = relationships(inventory, &subject_id, &also_ids, &ids, &files);
    let about = subject.about.as_ref();
    let mut packages = vec![SpdxPackage {
        spdx_id: subject_id,
        name: about
            .and_then(|about| about.name.as_deref())
            .unwrap_or(&subject.name),
        version_info: about.and_then(|about| about.version.as_deref()),
        package_file_name: about
            .and_then(|about| about.name.as_ref())
            .map(|_| subject.name.as_str()),
        supplier: about.and_then(|about| about.supplier.as_deref()),
        download_location: NOASSERTION,
        files_analyzed: !files.is_empty(),
        package_verification_code: (!files.is_empty()).then(|| VerificationCode {
            package_verification_code_value: verification_code(inventory),
        }),
        has_files: files.iter().map(|file| file.spdx_id.clone()).collect(),
        checksums: subject.digest.iter().map(sha256).collect(),
        license_concluded: NOASSERTION,
        license_declared: about
            .and_then(|about| about.license.as_deref())
            .unwrap_or(NOASSERTION),
        copyright_text: NOASSERTION,
        external_refs: (about.and_then(|about| about.purl.as_deref()))
            .map(|purl| ExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_type: "purl",
                reference_locator: purl,
            })
            .into_iter()
            .collect(),
        comment: None,
    }];
    packages.extend(
        (inventory.also.iter())
            .zip(&also_ids)
            .map(|(also, id)| also_package(also, id.clone())),
    );
    packages.extend(
        inventory
            .packages
            .iter()
            .map(|package| spdx_package(package, ids[package.id.as_str()].clone())),
    );
    let mut document = Document {
        spdx_version: "SPDX-2.3",
        data_license: "CC0-1.0",
        spdx_id: "SPDXRef-DOCUMENT",
        name: &subject.name,
        document_namespace: String::new(),
        creation_info: CreationInfo {
            created: crate::time::rfc3339(time),
            creators: vec![format!("Tool: gantry-{}", env!("CARGO_PKG_VERSION"))],
        },
        packages,
        files,
        relationships,
    };
    // The namespace must be unique per document: it is named by everything else in it.
    let content = crate::digest::Digest::of_bytes(&to_json(&document));
    document.document_namespace = format!("https://gantry.dev/spdx/{}", content_uuid(&content));
    to_json(&document)
}

/// Another artifact the document is for: a file by its name and digest.
fn also_package(also: &crate::sbom::Subject, spdx_id: String) -> SpdxPackage<'_> {
    SpdxPackage {
        spdx_id,
        name: &also.name,
        version_info: None,
        package_file_name: None,
        supplier: None,
        download_location: NOASSERTION,
        files_analyzed: false,
        package_verification_code: None,
        has_files: Vec::new(),
        checksums: also.digest.iter().map(sha256).collect(),
        license_concluded: NOASSERTION,
        license_declared: NOASSERTION,
        copyright_text: NOASSERTION,
        external_refs: Vec::new(),
        comment: None,
    }
}

fn spdx_package(package: &Package, spdx_id: String) -> SpdxPackage<'_> {
    SpdxPackage {
        spdx_id,
        name: &package.name,
        version_info: package.version.as_deref(),
        package_file_name: None,
        supplier: None,
        download_location: package.download.as_deref().unwrap_or(NOASSERTION),
        files_analyzed: false,
        package_verification_code: None,
        has_files: Vec::new(),
        checksums: package.sha256.iter().map(sha256).collect(),
        license_concluded: NOASSERTION,
        license_declared: package.license.as_deref().unwrap_or(NOASSERTION),
        copyright_text: NOASSERTION,
        external_refs: package
            .purl
            .iter()
            .map(|purl| ExternalRef {
                reference_category: "PACKAGE-MANAGER",
                reference_type: "purl",
                reference_locator: purl,
            })
            .collect(),
        comment: package.comment,
    }
}

fn files(inventory: &Inventory) -> Vec<SpdxFile> {
    inventory
        .files
        .iter()
        .map(|file| SpdxFile {
            file_name: format!("./{}", file.path),
            spdx_id: spdx_id("File", &file.path, &file.path),
            checksums: vec![
                Checksum {
                    algorithm: "SHA1",
                    checksum_value: crate::hex::encode(&file.sha1),
                },
                sha256(&file.sha256),
            ],
            license_concluded: NOASSERTION,
            copyright_text: NOASSERTION,
        })
        .collect()
}

/// The document describes the subjects; each depends on the roots, and the subject contains
/// the files; each package depends on what the source says. Sorted after the first.
fn relationships(
    inventory: &Inventory,
    subject_id: &str,
    also_ids: &[String],
    ids: &BTreeMap<&str, String>,
    files: &[SpdxFile],
) -> Vec<Relationship> {
    let mut relationships = vec![Relationship {
        spdx_element_id: "SPDXRef-DOCUMENT".to_owned(),
        relationship_type: "DESCRIBES",
        related_spdx_element: subject_id.to_owned(),
    }];
    let mut related = |from: &str, kind: &'static str, to: &str| {
        relationships.push(Relationship {
            spdx_element_id: from.to_owned(),
            relationship_type: kind,
            related_spdx_element: to.to_owned(),
        });
    };
    for also in also_ids {
        related("SPDXRef-DOCUMENT", "DESCRIBES", also);
    }
    for subject in std::iter::once(subject_id).chain(also_ids.iter().map(String::as_str)) {
        for root in &inventory.roots {
            if let Some(id) = ids.get(root.as_str()) {
                related(subject, "DEPENDS_ON", id);
            }
        }
    }
    for file in files {
        related(subject_id, "CONTAINS", &file.spdx_id);
    }
    for package in &inventory.packages {
        for dependency in &package.depends_on {
            if let Some(id) = ids.get(dependency.as_str()) {
                related(&ids[package.id.as_str()], "DEPENDS_ON", id);
            }
        }
    }
    relationships[1..].sort();
    relationships
}

/// SPDX 2.3 §7.9: SHA-1 of the sorted, concatenated SHA-1s of the package's files.
fn verification_code(inventory: &Inventory) -> String {
    let mut hashes: Vec<String> = inventory
        .files
        .iter()
        .map(|file| crate::hex::encode(&file.sha1))
        .collect();
    hashes.sort();
    crate::hex::encode(&crate::sbom::ids::sha1(hashes.concat().as_bytes()))
}

fn to_json(document: &Document<'_>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(document).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
