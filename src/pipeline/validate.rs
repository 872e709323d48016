//! Wire structs → model. Pure: every check that needs only the file's text lives here and
//! reports every problem it finds, not only the first.

use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indexmap::IndexMap;
use toml::Spanned;

use crate::diagnostic::closest;
use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::digest::Digest;
use crate::duration;
use crate::pipeline::convert::{convert_input, convert_outputs};
use crate::pipeline::model::{
    InputPattern, Limits, Named, OutputPath, Pipeline, Retry, Step, StepKind, Tool,
};
use crate::pipeline::stored_step::StoredStep;
use crate::pipeline::wire::{PipelineFileWire, RetryWire, StepWire};
use crate::pipeline::{
    exec_step, gate_step, limits, nix_step, path, rollout_step, sbom_step, sign_step, uses,
    vulns_step,
};

/// The longest first wait between attempts a pipeline may ask for.
const LONGEST_BACKOFF: Duration = Duration::from_secs(3600);

/// Variables the sandbox owns; a pipeline may not set them.
const RESERVED_ENV: &[&str] = &["HOME", "TMPDIR", "PWD"];

/// Context the pure parser needs from the outside world.
pub struct Location<'a> {
    /// Absolute path of the pipeline file.
    pub file: &'a Path,
    /// Root used when `[pipeline] root` is absent (the git root, else the file's folder).
    pub default_root: &'a Path,
    /// The templates the file's `uses` name, read before.
    pub templates: &'a crate::template::Templates,
}

/// Parses and validates one pipeline file.
pub fn parse(source: &SourceFile, location: &Location<'_>) -> Result<Pipeline, Diagnostics> {
    let parsed = parse_partial(source, location);
    match parsed.pipeline {
        Some(pipeline) if parsed.errors.is_empty() => Ok(pipeline),
        _ => Err(Diagnostics {
            file: source.clone(),
            items: parsed.errors,
            more: parsed.more,
        }),
    }
}

/// What a file with mistakes still yields: the steps that validated, so that `gantry check`
/// can look for the graph's mistakes (clashing outputs, cycles) in the same pass.
pub struct Parsed {
    /// `None` when the file is no TOML table or has no `[pipeline]`.
    pub pipeline: Option<Pipeline>,
    pub errors: Vec<Diagnostic>,
    /// Mistakes in the templates the file uses, each in its template's file.
    pub more: Vec<Diagnostics>,
    /// Every step of the file is in `pipeline` (none was left out for a mistake).
    pub whole: bool,
}

/// Parses and validates one pipeline file, keeping what validated.
#[must_use]
pub fn parse_partial(source: &SourceFile, location: &Location<'_>) -> Parsed {
    let (wire, mut errors) =
        crate::diagnostic::read_reporting_unknown::<PipelineFileWire>(&source.text);
    let mut more = Vec::new();
    let Some(wire) = wire else {
        return Parsed {
            pipeline: None,
            errors,
            more,
            whole: false,
        };
    };
    let declared: usize = (wire.steps.values())
        .map(|step| match step.get_ref().uses() {
            Some(uses) => match location.templates.get(uses.get_ref()) {
                Some(Ok(loaded)) => loaded.manifest.steps.len(),
                _ => 1,
            },
            None => 1,
        })
        .sum();
    // A root outside the repository is a mistake already reported; nothing there is read.
    let pipeline = convert(wire, source, location, &mut errors, &mut more)
        .filter(|pipeline| pipeline.root.starts_with(location.default_root));
    let whole = pipeline
        .as_ref()
        .is_some_and(|pipeline| pipeline.steps.len() == declared);
    Parsed {
        pipeline,
        errors,
        more,
        whole,
    }
}

/// `[registries.NAME]`: a folder or an http:// URL, and at least one trusted key.
fn check_registries(
    wire: Option<&Spanned<IndexMap<Spanned<String>, Spanned<super::wire::RegistryWire>>>>,
    location: &Location<'_>,
    errors: &mut Vec<Diagnostic>,
) {
    let folder = location.file.parent().unwrap_or(Path::new("/"));
    for (name, registry) in wire.map(|wire| wire.get_ref().iter()).into_iter().flatten() {
        let registry = registry.get_ref();
        if let Err(message) =
            crate::template::registry::Location::parse(registry.url.get_ref(), folder)
        {
            errors.push(Diagnostic::at(message, registry.url.span()));
        }
        if registry.keys.is_empty() {
            errors.push(
                Diagnostic::at(
                    format!("registry `{}` trusts no key", name.get_ref()),
                    name.span(),
                )
                .hint("add `keys = [\"keys/publisher.pub\"]`: a template is used only when a key you trust signed it"),
            );
        }
    }
}

/// `[pipeline] tenant` and `[budget]`: who a run's usage is for and what it may use.
fn metering(
    section: &super::wire::PipelineSectionWire,
    budget: Option<&Spanned<super::wire::BudgetWire>>,
    source: &SourceFile,
    root: &Path,
    errors: &mut Vec<Diagnostic>,
) -> (Option<String>, Option<super::model::Budget>) {
    let tenant = section.tenant.as_ref().and_then(|tenant| {
        super::model::check_tenant(tenant.get_ref())
            .map_err(|message| errors.push(Diagnostic::at(message, tenant.span())))
            .ok()
            .map(|()| tenant.get_ref().clone())
    });
    let budget =
        budget.and_then(|budget| super::budget::convert(budget, &source.text, root, errors));
    (tenant, budget)
}

