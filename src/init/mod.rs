//! `gantry init`: what kind of project a folder holds, and the pipeline, policy and `.gitignore`
//! lines that build it, test it and describe it. Pure: the CLI lists the files (git's tracked
//! ones, or the folder's) and reads the few manifests asked for; nothing here touches the disk.
//!
//! Each kind writes what passes `check`, `run`, `verify`, `repro` and `release --dry-run` as it
//! is, with comments saying what a project usually changes. A kind that needs the network does
//! it in one step (`vendor`, pinned by the lock file) and everything after it offline.

mod c;
mod other;
mod rust;

use std::collections::BTreeSet;

/// A folder's files, by `/`-separated relative path, and a way to read one of them.
pub struct Tree<'a> {
    pub files: BTreeSet<String>,
    pub read: &'a dyn Fn(&str) -> Option<String>,
    /// The folder's name: the project's name when no manifest gives one.
    pub folder_name: String,
}

impl Tree<'_> {
    fn has(&self, path: &str) -> bool {
        self.files.contains(path)
    }

    /// A listed file's text; nothing for a path the folder does not list (a workspace member
    /// named `../../elsewhere` in a manifest is not read).
    fn text(&self, path: &str) -> Option<String> {
        if self.has(path) {
            (self.read)(path)
        } else {
            None
        }
    }

    /// Top-level entries: files by name, folders with a trailing `/`; without dot-entries and
    /// `skip`.
    fn top_level(&self, skip: &[&str]) -> Vec<String> {
        let mut entries: BTreeSet<String> = BTreeSet::new();
        for file in &self.files {
            let entry = match file.find('/') {
                Some(slash) => format!("{}/", &file[..slash]),
                None => file.clone(),
            };
            if !entry.starts_with('.') && !skip.iter().any(|skipped| entry == *skipped) {
                entries.insert(entry);
            }
        }
        entries.into_iter().collect()
    }
}

/// What the host offers that a pipeline names: the Rust toolchain's folder, as `[tools]` should
/// write it (`~/...` when under the home folder).
#[derive(Default)]
pub struct Host {
    pub rust_toolchain: Option<String>,
}

/// The files `gantry init` writes, and what it tells.
#[derive(Debug, PartialEq, Eq)]
pub struct Plan {
    /// What it found: `Rust (Cargo), binaries: hexyl`.
    pub kind: String,
    pub pipeline: String,
    pub policy: String,
    /// Lines `.gitignore` must hold (added when missing).
    pub ignore: Vec<String>,
    /// A release artifact's file, for the next-steps message (`verify` takes a file).
    pub artifacts: Vec<String>,
    /// Things the user must know (a missing lock file, a kind not tried end to end).
    pub notes: Vec<String>,
}

/// The kinds `init` recognises, in the order it tries them.
pub const KINDS: &str = "Cargo (Cargo.toml), autotools (configure), CMake (CMakeLists.txt), make (a Makefile with `install`), npm (package.json), Python (pyproject.toml), Go (go.mod), Nix (flake.nix)";

/// The plan for `tree`, or why there is none.
pub fn plan(tree: &Tree<'_>, host: &Host) -> Result<Plan, String> {
    if tree.has("Cargo.toml") {
        return rust::plan(tree, host);
    }
    if (tree.has("configure") || tree.has("CMakeLists.txt") || tree.has("Makefile"))
        && let Some(plan) = c::plan(tree)
    {
        return Ok(plan);
    }
    if let Some(plan) = other::plan(tree) {
        return Ok(plan);
    }
    Err(format!(
        "found no project gantry init knows in this folder; it knows {KINDS}. Write the pipeline by hand: docs/pipeline.md"
    ))
}

/// A project name as a pipeline and file name: letters, digits, `-`, `_`, `.`.
fn safe_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c| c == '-' || c == '.');
    if trimmed.is_empty() {
        "project".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The name a folder such as `zlib-1.2.13.dfsg` suggests: up to a `-` before a digit.
fn name_of_folder(folder: &str) -> String {
    let bytes = folder.as_bytes();
    let end = (1..bytes.len())
        .find(|&index| bytes[index - 1] == b'-' && bytes[index].is_ascii_digit())
        .map_or(folder.len(), |index| index - 1);
    safe_name(&folder[..end])
}

/// A TOML string literal.
fn quoted(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

/// A TOML array of strings: one line when short, else a few entries per line.
fn array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| quoted(item)).collect();
    let line = format!("[{}]", quoted.join(", "));
    if line.len() <= 90 {
        return line;
    }
    let mut text = String::from("[\n");
    let mut current = String::new();
    for item in quoted {
        if !current.is_empty() && current.len() + item.len() > 90 {
            text.push_str("  ");
            text.push_str(current.trim_end());
            text.push('\n');
            current.clear();
        }
        current.push_str(&item);
        current.push_str(", ");
    }
    if !current.is_empty() {
        text.push_str("  ");
        text.push_str(current.trim_end());
        text.push('\n');
    }
    text.push(']');
    text
}

