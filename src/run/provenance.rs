//! A run's SLSA provenance: gathers what it records (final artifacts, git state, sources,
//! flake.lock inputs, every step attestation) and writes `provenance.intoto.json`, signed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::attest::provenance::{
    BUILD_TYPE, BuildDefinition, Builder, ExternalParameters, GitSource, InternalParameters,
    Metadata, PREDICATE_TYPE, PipelineParameter, Provenance, RunDetails, locked_inputs,
};
use crate::attest::{self, ResourceDescriptor, Statement};
use crate::digest::Digest;
use crate::exec::context::Context;
use crate::pipeline::StepKind;

/// When the run started and ended, as Unix seconds.
pub struct Times {
    pub started: i64,
    pub finished: i64,
}

/// A run's provenance Statement, serialised with an empty id and empty times: its metadata is
/// the last field of the last object (`RunDetails`), so the bytes before that fixed suffix are
/// everything the provenance says but when and as which run. Two runs with the same `head`
/// would write the same provenance but for those three values.
pub struct Body {
    bytes: Vec<u8>,
    /// Where the placeholder metadata (and the closing braces) start.
    head: usize,
}

const PLACEHOLDER: &[u8] = br#""metadata":{"invocationId":"","startedOn":"","finishedOn":""}}}}"#;

/// What the provenance reads from the workspace itself (git's state, every source's digest),
/// read once for both its fingerprint and its body, which so describe one and the same state.
pub struct Gathered {
    git: Option<GitSource>,
    sources: Vec<(String, Digest)>,
}

/// Reads git's state and every source a step read.
pub fn gather(context: &Context) -> Result<Gathered, String> {
    Ok(Gathered {
        git: git_of(context),
        sources: sources(context)?,
    })
}

/// The workspace's git state as the provenance records it (gantry's own folders and the
/// steps' outputs do not make it dirty).
#[must_use]
pub fn git_of(context: &Context) -> Option<GitSource> {
    let generated = crate::git::generated(
        &context.pipeline,
        &context.store.root,
        context.run_dir.parent().unwrap_or(&context.run_dir),
    );
    git_source(&context.pipeline.root, &generated)
}

impl Gathered {
    /// The git state gathered.
    #[must_use]
    pub fn git(&self) -> Option<&GitSource> {
        self.git.as_ref()
    }
}

/// The run's provenance Statement, without its id and times.
pub fn body(context: &Context, builder_id: &str, gathered: &Gathered) -> Result<Body, String> {
    let statement = Statement::new(
        subjects(context),
        PREDICATE_TYPE,
        predicate(context, builder_id, Parts::All, gathered),
    );
    // Sized up front: a provenance of thousands of artifacts runs to megabytes, and growing
    // the buffers by doubling copied each of them several times.
    let mut bytes =
        Vec::with_capacity(256 * (statement.subject.len() + context.pipeline.steps.len()) + 4096);
    serde_json::to_writer(&mut bytes, &statement).map_err(|error| error.to_string())?;
    drop(statement);
    let head = bytes
        .strip_suffix(PLACEHOLDER)
        .map(<[u8]>::len)
        .ok_or("the provenance's metadata is not its last field")?;
    Ok(Body { bytes, head })
}

