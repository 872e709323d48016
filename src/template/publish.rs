//! `gantry template publish DIR --registry FOLDER --key KEY`: the template checked (its
//! manifest, its steps as a pipeline reads them), refused when its version exists or when a
//! compatible release (same major; for 0.x the same minor) breaks the previous one's
//! interface, packed canonically, signed, and added to the registry: pack and statement first,
//! then the index, then the catalogue, each written atomically, so a crash leaves at worst an
//! unlisted pack.
//! `yank` marks a version the resolver must no longer pick (a lock that pins it still works).

use std::path::{Path, PathBuf};

use super::manifest::{self, Manifest, Name};
use super::pack::{self, File, Files};
use super::registry::{self, Entry, Index, Location};
use super::{Loaded, Pin};
use crate::attest::predicate::template::{Published, URI};
use crate::attest::{ResourceDescriptor, Statement};
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::keys::Signer;

/// What was published.
#[derive(Debug)]
pub struct Publication {
    pub name: Name,
    pub version: String,
    pub digest: Digest,
    pub key: String,
    pub pack: PathBuf,
}

/// A template folder's files: regular files only (a link or a device is refused), `.git`
/// left out.
pub fn read_folder(dir: &Path) -> Result<Files> {
    let mut files = Files::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|error| Error::Usage(format!("`{}`: {error}", dir.display())))?;
        let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        if relative.as_os_str().is_empty() || relative.starts_with(".git") {
            continue;
        }
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let shown = relative.display().to_string();
        if !kind.is_file() {
            return Err(Error::Usage(format!(
                "`{shown}` in the template is not a regular file (links and devices do not ship)"
            )));
        }
        let bytes = crate::bounded::read(entry.path(), crate::bounded::Kind::Template)
            .map_err(Error::read(entry.path()))?;
        let executable = {
            use std::os::unix::fs::PermissionsExt as _;
            entry
                .metadata()
                .is_ok_and(|metadata| metadata.permissions().mode() & 0o111 != 0)
        };
        let path = relative
            .to_str()
            .ok_or_else(|| Error::Usage(format!("`{shown}` is not a UTF-8 path")))?;
        files.insert(path.to_owned(), File { bytes, executable });
    }
    Ok(files)
}

/// The manifest of a template's files, or its mistakes at their lines.
pub fn manifest_of(files: &Files, shown: &Path) -> Result<(Manifest, SourceFile)> {
    let source = SourceFile {
        path: shown.to_path_buf(),
        text: String::from_utf8(
            files
                .get("template.toml")
                .ok_or_else(|| Error::Usage(format!("`{}` does not exist", shown.display())))?
                .bytes
                .clone(),
        )
        .map_err(|_| Error::Usage(format!("`{}` is not UTF-8", shown.display())))?
        .into(),
    };
    manifest::parse(&source.text)
        .map(|manifest| (manifest, source.clone()))
        .map_err(|items| diagnostics(&source, items))
}

fn diagnostics(source: &SourceFile, items: Vec<Diagnostic>) -> Error {
    Error::Pipeline(Box::new(Diagnostics {
        file: source.clone(),
        items,
        more: Vec::new(),
    }))
}