/// The policy every kind writes: the required steps, provenance and SBOM, from these sources
/// with the host system and these tools, all signed by the key in `dev.pub`.
fn policy(
    name: &str,
    steps: &[&str],
    sources: &[String],
    tools: &[&str],
    network: &[&str],
) -> String {
    let steps: Vec<String> = steps.iter().map(|step| (*step).to_owned()).collect();
    let network: Vec<String> = network.iter().map(|step| (*step).to_owned()).collect();
    let tools: Vec<String> = tools.iter().map(|tool| (*tool).to_owned()).collect();
    format!(
        r#"# What a release of {name} must show (docs/verify.md), written by `gantry init`.
#   gantry verify --policy policies/release.toml ARTIFACT    (the newest run of ../pipeline.toml)
#   gantry release 0.1.0 --dry-run          (checks this policy before it would tag)
[policy]
name = {policy_name}

# dev.pub is this machine's development key (`gantry keys public > policies/dev.pub`), so runs
# here verify. For releases made elsewhere (CI), make a key pair (`gantry keys generate
# release`), sign with `--key release.key`, and put release.pub here instead.
[[keys]]
id = "dev"
public = "dev.pub"
steps = ["*"]

[require]
steps = {steps}
provenance = true
sbom = true
# Set to true once releases are cut with `gantry release VERSION --reproduce`.
reproduced = false
pipeline = "../pipeline.toml"
sources = {sources}
tools = {tools}
# The steps that may have had the network; what they made is named in the provenance.
network = {network}
"#,
        policy_name = quoted(&format!("{name}-release")),
        steps = array(&steps),
        sources = array(sources),
        tools = array(&tools),
        network = array(&network),
    )
}

/// The SPDX and `CycloneDX` sbom steps every kind writes: of `from`, with `extra` (lines such
/// as the subject, where licences come from, what the subject is) in each.
fn sbom_steps(name: &str, from: &str, extra: &[String]) -> String {
    let extra: String = extra
        .iter()
        .flat_map(|line| [line.as_str(), "\n"])
        .collect();
    [("spdx", "spdx"), ("cyclonedx", "cdx")]
        .iter()
        .map(|(format, suffix)| {
            format!(
                "[steps.sbom-{format}]\nkind = \"sbom\"\nfrom = {from}\n{extra}format = \"{format}\"\noutput = \"out/sbom/{name}.{suffix}.json\"\n",
                from = quoted(from),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The `.gitignore` lines every kind needs: gantry's store, the attestations, the outputs.
fn ignore(extra: &[&str]) -> Vec<String> {
    ["/.gantry/", "/attestations/", "/out/"]
        .iter()
        .chain(extra)
        .map(|line| (*line).to_owned())
        .collect()
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// The plan's pipeline and policy pass validation; the pipeline, validated.
    pub(crate) fn checks(plan: &Plan) -> crate::pipeline::Pipeline {
        use std::path::Path;
        let source = |path: &str, text: &str| crate::pipeline::SourceFile {
            path: path.into(),
            text: std::sync::Arc::from(text),
        };
        let location = crate::pipeline::validate::Location {
            file: Path::new("/p/pipeline.toml"),
            default_root: Path::new("/p"),
            templates: &crate::template::Templates::new(),
        };
        let pipeline =
            crate::pipeline::validate::parse(&source("pipeline.toml", &plan.pipeline), &location)
                .unwrap_or_else(|diagnostics| {
                    panic!("{}\n{}", diagnostics.render(), plan.pipeline)
                });
        crate::verify::policy::parse(&source("policies/release.toml", &plan.policy))
            .unwrap_or_else(|diagnostics| panic!("{}\n{}", diagnostics.render(), plan.policy));
        pipeline
    }

    #[test]
    fn folder_names_lose_their_version() {
        assert_eq!(name_of_folder("zlib-1.2.13.dfsg"), "zlib");
        assert_eq!(name_of_folder("hexyl-0.16.0"), "hexyl");
        assert_eq!(name_of_folder("my-tool"), "my-tool");
        assert_eq!(name_of_folder("?!"), "project");
    }

    #[test]
    fn an_empty_folder_says_what_init_knows() {
        let read = |_: &str| None;
        let tree = Tree {
            files: BTreeSet::from(["README.md".to_owned()]),
            read: &read,
            folder_name: "x".into(),
        };
        let error = plan(&tree, &Host::default()).expect_err("nothing to do");
        assert!(error.contains("Cargo (Cargo.toml)"), "{error}");
    }
}
