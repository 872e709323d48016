//! `CycloneDX` 1.6 JSON (<https://cyclonedx.org/docs/1.6/json/>), written with serde types of
//! gantry's own: `cyclonedx-bom` 0.8 writes 1.3 to 1.5 only.

use serde::Serialize;

use crate::sbom::ids::content_uuid;
use crate::sbom::{Inventory, Package};

// Field names are the format's.
#[expect(clippy::struct_field_names)]
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Bom<'a> {
    bom_format: &'static str,
    spec_version: &'static str,
    serial_number: String,
    version: u32,
    metadata: Metadata<'a>,
    components: Vec<Component<'a>>,
    dependencies: Vec<Dependency<'a>>,
}

#[derive(Serialize)]
struct Metadata<'a> {
    timestamp: String,
    tools: Tools,
    component: Component<'a>,
}

#[derive(Serialize)]
struct Tools {
    components: Vec<Tool>,
}

#[derive(Serialize)]
struct Tool {
    #[serde(rename = "type")]
    kind: &'static str,
    name: &'static str,
    version: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Component<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "bom-ref")]
    bom_ref: String,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    hashes: Vec<Hash>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    licenses: Vec<Licence<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purl: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    supplier: Option<Supplier<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_references: Vec<Reference>,
    /// The other artifacts a BOM is for, inside its subject (`metadata.component`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    components: Vec<Component<'a>>,
}

#[derive(Serialize)]
struct Supplier<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct Hash {
    alg: &'static str,
    content: String,
}

#[derive(Serialize)]
struct Licence<'a> {
    expression: &'a str,
}

#[derive(Serialize)]
struct Reference {
    #[serde(rename = "type")]
    kind: &'static str,
    url: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Dependency<'a> {
    #[serde(rename = "ref")]
    reference: &'a str,
    depends_on: Vec<&'a str>,
}

const SUBJECT_REF: &str = "subject";

fn sha256(digest: &crate::digest::Digest) -> Hash {
    Hash {
        alg: "SHA-256",
        content: digest.hex(),
    }
}

fn references(package: &Package) -> Vec<Reference> {
    match package.download.as_deref() {
        Some(url) if url.starts_with("https://") => vec![Reference {
            kind: "distribution",
            url: url.to_owned(),
        }],
        Some(url) => url.strip_prefix("git+").map_or_else(Vec::new, |git| {
            vec![Reference {
                kind: "vcs",
                url: git.to_owned(),
            }]
        }),
        None => Vec::new(),
    }
}

/// The BOM, pretty JSON with a final newline.
#[must_use]
pub fn render(inventory: &Inventory, time: i64) -> Vec<u8> {
    let subject = &inventory.subject;
    let mut components: Vec<Component<'_>> = inventory
        .packages
        .iter()
        .map(|package| Component {
            kind: "library",
            bom_ref: package.id.clone(),
            name: &package.name,
            version: package.version.as_deref(),
            description: package.comment,
            hashes: package.sha256.iter().map(sha256).collect(),
            licenses: package
                .license
                .iter()
                .map(|expression| Licence { expression })
                .collect(),
            purl: package.purl.as_deref(),
            external_references: references(package),
            components: Vec::new(),
            supplier: None,
        })
        .collect();
    components.extend(inventory.files.iter().map(|file| Component {
        kind: "file",
        bom_ref: format!("file:{}", file.path),
        name: &file.path,
        version: None,
        description: None,
        hashes: vec![
            Hash {
                alg: "SHA-1",
                content: crate::hex::encode(&file.sha1),
            },
            sha256(&file.sha256),
        ],
        licenses: Vec::new(),
        purl: None,
        supplier: None,
        external_references: Vec::new(),
        components: Vec::new(),
    }));
    let also_refs: Vec<String> = (inventory.also.iter())
        .map(|also| format!("{SUBJECT_REF}:{}", also.name))
        .collect();
    let mut dependencies: Vec<Dependency<'_>> = std::iter::once(SUBJECT_REF)
        .chain(also_refs.iter().map(String::as_str))
        .map(|reference| Dependency {
            reference,
            depends_on: inventory.roots.iter().map(String::as_str).collect(),
        })
        .collect();
    dependencies.extend(inventory.packages.iter().map(|package| Dependency {
        reference: &package.id,
        depends_on: package.depends_on.iter().map(String::as_str).collect(),
    }));
    let mut bom = Bom {
        bom_format: "CycloneDX",
        spec_version: "1.6",
        serial_number: String::new(),
        version: 1,
        metadata: Metadata {
            timestamp: crate::time::rfc3339(time),
            tools: Tools {
                components: vec![Tool {
                    kind: "application",
                    name: "gantry",
                    version: env!("CARGO_PKG_VERSION"),
                }],
            },
            component: Component {
                components: (inventory.also.iter())
                    .zip(&also_refs)
                    .map(|(also, reference)| Component {
                        kind: "file",
                        bom_ref: reference.clone(),
                        name: &also.name,
                        version: None,
                        description: None,
                        hashes: also.digest.iter().map(sha256).collect(),
                        licenses: Vec::new(),
                        purl: None,
                        supplier: None,
                        external_references: Vec::new(),
                        components: Vec::new(),
                    })
                    .collect(),
                ..subject_component(subject)
            },
        },
        components,
        dependencies,
    };
    // A serial number is unique per BOM: this one is named by everything else in it.
    let content = crate::digest::Digest::of_bytes(&to_json(&bom));
    bom.serial_number = format!("urn:uuid:{}", content_uuid(&content));
    to_json(&bom)
}

/// The document's subject: the artifact, named as the product when the pipeline says what it
/// is (`about`), its bytes by their hashes.
fn subject_component(subject: &crate::sbom::Subject) -> Component<'_> {
    let about = subject.about.as_ref();
    Component {
        kind: "file",
        bom_ref: SUBJECT_REF.to_owned(),
        name: about
            .and_then(|about| about.name.as_deref())
            .unwrap_or(&subject.name),
        version: about.and_then(|about| about.version.as_deref()),
        description: None,
        hashes: subject.digest.iter().map(sha256).collect(),
        licenses: (about.and_then(|about| about.license.as_deref()))
            .map(|expression| Licence { expression })
            .into_iter()
            .collect(),
        purl: about.and_then(|about| about.purl.as_deref()),
        supplier: (about.and_then(crate::sbom::About::supplier_name)).map(|name| Supplier { name }),
        external_references: Vec::new(),
        components: Vec::new(),
    }
}

fn to_json(bom: &Bom<'_>) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(bom).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}
