//! Software bills of materials: what an artifact is made of, read from a `Cargo.lock`, a Nix
//! closure or a folder into one [`Inventory`], then written as SPDX 2.3 or `CycloneDX` 1.6 JSON.
//!
//! Documents are byte-for-byte reproducible: the same inventory and time give the same bytes.
//! Everything is sorted, the time is the caller's (`SOURCE_DATE_EPOCH`), and the identifiers
//! a format wants to be unique (SPDX's document namespace, `CycloneDX`'s serial number) are
//! derived from the document's own content.

pub mod cargo;
pub mod cyclonedx;
pub mod folder;
pub mod ids;
pub mod nix;
pub mod spdx;
pub mod standalone;

use crate::digest::Digest;

/// The document formats gantry writes.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Spdx,
    Cyclonedx,
}

impl Format {
    /// The in-toto predicate type of an SBOM attestation in this format.
    #[must_use]
    pub fn predicate_type(self) -> &'static str {
        match self {
            Self::Spdx => crate::attest::predicate::SPDX,
            Self::Cyclonedx => crate::attest::predicate::CYCLONEDX,
        }
    }

    /// The IANA media type of a document in this format.
    #[must_use]
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Spdx => "application/spdx+json",
            Self::Cyclonedx => "application/vnd.cyclonedx+json",
        }
    }

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Spdx => "spdx",
            Self::Cyclonedx => "cyclonedx",
        }
    }

    /// `spdx` or `cyclonedx`; `None` for anything else.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "spdx" => Some(Self::Spdx),
            "cyclonedx" => Some(Self::Cyclonedx),
            _ => None,
        }
    }
}

/// What one SBOM describes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inventory {
    pub subject: Subject,
    /// Other artifacts the same document is for (several binaries of one lock), each a file
    /// by its digest; `about` belongs to `subject`, the product.
    pub also: Vec<Subject>,
    /// Sorted by `id`, each `id` once.
    pub packages: Vec<Package>,
    /// Sorted by path.
    pub files: Vec<File>,
    /// The packages the subject is made from directly (workspace members, the closure's
    /// root), sorted.
    pub roots: Vec<String>,
}

/// The artifact the document is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subject {
    /// As the user named it: a workspace-relative path, a store path.
    pub name: String,
    /// The SHA-256 of its bytes (of its NAR serialisation for a store path); `None` for a
    /// folder, which its files describe.
    pub digest: Option<Digest>,
    /// What the artifact is, as the pipeline says (`about = { ... }`).
    pub about: Option<About>,
}

/// The product an artifact is: its name, version, supplier, licence and package URL, as the
/// pipeline declares them (a file or folder says none of it by itself).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct About {
    pub name: Option<String>,
    pub version: Option<String>,
    /// SPDX's form: `Organization: NAME` or `Person: NAME`.
    pub supplier: Option<String>,
    /// An SPDX licence expression.
    pub license: Option<String>,
    pub purl: Option<String>,
}

impl About {
    /// Why `supplier` is not a supplier as SPDX writes one, if it is not.
    #[must_use]
    pub fn supplier_problem(supplier: &str) -> Option<String> {
        (!supplier.starts_with("Organization: ") && !supplier.starts_with("Person: ")).then(|| {
            format!("`{supplier}` is not a supplier as SPDX writes one: `Organization: NAME` or `Person: NAME`")
        })
    }

    /// Why `licence` is not an SPDX licence expression, if it is not.
    #[must_use]
    pub fn license_problem(licence: &str) -> Option<String> {
        (cargo::normalise_licence(licence).as_deref() != Some(licence)).then(|| {
            format!("`{licence}` is not an SPDX licence expression (such as `MIT OR Apache-2.0`)")
        })
    }

    /// Why `purl` is not a package URL, if it is not.
    #[must_use]
    pub fn purl_problem(purl: &str) -> Option<String> {
        (!purl.starts_with("pkg:") || !purl[4..].contains('/'))
            .then(|| format!("`{purl}` is not a package URL (`pkg:TYPE/NAME@VERSION`)"))
    }