/// Writes the run's provenance into its folder (its id and `times` filled in); returns its
/// path and digest.
pub fn write(context: &Context, body: Body, times: &Times) -> Result<(PathBuf, Digest), String> {
    let Body { mut bytes, head } = body;
    let metadata = Metadata {
        invocation_id: context.run_id.clone(),
        started_on: crate::time::rfc3339(times.started),
        finished_on: crate::time::rfc3339(times.finished),
    };
    bytes.truncate(head);
    bytes.extend_from_slice(br#""metadata":"#);
    serde_json::to_writer(&mut bytes, &metadata).map_err(|error| error.to_string())?;
    bytes.extend_from_slice(b"}}}");
    let path = context.run_dir.join(crate::attest::run_folder::PROVENANCE);
    let digest = crate::run::signed_file::write(&path, &bytes, context.signer.as_ref())?;
    Ok((path, digest))
}

/// Every final artifact: files by their SHA-256, folders file by file, Nix out-links by the
/// NAR hash of the store path they point to.
fn subjects(context: &Context) -> Vec<ResourceDescriptor> {
    // Sized for one artifact a step, the common case: growing by doubling held two copies of
    // a 50,000-step run's list at once.
    let mut subjects = Vec::with_capacity(context.pipeline.steps.len());
    for (id, output) in context.graph.final_outputs(&context.pipeline) {
        let Some(result) = context.results[id].get() else {
            continue;
        };
        let Some(record) = result.outputs.get(output) else {
            continue;
        };
        if let Some(tree) = result.trees.get(&output) {
            // A link inside a folder is no artifact: what it points to is listed itself.
            subjects.extend(tree.regular_files().map(|file| {
                ResourceDescriptor::named(format!("{}/{}", record.path, file.path), &file.digest)
            }));
        } else {
            let mut subject = ResourceDescriptor::named(record.path.clone(), &record.digest);
            if let StepKind::Sbom(sbom) = &context.pipeline.steps[id].kind {
                describe_sbom_output(&mut subject, sbom);
            }
            if let Some(store_path) = &record.link {
                subject.annotations = Some(serde_json::Map::from_iter([
                    ("storePath".to_owned(), store_path.clone().into()),
                    ("digestOf".to_owned(), "nar".into()),
                ]));
            }
            subjects.push(subject);
        }
    }
    subjects
}

/// SBOMs and their attestations say what they are, so that a verifier finds them among the
/// subjects: the document by its media type, the attestation by its predicate type.
fn describe_sbom_output(subject: &mut ResourceDescriptor, sbom: &crate::pipeline::model::SbomStep) {
    if subject.name.as_deref() == Some(sbom.output.as_str()) {
        subject.media_type = Some(sbom.format.media_type().into());
    } else {
        subject.media_type = Some(attest::provenance::ENVELOPE_MEDIA_TYPE.into());
        subject.annotations = Some(serde_json::Map::from_iter([(
            "predicateType".to_owned(),
            sbom.format.predicate_type().into(),
        )]));
    }
}

/// Which parts of the provenance to make: all of it, or only those of the run as a whole (for
/// [`fingerprint`], which hashes the parts of thousands from what they are made of).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    All,
    RunLevel,
}

/// What the run's provenance says but its id and times, without making its megabytes: the
/// run-level parts serialised as the provenance writes them, and what the parts of thousands
/// are made of (each step's attestation, each result's outputs, each source read) hashed as
/// they are. Two runs with the same fingerprint write the same provenance but for its id and
/// times. Whatever `subjects`, `byproducts` or a per-step dependency comes to say must be
/// hashed here too.
pub fn fingerprint(context: &Context, builder_id: &str, gathered: &Gathered) -> Digest {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update(b"gantry-provenance-fingerprint/1\0");
    let statement = Statement::new(
        Vec::new(),
        PREDICATE_TYPE,
        predicate(context, builder_id, Parts::RunLevel, gathered),
    );
    // gantry's own types always serialise.
    let _ = serde_json::to_writer(HashWriter(&mut hasher), &statement);
    let text = |hasher: &mut sha2::Sha256, text: &str| {
        hasher.update(u64::try_from(text.len()).unwrap_or(u64::MAX).to_le_bytes());
        hasher.update(text.as_bytes());
    };
    for (id, step) in context.pipeline.steps.iter().enumerate() {
        text(&mut hasher, &step.name);
        hasher.update(
            context.attestations[id]
                .get()
                .map_or([0; 32], |digest| *digest.as_bytes()),
        );
        for output in (context.results[id].get())
            .into_iter()
            .flat_map(|result| &result.outputs)
        {
            text(&mut hasher, &output.path);
            hasher.update(output.digest.as_bytes());
            hasher.update([u8::from(output.directory), u8::from(output.executable)]);
            text(&mut hasher, output.link.as_deref().unwrap_or(""));
        }
    }
    for (source, digest) in &gathered.sources {
        text(&mut hasher, source);
        hasher.update(digest.as_bytes());
    }
    Digest::from_raw(hasher.finalize().into())
}

