//! `kind = "nix"`: a Nix build as an attested step. Nix decides what to (re)build: every run
//! calls `nix build`, which is a no-op when the outputs are valid. gantry's action cache only
//! decides whether the attestation must be made anew, and its key is the derivation and the
//! NAR hashes Nix reports, so a changed flake.lock (a new derivation) can never hide behind it.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::attest::{self, Link, ResourceDescriptor, link};
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::commit::{
    Commit, Failure, StepError, commit, place_cached_attestation, store_log, tail,
};
use crate::exec::context::{Context, StepResult};
use crate::exec::inputs::{self, InputFile};
use crate::kinds::Ran;
use crate::kinds::Work;
use crate::nix::{Built, Ended, Installable, Nix, NixError, PathInfo, Settings};
use crate::pipeline::model::NixStep;
use crate::pipeline::{Step, StepId};
use crate::report::FailureDetail;
use crate::store::{Lookup, OutputRecord};

const NO_WRITE_LOCK_FILE: &str = "--no-write-lock-file";

/// What planning a Nix step settles: the files it declared it reads.
pub struct NixAction {
    spec: NixStep,
    inputs: Vec<InputFile>,
}

impl Work for NixAction {
    /// Known only once Nix has evaluated the build: Nix decides whether anything needs
    /// building, and the build runs in a `--jobs` slot.
    fn key(&self) -> Option<Digest> {
        None
    }

    fn execute(&self, context: &Context, id: StepId) -> Result<Ran, Failure> {
        execute(context, id, self)
    }
}

pub(crate) fn plan(context: &Context, id: StepId, spec: &NixStep) -> Result<NixAction, String> {
    Ok(NixAction {
        spec: spec.clone(),
        inputs: inputs::resolve(context, id)?,
    })
}

/// What one `nix build` produced, read back from Nix's database.
struct Build {
    built: Built,
    /// Output name → its path-info (NAR hash and size).
    outputs: BTreeMap<String, PathInfo>,
    records: Vec<OutputRecord>,
    /// A local flake's `flake.lock`: a material by its SHA-256.
    source_file: Option<(String, Digest)>,
    log: Vec<u8>,
    /// A rebuild (`gantry repro`): each output's NAR hash as built again, and where Nix kept
    /// a differing copy (`<output>.check`).
    rebuilt: Option<BTreeMap<String, Rebuilt>>,
}

/// One output of `nix build --rebuild`.
struct Rebuilt {
    /// `None` when Nix reported a difference and kept no copy.
    nar_hash: Option<Digest>,
    check: Option<String>,
}

fn execute(context: &Context, id: StepId, action: &NixAction) -> Result<Ran, Failure> {
    let step = &context.pipeline.steps[id];
    let spec = &action.spec;
    let nix = Nix::locate(&context.pipeline.root, step.timeout, &context.cancel)
        .map_err(|error| Failure::environment(error.to_string()))?;
    let started = Instant::now();
    let build = if context.rebuild {
        rebuild(context, step, spec, &nix)
    } else {
        build(context, step, spec, &nix)
    }
    .map_err(|mut failure| {
        // A failed build used the machine for as long as it ran.
        if let Failure::Step {
            detail: Some(detail),
            ..
        } = &mut failure
        {
            detail.usage = Some(Box::new(crate::store::Usage::wall(started.elapsed())));
        }
        failure
    })?;
    let duration = started.elapsed();
    let key = action_key(step, action, &build);
    if !context.rebuild
        && let Lookup::Hit(cached) = context.store.actions.get(&key)
        && cached.outputs == build.records
        && vouched(context, &key, &cached)
        && place_cached_attestation(context, id, &cached).is_ok()
    {
        publish(context, id, build.records, cached.usage.clone());
        return Ok(Ran::Cached);
    }
    let settings = context
        .nix_settings
        .get_or_init(|| nix.settings().map_err(|error| error.to_string()))
        .clone()
        .map_err(Failure::environment)?;
    // The derivation's path is the hash of its content, which names its inputs, so the key
    // needs no closure; only a new attestation lists it.
    let closure = nix
        .path_info(&[build.built.drv_path.as_str()], true, true)
        .map_err(|error| Failure::environment(error.to_string()))?;
    let log = store_log(context, &build.log)?;
    let empty = store_log(context, b"")?;
    let (subjects, link) = link(step, spec, action, &build, &closure, &settings, &key, log);
    commit(
        context,
        id,
        Commit {
            key,
            subjects,
            link,
            records: build.records,
            trees: std::collections::HashMap::new(),
            logs: [empty, log],
            duration,
            // Nix ran the build in its daemon: the time is what gantry sees of it; what it
            // stores is the outputs' NARs.
            usage: crate::store::Usage {
                output_bytes: Some(build.outputs.values().map(|info| info.nar_size).sum()),
                ..crate::store::Usage::wall(duration)
            },
        },
    )?;
    Ok(Ran::Executed)
}

