//! The files a step reads, with their digests: its matched source files plus the outputs of
//! the steps it depends on that its patterns name.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::digest::Digest;
use crate::exec::context::Context;
use crate::pipeline::StepId;
use crate::pipeline::path::is_within;

/// One input file of a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// Workspace-relative path (also its path under `/build` in the sandbox).
    pub path: String,
    pub host: PathBuf,
    pub digest: Digest,
    /// A Nix step's out-link: the store path it points to, shown to the step as a symlink
    /// (the sandbox has `/nix` read-only) instead of a bind-mounted copy. Or a symbolic link
    /// inside a folder output, shown as the same link.
    pub link: Option<String>,
    /// Whether the step's link lists it as a material: not a link inside a folder output,
    /// whose target (a file of the folder) is listed itself.
    pub material: bool,
}

/// Resolves every input of `id`; upstream steps must have finished.
pub fn resolve(context: &Context, id: StepId) -> Result<Vec<InputFile>, String> {
    let step = &context.pipeline.steps[id];
    let graph_inputs = &context.graph.inputs[id];
    let root = &context.pipeline.root;
    let mut files: BTreeMap<String, InputFile> = BTreeMap::new();
    for source in &graph_inputs.sources {
        let host = root.join(source);
        let digest = context
            .store
            .stats
            .digest(&host)
            .map_err(|error| format!("cannot read input `{source}`: {error}"))?;
        files.insert(
            source.clone(),
            InputFile {
                path: source.clone(),
                host,
                digest,
                link: None,
                material: true,
            },
        );
    }
    for upstream in &graph_inputs.upstream {
        let result = context.results[upstream.step].get().ok_or_else(|| {
            format!(
                "internal: step `{}` has no result",
                context.pipeline.steps[upstream.step].name
            )
        })?;
        let output = &result.outputs[upstream.output];
        let pattern = &step.inputs[upstream.pattern];
        let glob = if pattern.is_glob {
            crate::pipeline::path::glob(&pattern.pattern)
                .ok()
                .map(|glob| glob.compile_matcher())
        } else {
            None
        };
        let wanted = |path: &str| match &glob {
            Some(matcher) => matcher.is_match(path),
            None => is_within(path, &pattern.pattern) || is_within(&pattern.pattern, path),
        };
        if output.directory {
            let tree = result
                .trees
                .get(&upstream.output)
                .ok_or("internal: folder output without a listing")?;
            for file in &tree.files {
                let path = format!("{}/{}", output.path, file.path);
                if wanted(&path) {
                    files.insert(
                        path.clone(),
                        InputFile {
                            host: context.output_root.join(&path),
                            path,
                            digest: file.digest,
                            link: file.link.clone(),
                            material: file.link.is_none(),
                        },
                    );
                }
            }
        } else if wanted(&output.path) {
            files.insert(
                output.path.clone(),
                InputFile {
                    path: output.path.clone(),
                    host: context.output_root.join(&output.path),
                    digest: output.digest,
                    link: output.link.clone(),
                    material: true,
                },
            );
        }
    }
    Ok(files.into_values().collect())
}
