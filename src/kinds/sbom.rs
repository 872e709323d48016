//! The `sbom` step kind: the SBOM of `from` (a `Cargo.lock`, a folder, a Nix step's out-link)
//! for `subject`, and its signed attestation. Runs in gantry, like `gantry sbom`, and is cached
//! by an action key that holds everything the document and its attestation depend on: the
//! inputs' digests, the format, the creation time, gantry's version, the run's signing key
//! and, for a `Cargo.lock`, the licences found in the local registry cache.

use std::collections::HashMap;
use std::path::Path;

use crate::attest::link;
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::commit::Failure;
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::kinds::in_process::{InProcess, LinkParts, Made, store_file};
use crate::nix::Nix;
use crate::pipeline::StepId;
use crate::pipeline::model::{SBOM_ATTESTATION_SUFFIX, SbomStep};
use crate::pipeline::path::is_within;
use crate::sbom::{self, Format, Inventory, Subject};

/// Bump when what a sbom step writes changes in a way gantry's version does not capture.
const VERSION: u32 = 1;

pub struct SbomAction {
    key: Digest,
    spec: SbomStep,
    source: Source,
    subject: Subject,
    /// The other subjects the step names.
    also: Vec<Subject>,
    format: Format,
    /// The documents' creation time: the run's `SOURCE_DATE_EPOCH`, else 0.
    time: i64,
    inputs: Vec<InputFile>,
}

/// What the document is made from, as far as planning reads it.
enum Source {
    /// A `Cargo.lock`, read (licences included) while planning: the key must hold them.
    Cargo(Box<Inventory>),
    /// A folder's files; their SHA-1s (which SPDX wants) are computed when the step runs.
    Folder(Vec<InputFile>),
    /// A document another tool wrote (`import = true`), read while planning, and its format.
    Imported(Vec<u8>),
    /// An out-link: its closure, which the store path decides, is asked of Nix when it runs.
    Nix { store_path: String },
}

/// Resolves `from` and `subject` and computes the action key.
impl InProcess for SbomAction {
    fn key(&self) -> Digest {
        self.key
    }

    fn inputs(&self) -> &[InputFile] {
        &self.inputs
    }

    fn make(&self, context: &Context, id: StepId) -> Result<Made, Failure> {
        make(context, id, self)
    }
}

pub(crate) fn plan(context: &Context, id: StepId, spec: &SbomStep) -> Result<SbomAction, String> {
    let step = &context.pipeline.steps[id];
    let inputs = inputs::resolve(context, id)?;
    let exact = inputs.iter().find(|input| input.path == spec.from);
    let mut format = spec.format;
    let source = match exact {
        Some(document) if spec.import => {
            let (bytes, read) = imported(spec, document)?;
            format = read;
            Source::Imported(bytes)
        }
        Some(InputFile {
            link: Some(store_path),
            ..
        }) => Source::Nix {
            store_path: store_path.clone(),
        },
        Some(lock) => Source::Cargo(Box::new(cargo_inventory(context, spec, lock, &inputs)?)),
        None => Source::Folder(
            inputs
                .iter()
                // A link inside a folder output is no file of its own: its target is listed.
                .filter(|input| input.material && is_within(&input.path, &spec.from))
                .cloned()
                .collect(),
        ),
    };
    if let Source::Folder(files) = &source {
        if files.is_empty() {
            return Err(format!("`{}` holds no files to describe", spec.from));
        }
        if let Some(link) = files.iter().find(|file| file.link.is_some()) {
            return Err(format!(
                "`{}` is a Nix out-link, which a folder's SBOM cannot list as a file; describe its closure with a sbom step of its own (`from = \"{}\"`)",
                link.path, link.path
            ));
        }
    }
    let (subject, also) = subjects(spec, &inputs, exact)?;
    let source = match source {
        Source::Cargo(inventory) => Source::Cargo(Box::new(Inventory {
            subject: subject.clone(),
            also: also.clone(),
            ..*inventory
        })),
        other => other,
    };
    let time = crate::exec::epoch::of_step(context, id).unwrap_or(0);
    let mut key = ActionKey::of_step(step, step.kind.name(), VERSION);
    key.text("gantry", env!("CARGO_PKG_VERSION"))
        // The attestation is an output signed with the run's key: another key, another output.
        .text("key id", context.signer.key_id())
        .text("format", format.name())
        .text("time", &time.to_string())
        .text("from", &spec.from)
        .texts("subjects", spec.subjects.iter().map(String::as_str))
        .text("output", &spec.output)
        .text(
            "about",
            &serde_json::to_string(&spec.about).unwrap_or_default(),
        );
    for subject in std::iter::once(&subject).chain(&also) {
        key.text("subject", &subject.name);
        if let Some(digest) = &subject.digest {
            key.digest("subject digest", digest);
        }
    }
    for input in &inputs {
        key.input(&input.path, &input.digest)
            .text("link", input.link.as_deref().unwrap_or(""));
    }
    if let Source::Cargo(inventory) = &source {
        for package in &inventory.packages {
            key.text("package", &package.id)
                .text("licence", package.license.as_deref().unwrap_or(""));
        }
    }
    Ok(SbomAction {
        key: key.finish(),
        spec: spec.clone(),
        source,
        subject,
        also,
        format,
        time,
        inputs,
    })
}