    /// The supplier's name without SPDX's `Organization: ` or `Person: `.
    #[must_use]
    pub fn supplier_name(&self) -> Option<&str> {
        let supplier = self.supplier.as_deref()?;
        Some(
            supplier
                .strip_prefix("Organization: ")
                .or_else(|| supplier.strip_prefix("Person: "))
                .unwrap_or(supplier),
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    /// What makes it unique in its ecosystem: `cargo:<name>@<version>[#<source>]`, a store
    /// path. Identifiers in the documents are derived from it.
    pub id: String,
    pub name: String,
    pub version: Option<String>,
    pub purl: Option<String>,
    /// The SHA-256 the source vouches for: a crate archive's, a store path's NAR hash.
    pub sha256: Option<Digest>,
    /// Where it can be fetched.
    pub download: Option<String>,
    /// A licence expression the package declares; `None` when not known (NOASSERTION).
    pub license: Option<String>,
    /// Ids of the packages it depends on, sorted.
    pub depends_on: Vec<String>,
    /// What a reader should know about the fields (what `sha256` is of, say).
    pub comment: Option<&'static str>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    /// Relative to the folder, `/`-separated.
    pub path: String,
    pub sha256: Digest,
    /// SPDX requires a SHA-1 for every file.
    pub sha1: [u8; 20],
}

/// The format of a document another tool wrote: SPDX (`spdxVersion`) or `CycloneDX`
/// (`bomFormat`); else what it is not, to follow its name in a message.
pub fn format_of_document(bytes: &[u8]) -> Result<Format, String> {
    let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        format!("is not a JSON SBOM ({error}); gantry imports SPDX and CycloneDX JSON")
    })?;
    if json["spdxVersion"]
        .as_str()
        .is_some_and(|version| version.starts_with("SPDX-"))
    {
        Ok(Format::Spdx)
    } else if json["bomFormat"] == "CycloneDX" {
        Ok(Format::Cyclonedx)
    } else {
        Err(
            "is neither an SPDX document (`spdxVersion`) nor a CycloneDX BOM (`bomFormat`)"
                .to_owned(),
        )
    }
}

/// Renders the inventory in `format`, created at `time` (Unix seconds).
#[must_use]
pub fn render(inventory: &Inventory, format: Format, time: i64) -> Vec<u8> {
    match format {
        Format::Spdx => spdx::render(inventory, time),
        Format::Cyclonedx => cyclonedx::render(inventory, time),
    }
}

/// The subjects of an SBOM attestation: the subject itself (and the others it names), or each
/// file of a folder.
#[must_use]
pub fn attestation_subjects(inventory: &Inventory) -> Vec<crate::attest::ResourceDescriptor> {
    match inventory.subject.digest {
        Some(digest) => std::iter::once((&inventory.subject.name, digest))
            .chain((inventory.also.iter()).filter_map(|also| Some((&also.name, also.digest?))))
            .map(|(name, digest)| crate::attest::ResourceDescriptor::named(name.clone(), &digest))
            .collect(),
        None => inventory
            .files
            .iter()
            .map(|file| {
                crate::attest::ResourceDescriptor::named(
                    format!(
                        "{}/{}",
                        inventory.subject.name.trim_end_matches('/'),
                        file.path
                    ),
                    &file.sha256,
                )
            })
            .collect(),
    }
}

/// A DSSE-signed in-toto Statement v1 whose predicate is the SBOM document itself, signed
/// deterministically: the same document and key give the same bytes.
pub fn attest(
    inventory: &Inventory,
    format: Format,
    document: &[u8],
    signer: &dyn crate::keys::Signer,
) -> Result<Vec<u8>, String> {
    let predicate: serde_json::Value = serde_json::from_slice(document)
        .map_err(|error| format!("the SBOM is not JSON: {error}"))?;
    let statement = crate::attest::Statement::new(
        attestation_subjects(inventory),
        format.predicate_type(),
        predicate,
    );
    let body = serde_json::to_vec(&statement).map_err(|error| error.to_string())?;
    let envelope =
        crate::attest::dsse::sign_deterministic(crate::attest::PAYLOAD_TYPE, &body, signer);
    let mut bytes = serde_json::to_vec_pretty(&envelope).map_err(|error| error.to_string())?;
    bytes.push(b'\n');
    Ok(bytes)
}
