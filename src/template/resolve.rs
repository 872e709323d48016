//! The templates a pipeline file's `uses` name, found before the file is validated: each
//! pinned by `gantry.lock` (beside the file) when the pin satisfies every range on it,
//! otherwise resolved from the `[registries]` (the pipeline's, then the project's
//! `gantry.toml`'s; the first that lists the template) and the
//! lock rewritten; `--locked` refuses to change it. Each pack is taken from the cache
//! (`.gantry/templates/`, by digest) or its registry, and refused unless its bytes are the
//! pinned digest and its statement verifies with a key the registry's configuration trusts
//! and names that digest, this name and this version. Nothing runs before all of it holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use toml::de::DeTable;

use super::constraint::{self, Constraint, Unresolved};
use super::lock::{self, Lock};
use super::manifest::{self, Name};
use super::registry::{self, Location};
use super::{Loaded, Pin, Templates, pack};
use crate::attest::predicate::template::Published;
use crate::diagnostic::{Diagnostics, SourceFile};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::keys::{AnyKey, EcdsaVerifier, Verifier};

/// The project's configuration file at the workspace root: `[registries]` for every pipeline.
pub const PROJECT_FILE: &str = "gantry.toml";

/// How the lock may change.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// Pins that still satisfy the ranges are kept; the rest resolved and written.
    #[default]
    Use,
    /// Nothing changes: a use the lock does not satisfy is refused (CI).
    Locked,
    /// These templates (every one when empty) resolved afresh.
    Update(Vec<String>),
}

/// A configured registry: where it is and whom it trusts.
struct Configured {
    location: Location,
    keys: std::result::Result<AnyKey, String>,
}

/// What the pipeline file at `file` uses (its text `text`), with `.gantry/templates/` under
/// `root` as the cache.
pub fn templates(text: &str, file: &Path, root: &Path, mode: &Mode) -> Result<Templates> {
    let mut templates = Templates::new();
    if !text.contains("uses") {
        return Ok(templates);
    }
    let Ok(document) = DeTable::parse(text) else {
        // The pipeline's own reading reports the syntax error.
        return Ok(templates);
    };
    let folder = file.parent().unwrap_or(Path::new("."));
    let uses = uses_of(document.get_ref());
    if uses.is_empty() {
        return Ok(templates);
    }
    let mut registries = registries_of(document.get_ref(), folder);
    // The project's `gantry.toml` (at the root) names registries every pipeline may use; a
    // pipeline's own of the same name wins.
    let project = root.join(PROJECT_FILE);
    if let Ok(text) = crate::bounded::read_to_string(&project, crate::bounded::Kind::Policy) {
        let document = DeTable::parse(&text).map_err(|error| Error::Input {
            path: project.clone(),
            message: error.message().trim_end().to_owned(),
        })?;
        for (name, registry) in registries_of(document.get_ref(), root) {
            registries.entry(name).or_insert(registry);
        }
    }
    let lock_path = folder.join(lock::FILE);
    let old_lock = read_lock(&lock_path)?;
    let mut wanted: BTreeMap<String, Vec<(String, Constraint)>> = BTreeMap::new();
    for text in &uses {
        match parse_use(text) {
            Ok((name, constraint)) => {
                wanted
                    .entry(name.to_string())
                    .or_default()
                    .push((text.clone(), constraint));
            }
            Err(reason) => {
                templates.insert(text.clone(), Err(reason));
            }
        }
    }
    let mut new_lock = Lock::default();
    let cache = cache_folder(root)?;
    for (name, uses) in &wanted {
        let loaded = pin_for(name, uses, old_lock.as_ref(), &registries, mode)
            .and_then(|pin| load(&pin, &registries, &cache));
        if let Ok(loaded) = &loaded {
            // Only a pin whose pack verified goes into the lock.
            new_lock.pins.insert(name.clone(), loaded.pin.clone());
        }
        for (text, _) in uses {
            templates.insert(text.clone(), loaded.clone());
        }
    }
    // A lock is rewritten only when every use resolved: a typo in one range never drops or
    // moves the others' pins.
    let all_resolved = templates.values().all(Result::is_ok);
    if *mode != Mode::Locked && all_resolved && new_lock != old_lock.unwrap_or_default() {
        crate::atomic::write(&lock_path, lock::render(&new_lock).as_bytes())
            .map_err(Error::write(&lock_path))?;
    }
    Ok(templates)
}

