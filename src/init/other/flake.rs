//! A Nix flake: its default package, built in Nix's sandbox.

use super::super::{Plan, Tree, ignore, name_of_folder, policy, quoted, sbom_steps};
use super::inputs;

pub(super) fn plan(tree: &Tree<'_>) -> Plan {
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
        notes: Vec::new(),
    }
}
