//! npm, Python, Go and Nix flake projects: one networked build step each (their package
//! managers fetch what the lock file pins), or a Nix build. These pass `gantry check`; unlike
//! Cargo and C projects they have not been taken through a release here (the notes say so).

use super::{Plan, Tree, array, ignore, name_of_folder, policy, quoted, safe_name, sbom_steps};

const UNTRIED: &str = "this kind has passed `gantry check` but has not been taken through run, repro and release by gantry's tests yet: tell us what breaks";

pub fn plan(tree: &Tree<'_>) -> Option<Plan> {
    if tree.has("flake.nix") {
        return Some(flake(tree));
    }
    if tree.has("package.json") {
        return npm(tree);
    }
    if tree.has("pyproject.toml") {
        return Some(python(tree));
    }
    if tree.has("go.mod") {
        return Some(go(tree));
    }
    None
}

fn inputs(tree: &Tree<'_>, skip: &[&str]) -> (Vec<String>, Vec<String>) {
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

/// One networked build step writing the folder `output`, and SBOMs of that folder.
fn networked(name: &str, comment: &str, run: &str, inputs: &[String], output: &str) -> String {
    format!(
        r#"# {name}: written by `gantry init` (docs/pipeline.md). Check it with `gantry check pipeline.toml`.
[pipeline]
name = {name_quoted}
artifacts = [{output_quoted}]          # what a release ships

[defaults]
env = {{ LANG = "C.UTF-8" }}
timeout = "60m"

# {comment}
# It has the network: split the fetch into a step of its own (keyed on the lock file only)
# to build offline after it.
[steps.build]
run = """{run}"""
inputs = {inputs}
outputs = [{output_quoted}]
network = true

{sboms}"#,
        name_quoted = quoted(name),
        output_quoted = quoted(output),
        sboms = sbom_steps(name, output, &[]),
        inputs = array(inputs),
    )
}

fn untried(kind: &str, name: &str, pipeline: String, sources: &[String], artifact: String) -> Plan {
    Plan {
        kind: kind.to_owned(),
        pipeline,
        policy: policy(
            name,
            &["build"],
            sources,
            &["/usr", "/usr/bin/*", "/bin/*"],
            &["build"],
        ),
        ignore: ignore(&[]),
        artifacts: vec![artifact],
        notes: vec![UNTRIED.to_owned()],
    }
}

fn npm(tree: &Tree<'_>) -> Option<Plan> {
    let manifest: serde_json::Value = serde_json::from_str(&tree.text("package.json")?).ok()?;
    let package = manifest["name"].as_str().unwrap_or("package");
    let version = manifest["version"].as_str().unwrap_or("0.0.0");
    let name = safe_name(package.trim_start_matches('@'));
    // `npm pack` names `@scope/name` 1.0.0 `scope-name-1.0.0.tgz`.
    let tarball = format!(
        "{}-{version}.tgz",
        package.trim_start_matches('@').replace('/', "-")
    );
    let (inputs, sources) = inputs(tree, &["node_modules/", "dist/"]);
    let output = "out/dist/".to_owned();
    let pipeline = networked(
        &name,
        "npm installs what package-lock.json pins, runs the tests, and packs the package.",
        "set -e\nnpm ci --no-audit --no-fund\nnpm test --if-present\nmkdir -p out/dist && npm pack --pack-destination out/dist",
        &inputs,
        &output,
    );
    let mut plan = untried("npm (package.json)", &name, pipeline, &sources, output);
    plan.notes
        .push(format!("the package is out/dist/{tarball}"));
    Some(plan)
}

fn python(tree: &Tree<'_>) -> Plan {
    let manifest: Option<toml::Table> = tree
        .text("pyproject.toml")
        .and_then(|text| text.parse().ok());
    let name = manifest
        .as_ref()
        .and_then(|table| table.get("project")?.get("name")?.as_str().map(safe_name))
        .unwrap_or_else(|| name_of_folder(&tree.folder_name));
    let (inputs, sources) = inputs(tree, &["dist/", "build/"]);
    let pipeline = networked(
        &name,
        "pip builds the wheel with the build backend pyproject.toml names (fetched from PyPI).",
        "set -e\nmkdir -p out/dist\npython3 -m pip wheel --no-deps --wheel-dir out/dist .",
        &inputs,
        "out/dist/",
    );
    untried(
        "Python (pyproject.toml)",
        &name,
        pipeline,
        &sources,
        "out/dist/".to_owned(),
    )
}

fn go(tree: &Tree<'_>) -> Plan {
    let module = tree
        .text("go.mod")
        .and_then(|text| {
            text.lines().find_map(|line| {
                line.strip_prefix("module ")
                    .map(|module| module.trim().to_owned())
            })
        })
        .unwrap_or_default();
    let name = module
        .rsplit('/')
        .next()
        .filter(|last| !last.is_empty())
        .map_or_else(|| name_of_folder(&tree.folder_name), safe_name);
    let (inputs, sources) = inputs(tree, &["vendor/"]);
    let output = "out/bin/".to_owned();
    let pipeline = networked(
        &name,
        "go fetches the modules go.sum pins, tests, and builds without paths or VCS stamps.",
        &format!(
            "set -e\nexport GOFLAGS=-mod=mod GOCACHE=\"$TMPDIR/go-cache\" GOPATH=\"$TMPDIR/go\"\ngo test ./...\nCGO_ENABLED=0 go build -trimpath -buildvcs=false -o out/bin/{name} ."
        ),
        &inputs,
        &output,
    );
    untried("Go (go.mod)", &name, pipeline, &sources, output)
}

fn flake(tree: &Tree<'_>) -> Plan {
    let name = name_of_folder(&tree.folder_name);
    let pipeline = format!(
        r#"# {name}: written by `gantry init` (docs/pipeline.md, docs/nix.md).
[pipeline]
name = {name_quoted}
artifacts = ["out/result"]          # what a release ships: the out-link to the build

# Nix builds the flake's default package in its own sandbox; the out-link is the output.
[steps.build]
kind = "nix"
flake = ".#default"
outputs = ["out/result"]

{sboms}"#,
        name_quoted = quoted(&name),
        sboms = sbom_steps(&name, "out/result", &[]),
    );
    let (_, sources) = inputs(tree, &[]);
    Plan {
        kind: "Nix (flake.nix)".to_owned(),
        pipeline,
        policy: policy(
            &name,
            &["build"],
            &sources,
            &["/usr", "/usr/bin/*", "/bin/*", "/nix/store/*"],
            &[],
        ),
        ignore: ignore(&[]),
        artifacts: vec!["out/result".to_owned()],
        notes: vec![UNTRIED.to_owned()],
    }
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
            _ => None,
        };
        for (file, artifact) in [
            ("package.json", "out/dist/"),
            ("pyproject.toml", "out/dist/"),
            ("go.mod", "out/bin/"),
            ("flake.nix", "out/result"),
        ] {
            let tree = tree_with(&[file, "src/a"], &read);
            let plan = plan(&tree).expect("a plan");
            assert_eq!(plan.artifacts, [artifact]);
            super::super::tests::checks(&plan);
        }
    }
}
