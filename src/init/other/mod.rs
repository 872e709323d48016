//! npm, Python, Go and Nix flake projects. npm and Python fetch what the lock file or
//! pyproject.toml pins in one networked `deps` step and build offline after it; a Go module
//! builds offline unless go.sum lists modules to fetch; a flake builds in Nix's sandbox. Each
//! is taken through init → run → verify → repro → release in `tests/integration/real_projects.rs`.

mod flake;
mod go;
mod npm;
mod python;

use super::{Plan, Tree};

/// The opening of these kinds' pipelines: the name, the folder a release ships, and the
/// defaults, with `env` entries beyond `LANG` and a `comment` line above them.
pub(super) fn header(name: &str, output: &str, env: &str, comment: &str) -> String {
    format!(
        r#"# {name}: written by `gantry init` (docs/pipeline.md). Check it with `gantry check pipeline.toml`.
[pipeline]
name = {}
artifacts = [{}]          # what a release ships

[defaults]
{comment}env = {{ LANG = "C.UTF-8"{env} }}
timeout = "60m"
"#,
        super::quoted(name),
        super::quoted(output),
    )
}

/// What these builds may execute from the host, for the policy's `tools`.
pub(super) const HOST_TOOLS: &[&str] = &["/usr", "/usr/bin/*", "/bin/*"];

pub(super) fn plan(tree: &Tree<'_>) -> Option<Plan> {
    if tree.has("flake.nix") {
        return Some(flake::plan(tree));
    }
    if tree.has("package.json") {
        return npm::plan(tree);
    }
    if tree.has("pyproject.toml") {
        return Some(python::plan(tree));
    }
    if tree.has("go.mod") {
        return Some(go::plan(tree));
    }
    None
}

pub(super) fn inputs(tree: &Tree<'_>, skip: &[&str]) -> (Vec<String>, Vec<String>) {
    let mut skipped = vec![
        "pipeline.toml",
        "policies/",
        "out/",
        "attestations/",
        "pipelines/",
    ];
    skipped.extend(skip);
    let inputs = tree.top_level(&skipped);
    let sources = (inputs.iter())
        .map(|entry| match entry.strip_suffix('/') {
            Some(folder) => format!("{folder}/**"),
            None => entry.clone(),
        })
        .collect();
    (inputs, sources)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree_with<'a>(files: &[&str], read: &'a dyn Fn(&str) -> Option<String>) -> Tree<'a> {
        Tree {
            files: files.iter().map(|file| (*file).to_owned()).collect(),
            read,
            folder_name: "thing-1.0".into(),
        }
    }

    #[test]
    fn each_other_kind_writes_a_pipeline_and_policy_that_check() {
        let read = |path: &str| match path {
            "package.json" => Some(r#"{"name": "@acme/left-pad", "version": "1.2.3"}"#.to_owned()),
            "pyproject.toml" => Some("[project]\nname = \"acme\"\n".to_owned()),
            "go.mod" => Some("module example.org/acme/tool\n\ngo 1.22\n".to_owned()),
            "main.go" | "cmd/serve/main.go" => Some("package main\n".to_owned()),
            "gen.go" => Some("//go:build ignore\n\npackage main\n".to_owned()),
            _ => Some("package tool\n".to_owned()),
        };
        for (files, artifact, kind) in [
            (
                &["package.json"][..],
                "out/dist/acme-left-pad-1.2.3.tgz",
                "npm (package.json)",
            ),
            (
                &["pyproject.toml"],
                "out/dist/*.whl",
                "Python (pyproject.toml)",
            ),
            (
                &["go.mod", "tool.go", "gen.go"],
                "out/dist/tool-src.tar.gz",
                "Go (go.mod), a library",
            ),
            (
                &["go.mod", "main.go"],
                "out/bin/tool",
                "Go (go.mod), commands: .",
            ),
            (
                &["go.mod", "cmd/serve/main.go", "cmd/serve/x/y.go"],
                "out/bin/serve",
                "Go (go.mod), commands: cmd/serve",
            ),
            (&["flake.nix"], "out/result", "Nix (flake.nix)"),
        ] {
            let files: Vec<&str> = files.iter().copied().chain(["src/a"]).collect();
            let tree = tree_with(&files, &read);
            let plan = plan(&tree).expect("a plan");
            assert_eq!(
                (plan.artifacts.as_slice(), plan.kind.as_str()),
                ([artifact.to_owned()].as_slice(), kind)
            );
            super::super::tests::checks(&plan);
        }
    }

    #[test]
    fn only_a_go_module_with_modules_to_fetch_has_the_network() {
        let read = |_: &str| Some("module example.org/tool\n".to_owned());
        let offline = plan(&tree_with(&["go.mod", "a.go"], &read)).expect("a plan");
        assert!(
            !offline.pipeline.contains("network = true"),
            "{}",
            offline.pipeline
        );
        let fetching = plan(&tree_with(&["go.mod", "go.sum", "a.go"], &read)).expect("a plan");
        assert!(
            fetching.pipeline.contains("network = true"),
            "{}",
            fetching.pipeline
        );
        let vendored = plan(&tree_with(
            &["go.mod", "go.sum", "vendor/modules.txt"],
            &read,
        ))
        .expect("a plan");
        assert!(
            !vendored.pipeline.contains("network = true"),
            "{}",
            vendored.pipeline
        );
    }

    #[test]
    fn npm_without_a_lock_installs_unpinned_and_says_so() {
        let read = |path: &str| match path {
            "package.json" => Some(r#"{"name": "x"}"#.to_owned()),
            _ => Some("node_modules\n".to_owned()),
        };
        let plan = plan(&tree_with(&["package.json", ".npmignore"], &read)).expect("a plan");
        assert!(
            plan.pipeline.contains("npm install --no-audit"),
            "{}",
            plan.pipeline
        );
        assert!(
            plan.notes
                .iter()
                .any(|note| note.contains("no package-lock.json")),
            "{:?}",
            plan.notes
        );
        assert!(
            plan.notes.iter().any(|note| note.contains("add `/out/`")),
            "{:?}",
            plan.notes
        );
    }
}