fn publish(
    context: &Context,
    id: StepId,
    outputs: Vec<OutputRecord>,
    usage: Option<crate::store::Usage>,
) {
    let _ = context.results[id].set(Arc::new(StepResult {
        outputs,
        trees: std::collections::HashMap::new(),
        usage,
        cached: None,
    }));
}

/// The `nix build` command line gantry runs, for attestations and error messages.
fn command_line(spec: &NixStep, out_link: Option<&str>) -> Vec<String> {
    let mut command = vec!["nix".to_owned(), "build".to_owned(), "--json".to_owned()];
    match out_link {
        Some(link) => command.extend(["--out-link".to_owned(), link.to_owned()]),
        None => command.push("--no-link".to_owned()),
    }
    command.extend(options(spec));
    command.extend(spec.installable.arguments());
    command
}

/// What every `nix build` of the step is given besides the installable: never a lock file
/// written into the sources, and the step's remote builders.
fn options(spec: &NixStep) -> Vec<String> {
    let mut options = vec![NO_WRITE_LOCK_FILE.to_owned()];
    if !spec.builders.is_empty() {
        options.push("--builders".to_owned());
        options.push(spec.builders.join(" ; "));
    }
    options
}

/// The derivations Nix built on a remote builder, from its log (`building 'DRV' on 'URI'`).
fn built_on(log: &[u8]) -> BTreeMap<String, String> {
    String::from_utf8_lossy(log)
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("building '")?;
            let (drv, rest) = rest.split_once("' on '")?;
            let (uri, _) = rest.split_once('\'')?;
            Some((drv.to_owned(), uri.to_owned()))
        })
        .collect()
}

fn nix_failure(error: NixError, command: Vec<String>) -> Failure {
    match error {
        NixError::Failed {
            ended: Ended::Cancelled,
            ..
        } => Failure::Cancelled,
        NixError::Failed {
            ended,
            stderr,
            command: _,
        } => Failure::Step {
            error: StepError {
                category: crate::report::FailureCategory::Step,
                message: format!("nix build failed ({ended})"),
            },
            exit_code: match ended {
                Ended::Exited(code) => Some(code),
                _ => None,
            },
            detail: Some(FailureDetail {
                command,
                stderr_tail: tail(stderr.as_bytes(), 20, 4096),
                usage: None,
            }),
        },
        other => Failure::environment(other.to_string()),
    }
}

fn build(context: &Context, step: &Step, spec: &NixStep, nix: &Nix<'_>) -> Result<Build, Failure> {
    let installable = &spec.installable;
    let root = &context.pipeline.root;
    let out_link = step.outputs.first().map(|output| root.join(&output.path));
    if let Some(parent) = out_link.as_deref().and_then(Path::parent) {
        fs::create_dir_all(parent).map_err(|error| {
            Failure::environment(format!("cannot make `{}`: {error}", parent.display()))
        })?;
    }
    let command = command_line(
        spec,
        step.outputs.first().map(|output| output.path.as_str()),
    );
    // gantry never writes into sources: a missing or stale flake.lock is Nix's to report and
    // the user's to commit (`nix flake lock`).
    let options = options(spec);
    let options: Vec<&str> = options.iter().map(String::as_str).collect();
    let (built, captured) = nix
        .build(installable, out_link.as_deref(), &options)
        .map_err(|error| nix_failure(error, command.clone()))?;
    let built = exactly_one(built)?;
    let outputs = output_infos(nix, &built)?;
    let records = out_links(root, step, &outputs)?;
    Ok(Build {
        built,
        outputs,
        records,
        source_file: source_file(context, installable)?,
        log: captured.stderr,
        rebuilt: None,
    })
}