/// `ROOT/.gantry/templates`, made when absent; refused when it, or `.gantry`, is not a real
/// folder (a link committed there would send what gantry writes and reads elsewhere).
fn cache_folder(root: &Path) -> Result<PathBuf> {
    let gantry = root.join(".gantry");
    let cache = gantry.join("templates");
    for folder in [&gantry, &cache] {
        match std::fs::symlink_metadata(folder) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => {
                return Err(Error::Input {
                    path: folder.clone(),
                    message: "not a folder (a link?): gantry keeps verified templates here and will not follow it".to_owned(),
                });
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(folder).map_err(Error::write(folder.as_path()))?;
            }
            Err(error) => return Err(Error::read(folder.as_path())(error)),
        }
    }
    Ok(cache)
}

/// A regular file of the cache (never through a link), bounded.
fn cached(path: &Path) -> Option<Vec<u8>> {
    let metadata = std::fs::symlink_metadata(path).ok()?;
    if !metadata.is_file() {
        return None;
    }
    crate::bounded::read(path, crate::bounded::Kind::Template).ok()
}

/// Every `steps.NAME.uses` string, once each.
fn uses_of(document: &DeTable<'_>) -> Vec<String> {
    let steps = (document.get("steps")).and_then(|steps| steps.get_ref().as_table());
    let mut uses: Vec<String> = (steps.into_iter().flatten())
        .filter_map(|(_, step)| step.get_ref().as_table()?.get("uses"))
        .filter_map(|uses| uses.get_ref().as_str().map(str::to_owned))
        .collect();
    uses.sort();
    uses.dedup();
    uses
}

/// `[registries.NAME] url = "...", keys = ["..."]`, in the file's order (the pipeline's own
/// reading reports their mistakes at their lines).
fn registries_of(
    document: &DeTable<'_>,
    folder: &Path,
) -> IndexMap<String, Result<Configured, String>> {
    let table = (document.get("registries")).and_then(|table| table.get_ref().as_table());
    let mut registries = IndexMap::new();
    for (name, entry) in table.into_iter().flatten() {
        let entry = entry.get_ref().as_table();
        let text = |key: &str| {
            entry
                .and_then(|entry| entry.get(key))
                .and_then(|value| value.get_ref().as_str().map(str::to_owned))
        };
        let configured = text("url")
            .ok_or_else(|| format!("registry `{}` has no `url`", name.get_ref()))
            .and_then(|url| Location::parse(&url, folder))
            .map(|location| {
                let keys = (entry.and_then(|entry| entry.get("keys")))
                    .and_then(|keys| keys.get_ref().as_array())
                    .map(|keys| {
                        keys.iter()
                            .filter_map(|key| key.get_ref().as_str())
                            .map(|key| folder.join(key))
                            .collect::<Vec<PathBuf>>()
                    })
                    .unwrap_or_default();
                Configured {
                    location,
                    keys: trusted(name.get_ref(), &keys),
                }
            });
        registries.insert(name.get_ref().to_string(), configured);
    }
    registries
}

/// The public keys a registry's templates must be signed with.
fn trusted(registry: &str, keys: &[PathBuf]) -> std::result::Result<AnyKey, String> {
    if keys.is_empty() {
        return Err(format!(
            "registry `{registry}` trusts no key: list its publishers' public keys in `keys`"
        ));
    }
    let mut verifiers: Vec<Box<dyn Verifier>> = Vec::new();
    for path in keys {
        let pem = crate::bounded::read(path, crate::bounded::Kind::Policy).map_err(|error| {
            format!(
                "registry `{registry}`: cannot read `{}`: {error}",
                path.display()
            )
        })?;
        let pem = String::from_utf8_lossy(&pem);
        let verifier = EcdsaVerifier::from_pem(&pem)
            .map_err(|error| format!("registry `{registry}`: `{}`: {error}", path.display()))?;
        verifiers.push(Box::new(verifier));
    }
    Ok(AnyKey(verifiers))
}