fn cargo_inventory(
    context: &Context,
    spec: &SbomStep,
    lock: &InputFile,
    inputs: &[InputFile],
) -> Result<Inventory, String> {
    let bytes = crate::bounded::read(&lock.host, crate::bounded::Kind::Lock)
        .map_err(|error| format!("cannot read `{}`: {error}", spec.from))?;
    if Digest::of_bytes(&bytes) != lock.digest {
        return Err(format!("`{}` changed while the run read it", spec.from));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "`{}` is not text: `from` names a Cargo.lock, a folder or a Nix out-link",
            spec.from
        )
    })?;
    let folders = context
        .cargo_home
        .as_deref()
        .map(sbom::cargo::registry_folders)
        .unwrap_or_default();
    // The vendored crates are inputs, digested into the key: their manifests are read by
    // the files the run resolved, and the host's registry is not asked.
    let files: HashMap<&str, &Path> = (inputs.iter())
        .filter(|input| input.material)
        .map(|input| (input.path.as_str(), input.host.as_path()))
        .collect();
    let in_vendored = |manifest: &str| {
        let folder = spec.vendored.as_deref()?;
        (files.get(format!("{folder}/{manifest}").as_str())).map(|path| path.to_path_buf())
    };
    let licences = sbom::cargo::Licences {
        own: sbom::cargo::Licences::own_from(
            (spec.manifests.iter())
                .filter_map(|manifest| files.get(manifest.as_str()))
                .map(|path| path.to_path_buf()),
        ),
        vendored: spec
            .vendored
            .is_some()
            .then_some(&in_vendored as &dyn Fn(&str) -> _),
        registry: folders,
    };
    let licence = |name: &str, version: &str| licences.of(name, version);
    let placeholder = Subject {
        name: spec.from.clone(),
        digest: None,
        about: None,
    };
    sbom::cargo::inventory(&text, placeholder, &licence).map_err(|message| {
        format!(
            "`{}` is not a Cargo.lock gantry can read: {message}",
            spec.from
        )
    })
}

/// An imported document's bytes (checked against the digest the run resolved) and its
/// format, read from it: SPDX (`spdxVersion`) or `CycloneDX` (`bomFormat`).
fn imported(spec: &SbomStep, document: &InputFile) -> Result<(Vec<u8>, Format), String> {
    let bytes = crate::bounded::read(&document.host, crate::bounded::Kind::Attestation)
        .map_err(|error| format!("cannot read `{}`: {error}", spec.from))?;
    if Digest::of_bytes(&bytes) != document.digest {
        return Err(format!("`{}` changed while the run read it", spec.from));
    }
    let format =
        sbom::format_of_document(&bytes).map_err(|problem| format!("`{}` {problem}", spec.from))?;
    Ok((bytes, format))
}

/// The subjects by their digests, the first apart (`about` describes it); by default `from`
/// itself (a folder: described file by file).
fn subjects(
    spec: &SbomStep,
    inputs: &[InputFile],
    exact: Option<&InputFile>,
) -> Result<(Subject, Vec<Subject>), String> {
    let mut named = Vec::with_capacity(spec.subjects.len());
    for path in &spec.subjects {
        let input = (inputs.iter())
            .find(|input| input.path == *path)
            .ok_or_else(|| format!("the subject `{path}` is not a file"))?;
        named.push(Subject {
            name: input.path.clone(),
            digest: Some(input.digest),
            about: None,
        });
    }
    if named.is_empty() {
        named.push(Subject {
            name: exact.map_or_else(|| spec.from.clone(), |input| input.path.clone()),
            digest: exact.map(|input| input.digest),
            about: None,
        });
    }
    let also = named.split_off(1);
    let mut subject = named.remove(0);
    subject.about.clone_from(&spec.about);
    Ok((subject, also))
}

