//! The pipeline language: wire structs (spans) → validated model, with diagnostics that
//! point at the offending line. `load` is the only part that touches the filesystem.

mod budget;
pub mod cache;
mod convert;
mod exec_step;
pub mod executor_config;
mod gate_step;
pub mod limits;
pub mod model;
mod nix_step;
pub mod path;
pub mod rollout_step;
pub mod rollout_traffic;
mod sbom_step;
mod sign_step;
mod stored_step;
mod uses;
pub mod validate;
mod vulns_step;
pub mod wire;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::diagnostic::read_reporting_unknown;
pub use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};
pub use model::{ExecStep, InputPattern, OutputPath, Pipeline, Retry, Step, StepId, StepKind};

use crate::error::{Error, Result};
pub use crate::template::resolve::Mode as TemplateMode;

/// Reads and validates a pipeline file, reusing a validated copy from `cache` when the file
/// is unchanged.
pub fn load_cached(file: &Path, cache: Option<&cache::ModelCache>) -> Result<Pipeline> {
    load_with(file, cache, &TemplateMode::Use)
}

/// [`load_cached`], with the templates the file uses resolved as `mode` allows.
pub fn load_with(
    file: &Path,
    cache: Option<&cache::ModelCache>,
    mode: &TemplateMode,
) -> Result<Pipeline> {
    let read = Read::new(file, mode)?;
    let key = cache.map(|_| {
        // What a model records of each template: its pack, where it came from, who signed it.
        let pins: Vec<String> = (read.templates.values())
            .filter_map(|loaded| loaded.as_ref().ok())
            .map(|loaded| {
                format!(
                    "{} {} {} {}",
                    loaded.pin.digest.hex(),
                    loaded.pin.registry,
                    loaded.uri,
                    loaded.publisher_key
                )
            })
            .collect();
        cache::ModelCache::key(
            file,
            &read.absolute,
            &read.default_root,
            &read.source.text,
            &pins,
        )
    });
    if let (Some(cache), Some(key)) = (cache, &key)
        && let Some(pipeline) = cache.read(key)
    {
        return Ok(pipeline);
    }
    let pipeline = validate::parse(&read.source, &read.location())
        .map_err(|diagnostics| Error::Pipeline(Box::new(diagnostics)))?;
    if let (Some(cache), Some(key)) = (cache, &key) {
        cache.write(key, &pipeline);
    }
    Ok(pipeline)
}

/// Reads a pipeline file and validates what it can, mistakes and all (`gantry check`).
pub fn load_partial(file: &Path, mode: &TemplateMode) -> Result<validate::Parsed> {
    let read = Read::new(file, mode)?;
    Ok(validate::parse_partial(&read.source, &read.location()))
}

/// A pipeline file's text and where it lies.
struct Read {
    source: SourceFile,
    absolute: PathBuf,
    /// The git root above it, else its folder.
    default_root: PathBuf,
    /// The templates its `uses` name.
    templates: crate::template::Templates,
}

impl Read {
    fn new(file: &Path, mode: &TemplateMode) -> Result<Self> {
        let text = crate::bounded::read_to_string(file, crate::bounded::Kind::Pipeline)
            .map_err(Error::read(file))?;
        let absolute = std::path::absolute(file).map_err(Error::read(file))?;
        let directory = absolute
            .parent()
            .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
        let default_root = git_root(&directory).unwrap_or_else(|| directory.clone());
        let templates = crate::template::resolve::templates(&text, &absolute, &default_root, mode)?;
        Ok(Self {
            source: SourceFile {
                path: file.to_path_buf(),
                text: Arc::from(text),
            },
            absolute,
            default_root,
            templates,
        })
    }

    fn location(&self) -> validate::Location<'_> {
        validate::Location {
            file: &self.absolute,
            default_root: &self.default_root,
            templates: &self.templates,
        }
    }
}

/// Reads and validates a pipeline file.
pub fn load(file: &Path) -> Result<Pipeline> {
    load_cached(file, None)
}

/// The work tree of the git repository containing `directory`, if any.
#[must_use]
pub fn git_root(directory: &Path) -> Option<PathBuf> {
    let repository = git2::Repository::discover(directory).ok()?;
    let workdir = repository.workdir()?;
    std::fs::canonicalize(workdir).ok()
}

#[cfg(test)]
mod fuzz_tests;