fn read_lock(path: &Path) -> Result<Option<Lock>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(Error::read(path)(error)),
    };
    lock::parse(&text).map(Some).map_err(|items| {
        Error::Pipeline(Box::new(Diagnostics {
            file: SourceFile {
                path: path.to_path_buf(),
                text: text.into(),
            },
            items,
            more: Vec::new(),
        }))
    })
}

/// `publisher/name@RANGE`.
pub fn parse_use(text: &str) -> std::result::Result<(Name, Constraint), String> {
    let (name, range) = text.split_once('@').ok_or_else(|| {
        format!("`{text}` names no range: write `{text}@^1` (a template is always pinned by a range and the lock)")
    })?;
    let name = Name::parse(name)?;
    let range = Constraint::parse(range).map_err(|error| error.message)?;
    Ok((name, range))
}

/// The version of `name` to use: the lock's when it satisfies every range and may be kept,
/// else the highest every range allows in the first registry that lists it.
fn pin_for(
    name: &str,
    uses: &[(String, Constraint)],
    lock: Option<&Lock>,
    registries: &IndexMap<String, Result<Configured, String>>,
    mode: &Mode,
) -> std::result::Result<Pin, String> {
    let pinned = lock.and_then(|lock| lock.pins.get(name));
    let updating = match mode {
        Mode::Update(names) => names.is_empty() || names.iter().any(|wanted| wanted == name),
        _ => false,
    };
    let allows = |pin: &Pin| {
        constraint::version(&pin.version)
            .is_ok_and(|version| uses.iter().all(|(_, range)| range.matches(&version)))
    };
    if let Some(pin) = pinned
        && !updating
        && allows(pin)
    {
        return Ok(pin.clone());
    }
    if *mode == Mode::Locked {
        return Err(match pinned {
            Some(pin) => format!(
                "{} pins `{name}` at {}, which {} does not allow, and --locked keeps it: run `gantry template update {name}`",
                lock::FILE,
                pin.version,
                ranges(uses)
            ),
            None => format!(
                "{} does not pin `{name}` and --locked keeps it as it is: run `gantry template update` and commit the lock",
                lock::FILE
            ),
        });
    }
    if registries.is_empty() {
        return Err(format!(
            "no registry to find `{name}` in: add `[registries.NAME] url = \"...\"` with the publisher's `keys`"
        ));
    }
    let parsed = Name::parse(name)?;
    let constraints: Vec<&Constraint> = uses.iter().map(|(_, range)| range).collect();
    for (registry_name, registry) in registries {
        // A registry that cannot answer stops the resolution: falling through to the next
        // would let whoever breaks the first choose the template.
        let registry = registry.as_ref().map_err(Clone::clone)?;
        let index = match registry::read_index(&registry.location, &parsed) {
            Ok(Some(index)) => index,
            Ok(None) => continue,
            Err(reason) => return Err(format!("registry `{registry_name}`: {reason}")),
        };
        return match constraint::resolve(&constraints, &index.candidates()) {
            Ok(version) => {
                // The entry the resolver chose: the same version, build metadata included,
                // never a yanked one.
                let entry = (index.versions.iter())
                    .find(|entry| {
                        !entry.yanked
                            && constraint::version(&entry.version)
                                .is_ok_and(|other| other == version)
                    })
                    .ok_or_else(|| format!("`{name}@{version}` vanished from its index"))?;
                let digest = Digest::from_hex(&entry.sha256).ok_or_else(|| {
                    format!("the index of `{name}` gives {} no SHA-256", entry.version)
                })?;
                Ok(Pin {
                    name: name.to_owned(),
                    version: entry.version.clone(),
                    digest,
                    registry: registry_name.clone(),
                })
            }
            Err(Unresolved::NoVersions) => Err(format!(
                "registry `{registry_name}` lists no version of `{name}`"
            )),
            Err(Unresolved::Conflict(each)) => {
                let each: Vec<String> = (each.into_iter())
                    .map(|(range, best)| match best {
                        Some(version) => format!("`{range}` alone takes {version}"),
                        None => format!("`{range}` allows no published version"),
                    })
                    .collect();
                Err(format!(
                    "no version of `{name}` in registry `{registry_name}` satisfies {}: {}",
                    ranges(uses),
                    each.join("; ")
                ))
            }
        };
    }
    Err(format!("no registry lists `{name}`"))
}