/// Publishes the template in `dir` to the registry folder `registry`. `check` reads its steps
/// as a pipeline would (the pipeline language lives above this module).
pub fn publish(
    dir: &Path,
    registry: &Path,
    signer: &dyn Signer,
    check: impl Fn(&Loaded) -> Vec<Diagnostic>,
) -> Result<Publication> {
    let files = read_folder(dir)?;
    let (manifest, source) = manifest_of(&files, &dir.join("template.toml"))?;
    let version = manifest.version.to_string();
    let packed = pack::pack(&files).map_err(|error| Error::Usage(error.to_string()))?;
    let digest = Digest::of_bytes(&packed);
    let loaded = Loaded {
        manifest,
        source,
        pin: Pin {
            name: String::new(),
            version: version.clone(),
            digest,
            registry: String::new(),
        },
        uri: String::new(),
        publisher_key: signer.key_id().to_owned(),
        files: (files.len() > 1).then(|| dir.to_path_buf()),
    };
    let problems = check(&loaded);
    if !problems.is_empty() {
        return Err(diagnostics(&loaded.source, problems));
    }
    let Loaded { manifest, .. } = loaded;
    let location = Location::Folder(registry.to_path_buf());
    let mut index = registry::read_index(&location, &manifest.name)
        .map_err(Error::Usage)?
        .unwrap_or_else(|| Index {
            name: manifest.name.to_string(),
            versions: Vec::new(),
        });
    refuse_existing_or_breaking(&index, &manifest)?;
    let interface = manifest.interface();
    let predicate = Published {
        name: manifest.name.to_string(),
        version: version.clone(),
        gantry: manifest.gantry.to_string(),
        description: manifest.description.clone(),
        interface: serde_json::to_value(&interface).unwrap_or_default(),
    };
    let subject = ResourceDescriptor::named(format!("{}@{version}.tar", manifest.name), &digest);
    let statement = Statement::new(vec![subject], URI, predicate);
    let body =
        serde_json::to_vec(&statement).map_err(|error| Error::Internal(error.to_string()))?;
    let envelope =
        crate::attest::dsse::sign_deterministic(crate::attest::PAYLOAD_TYPE, &body, signer);
    let envelope =
        serde_json::to_vec_pretty(&envelope).map_err(|error| Error::Internal(error.to_string()))?;
    index.versions.push(Entry {
        version: version.clone(),
        sha256: digest.hex(),
        yanked: false,
        key: signer.key_id().to_owned(),
        gantry: manifest.gantry.to_string(),
        description: manifest.description.clone(),
        interface,
    });
    let pack_path = registry.join(registry::pack_path(&manifest.name, &version));
    let write = |path: &Path, bytes: &[u8]| {
        crate::atomic::write_creating_parents(path, bytes).map_err(Error::write(path))
    };
    write(&pack_path, &packed)?;
    write(
        &registry.join(registry::statement_path(&manifest.name, &version)),
        &envelope,
    )?;
    write(
        &registry.join(registry::index_path(&manifest.name)),
        &index.render(),
    )?;
    let mut catalog = super::catalog::read(&location).map_err(Error::Usage)?;
    catalog.add(&manifest.name);
    write(&registry.join(super::catalog::FILE), &catalog.render())?;
    Ok(Publication {
        name: manifest.name,
        version,
        digest,
        key: signer.key_id().to_owned(),
        pack: pack_path,
    })
}

/// A version published once stays what it was; a compatible release keeps the interface.
fn refuse_existing_or_breaking(index: &Index, manifest: &Manifest) -> Result<()> {
    let version = &manifest.version;
    let name = &manifest.name;
    let same = |entry: &&Entry| {
        super::constraint::version(&entry.version)
            .is_ok_and(|other| super::constraint::precedence(&other, version).is_eq())
    };
    if let Some(entry) = index.versions.iter().find(same) {
        return Err(Error::Usage(format!(
            "`{name}@{}` is published already (as {}, pack sha256:{}): a version's bytes never change; publish {}.{}.{}",
            version,
            entry.version,
            entry.sha256,
            version.major,
            version.minor,
            version.patch + 1
        )));
    }
    // The highest earlier version this one would be a compatible update of.
    let previous = (index.versions.iter())
        .filter_map(|entry| {
            let other = super::constraint::version(&entry.version).ok()?;
            // Cargo's rule: `^1.2` spans 1.x, `^0.2` spans 0.2.x, `^0.0.3` only 0.0.3.
            let compatible = if version.major > 0 {
                other.major == version.major
            } else if version.minor > 0 {
                other.major == 0 && other.minor == version.minor
            } else {
                false
            };
            (compatible && super::constraint::precedence(&other, version).is_lt())
                .then_some((other, entry))
        })
        .max_by(|(a, _), (b, _)| super::constraint::precedence(a, b));
    let Some((previous, entry)) = previous else {
        return Ok(());
    };
    let changes = entry.interface.breaking_changes(&manifest.interface());
    if changes.is_empty() {
        return Ok(());
    }
    let bump = if version.major > 0 {
        format!("{}.0.0", version.major + 1)
    } else {
        format!("0.{}.0", version.minor + 1)
    };
    Err(Error::Usage(format!(
        "`{name}@{version}` breaks the interface of {previous}: {}; a breaking change needs a new major version ({bump})",
        changes.join(", ")
    )))
}

/// Marks `version` of `name` yanked in the registry folder's index.
pub fn yank(registry: &Path, name: &Name, version: &str) -> Result<()> {
    let location = Location::Folder(registry.to_path_buf());
    let mut index = registry::read_index(&location, name)
        .map_err(Error::Usage)?
        .ok_or_else(|| Error::Usage(format!("the registry holds no `{name}`")))?;
    let entry = (index.versions.iter_mut())
        .find(|entry| entry.version == version)
        .ok_or_else(|| Error::Usage(format!("`{name}` has no version {version}")))?;
    entry.yanked = true;
    let path = registry.join(registry::index_path(name));
    crate::atomic::write_creating_parents(&path, &index.render()).map_err(Error::write(&path))
}
