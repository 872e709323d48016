//! An npm package: `npm ci` of what the lock pins in a networked step, then the tests and
//! `npm pack` offline.

use super::super::{Plan, Tree, array, ignore, policy, quoted, safe_name, sbom_steps};
use super::{HOST_TOOLS, header, inputs};

pub(super) fn plan(tree: &Tree<'_>) -> Option<Plan> {
    let manifest: serde_json::Value = serde_json::from_str(&tree.text("package.json")?).ok()?;
    let package = manifest["name"].as_str().unwrap_or("package");
    let version = manifest["version"].as_str().unwrap_or("0.0.0");
    let name = safe_name(package.trim_start_matches('@'));
    // `npm pack` names `@scope/name` 1.0.0 `scope-name-1.0.0.tgz`.
    let tarball = format!(
        "{}-{version}.tgz",
        package.trim_start_matches('@').replace('/', "-")
    );
    let lock = ["package-lock.json", "npm-shrinkwrap.json"]
        .into_iter()
        .find(|lock| tree.has(lock));
    let (mut inputs, sources) = inputs(tree, &["node_modules/", "dist/"]);
    // `npm pack` leaves out what these name: they shape the package, so they are read.
    // `npm pack` leaves out what the ignore files name (`init` writes `/out/` into
    // .gitignore): they shape the package, so they are read.
    let mut sources = sources;
    let npmignore = tree.text(".npmignore");
    for ignore_file in [".gitignore", ".npmignore"] {
        if ignore_file == ".gitignore" || npmignore.is_some() {
            inputs.push(ignore_file.to_owned());
            sources.push(ignore_file.to_owned());
        }
    }
    let packs_out = manifest.get("files").is_none()
        && npmignore.is_some_and(|text| {
            !text
                .lines()
                .any(|line| line.trim().trim_matches('/') == "out")
        });
    inputs.push("out/node_modules/".to_owned());
    let mut deps_inputs = vec!["package.json".to_owned()];
    deps_inputs.extend(lock.map(str::to_owned));
    let install = if lock.is_some() {
        "npm ci --no-audit --no-fund"
    } else {
        "npm install --no-audit --no-fund --no-package-lock"
    };
    let output = "out/dist/";
    let pipeline = format!(
        r#"{header}
# npm installs what the lock file pins (with their install scripts): the only step with the
# network, keyed on the manifest and the lock, so an edit to the sources fetches nothing.
[steps.deps]
run = "set -e; {install}; rm -rf out/node_modules; mkdir -p out; mv node_modules out/"
inputs = {deps_inputs}
outputs = ["out/node_modules/"]
network = true

# Offline: the tests, then the package as `npm pack` makes it (its timestamps are fixed).
# Narrow `inputs` to what the package and its tests read.
[steps.build]
run = """set -e
ln -s out/node_modules node_modules
npm test --if-present
mkdir -p out/dist && npm pack --pack-destination out/dist"""
inputs = {inputs}
outputs = [{output_quoted}]

{sboms}"#,
        header = header(&name, output, "", ""),
        output_quoted = quoted(output),
        deps_inputs = array(&deps_inputs),
        inputs = array(&inputs),
        sboms = sbom_steps(&name, output, &[]),
    );
    let mut plan = Plan {
        kind: "npm (package.json)".to_owned(),
        pipeline,
        policy: policy(&name, &["deps", "build"], &sources, HOST_TOOLS, &["deps"]),
        ignore: ignore(&["/node_modules/"]),
        artifacts: vec![format!("out/dist/{tarball}")],
        notes: Vec::new(),
    };
    if packs_out {
        plan.notes.push(
            "npm reads .npmignore instead of .gitignore: add `/out/` to it, or the package takes the build's out/ folder".to_owned(),
        );
    }
    if lock.is_none() {
        plan.notes.push(
            "no package-lock.json: each run installs whatever versions are newest; run `npm install --package-lock-only` and commit the lock to pin them".to_owned(),
        );
    }
    Some(plan)
}