fn ranges(uses: &[(String, Constraint)]) -> String {
    let ranges: Vec<String> = uses.iter().map(|(_, range)| format!("`{range}`")).collect();
    ranges.join(" and ")
}

/// The pinned pack, checked, unpacked and its manifest read.
fn load(
    pin: &Pin,
    registries: &IndexMap<String, Result<Configured, String>>,
    cache: &Path,
) -> std::result::Result<Loaded, String> {
    let registry = match registries.get(&pin.registry) {
        Some(Ok(registry)) => registry,
        Some(Err(reason)) => return Err(reason.clone()),
        None => {
            return Err(format!(
                "{} takes `{}` from registry `{}`, which the pipeline does not configure",
                lock::FILE,
                pin.name,
                pin.registry
            ));
        }
    };
    let name = Name::parse(&pin.name)?;
    let cached = cache.join(format!("{}.tar", pin.digest.hex()));
    let cached_statement = cache.join(format!("{}.tar.intoto.json", pin.digest.hex()));
    let from_cache = self::cached(&cached)
        .filter(|bytes| Digest::of_bytes(bytes) == pin.digest)
        .zip(self::cached(&cached_statement))
        // A cached statement that no longer verifies (the registry's keys changed) is
        // fetched again.
        .filter(|(_, statement)| {
            (registry.keys.as_ref()).is_ok_and(|keys| check_statement(statement, pin, keys).is_ok())
        });
    let (packed, statement, fetched) = if let Some((packed, statement)) = from_cache {
        (packed, statement, false)
    } else {
        let fetch = |relative: String| {
            registry
                .location
                .get(&relative)?
                .ok_or_else(|| format!("registry `{}` has no `{relative}`", pin.registry))
        };
        let packed = fetch(registry::pack_path(&name, &pin.version))?;
        let statement = fetch(registry::statement_path(&name, &pin.version))?;
        (packed, statement, true)
    };
    let found = Digest::of_bytes(&packed);
    if found != pin.digest {
        return Err(format!(
            "refused `{}@{}`: its pack is sha256:{}, not the sha256:{} {} pins",
            pin.name,
            pin.version,
            found.hex(),
            pin.digest.hex(),
            lock::FILE
        ));
    }
    let keys = registry.keys.as_ref().map_err(Clone::clone)?;
    let publisher_key = check_statement(&statement, pin, keys)?;
    if fetched {
        // Only what verified is kept; a failure to keep it costs a download next time.
        let _ = crate::atomic::write_creating_parents(&cached, &packed);
        let _ = crate::atomic::write_creating_parents(&cached_statement, &statement);
    }
    let files = pack::unpack(&packed).map_err(|error| format!("`{}`: {error}", pin.name))?;
    let text = files
        .get("template.toml")
        .and_then(|file| String::from_utf8(file.bytes.clone()).ok())
        .ok_or_else(|| format!("`{}@{}` has no template.toml", pin.name, pin.version))?;
    let manifest = manifest::parse(&text).map_err(|errors| {
        format!(
            "`{}@{}`'s template.toml does not read: {}",
            pin.name,
            pin.version,
            errors
                .first()
                .map_or_else(String::new, |error| error.message.clone())
        )
    })?;
    if manifest.name.to_string() != pin.name || manifest.version.to_string() != pin.version {
        return Err(format!(
            "the pack pinned as `{}@{}` says it is `{}@{}`",
            pin.name, pin.version, manifest.name, manifest.version
        ));
    }
    let gantry = constraint::version(env!("CARGO_PKG_VERSION")).map_err(|error| error.message)?;
    if !manifest.gantry.matches(&gantry) {
        return Err(format!(
            "`{}@{}` works with gantry {}, not this gantry ({gantry})",
            pin.name, pin.version, manifest.gantry
        ));
    }
    Ok(Loaded {
        manifest,
        source: SourceFile {
            path: PathBuf::from(format!("{}@{}/template.toml", pin.name, pin.version)),
            text: text.into(),
        },
        pin: pin.clone(),
        uri: registry
            .location
            .uri(&registry::pack_path(&name, &pin.version)),
        publisher_key,
        files: unpacked(&files, cache, &pin.digest)?,
    })
}