struct HashWriter<'a>(&'a mut sha2::Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(self.0, bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every source file a step read, sorted, with its digest.
fn sources(context: &Context) -> Result<Vec<(String, Digest)>, String> {
    let mut sources: Vec<&String> = context
        .graph
        .inputs
        .iter()
        .flat_map(|inputs| inputs.sources.iter())
        .collect();
    sources.sort();
    sources.dedup();
    let root = &context.pipeline.root;
    sources
        .into_iter()
        .map(|source| {
            let digest = context
                .store
                .stats
                .digest(&root.join(source))
                .map_err(|error| format!("cannot read source `{source}`: {error}"))?;
            Ok((source.clone(), digest))
        })
        .collect()
}

fn predicate(context: &Context, builder_id: &str, parts: Parts, gathered: &Gathered) -> Provenance {
    let pipeline = &context.pipeline;
    let relative = |path: &Path| {
        path.strip_prefix(&pipeline.root)
            .unwrap_or(path)
            .to_string_lossy()
            .into_owned()
    };
    let steps = pipeline
        .steps
        .iter()
        .enumerate()
        .filter(|(id, _)| context.attestations[*id].get().is_some())
        .map(|(_, step)| step.name.clone())
        .collect();
    let mut byproducts = Vec::with_capacity(pipeline.steps.len());
    let all = parts == Parts::All;
    byproducts.extend(
        (pipeline.steps.iter().enumerate())
            .filter(|_| all)
            .filter_map(|(id, step)| {
                let digest = context.attestations[id].get()?;
                let mut descriptor = ResourceDescriptor::named(
                    crate::attest::run_folder::StepFile::Link.name(&step.name),
                    digest,
                );
                descriptor.media_type = Some(attest::provenance::ENVELOPE_MEDIA_TYPE.into());
                Some(descriptor)
            }),
    );
    Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.to_owned(),
            external_parameters: ExternalParameters {
                pipeline: PipelineParameter {
                    name: pipeline.name.clone(),
                    path: relative(&pipeline.file),
                    digest: BTreeMap::from([(Digest::ALGORITHM.to_owned(), pipeline.digest.hex())]),
                },
                steps,
                parameters: context.parameters.clone(),
                release: context.release.clone(),
                tenant: pipeline.tenant.clone(),
            },
            internal_parameters: InternalParameters {
                sandbox: context.sandbox_settings.clone(),
                source_date_epoch: context.source_date_epoch,
                warm_folders: (pipeline.steps.iter().enumerate())
                    .filter(|(id, _)| context.attestations[*id].get().is_some())
                    .filter_map(|(_, step)| match &step.kind {
                        crate::pipeline::StepKind::Exec(exec) if !exec.warm.is_empty() => {
                            Some((step.name.clone(), exec.warm.clone()))
                        }
                        _ => None,
                    })
                    .collect(),
            },
            resolved_dependencies: resolved_dependencies(context, parts, gathered),
        },
        run_details: RunDetails {
            builder: Builder {
                id: builder_id.to_owned(),
                version: BTreeMap::from([(
                    "gantry".to_owned(),
                    env!("CARGO_PKG_VERSION").to_owned(),
                )]),
            },
            byproducts,
            metadata: Metadata {
                invocation_id: String::new(),
                started_on: String::new(),
                finished_on: String::new(),
            },
        },
    }
}