fn convert(
    wire: PipelineFileWire,
    source: &SourceFile,
    location: &Location<'_>,
    errors: &mut Vec<Diagnostic>,
    more: &mut Vec<Diagnostics>,
) -> Option<Pipeline> {
    let Some(section) = wire.pipeline else {
        errors.push(
            Diagnostic::new("missing `[pipeline]` table", Some(0..0))
                .hint("start the file with `[pipeline]` and `name = \"...\"`"),
        );
        return None;
    };
    let section = section.into_inner();
    let name = section.name.get_ref().trim().to_owned();
    if name.is_empty() {
        errors.push(Diagnostic::at(
            "pipeline name must not be empty",
            section.name.span(),
        ));
    }
    let file_dir = location.file.parent().unwrap_or(Path::new("/"));
    let root = match &section.root {
        Some(root) => {
            let normal = normalize_root(file_dir, root.get_ref());
            if !normal.starts_with(location.default_root) {
                errors.push(
                    Diagnostic::at(
                        format!(
                            "`root = \"{}\"` leads to `{}`, outside {}",
                            root.get_ref(),
                            normal.display(),
                            confinement(location)
                        ),
                        root.span(),
                    )
                    .hint(
                        "a pipeline reads and writes only inside its own repository: move the file, or point `root` at a folder inside it",
                    ),
                );
            }
            normal
        }
        None => location.default_root.to_path_buf(),
    };

    let tools = convert_tools(wire.tools.as_ref(), errors);
    let remote = super::executor_config::convert_remote(wire.executor.as_ref(), errors);
    let defaults = wire.defaults.map(Spanned::into_inner).unwrap_or_default();
    let default_env = convert_env(defaults.env.as_ref(), errors);
    let default_timeout = convert_timeout(defaults.timeout.as_ref(), errors);
    let default_retry = convert_retry(defaults.retry.as_ref(), errors);
    let default_limits = limits::convert(defaults.limits.as_ref(), Limits::default(), errors);
    let declared_tools: Vec<String> = tools.iter().map(|tool| tool.name.clone()).collect();
    let default_tools = step_tools(
        defaults.tools.as_deref().unwrap_or_default(),
        &declared_tools,
        errors,
    );
    let defaults = Defaults {
        env: default_env,
        timeout: default_timeout,
        retry: default_retry,
        tools: default_tools,
        declared_tools,
        limits: default_limits,
    };

    if wire.steps.is_empty() {
        errors.push(
            Diagnostic::new("the pipeline has no steps", Some(0..0))
                .hint("add a step: `[steps.build]` with `run = \"...\"`"),
        );
    }
    let steps = convert_steps(wire.steps, &defaults, source, location, errors, more);
    let tools = with_template_files(tools, &steps, location.templates);
    check_reserved_outputs(&steps, &root, location.file, errors);
    let artifacts = section
        .artifacts
        .as_ref()
        .map(|artifacts| convert_artifacts(artifacts, &steps, errors));
    let (tenant, budget) = metering(&section, wire.budget.as_ref(), source, &root, errors);
    check_registries(wire.registries.as_ref(), location, errors);
    Some(Pipeline {
        tenant,
        budget,
        name,
        source: source.clone(),
        file: location.file.to_path_buf(),
        digest: Digest::of_bytes(source.text.as_bytes()),
        root,
        tools,
        remote,
        steps,
        artifacts,
    })
}

/// `[pipeline] artifacts`: each an output of an exec or nix step, or a path inside a folder
/// output of one.
fn convert_artifacts(
    wire: &Spanned<Vec<Spanned<String>>>,
    steps: &[Step],
    errors: &mut Vec<Diagnostic>,
) -> Vec<String> {
    if wire.get_ref().is_empty() {
        errors.push(
            Diagnostic::at("`artifacts` is empty: a release would ship nothing", wire.span())
                .hint("name the outputs a release ships, such as `artifacts = [\"out/dist/app\"]`, or leave `artifacts` out to ship every output"),
        );
    }
    let made: Vec<&super::model::OutputPath> = (steps.iter())
        .filter(|step| step.kind.consumes_inputs())
        .flat_map(|step| &step.outputs)
        .collect();
    let mut artifacts = Vec::new();
    for artifact in wire.get_ref() {
        let text = artifact.get_ref().trim_end_matches('/');
        let made_here = made.iter().any(|output| {
            output.path == text || (output.directory && path::is_within(text, &output.path))
        });
        if made_here {
            artifacts.push(text.to_owned());
        } else {
            let outputs: Vec<&str> = made
                .iter()
                .take(6)
                .map(|output| output.path.as_str())
                .collect();
            errors.push(
                Diagnostic::at(
                    format!(
                        "artifact `{}` is no output of an exec or nix step",
                        artifact.get_ref()
                    ),
                    artifact.span(),
                )
                .hint(if outputs.is_empty() {
                    "no exec or nix step declares outputs".to_owned()
                } else {
                    format!("the steps' outputs: {}", outputs.join(", "))
                }),
            );
        }
    }
    artifacts
}

/// `[tools]`: names as step names, paths absolute or `~/...`.
fn convert_tools(
    wire: Option<&Spanned<IndexMap<Spanned<String>, Spanned<String>>>>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Tool> {
    let Some(wire) = wire else {
        return Vec::new();
    };
    let mut tools = Vec::new();
    for (name, path) in wire.get_ref() {
        if !valid_step_name(name.get_ref()) {
            errors.push(
                Diagnostic::at(
                    format!("invalid tool name `{}`", name.get_ref()),
                    name.span(),
                )
                .hint("tool names use letters, digits, `-` and `_`, and start with a letter"),
            );
            continue;
        }
        let text = path.get_ref();
        let absolute = text.starts_with('/') || text.starts_with("~/");
        let normal =
            !text.split('/').any(|part| part == ".." || part == ".") && !text.contains('\0');
        if !absolute || !normal {
            errors.push(
                Diagnostic::at(
                    format!(
                        "tool `{}`: `{text}` is not an absolute folder",
                        name.get_ref()
                    ),
                    path.span(),
                )
                .hint("write the toolchain's folder as `/opt/...` or `~/...`, without `.` or `..`"),
            );
            continue;
        }
        if let Some(reason) = protected_tool(text) {
            errors.push(
                Diagnostic::at(
                    format!("tool `{}`: `{text}` {reason}", name.get_ref()),
                    path.span(),
                )
                .hint("name the toolchain's own folder, such as `~/.rustup/toolchains/stable-x86_64-unknown-linux-gnu`"),
            );
            continue;
        }
        tools.push(Tool {
            name: name.get_ref().clone(),
            path: text.clone(),
        });
    }
    tools
}

/// Why a `[tools]` folder may not be mounted into steps, read from its text (`exec::tools`
/// checks the real folder again once links are resolved): the whole file system, a home
/// folder or what holds one, `.ssh` or `.gnupg`, or gantry's own key folder.
pub(crate) fn protected_tool(text: &str) -> Option<&'static str> {
    let (home, rest) = match text.strip_prefix('~') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let parts: Vec<&str> = rest.split('/').filter(|part| !part.is_empty()).collect();
    if parts
        .iter()
        .any(|part| *part == ".ssh" || *part == ".gnupg")
    {
        return Some("holds SSH or GnuPG keys, which no step may see");
    }
    if home {
        if parts.is_empty() {
            return Some("is the home folder itself, which holds keys and credentials");
        }
        let key_folder = [".local", "share", "gantry"];
        if key_folder.starts_with(&parts) || parts.starts_with(&key_folder) {
            return Some("is or holds gantry's signing key folder");
        }
        return None;
    }
    match parts.as_slice() {
        [] => Some("is the whole file system"),
        ["root" | "home"] | ["home", _] => Some("is a home folder or holds them"),
        _ => None,
    }
}

