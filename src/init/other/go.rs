//! A Go module: vet and tests, then its commands (or, for a library, a source archive);
//! offline unless go.sum lists modules to fetch.

use super::super::{
    Plan, Tree, array, ignore, name_of_folder, policy, quoted, safe_name, sbom_steps,
};
use super::{HOST_TOOLS, header, inputs};

pub(super) fn plan(tree: &Tree<'_>) -> Plan {
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
    // Modules to fetch (go.sum lists them) need the network; a module without dependencies,
    // or with them in vendor/, builds offline.
    let fetches = tree.has("go.sum") && !tree.files.iter().any(|file| file.starts_with("vendor/"));
    let commands = go_commands(tree);
    let (output, build, what) = build(&name, &commands, &inputs);
    let network = if fetches {
        "\n# It has the network: go fetches the modules go.sum pins (through GOPROXY).\nnetwork = true"
    } else {
        ""
    };
    let pipeline = format!(
        r#"{header}
# `go vet` and the tests; narrow `inputs` to the packages.
[steps.test]
run = """set -e
export GOCACHE="$TMPDIR/go-cache" GOPATH="$TMPDIR/go"
go vet ./...
go test ./..."""
inputs = {inputs}{network}

# {what}.
[steps.build]
run = """set -e
export GOCACHE="$TMPDIR/go-cache" GOPATH="$TMPDIR/go"
{build}"""
inputs = {inputs}
outputs = [{output_quoted}]{network}

{sboms}"#,
        header = header(
            &name,
            output,
            r#", GOTOOLCHAIN = "local""#,
            "# go keeps its caches in the step's own temporary folder, and never fetches a toolchain.\n",
        ),
        output_quoted = quoted(output),
        inputs = array(&inputs),
        sboms = sbom_steps(&name, output, &[]),
    );
    let mut plan = Plan {
        kind: format!(
            "Go (go.mod), {}",
            if commands.is_empty() {
                "a library".to_owned()
            } else {
                format!("commands: {}", commands.join(", "))
            }
        ),
        pipeline,
        policy: policy(
            &name,
            &["test", "build"],
            &sources,
            HOST_TOOLS,
            if fetches { &["test", "build"] } else { &[] },
        ),
        ignore: ignore(&[]),
        artifacts: vec![match commands.first().map(String::as_str) {
            None => format!("out/dist/{name}-src.tar.gz"),
            Some(".") => format!("out/bin/{name}"),
            Some(command) => format!("out/bin/{}", command.trim_start_matches("cmd/")),
        }],
        notes: Vec::new(),
    };
    if fetches {
        plan.notes.push("its modules are fetched through GOPROXY in both steps; gantry's tests have taken Go modules without dependencies through a release, not ones that fetch: tell us what breaks".to_owned());
    }
    plan
}

/// The build step's output, its command and what it says of itself: the commands, or for a
/// library a source archive (owners, modes and dates fixed, so it reproduces anywhere).
fn build(
    name: &str,
    commands: &[String],
    inputs: &[String],
) -> (&'static str, String, &'static str) {
    if commands.is_empty() {
        (
            "out/dist/",
            format!(
                "mkdir -p out/dist\ntar --sort=name --mtime=\"@$SOURCE_DATE_EPOCH\" --mode=u+rwX,go=rX --owner=0 --group=0 --numeric-owner --format=gnu -cf - {entries} | gzip -9n > out/dist/{name}-src.tar.gz",
                entries = inputs
                    .iter()
                    .map(|entry| entry.trim_end_matches('/'))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "a library (no `package main`): the release ships its sources as a reproducible archive",
        )
    } else if commands == ["."] {
        (
            "out/bin/",
            format!(
                "CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-buildid= -o out/bin/{name} ."
            ),
            "the command at the module's root, built without paths, VCS stamps or build ids",
        )
    } else {
        (
            "out/bin/",
            format!(
                "mkdir -p out/bin\nCGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags=-buildid= -o out/bin/ {}",
                commands
                    .iter()
                    .map(|command| format!("./{command}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            "the commands under cmd/, built without paths, VCS stamps or build ids",
        )
    }
}

/// The packages that build a command: `.` when the module's root is `package main`, else
/// each `cmd/NAME` that holds Go files.
fn go_commands(tree: &Tree<'_>) -> Vec<String> {
    let is_main = |file: &str| {
        // A generator kept beside the package (`//go:build ignore`) is not a command.
        tree.text(file).is_some_and(|text| {
            text.lines().any(|line| line.trim_end() == "package main")
                && !text
                    .lines()
                    .any(|line| matches!(line.trim_end(), "//go:build ignore" | "// +build ignore"))
        })
    };
    let go_source = |file: &str| {
        std::path::Path::new(file)
            .extension()
            .is_some_and(|extension| extension == "go")
            && !file.ends_with("_test.go")
    };
    if (tree.files.iter())
        .filter(|file| !file.contains('/') && go_source(file))
        .any(|file| is_main(file))
    {
        return vec![".".to_owned()];
    }
    let mut commands: Vec<String> = (tree.files.iter())
        .filter_map(|file| {
            let rest = file.strip_prefix("cmd/")?;
            let (command, file_name) = rest.split_once('/')?;
            (!file_name.contains('/') && go_source(file)).then(|| format!("cmd/{command}"))
        })
        .collect();
    commands.dedup();
    commands
}