/// The template's files but its manifest, as a folder of the cache (`HEX.files/`), exactly the
/// pack's: made when absent or different (a changed or an extra file means made again),
/// through a fresh folder renamed into place; `None` when the template has no other file.
fn unpacked(
    files: &pack::Files,
    cache: &Path,
    digest: &Digest,
) -> std::result::Result<Option<PathBuf>, String> {
    use std::os::unix::fs::PermissionsExt as _;
    let others: Vec<(&String, &pack::File)> = (files.iter())
        .filter(|(path, _)| path.as_str() != "template.toml")
        .collect();
    if others.is_empty() {
        return Ok(None);
    }
    let folder = cache.join(format!("{}.files", digest.hex()));
    // Checked without following any link: the folder itself, and everything in it, must be
    // real folders and regular files holding exactly the pack's bytes.
    let real_folder = std::fs::symlink_metadata(&folder).is_ok_and(|metadata| metadata.is_dir());
    let entries: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(&folder)
        .follow_links(false)
        .follow_root_links(false)
        .min_depth(1)
        .into_iter()
        .filter_map(std::result::Result::ok)
        .collect();
    let only_files_and_folders =
        (entries.iter()).all(|entry| entry.file_type().is_file() || entry.file_type().is_dir());
    let present = entries
        .iter()
        .filter(|entry| entry.file_type().is_file())
        .count();
    let intact = real_folder
        && only_files_and_folders
        && present == others.len()
        && (others.iter()).all(|(path, file)| {
            cached(&folder.join(path)).is_some_and(|bytes| bytes == file.bytes)
        });
    if intact {
        return Ok(Some(folder));
    }
    let error =
        |error: std::io::Error| format!("cannot unpack into `{}`: {error}", cache.display());
    let fresh = cache.join(format!(
        ".unpacking-{}-{}",
        std::process::id(),
        digest.hex()
    ));
    let _ = std::fs::remove_dir_all(&fresh);
    for (path, file) in &others {
        let target = fresh.join(path);
        crate::atomic::write_creating_parents(&target, &file.bytes).map_err(error)?;
        let mode = if file.executable { 0o555 } else { 0o444 };
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).map_err(error)?;
    }
    match std::fs::symlink_metadata(&folder) {
        Ok(metadata) if metadata.is_dir() => std::fs::remove_dir_all(&folder).map_err(error)?,
        Ok(_) => std::fs::remove_file(&folder).map_err(error)?,
        Err(_) => {}
    }
    std::fs::rename(&fresh, &folder).map_err(error)?;
    Ok(Some(folder))
}

/// The statement verifies with a trusted key and is about this pack, name and version; the
/// key id of the key it verified with.
fn check_statement(bytes: &[u8], pin: &Pin, keys: &AnyKey) -> std::result::Result<String, String> {
    let refused = |why: String| format!("refused `{}@{}`: {why}", pin.name, pin.version);
    let envelope: crate::attest::Envelope = serde_json::from_slice(bytes)
        .map_err(|error| refused(format!("its statement is no DSSE envelope: {error}")))?;
    if envelope.payload_type != crate::attest::PAYLOAD_TYPE {
        return Err(refused(format!(
            "its envelope holds `{}`, not an in-toto statement",
            envelope.payload_type
        )));
    }
    let (payload, key) = (keys.0.iter())
        .find_map(|key| {
            crate::attest::dsse::verify(&envelope, key.as_ref())
                .ok()
                .map(|payload| (payload, key.key_id().to_owned()))
        })
        .ok_or_else(|| {
            refused(
                "its signature does not verify with a key the registry's `keys` name".to_owned(),
            )
        })?;
    let statement: crate::attest::Statement<Published> = serde_json::from_slice(&payload)
        .map_err(|error| refused(format!("its statement does not read: {error}")))?;
    if statement.predicate_type != crate::attest::predicate::TEMPLATE {
        return Err(refused(format!(
            "its statement is a `{}`, not a template's",
            statement.predicate_type
        )));
    }
    let about_pack = (statement.subject.iter()).any(|subject| subject.sha256() == Some(pin.digest));
    if !about_pack {
        return Err(refused("its statement is about another pack".to_owned()));
    }
    if statement.predicate.name != pin.name || statement.predicate.version != pin.version {
        return Err(refused(format!(
            "its statement is about `{}@{}`",
            statement.predicate.name, statement.predicate.version
        )));
    }
    Ok(key)
}