fn source_file(
    context: &Context,
    installable: &Installable,
) -> Result<Option<(String, Digest)>, Failure> {
    // A `file = ...` build's file is an input of the step (validation adds it).
    let relative = match installable.local_flake() {
        Some(".") => "flake.lock".to_owned(),
        Some(folder) => format!("{folder}/flake.lock"),
        None => return Ok(None),
    };
    let path = context.pipeline.root.join(&relative);
    match context.store.stats.digest(&path) {
        Ok(digest) => Ok(Some((relative, digest))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(Failure::input(format!("cannot read `{relative}`: {error}"))),
    }
}

/// `gantry repro`: makes sure the outputs exist (building them if this machine never did),
/// then builds them again with `nix build --rebuild --keep-failed`, which compares the two
/// builds bit for bit and keeps a differing one at `<output>.check`. The workspace's out-links
/// are left alone: the rebuild's out-links go to the rebuild's output folder, pointing at the
/// paths Nix keeps (what later steps of the rebuild read).
fn rebuild(
    context: &Context,
    step: &Step,
    spec: &NixStep,
    nix: &Nix<'_>,
) -> Result<Build, Failure> {
    let installable = &spec.installable;
    let command = rebuild_command_line(spec);
    let options = options(spec);
    let mut options: Vec<&str> = options.iter().map(String::as_str).collect();
    let (built, mut captured) = nix
        .build(installable, None, &options)
        .map_err(|error| nix_failure(error, command.clone()))?;
    let built = exactly_one(built)?;
    // Only the main rebuild of `gantry repro` checks; the rebuilds that attribute a difference
    // need the outputs, not another comparison.
    let differs = if context.nix_check {
        for path in built.outputs.values() {
            remove_store_copy(&format!("{path}.check"));
        }
        options.extend(["--rebuild", "--keep-failed"]);
        let checked = nix.build(installable, None, &options);
        match checked {
            Ok((_, more)) => {
                captured.stderr.extend(more.stderr);
                false
            }
            // Nix 2.8 exits 1 here, later versions 104: the message is what Nix keeps.
            Err(NixError::Failed { stderr, .. }) if stderr.contains("may not be deterministic") => {
                for folder in kept_build_folders(&stderr) {
                    let _ = fs::remove_dir_all(folder);
                }
                captured.stderr.extend(stderr.into_bytes());
                true
            }
            Err(error) => return Err(nix_failure(error, command)),
        }
    } else {
        false
    };
    let outputs = output_infos(nix, &built)?;
    let mut rebuilt = BTreeMap::new();
    for (name, info) in &outputs {
        let path = &info.path;
        let check = format!("{path}.check");
        let again = if !differs {
            Rebuilt {
                nar_hash: Some(info.nar_hash),
                check: None,
            }
        } else if Path::new(&check).exists() {
            Rebuilt {
                nar_hash: Some(
                    nix.hash_path(Path::new(&check))
                        .map_err(|error| Failure::environment(error.to_string()))?,
                ),
                check: Some(check),
            }
        } else {
            // Nix said it differs but kept no copy (a daemon ignores --keep-failed for
            // untrusted users; Nix stops at the first differing output): the rebuilt bytes
            // are unknown, and must never be taken for the store's.
            Rebuilt {
                nar_hash: None,
                check: None,
            }
        };
        rebuilt.insert(name.clone(), again);
    }
    let records = rebuild_links(context, step, &built, &outputs)?;
    Ok(Build {
        built,
        outputs,
        records,
        source_file: source_file(context, installable)?,
        log: captured.stderr,
        rebuilt: context.nix_check.then_some(rebuilt),
    })
}

/// The out-links of a rebuild, made in its output folder: `NAME` for `out`, `NAME-OUTPUT` for
/// the others, as `nix build --out-link NAME` names them.
fn rebuild_links(
    context: &Context,
    step: &Step,
    built: &Built,
    outputs: &BTreeMap<String, PathInfo>,
) -> Result<Vec<OutputRecord>, Failure> {
    let mut records = Vec::new();
    let base = step
        .outputs
        .first()
        .map_or("", |output| output.path.as_str());
    for output in &step.outputs {
        // As `nix build --out-link NAME` links them: `NAME` for `out`, `NAME-OUTPUT` for others.
        let name = if output.path == base {
            "out"
        } else {
            output
                .path
                .strip_prefix(base)
                .and_then(|rest| rest.strip_prefix('-'))
                .unwrap_or_default()
        };
        let target = built.outputs.get(name).cloned().ok_or_else(|| {
            Failure::input(format!(
                "output `{}` names no output of the build (it has {})",
                output.path,
                built.outputs.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let link = context.output_root.join(&output.path);
        if let Some(parent) = link.parent() {
            fs::create_dir_all(parent).map_err(|error| {
                Failure::environment(format!("cannot make `{}`: {error}", parent.display()))
            })?;
        }
        let _ = fs::remove_file(&link);
        std::os::unix::fs::symlink(&target, &link).map_err(|error| {
            Failure::environment(format!("cannot link `{}`: {error}", link.display()))
        })?;
        let info = outputs
            .values()
            .find(|info| info.path == target)
            .ok_or_else(|| Failure::environment(format!("Nix has no record of `{target}`")))?;
        records.push(link_record(&output.path, info));
    }
    Ok(records)
}

fn rebuild_command_line(spec: &NixStep) -> Vec<String> {
    let mut command = command_line(spec, None);
    command.extend(["--rebuild".to_owned(), "--keep-failed".to_owned()]);
    command
}

/// The build folders Nix kept (`note: keeping build directory '...'`).
fn kept_build_folders(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter_map(|line| {
            let rest = line.split("keeping build directory '").nth(1)?;
            rest.split('\'').next()
        })
        .collect()
}

/// Deletes a copy Nix left in the store outside its database (`<output>.check`); a store
/// owned by a daemon's user may refuse, which leaves it for Nix's next check to replace.
pub fn remove_store_copy(path: &str) {
    let path = Path::new(path);
    if !path.starts_with("/nix/store")
        || path
            .extension()
            .is_none_or(|extension| extension != "check")
    {
        return;
    }
    if fs::symlink_metadata(path).is_err() {
        return;
    }
    for entry in walkdir::WalkDir::new(path).into_iter().flatten() {
        if entry.file_type().is_dir() {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(entry.path(), fs::Permissions::from_mode(0o755));
        }
    }
    if fs::remove_dir_all(path).is_err() {
        let _ = fs::remove_file(path);
    }
}

/// An out-link as an output: the store path it points to, keyed by its NAR hash.
fn link_record(path: &str, info: &PathInfo) -> OutputRecord {
    OutputRecord {
        path: path.to_owned(),
        digest: info.nar_hash,
        directory: false,
        executable: false,
        link: Some(info.path.clone()),
    }
}

/// A nix step builds one installable.
fn exactly_one(built: Vec<Built>) -> Result<Built, Failure> {
    <[Built; 1]>::try_from(built)
        .map(|[built]| built)
        .map_err(|built| {
            Failure::input(format!(
                "`nix build` built {} things; a nix step builds exactly one",
                built.len()
            ))
        })
}

/// Output name → the path-info (NAR hash and size) Nix holds for it.
fn output_infos(nix: &Nix<'_>, built: &Built) -> Result<BTreeMap<String, PathInfo>, Failure> {
    let paths: Vec<&str> = built.outputs.values().map(String::as_str).collect();
    let infos = nix
        .path_info(&paths, false, false)
        .map_err(|error| Failure::environment(error.to_string()))?;
    let mut outputs = BTreeMap::new();
    for (name, path) in &built.outputs {
        let info = infos
            .iter()
            .find(|info| &info.path == path)
            .ok_or_else(|| Failure::environment(format!("Nix has no record of output `{path}`")))?;
        outputs.insert(name.clone(), info.clone());
    }
    Ok(outputs)
}

/// Each declared output is an out-link Nix made (`NAME`, and `NAME-OUTPUT` for further
/// outputs); its record carries the NAR hash of the store path it points to.
fn out_links(
    root: &Path,
    step: &Step,
    outputs: &BTreeMap<String, PathInfo>,
) -> Result<Vec<OutputRecord>, Failure> {
    let mut records = Vec::new();
    for output in &step.outputs {
        let link: PathBuf = root.join(&output.path);
        let target = fs::read_link(&link).map_err(|error| {
            Failure::input(format!(
                "output `{}` was not made by `nix build` ({error}); a nix step's outputs are \
                 its out-link and `<out-link>-<output>` links for further outputs",
                output.path
            ))
        })?;
        let target = target.to_string_lossy().into_owned();
        let info = outputs
            .values()
            .find(|info| info.path == target)
            .ok_or_else(|| {
                Failure::input(format!(
                    "output `{}` points to `{target}`, which this build did not make",
                    output.path
                ))
            })?;
        records.push(link_record(&output.path, info));
    }
    Ok(records)
}

/// Bump when what a nix step records changes.
const VERSION: u32 = 1;

fn action_key(step: &Step, action: &NixAction, build: &Build) -> Digest {
    let mut key = ActionKey::of_step(step, "nix", VERSION);
    key.text("derivation", &build.built.drv_path);
    for (name, info) in &build.outputs {
        key.text("nix output", name)
            .text("store path", &info.path)
            .digest("nar hash", &info.nar_hash);
    }
    if let Some((path, digest)) = &build.source_file {
        key.input(path, digest);
    }
    for input in &action.inputs {
        key.input(&input.path, &input.digest);
    }
    for output in &step.outputs {
        key.text("output", &output.path);
    }
    key.finish()
}

/// Whether a cached link for this build may be used ([`crate::exec::vouch`]); says why not.
fn vouched(context: &Context, key: &Digest, cached: &crate::store::ActionResult) -> bool {
    match crate::exec::vouch::check(context, key, cached, &std::collections::HashMap::new()) {
        Ok(()) => true,
        Err(reason) => {
            context.reporter.emit(&crate::report::Event::Warning {
                step: Some(cached.step.clone()),
                message: format!(
                    "its action cache entry {} is not vouched for: {reason}; attesting the build anew",
                    key.hex()
                ),
            });
            false
        }
    }
}

fn store_path_descriptor(info: &PathInfo, role: &str) -> ResourceDescriptor {
    let mut descriptor = ResourceDescriptor::named(info.path.clone(), &info.nar_hash);
    let mut annotations = serde_json::Map::new();
    annotations.insert("role".to_owned(), role.into());
    annotations.insert("narSize".to_owned(), info.nar_size.into());
    descriptor.annotations = Some(annotations);
    descriptor
}

/// The link's `environment`: Nix's settings, the derivation, the builders and where Nix
/// built, and for a rebuild, what it could not compare.
fn environment(
    spec: &NixStep,
    build: &Build,
    settings: &Settings,
    key: &Digest,
) -> link::Environment {
    let mut environment = link::Environment {
        nix: Some(settings.clone()),
        drv_path: Some(build.built.drv_path.clone()),
        action_key: key.hex(),
        ..link::Environment::default()
    };
    if !spec.builders.is_empty() {
        environment.builders.clone_from(&spec.builders);
        environment.built_on = built_on(&build.log).into_iter().collect();
    }
    if let Some(rebuilt) = &build.rebuilt {
        environment.rebuild = true;
        environment.differed_without_copy = build
            .outputs
            .iter()
            .filter(|(name, _)| {
                rebuilt
                    .get(*name)
                    .is_some_and(|again| again.nar_hash.is_none())
            })
            .map(|(_, info)| info.path.clone())
            .collect();
    }
    environment
}

/// The link's subjects (the outputs, a rebuild's by its own result) and the link.
#[expect(clippy::too_many_arguments)]
fn link(
    step: &Step,
    spec: &NixStep,
    action: &NixAction,
    build: &Build,
    closure: &[PathInfo],
    settings: &Settings,
    key: &Digest,
    log: Digest,
) -> (Vec<ResourceDescriptor>, Link) {
    let rebuilt = |name: &str| build.rebuilt.as_ref().and_then(|rebuilt| rebuilt.get(name));
    let subjects = build
        .outputs
        .iter()
        .filter(|(name, _)| rebuilt(name).is_none_or(|again| again.nar_hash.is_some()))
        .map(|(name, info)| {
            let mut subject = store_path_descriptor(info, "output");
            if let Some(annotations) = subject.annotations.as_mut() {
                annotations.insert("output".to_owned(), name.clone().into());
                if let Some(record) = build
                    .records
                    .iter()
                    .find(|record| record.link.as_deref() == Some(info.path.as_str()))
                {
                    annotations.insert("outLink".to_owned(), record.path.clone().into());
                }
                if let Some(again) = rebuilt(name) {
                    // The rebuild's own result; the store keeps the first build's bytes.
                    if let Some(hash) = again.nar_hash {
                        subject.digest = attest::DigestSet::sha256(&hash);
                    }
                    if let Some(check) = &again.check {
                        annotations.insert("rebuiltAt".to_owned(), check.clone().into());
                    }
                }
            }
            subject
        })
        .collect();
    let mut materials: Vec<ResourceDescriptor> = closure
        .iter()
        .map(|info| {
            let role = if info.path == build.built.drv_path {
                "derivation"
            } else if Path::new(&info.path)
                .extension()
                .is_some_and(|extension| extension == "drv")
            {
                "input-derivation"
            } else {
                "source"
            };
            store_path_descriptor(info, role)
        })
        .collect();
    if let Some((path, digest)) = &build.source_file {
        materials.push(ResourceDescriptor::named(path.clone(), digest));
    }
    materials.extend(
        action
            .inputs
            .iter()
            .map(|input| ResourceDescriptor::named(input.path.clone(), &input.digest)),
    );
    let environment = environment(spec, build, settings, key);
    let byproducts = link::Byproducts {
        return_value: Some(0),
        stderr: Some(link::Stream {
            sha256: log.hex(),
            truncated_at: None,
        }),
        ..link::Byproducts::default()
    };
    let link = Link {
        name: step.name.clone(),
        command: if build.rebuilt.is_some() {
            rebuild_command_line(spec)
        } else {
            command_line(
                spec,
                step.outputs.first().map(|output| output.path.as_str()),
            )
        },
        materials,
        byproducts,
        environment,
    };
    (subjects, link)
}