/// Writes the document and its attestation, then the step's link, and records the result.
fn make(context: &Context, id: StepId, action: &SbomAction) -> Result<Made, Failure> {
    let spec = &action.spec;
    let inventory = inventory(context, id, action).map_err(Failure::input)?;
    let document = match &action.source {
        Source::Imported(bytes) => bytes.clone(),
        _ => sbom::render(&inventory, action.format, action.time),
    };
    let attestation = sbom::attest(
        &inventory,
        action.format,
        &document,
        context.signer.as_ref(),
    )
    .map_err(Failure::internal)?;
    let records = vec![
        store_file(context, spec.output.clone(), &document)?,
        store_file(
            context,
            format!("{}{SBOM_ATTESTATION_SUFFIX}", spec.output),
            &attestation,
        )?,
    ];
    Ok(Made {
        records,
        link: link_parts(spec, action, &inventory),
    })
}

fn inventory(context: &Context, id: StepId, action: &SbomAction) -> Result<Inventory, String> {
    let step = &context.pipeline.steps[id];
    match &action.source {
        Source::Cargo(inventory) => Ok((**inventory).clone()),
        // The document is another tool's; the inventory is only what the attestation names.
        Source::Imported(_) => Ok(Inventory {
            subject: action.subject.clone(),
            also: action.also.clone(),
            packages: Vec::new(),
            files: Vec::new(),
            roots: Vec::new(),
        }),
        Source::Folder(inputs) => {
            let spec = &action.spec;
            let prefix = format!("{}/", spec.from);
            let mut files = Vec::with_capacity(inputs.len());
            for input in inputs {
                let file = sbom::folder::file(
                    input.path.strip_prefix(&prefix).unwrap_or(&input.path),
                    &input.host,
                )?;
                if file.sha256 != input.digest {
                    return Err(format!("`{}` changed while the run read it", input.path));
                }
                files.push(file);
            }
            files.sort_by(|left, right| left.path.cmp(&right.path));
            Ok(Inventory {
                subject: action.subject.clone(),
                also: action.also.clone(),
                packages: Vec::new(),
                files,
                roots: Vec::new(),
            })
        }
        Source::Nix { store_path } => {
            let nix = Nix::locate(&context.pipeline.root, step.timeout, &context.cancel)
                .map_err(|error| error.to_string())?;
            let closure = nix
                .path_info(&[store_path.as_str()], false, true)
                .map_err(|error| {
                    format!("asking Nix for the closure of `{store_path}`: {error}")
                })?;
            sbom::nix::inventory(store_path, &closure, action.subject.clone()).map(|inventory| {
                Inventory {
                    also: action.also.clone(),
                    ..inventory
                }
            })
        }
    }
}

fn link_parts(spec: &SbomStep, action: &SbomAction, inventory: &Inventory) -> LinkParts {
    let mut command: Vec<String> = ["gantry", "sbom", "--from", &spec.from, "--format"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    command.push(action.format.name().to_owned());
    for subject in &spec.subjects {
        command.extend(["--subject".to_owned(), subject.clone()]);
    }
    command.extend(["-o".to_owned(), spec.output.clone()]);
    if spec.import {
        // Not a document gantry wrote: the step copied another tool's and attested it.
        command = ["import", &spec.from, "-o", &spec.output]
            .into_iter()
            .map(str::to_owned)
            .collect();
    }
    let environment = link::Environment {
        imported: spec.import,
        action_key: action.key.hex(),
        source_date_epoch: Some(action.time),
        store_path: match &action.source {
            Source::Nix { store_path } => Some(store_path.clone()),
            Source::Cargo(_) | Source::Folder(_) | Source::Imported(_) => None,
        },
        ..link::Environment::default()
    };
    let byproducts = link::Byproducts {
        predicate_type: Some(action.format.predicate_type().to_owned()),
        packages: Some(inventory.packages.len() as u64),
        files: Some(inventory.files.len() as u64),
        ..link::Byproducts::default()
    };
    LinkParts {
        command,
        byproducts,
        environment,
    }
}
