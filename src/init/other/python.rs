//! A Python project (pyproject.toml): its build backend fetched in a networked step, the
//! wheel built offline.

use super::super::{
    Plan, Tree, array, ignore, name_of_folder, policy, quoted, safe_name, sbom_steps,
};
use super::{HOST_TOOLS, header, inputs};

pub(super) fn plan(tree: &Tree<'_>) -> Plan {
    let manifest: Option<toml::Table> = tree
        .text("pyproject.toml")
        .and_then(|text| text.parse().ok());
    let name = manifest
        .as_ref()
        .and_then(|table| table.get("project")?.get("name")?.as_str().map(safe_name))
        .unwrap_or_else(|| name_of_folder(&tree.folder_name));
    // What the build backend needs; pip's own default for a project that names none.
    let mut requires: Vec<String> = manifest
        .as_ref()
        .and_then(|table| {
            table
                .get("build-system")?
                .get("requires")?
                .as_array()
                .cloned()
        })
        .map_or_else(
            || vec!["setuptools>=40.8.0".to_owned()],
            |requires| {
                (requires.iter())
                    .filter_map(|require| require.as_str().map(str::to_owned))
                    .collect()
            },
        );
    // setuptools asks for `wheel` at build time in its older releases.
    if requires
        .iter()
        .any(|require| require.starts_with("setuptools"))
        && !requires.iter().any(|require| require.starts_with("wheel"))
    {
        requires.push("wheel".to_owned());
    }
    let (mut inputs, sources) = inputs(tree, &["dist/", "build/"]);
    inputs.push("out/wheels/".to_owned());
    let download = requires
        .iter()
        .map(|require| shell_quoted(require))
        .collect::<Vec<_>>()
        .join(" ");
    let output = "out/dist/";
    let pipeline = format!(
        r#"{header}
# pip fetches the build backend pyproject.toml names (from PyPI): the only step with the
# network, keyed on pyproject.toml alone.
[steps.deps]
run = "python3 -m pip download --only-binary :all: --dest out/wheels {download}"
inputs = ["pyproject.toml"]
outputs = ["out/wheels/"]
network = true

# Offline: the wheel, built by that backend (it dates its files by SOURCE_DATE_EPOCH).
# Add a step for the tests once their requirements are fetched the same way.
[steps.build]
run = "python3 -m pip wheel --no-deps --no-index --find-links out/wheels --wheel-dir out/dist ."
inputs = {inputs}
outputs = [{output_quoted}]

{sboms}"#,
        header = header(
            &name,
            output,
            r#", PIP_DISABLE_PIP_VERSION_CHECK = "1""#,
            ""
        ),
        output_quoted = quoted(output),
        inputs = array(&inputs),
        sboms = sbom_steps(&name, output, &[]),
    );
    Plan {
        kind: "Python (pyproject.toml)".to_owned(),
        pipeline,
        policy: policy(&name, &["deps", "build"], &sources, HOST_TOOLS, &["deps"]),
        ignore: ignore(&[]),
        artifacts: vec!["out/dist/*.whl".to_owned()],
        notes: Vec::new(),
    }
}

/// A word for `sh`: as it is when plain, else in single quotes.
fn shell_quoted(word: &str) -> String {
    if !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