/// The git commit, every source file a step read, the templates steps came from, and the
/// inputs of local flakes' lock files.
fn resolved_dependencies(
    context: &Context,
    parts: Parts,
    gathered: &Gathered,
) -> Vec<ResourceDescriptor> {
    let root = &context.pipeline.root;
    let mut dependencies = Vec::new();
    if let Some(git) = &gathered.git {
        dependencies.push(git.descriptor());
    }
    let all = parts == Parts::All;
    if all {
        for (source, digest) in &gathered.sources {
            dependencies.push(ResourceDescriptor::named(source.clone(), digest));
        }
    }
    if (context.pipeline.steps.iter()).any(|step| matches!(step.kind, StepKind::Exec(_))) {
        if all {
            dependencies.push(context.host.dependency());
        } else {
            // Its package list is thousands of lines; the digest over it says the same.
            dependencies.push(context.host.material());
        }
    }
    // What a step with the network made is what it fetched (crates, modules, packages): named
    // here, with the step, since no source vouches for it.
    for (id, step) in context.pipeline.steps.iter().enumerate() {
        let Some(result) = context.results[id].get().filter(|_| all && step.network) else {
            continue;
        };
        for output in &result.outputs {
            let mut descriptor = ResourceDescriptor::named(output.path.clone(), &output.digest);
            descriptor.annotations = serde_json::json!({
                "fetchedBy": step.name,
                "network": true,
            })
            .as_object()
            .cloned();
            dependencies.push(descriptor);
        }
    }
    dependencies.extend(templates(context));
    let mut seen = std::collections::BTreeSet::new();
    for step in &context.pipeline.steps {
        let StepKind::Nix(nix) = &step.kind else {
            continue;
        };
        let Some(folder) = nix.installable.local_flake() else {
            continue;
        };
        let lock_file = Path::new(folder).join("flake.lock");
        let lock_path = root.join(&lock_file);
        let Ok(text) = crate::bounded::read_to_string(&lock_path, crate::bounded::Kind::Lock)
        else {
            continue;
        };
        for input in locked_inputs(&lock_file.to_string_lossy(), &text) {
            if seen.insert(input.uri.clone()) {
                dependencies.push(input.descriptor());
            }
        }
    }
    dependencies
}

/// The templates steps were expanded from: each pack once, by its digest, with where it came
/// from and whose key signed it.
fn templates(context: &Context) -> Vec<ResourceDescriptor> {
    let mut seen = std::collections::BTreeSet::new();
    let mut descriptors = Vec::new();
    for used in (context.pipeline.steps.iter()).filter_map(|step| step.template.as_ref()) {
        if !seen.insert(used.pin.digest) {
            continue;
        }
        let mut descriptor = ResourceDescriptor::named(
            format!("template:{}@{}", used.pin.name, used.pin.version),
            &used.pin.digest,
        );
        descriptor.uri = Some(used.uri.clone());
        descriptor.annotations = serde_json::json!({
            "template": used.pin.name,
            "version": used.pin.version,
            "registry": used.pin.registry,
            "publisherKey": used.publisher_key,
        })
        .as_object()
        .cloned();
        descriptors.push(descriptor);
    }
    descriptors
}

/// HEAD's commit and whether the work tree differs from it. Ignored files do not count, nor
/// does what gantry itself writes (`generated`: its cache, attestations, declared outputs).
fn git_source(root: &Path, generated: &[PathBuf]) -> Option<GitSource> {
    let repository = git2::Repository::discover(root).ok()?;
    let head = repository.head().ok()?;
    let commit = head.peel_to_commit().ok()?;
    let work_tree = repository.workdir().unwrap_or(root);
    let dirty = crate::git::changed_paths(&repository, root, generated)
        .map_or(true, |paths| !paths.is_empty());
    let path = std::fs::canonicalize(work_tree).unwrap_or_else(|_| work_tree.to_path_buf());
    Some(GitSource {
        path: path.to_string_lossy().trim_end_matches('/').to_owned(),
        commit: commit.id().to_string(),
        reference: head.name().map(str::to_owned),
        dirty,
    })
}