/// A step's (or `[defaults]`') `tools`: each a name from `[tools]`, once.
fn step_tools(
    wire: &[Spanned<String>],
    declared: &[String],
    errors: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for name in wire {
        let text = name.get_ref();
        if !declared.contains(text) {
            let mut diagnostic = Diagnostic::at(
                format!("`tools` names `{text}`, which `[tools]` does not declare"),
                name.span(),
            );
            diagnostic = match closest(text, declared.iter().map(String::as_str)) {
                Some(close) => diagnostic.hint(format!("did you mean `{close}`?")),
                None => diagnostic.hint(format!(
                    "declare it: `[tools]` with `{text} = \"/path/to/the/toolchain\"`"
                )),
            };
            errors.push(diagnostic);
        } else if !names.contains(text) {
            names.push(text.clone());
        }
    }
    names
}

/// What `root` must stay inside, in words.
fn confinement(location: &Location<'_>) -> String {
    format!(
        "`{}` (the repository, or the pipeline's folder when it is in none)",
        location.default_root.display()
    )
}

/// The attestation folder, never a step's to write (`path::normalize` keeps `.git` and
/// `.gantry` out of every path).
const RESERVED: &[&str] = &[crate::pipeline::model::ATTESTATIONS];

/// An output may not be, hold or sit inside `.git`, `.gantry` or the attestation folder, nor be
/// the pipeline file itself: a step would overwrite what vouches for it.
fn check_reserved_outputs(steps: &[Step], root: &Path, file: &Path, errors: &mut Vec<Diagnostic>) {
    let pipeline_file = file
        .strip_prefix(root)
        .ok()
        .and_then(Path::to_str)
        .map(str::to_owned);
    for step in steps {
        for output in &step.outputs {
            let reserved = RESERVED.iter().find(|reserved| {
                path::is_within(&output.path, reserved) || path::is_within(reserved, &output.path)
            });
            if let Some(reserved) = reserved {
                errors.push(
                    Diagnostic::at(
                        format!(
                            "output `{}` of step `{}` would write into `{reserved}`, where gantry keeps the signed records of runs",
                            output.path, step.name
                        ),
                        output.span.clone(),
                    )
                    .hint("write outputs to a folder of their own, such as `out/`"),
                );
            } else if pipeline_file
                .as_deref()
                .is_some_and(|file| path::is_within(file, &output.path))
            {
                errors.push(Diagnostic::at(
                    format!(
                        "output `{}` of step `{}` would overwrite the pipeline file itself",
                        output.path, step.name
                    ),
                    output.span.clone(),
                ));
            }
        }
    }
}

fn normalize_root(file_dir: &Path, root: &str) -> PathBuf {
    let joined = file_dir.join(root);
    let mut normal = PathBuf::new();
    for component in joined.components() {
        match component {
            std::path::Component::ParentDir => {
                normal.pop();
            }
            std::path::Component::CurDir => {}
            other => normal.push(other),
        }
    }
    normal
}

struct Defaults {
    env: BTreeMap<String, String>,
    timeout: Option<Duration>,
    retry: Retry,
    tools: Vec<String>,
    declared_tools: Vec<String>,
    limits: Limits,
}

/// Every step of the file, those of the templates it uses expanded in place (mistakes in a
/// template's steps in `more`, as its file's).
fn convert_steps(
    wire: IndexMap<Spanned<String>, Spanned<StoredStep>>,
    defaults: &Defaults,
    source: &SourceFile,
    location: &Location<'_>,
    errors: &mut Vec<Diagnostic>,
    more: &mut Vec<Diagnostics>,
) -> Vec<Step> {
    let (keys, stored): (Vec<Spanned<String>>, Vec<Spanned<StoredStep>>) = wire.into_iter().unzip();
    let used: Vec<Option<&crate::template::Loaded>> = (keys.iter().zip(&stored))
        .map(|(name, step)| {
            uses::find(
                name,
                step.get_ref().uses(),
                location.templates,
                source,
                errors,
            )
        })
        .collect();
    let groups: Vec<(&str, Vec<String>)> = (keys.iter().zip(&used))
        .filter_map(|(name, loaded)| {
            loaded.map(|loaded| {
                (
                    name.get_ref().as_str(),
                    uses::qualified_names(name.get_ref(), loaded),
                )
            })
        })
        .collect();
    let mut names: HashSet<&str> = keys.iter().map(|key| key.get_ref().as_str()).collect();
    names.extend(
        groups
            .iter()
            .flat_map(|(_, inner)| inner.iter().map(String::as_str)),
    );
    let mut steps = Vec::with_capacity(keys.len());
    // Each step made whole only while it is converted (`StoredStep`).
    for ((step_name, step), loaded) in keys.iter().zip(stored).zip(&used) {
        check_step_name(step_name, errors);
        let step = step.into_inner().into_wire();
        if step.uses.is_some() {
            if let Some(loaded) = loaded {
                let scope = Scope {
                    defaults,
                    names: &names,
                    source,
                };
                steps.extend(expand(step_name, &step, loaded, &scope, errors, more));
            }
        } else if let Some(step) = convert_step(step_name, &step, defaults, &names, errors) {
            steps.push(step);
        }
    }
    // `needs = ["build"]` of a use: every step of its template.
    for step in &mut steps {
        let needs = std::mem::take(&mut step.needs);
        for need in needs {
            match groups.iter().find(|(group, _)| *group == need.name) {
                Some((_, inner)) => step.needs.extend(inner.iter().map(|name| Named {
                    name: name.clone(),
                    span: need.span.clone(),
                })),
                None => step.needs.push(need),
            }
        }
    }
    steps
}

/// The pipeline's tools and, for each template with files whose steps run commands, a tool
/// showing those files (unpacked in the cache) read-only.
fn with_template_files(
    mut tools: Vec<Tool>,
    steps: &[Step],
    templates: &crate::template::Templates,
) -> Vec<Tool> {
    for loaded in templates.values().filter_map(|loaded| loaded.as_ref().ok()) {
        let Some(files) = &loaded.files else {
            continue;
        };
        let name = loaded.files_tool();
        let used = steps.iter().any(|step| step.tools.contains(&name));
        if used && !tools.iter().any(|tool| tool.name == name) {
            tools.push(Tool {
                name,
                path: files.display().to_string(),
            });
        }
    }
    tools
}

/// What every step of a file is converted within.
struct Scope<'a> {
    defaults: &'a Defaults,
    names: &'a HashSet<&'a str>,
    source: &'a SourceFile,
}

/// A use's steps: its template's, filled with its `with`, named `NAME.INNER`, each also
/// needing what the use needs.
fn expand(
    name: &Spanned<String>,
    wire: &StepWire,
    loaded: &crate::template::Loaded,
    scope: &Scope<'_>,
    errors: &mut Vec<Diagnostic>,
    more: &mut Vec<Diagnostics>,
) -> Vec<Step> {
    let Scope {
        defaults,
        names,
        source,
    } = scope;
    let use_needs = convert_needs(name.get_ref(), &wire.needs, names, errors);
    let Some(values) = uses::values(name, wire, loaded, errors) else {
        return Vec::new();
    };
    let mut template_errors = Vec::new();
    let mut steps = Vec::new();
    match uses::inner_steps(loaded, &values) {
        Ok(inner) => {
            for (inner_name, mut inner_wire) in inner {
                if let Some(nested) = &inner_wire.uses {
                    template_errors.push(Diagnostic::at(
                        "a template's step cannot use another template",
                        nested.span(),
                    ));
                    continue;
                }
                uses::rename_needs(name.get_ref(), &mut inner_wire, &loaded.manifest);
                let qualified = Spanned::new(
                    inner_name.span(),
                    format!("{}.{}", name.get_ref(), inner_name.get_ref()),
                );
                let converted = convert_step(
                    &qualified,
                    &inner_wire,
                    defaults,
                    names,
                    &mut template_errors,
                );
                if let Some(mut step) = converted {
                    step.needs.extend(use_needs.iter().cloned());
                    // The template's files, read-only at `${{ template_dir }}`.
                    if loaded.files.is_some() && matches!(step.kind, StepKind::Exec(_)) {
                        step.tools.push(loaded.files_tool());
                    }
                    let template = super::model::TemplateUse {
                        pin: loaded.pin.clone(),
                        step: inner_name.get_ref().clone(),
                        uri: loaded.uri.clone(),
                        publisher_key: loaded.publisher_key.clone(),
                    };
                    uses::relocate(&mut step, &name.span(), template);
                    steps.push(step);
                }
            }
        }
        Err(items) => template_errors = items,
    }
    if !template_errors.is_empty() {
        // Reported through a diagnostic of the pipeline too, so a file with a broken use
        // never reads as valid.
        errors.push(Diagnostic::at(
            format!("`{}` has mistakes in its steps (below)", loaded.pin.name),
            name.span(),
        ));
        more.push(uses::in_template(loaded, name, source, template_errors));
        return Vec::new();
    }
    steps
}

/// A template's steps read as a pipeline would read them, its required parameters given
/// placeholder values of their types and every tool it names taken as declared: what
/// `gantry template publish` checks before it packs (mistakes at the template's lines).
pub fn check_template(loaded: &crate::template::Loaded) -> Vec<Diagnostic> {
    use crate::template::manifest::{Kind, Value};
    let mut values: IndexMap<String, Value> = IndexMap::new();
    for (name, parameter) in &loaded.manifest.parameters {
        // Each its own name, so that two path parameters never overlap by accident.
        let value = parameter.default.clone().unwrap_or(match parameter.kind {
            Kind::String | Kind::Path => Value::String(name.clone()),
            Kind::Integer => Value::Integer(1),
            Kind::Number => Value::Number("0.5".to_owned()),
            Kind::Bool => Value::Bool(false),
            Kind::List => Value::List(vec![name.clone()]),
        });
        values.insert(name.clone(), value);
    }
    if loaded.files.is_some() {
        values.insert(
            crate::template::TEMPLATE_DIR.to_owned(),
            Value::String(loaded.files_mount()),
        );
    }
    let values = crate::template::fill::Values::new(values);
    let inner = match uses::inner_steps(loaded, &values) {
        Ok(inner) => inner,
        Err(errors) => return errors,
    };
    let declared_tools: Vec<String> = (inner.iter())
        .flat_map(|(_, wire)| wire.tools.iter().flat_map(Spanned::get_ref))
        .map(|tool| tool.get_ref().clone())
        .collect();
    let defaults = Defaults {
        env: BTreeMap::new(),
        timeout: None,
        retry: Retry::default(),
        tools: Vec::new(),
        declared_tools,
        limits: Limits::default(),
    };
    let qualified: Vec<String> = (inner.iter())
        .map(|(name, _)| format!("use.{}", name.get_ref()))
        .collect();
    let names: HashSet<&str> = qualified.iter().map(String::as_str).collect();
    let mut errors = Vec::new();
    for ((inner_name, mut wire), name) in inner.into_iter().zip(&qualified) {
        if let Some(nested) = &wire.uses {
            errors.push(Diagnostic::at(
                "a template's step cannot use another template",
                nested.span(),
            ));
            continue;
        }
        uses::rename_needs("use", &mut wire, &loaded.manifest);
        let qualified = Spanned::new(inner_name.span(), name.clone());
        convert_step(&qualified, &wire, &defaults, &names, &mut errors);
    }
    errors
}

/// The name of a step of the file: letters, digits, `-`, `_`; not `provenance`.
fn check_step_name(name: &Spanned<String>, errors: &mut Vec<Diagnostic>) {
    let step_name = name.get_ref();
    if !valid_step_name(step_name) {
        errors.push(
            Diagnostic::at(format!("invalid step name `{step_name}`"), name.span())
                .hint("step names use letters, digits, `-` and `_`, and start with a letter"),
        );
    } else if step_name == "provenance" {
        errors.push(
            Diagnostic::at("the step name `provenance` is reserved", name.span())
                .hint("a run folder's `provenance.intoto.json` is the run's SLSA provenance; name the step otherwise"),
        );
    }
}

fn convert_step(
    name: &Spanned<String>,
    wire: &StepWire,
    defaults: &Defaults,
    names: &HashSet<&str>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Step> {
    let step_name = name.get_ref();
    let before = errors.len();
    let kind = convert_kind(step_name, wire, name.span(), errors);
    let (kind, (inputs, outputs)) = match kind {
        Some(Kinded {
            kind,
            paths: Some(paths),
        }) => (Some(kind), paths),
        // A sbom step whose own keys were wrong: its inputs and outputs are unknown, and
        // `inputs`/`outputs` were already refused.
        None if wire
            .kind
            .as_ref()
            .is_some_and(|kind| kind.get_ref() == "sbom") =>
        {
            (None, (Vec::new(), Vec::new()))
        }
        kind => {
            let kind = kind.map(|kinded| kinded.kind);
            let inputs: Vec<InputPattern> = wire
                .inputs
                .iter()
                .filter_map(|input| convert_input(input, errors))
                .collect();
            let outputs = match &kind {
                Some(StepKind::Sign(_)) => sign_step::outputs(&inputs),
                _ => convert_outputs(&wire.outputs, errors),
            };
            (kind, (inputs, outputs))
        }
    };
    if let (Some(StepKind::Exec(exec)), Some(warm)) = (&kind, &wire.warm) {
        exec_step::check_warm_overlaps(&exec.warm, warm, &inputs, &outputs, errors);
    }
    let needs = convert_needs(step_name, &wire.needs, names, errors);
    let mut env = defaults.env.clone();
    env.extend(convert_env(wire.env.as_ref(), errors));
    let timeout = convert_timeout(wire.timeout.as_ref(), errors).or(defaults.timeout);
    let retry = if wire.retry.is_some() {
        convert_retry(wire.retry.as_ref(), errors)
    } else {
        defaults.retry
    };
    let network = wire.network.as_ref().is_some_and(|set| *set.get_ref());
    let tools = merged_tools(kind.as_ref(), wire, defaults, errors);
    let executor = super::executor_config::convert_placement(wire.executor.as_ref(), errors);
    let limits = limits::convert(wire.limits.as_ref(), defaults.limits, errors);
    if errors.len() > before {
        return None;
    }
    Some(Step {
        name: step_name.clone(),
        name_span: name.span(),
        kind: kind?,
        inputs,
        outputs,
        needs,
        env,
        tools,
        network,
        executor,
        timeout,
        retry,
        publish: wire
            .publish
            .as_ref()
            .is_some_and(|publish| *publish.get_ref()),
        limits,
        template: None,
    })
}

/// `needs = [...]`: other steps, each once.
fn convert_needs(
    step_name: &str,
    wire: &[Spanned<String>],
    names: &HashSet<&str>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<Named> {
    let mut needs: Vec<Named> = Vec::new();
    for need in wire {
        let target = need.get_ref();
        if target == step_name {
            errors.push(Diagnostic::at(
                format!("step `{step_name}` needs itself"),
                need.span(),
            ));
        } else if !names.contains(target.as_str()) {
            let mut diagnostic = Diagnostic::at(
                format!("`needs` names `{target}`, which is not a step"),
                need.span(),
            );
            if let Some(close) = closest(target, names.iter().copied()) {
                diagnostic = diagnostic.hint(format!("did you mean `{close}`?"));
            }
            errors.push(diagnostic);
        } else if !needs.iter().any(|existing| existing.name == *target) {
            needs.push(Named {
                name: target.clone(),
                span: need.span(),
            });
        }
    }
    needs
}

/// The defaults' tools (for the kinds that run commands), then the step's own.
fn merged_tools(
    kind: Option<&StepKind>,
    wire: &StepWire,
    defaults: &Defaults,
    errors: &mut Vec<Diagnostic>,
) -> Vec<String> {
    let runs_commands =
        kind.is_some_and(|kind| matches!(kind, StepKind::Exec(_) | StepKind::Gate(_)));
    let mut tools = if runs_commands {
        defaults.tools.clone()
    } else {
        Vec::new()
    };
    if let Some(wire_tools) = &wire.tools {
        for name in step_tools(wire_tools.get_ref(), &defaults.declared_tools, errors) {
            if !tools.contains(&name) {
                tools.push(name);
            }
        }
    }
    tools
}

fn convert_kind(
    step_name: &str,
    wire: &StepWire,
    name_span: Range<usize>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Kinded> {
    let kind = wire
        .kind
        .as_ref()
        .map_or("exec", |kind| kind.get_ref().as_str());
    if let Some(accepted) = keys_of(kind) {
        for (key, span) in kind_keys(wire) {
            if !accepted.contains(&key)
                && let Some(span) = span
            {
                let owners: Vec<&str> = (KIND_KEYS.iter())
                    .filter(|(_, keys)| keys.contains(&key))
                    .map(|(owner, _)| *owner)
                    .collect();
                let hint = if key == "run" {
                    "an exec step runs `run`; a nix step builds `flake`, `expr` or `file`; a sign step signs its `inputs`; a sbom step describes `from`; a gate judges its `evidence`; a vulns step scans its `sbom`".to_owned()
                } else {
                    let owners: Vec<String> = (owners.iter())
                        .map(|owner| format!("`kind = \"{owner}\"`"))
                        .collect();
                    format!("`{key}` belongs to {} steps", owners.join(" and "))
                };
                errors.push(
                    Diagnostic::at(format!("`{key}` does not apply to {kind} steps"), span)
                        .hint(hint),
                );
            }
        }
    }
    match kind {
        "nix" => nix_step::convert(step_name, wire, name_span, errors).map(|converted| Kinded {
            kind: StepKind::Nix(converted.step),
            paths: Some((converted.inputs, converted.outputs)),
        }),
        "sign" => sign_step::convert(step_name, wire, name_span, errors)
            .map(|sign| Kinded::plain(StepKind::Sign(sign))),
        "sbom" => sbom_step::convert(step_name, wire, name_span, errors).map(|converted| Kinded {
            kind: StepKind::Sbom(Box::new(converted.step)),
            paths: Some((converted.inputs, converted.outputs)),
        }),
        "gate" => gate_step::convert(step_name, wire, name_span, errors).map(|converted| Kinded {
            kind: StepKind::Gate(Box::new(converted.step)),
            paths: Some((converted.inputs, converted.outputs)),
        }),
        "rollout" => {
            rollout_step::convert(step_name, wire, &name_span, errors).map(|converted| Kinded {
                kind: StepKind::Rollout(Box::new(converted.step)),
                paths: Some((converted.inputs, converted.outputs)),
            })
        }
        "vulns" => {
            vulns_step::convert(step_name, wire, name_span, errors).map(|converted| Kinded {
                kind: StepKind::Vulns(Box::new(converted.step)),
                paths: Some((converted.inputs, converted.outputs)),
            })
        }
        "exec" => exec_step::convert(step_name, wire, name_span, errors)
            .map(|exec| Kinded::plain(StepKind::Exec(exec))),
        other => {
            let span = wire.kind.as_ref().map_or(name_span, Spanned::span);
            let known = StepKind::NAMES
                .iter()
                .map(|name| format!("`{name}`"))
                .collect::<Vec<_>>();
            errors.push(
                Diagnostic::at(format!("unknown step kind `{other}`"), span)
                    .hint(format!("known kinds: {}", known.join(", "))),
            );
            None
        }
    }
}

/// A step's kind, and for kinds that derive them from their own keys, its inputs and outputs.
struct Kinded {
    kind: StepKind,
    paths: Option<(Vec<InputPattern>, Vec<OutputPath>)>,
}

impl Kinded {
    fn plain(kind: StepKind) -> Self {
        Self { kind, paths: None }
    }
}

/// Each kind's own keys, kept beside its validation.
const KIND_KEYS: [(&str, &[&str]); 7] = [
    ("exec", exec_step::KEYS),
    ("nix", nix_step::KEYS),
    ("sign", sign_step::KEYS),
    ("sbom", sbom_step::KEYS),
    ("gate", gate_step::KEYS),
    ("rollout", rollout_step::KEYS),
    ("vulns", vulns_step::KEYS),
];

fn keys_of(kind: &str) -> Option<&'static [&'static str]> {
    (KIND_KEYS.iter())
        .find(|(name, _)| *name == kind)
        .map(|(_, keys)| *keys)
}

/// A key that belongs to some kinds only, and where it is written.
type KindKey = (&'static str, Option<Range<usize>>);

fn kind_keys(wire: &StepWire) -> [KindKey; 35] {
    let span = |value: Option<&Spanned<String>>| value.map(Spanned::span);
    [
        ("run", wire.run.as_ref().map(Spanned::span)),
        ("flake", span(wire.flake.as_ref())),
        ("expr", span(wire.expr.as_ref())),
        ("file", span(wire.file.as_ref())),
        ("attr", span(wire.attr.as_ref())),
        ("builders", wire.builders.as_ref().map(Spanned::span)),
        ("key", span(wire.key.as_ref())),
        ("from", span(wire.from.as_ref())),
        ("format", span(wire.format.as_ref())),
        ("vendored", span(wire.vendored.as_ref())),
        ("manifests", wire.manifests.as_ref().map(Spanned::span)),
        ("about", wire.about.as_ref().map(Spanned::span)),
        ("import", wire.import.as_ref().map(Spanned::span)),
        ("subject", wire.subject.as_ref().map(Spanned::span)),
        ("output", span(wire.output.as_ref())),
        ("stage", span(wire.stage.as_ref())),
        ("baseline", span(wire.baseline.as_ref())),
        ("evidence", wire.evidence.as_ref().map(Spanned::span)),
        ("require", wire.require.as_ref().map(Spanned::span)),
        ("strategy", span(wire.strategy.as_ref())),
        ("traffic", wire.traffic.as_ref().map(Spanned::span)),
        ("health", wire.health.as_ref().map(Spanned::span)),
        ("canary", wire.canary.as_ref().map(Spanned::span)),
        ("analysis", wire.analysis.as_ref().map(Spanned::span)),
        ("rollback_window", span(wire.rollback_window.as_ref())),
        ("rehearse", wire.rehearse.as_ref().map(Spanned::span)),
        ("verify", wire.verify.as_ref().map(Spanned::span)),
        ("start", wire.start.as_ref().map(Spanned::span)),
        ("tools", wire.tools.as_ref().map(Spanned::span)),
        ("executor", wire.executor.as_ref().map(Spanned::span)),
        ("warm", wire.warm.as_ref().map(Spanned::span)),
        ("sbom", span(wire.sbom.as_ref())),
        ("db", span(wire.db.as_ref())),
        ("vex", wire.vex.as_ref().map(Spanned::span)),
        ("allow", wire.allow.as_ref().map(Spanned::span)),
    ]
}
fn convert_env(
    wire: Option<&IndexMap<Spanned<String>, Spanned<String>>>,
    errors: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (key, value) in wire.into_iter().flatten() {
        let name = key.get_ref();
        if !valid_env_name(name) {
            errors.push(Diagnostic::at(
                format!("invalid environment variable name `{name}`"),
                key.span(),
            ));
        } else if RESERVED_ENV.contains(&name.as_str()) {
            errors.push(
                Diagnostic::at(
                    format!("`{name}` is set by the sandbox and cannot be overridden"),
                    key.span(),
                )
                .hint("each step gets a private, empty HOME and TMPDIR"),
            );
        } else if value.get_ref().contains('\0') {
            errors.push(Diagnostic::at(
                format!("value of `{name}` contains a NUL character"),
                value.span(),
            ));
        } else {
            env.insert(name.clone(), value.get_ref().clone());
        }
    }
    env
}

fn convert_timeout(
    wire: Option<&Spanned<String>>,
    errors: &mut Vec<Diagnostic>,
) -> Option<Duration> {
    let timeout = wire?;
    match duration::parse(timeout.get_ref()) {
        Ok(duration) if duration.is_zero() => {
            errors.push(Diagnostic::at(
                "timeout must be greater than zero",
                timeout.span(),
            ));
            None
        }
        Ok(duration) => Some(duration),
        Err(message) => {
            errors.push(Diagnostic::at(
                format!("invalid timeout: {message}"),
                timeout.span(),
            ));
            None
        }
    }
}

fn convert_retry(wire: Option<&Spanned<RetryWire>>, errors: &mut Vec<Diagnostic>) -> Retry {
    let Some(retry) = wire else {
        return Retry::default();
    };
    let retry = retry.get_ref();
    let attempts = *retry.attempts.get_ref();
    let attempts = if let Ok(attempts @ 1..=100) = u32::try_from(attempts) {
        attempts
    } else {
        errors.push(Diagnostic::at(
            "`attempts` must be between 1 and 100",
            retry.attempts.span(),
        ));
        1
    };
    let backoff = match &retry.backoff {
        None => Retry::default().backoff,
        Some(backoff) => match duration::parse(backoff.get_ref()) {
            Ok(parsed) if parsed > LONGEST_BACKOFF => {
                errors.push(
                    Diagnostic::at(
                        format!(
                            "a backoff of `{}` would leave the run waiting; the longest is `1h`",
                            backoff.get_ref()
                        ),
                        backoff.span(),
                    )
                    .hint("the wait doubles with each attempt from this value: start small, such as `1s`"),
                );
                Duration::ZERO
            }
            Ok(parsed) => parsed,
            Err(message) => {
                errors.push(Diagnostic::at(
                    format!("invalid backoff: {message}"),
                    backoff.span(),
                ));
                Duration::ZERO
            }
        },
    };
    Retry { attempts, backoff }
}

fn valid_step_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 128
}

fn valid_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parses `text` as `p.toml` in the workspace `/w` (for tests of this and later stages).
#[cfg(test)]
pub(crate) fn parse_test_text(text: &str) -> Result<Pipeline, Diagnostics> {
    let source = SourceFile {
        path: PathBuf::from("p.toml"),
        text: std::sync::Arc::from(text),
    };
    let location = Location {
        file: Path::new("/w/p.toml"),
        default_root: Path::new("/w"),
        templates: &crate::template::Templates::new(),
    };
    parse(&source, &location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nix::Installable;
    use crate::pipeline::model::NixStep;

    fn parse_text(text: &str) -> Result<Pipeline, String> {
        parse_test_text(text).map_err(|diagnostics| diagnostics.render())
    }

    #[test]
    fn every_kind_only_key_belongs_to_a_kind_and_every_kind_is_listed() {
        let wire: StepWire = toml::from_str("").expect("an empty step");
        let written: Vec<&str> = kind_keys(&wire).iter().map(|(key, _)| *key).collect();
        for key in &written {
            assert!(
                KIND_KEYS.iter().any(|(_, keys)| keys.contains(key)),
                "`{key}` belongs to no kind"
            );
        }
        for (kind, keys) in KIND_KEYS {
            assert!(StepKind::NAMES.contains(&kind), "{kind}");
            for key in keys {
                assert!(
                    written.contains(key),
                    "{kind}'s `{key}` is not in the table"
                );
            }
        }
        assert_eq!(KIND_KEYS.len(), StepKind::NAMES.len());
    }

    #[test]
    fn parses_the_issue_example() {
        let pipeline = parse_text(
            r#"
[pipeline]
name = "hello"
root = "."
[defaults]
env = { LANG = "C.UTF-8" }
timeout = "10m"
[steps.compile]
run = ["sh", "-c", "cat src/a.txt src/b.txt > out/ab.txt"]
inputs = ["src/*.txt"]
outputs = ["out/ab.txt"]
env = { MODE = "release" }
[steps.package]
run = "tar -cf out/pkg.tar out/ab.txt"
inputs = ["out/ab.txt"]
outputs = ["out/pkg.tar"]
needs = []
network = false
retry = { attempts = 3, backoff = "1s" }
"#,
        )
        .unwrap();
        assert_eq!(pipeline.steps.len(), 2);
        let package = &pipeline.steps[1];
        assert_eq!(package.retry.attempts, 3);
        assert_eq!(package.timeout, Some(Duration::from_secs(600)));
        assert_eq!(
            pipeline.steps[0].env.get("LANG").map(String::as_str),
            Some("C.UTF-8")
        );
        assert_eq!(
            pipeline.steps[0].env.get("MODE").map(String::as_str),
            Some("release")
        );
        assert_eq!(pipeline.root, PathBuf::from("/w"));
    }

    #[test]
    fn unknown_key_points_at_the_key() {
        let error = parse_text("[pipeline]\nname = \"x\"\n[steps.a]\nrun = \"true\"\nrnu = 1\n")
            .unwrap_err();
        assert!(
            error.starts_with("p.toml:5:1: error: unknown key `rnu`"),
            "{error}"
        );
        assert!(error.contains("did you mean `run`?"), "{error}");
    }

    #[test]
    fn nix_steps_name_one_installable_and_only_nix_keys() {
        let nix = |body: &str| {
            parse_text(&format!(
                "[pipeline]\nname = \"x\"\n[steps.a]\nkind = \"nix\"\n{body}"
            ))
        };
        let pipeline = nix("flake = \"./nix#hello\"\noutputs = [\"result\"]\n").expect("valid");
        assert_eq!(
            pipeline.steps[0].kind,
            StepKind::Nix(NixStep {
                installable: Installable::Flake("./nix#hello".to_owned()),
                builders: Vec::new(),
            })
        );
        let file = nix("file = \"./nix/default.nix\"\nattr = \"hello\"\n").expect("valid");
        assert_eq!(
            file.steps[0].kind,
            StepKind::Nix(NixStep {
                installable: Installable::File {
                    file: "nix/default.nix".to_owned(),
                    attr: Some("hello".to_owned())
                },
                builders: Vec::new(),
            })
        );
        for (body, message) in [
            ("", "p.toml:3:8: error: nix step `a` builds nothing"),
            (
                "flake = \".#a\"\nexpr = \"1\"\n",
                "p.toml:6:8: error: a nix step builds one thing; `expr` is a second",
            ),
            (
                "flake = \".#a\"\nrun = \"make\"\n",
                "p.toml:6:7: error: `run` does not apply to nix steps",
            ),
            (
                "flake = \".#a\"\nnetwork = true\n",
                "`network` does not apply to nix steps",
            ),
            (
                "flake = \".#a\"\nbuilders = [\"ssh://a x86_64-linux; ssh://b\"]\n",
                "p.toml:6:13: error: one builder per string",
            ),
            (
                "flake = \".#a\"\nbuilders = [\"root@b\"]\n",
                "`root@b` is not a Nix remote builder",
            ),
            (
                "flake = \".#a\"\noutputs = [\"out/\"]\n",
                "a nix step's outputs are out-links, not folders",
            ),
            ("expr = \"x\"\nattr = \"a\"\n", "`attr` goes with `file`"),
            (
                "flake = \"../elsewhere#a\"\n",
                "the flake must be inside the workspace",
            ),
            ("file = \"../default.nix\"\n", "p.toml:5:8: error:"),
            ("flake = \"  \"\n", "must not be empty"),
        ] {
            let error = nix(body).unwrap_err();
            assert!(error.contains(message), "{body:?}: {error}");
        }
        let error =
            parse_text("[pipeline]\nname = \"x\"\n[steps.a]\nrun = \"make\"\nflake = \".#a\"\n")
                .unwrap_err();
        assert!(
            error.contains("p.toml:5:9: error: `flake` does not apply to exec steps"),
            "{error}"
        );
    }

    #[test]
    fn sbom_steps_read_from_and_subject_and_write_output_and_its_attestation() {
        let sbom = |body: &str| {
            parse_text(&format!(
                "[pipeline]\nname = \"x\"\n[steps.a]\nkind = \"sbom\"\n{body}"
            ))
        };
        let pipeline = sbom(
            "from = \"./dist/\"\nsubject = \"out/pkg.tar\"\nformat = \"cyclonedx\"\noutput = \"out/bom.json\"\n",
        )
        .expect("valid");
        let step = &pipeline.steps[0];
        assert_eq!(
            step.kind,
            StepKind::Sbom(Box::new(crate::pipeline::model::SbomStep {
                from: "dist".to_owned(),
                format: crate::sbom::Format::Cyclonedx,
                subjects: vec!["out/pkg.tar".to_owned()],
                output: "out/bom.json".to_owned(),
                vendored: None,
                manifests: Vec::new(),
                about: None,
                import: false,
            }))
        );
        let inputs: Vec<(&str, bool)> = step
            .inputs
            .iter()
            .map(|input| (input.pattern.as_str(), input.directory))
            .collect();
        assert_eq!(inputs, [("dist", true), ("out/pkg.tar", false)]);
        let outputs: Vec<&str> = step
            .outputs
            .iter()
            .map(|output| output.path.as_str())
            .collect();
        assert_eq!(outputs, ["out/bom.json", "out/bom.json.intoto.json"]);
        let spdx = sbom("from = \"Cargo.lock\"\noutput = \"sbom.json\"\n").expect("valid");
        assert!(matches!(
            &spdx.steps[0].kind,
            StepKind::Sbom(step) if step.format == crate::sbom::Format::Spdx
        ));
        for (body, message) in [
            (
                "output = \"a.json\"\n",
                "p.toml:3:8: error: sbom step `a` needs `from`",
            ),
            (
                "from = \"Cargo.lock\"\noutput = \"out/\"\n",
                "p.toml:6:10: error: `output` must name a file",
            ),
            (
                "from = \"Cargo.lock\"\nsubject = \"dist/\"\noutput = \"a.json\"\n",
                "leave `subject` out and use `from = \"dist/\"`",
            ),
            (
                "from = \"dist/\"\nsubject = \"dist\"\noutput = \"a.json\"\n",
                "p.toml:6:11: error: the subject is `from`'s folder, not a file",
            ),
            (
                "from = \"out/\"\noutput = \"out/a.json\"\n",
                "p.toml:5:8: error: `from` overlaps what the step writes",
            ),
            (
                "from = \"Cargo.lock\"\noutput = \"a.json\"\nkey = \"k\"\n",
                "p.toml:7:7: error: `key` does not apply to sbom steps",
            ),
            (
                "from = \"Cargo.lock\"\noutput = \"a.json\"\nenv = { A = \"b\" }\n",
                "`env` does not apply to sbom steps",
            ),
            (
                "from = \"../Cargo.lock\"\noutput = \"a.json\"\n",
                "p.toml:5:8: error: invalid `from`",
            ),
        ] {
            let error = sbom(body).unwrap_err();
            assert!(error.contains(message), "{body:?}: {error}");
        }
        // A refused key is reported once, not again as a bad input.
        let error =
            sbom("from = \"Cargo.lock\"\noutput = \"a.json\"\ninputs = [\"../x\"]\n").unwrap_err();
        assert_eq!(error.matches("error:").count(), 1, "{error}");
        let error =
            parse_text("[pipeline]\nname = \"x\"\n[steps.a]\nrun = \"make\"\nfrom = \"x\"\n")
                .unwrap_err();
        assert!(
            error.contains("p.toml:5:8: error: `from` does not apply to exec steps"),
            "{error}"
        );
        assert!(
            error.contains("`from` belongs to `kind = \"sbom\"` steps"),
            "{error}"
        );
    }

    #[test]
    fn unknown_kind_lists_known_kinds() {
        let error =
            parse_text("[pipeline]\nname = \"x\"\n[steps.a]\nkind = \"rocket\"\n").unwrap_err();
        assert!(
            error.contains("p.toml:4:8: error: unknown step kind `rocket`"),
            "{error}"
        );
        assert!(error.contains("known kinds: `exec`, `nix`"), "{error}");
    }

    #[test]
    fn missing_needs_target_suggests_a_name() {
        let error =
            parse_text("[pipeline]\nname = \"x\"\n[steps.build]\nrun = \"true\"\n[steps.b]\nrun = \"true\"\nneeds = [\"biuld\"]\n")
                .unwrap_err();
        assert!(
            error.contains("p.toml:7:10: error: `needs` names `biuld`, which is not a step"),
            "{error}"
        );
        assert!(error.contains("did you mean `build`?"), "{error}");
    }

    #[test]
    fn an_unknown_key_names_the_nearest_known_one() {
        let error = parse_test_text(
            "[pipeline]\nname = \"p\"\n[steps.a]\nrun = \"true\"\noutptus = [\"a\"]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("unknown key `outptus`"), "{error}");
        assert!(error.contains("did you mean `outputs`?"), "{error}");
        let error = parse_test_text(
            "[pipeline]\nname = \"p\"\nzzzzzzzzzz = 1\n[steps.a]\nrun = \"true\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("the keys allowed here: name, root"),
            "{error}"
        );
    }

    #[test]
    fn reports_every_problem() {
        let error = parse_text(
            "[pipeline]\nname = \"x\"\n[steps.a]\nrun = \"true\"\ninputs = [\"../x\"]\noutputs = [\"/abs\"]\ntimeout = \"soon\"\n",
        )
        .unwrap_err();
        assert_eq!(error.matches("error:").count(), 3, "{error}");
    }
}
