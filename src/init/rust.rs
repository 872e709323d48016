//! A Cargo project: its crates vendored in one networked step, pinned by `Cargo.lock`; a
//! release build with a warm `target`, the tests, SBOMs of the lock.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::{
    Host, Plan, Tree, array, ignore, name_of_folder, policy, quoted, safe_name, sbom_steps,
};

/// One package of the workspace: its folder (`""` for the root) and manifest.
struct Package {
    folder: String,
    manifest: toml::Table,
}

impl Package {
    fn path(&self, relative: &str) -> String {
        if self.folder.is_empty() {
            relative.to_owned()
        } else {
            format!("{}/{relative}", self.folder)
        }
    }

    fn name(&self) -> Option<&str> {
        self.manifest.get("package")?.get("name")?.as_str()
    }

    /// Target sections (`[lib]`, `[[bin]]`, ...) as tables.
    fn targets<'a>(&'a self, section: &str) -> Vec<&'a toml::Table> {
        match self.manifest.get(section) {
            Some(toml::Value::Table(table)) => vec![table],
            Some(toml::Value::Array(items)) => {
                items.iter().filter_map(toml::Value::as_table).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The binaries `cargo build --bins` makes.
    fn binaries(&self, tree: &Tree<'_>) -> Vec<String> {
        let mut binaries: Vec<String> = (self.targets("bin").into_iter())
            .filter_map(|bin| bin.get("name")?.as_str().map(str::to_owned))
            .collect();
        let automatic = (self.manifest.get("package"))
            .and_then(|package| package.get("autobins"))
            .and_then(toml::Value::as_bool)
            != Some(false);
        if automatic {
            if tree.has(&self.path("src/main.rs"))
                && let Some(name) = self.name()
                && !binaries.iter().any(|bin| bin == name)
            {
                binaries.push(name.to_owned());
            }
            let prefix = self.path("src/bin/");
            for file in tree.files.range(prefix.clone()..) {
                let Some(rest) = file.strip_prefix(&prefix) else {
                    break;
                };
                let stem = rest
                    .strip_suffix("/main.rs")
                    .or_else(|| rest.strip_suffix(".rs").filter(|stem| !stem.contains('/')));
                if let Some(stem) = stem
                    && !binaries.iter().any(|bin| bin == stem)
                {
                    binaries.push(stem.to_owned());
                }
            }
        }
        binaries
    }

    /// The files cargo must find to read the manifest (the vendor step makes them empty):
    /// explicit target paths, a build script, the usual roots that exist.
    fn target_roots(&self, tree: &Tree<'_>) -> Vec<String> {
        let mut roots: BTreeSet<String> = BTreeSet::new();
        for section in ["lib", "bin", "example", "test", "bench"] {
            for target in self.targets(section) {
                if let Some(path) = target.get("path").and_then(toml::Value::as_str) {
                    roots.insert(self.path(path));
                }
            }
        }
        if let Some(build) = (self.manifest.get("package"))
            .and_then(|package| package.get("build"))
            .and_then(toml::Value::as_str)
        {
            roots.insert(self.path(build));
        }
        for file in ["src/lib.rs", "src/main.rs", "build.rs"] {
            roots.insert(self.path(file));
        }
        for folder in ["src/bin/", "examples/", "tests/", "benches/"] {
            let prefix = self.path(folder);
            for file in tree.files.range(prefix.clone()..) {
                let Some(rest) = file.strip_prefix(&prefix) else {
                    break;
                };
                if (is_rust(rest) && !rest.contains('/'))
                    || rest.ends_with("/main.rs") && rest.matches('/').count() == 1
                {
                    roots.insert(file.clone());
                }
            }
        }
        roots.into_iter().filter(|root| tree.has(root)).collect()
    }
}

fn is_rust(file: &str) -> bool {
    std::path::Path::new(file)
        .extension()
        .is_some_and(|extension| extension == "rs")
}

/// `about = { ... }` for the SBOMs: what the first package's manifest says of it.
fn about(package: Option<&Package>) -> String {
    let field = |key: &str| {
        package
            .and_then(|package| package.manifest.get("package"))
            .and_then(|fields| fields.get(key))
            .and_then(toml::Value::as_str)
    };
    let mut fields = Vec::new();
    if let Some(name) = field("name") {
        fields.push(format!("name = {}", quoted(name)));
        if let Some(version) = field("version") {
            fields.push(format!("version = {}", quoted(version)));
            fields.push(format!(
                "purl = {}",
                quoted(&format!("pkg:cargo/{name}@{version}"))
            ));
        }
    }
    if let Some(licence) = field("license").and_then(crate::sbom::cargo::normalise_licence) {
        fields.push(format!("license = {}", quoted(&licence)));
    }
    format!(
        "about = {{ {} }}          # add supplier = \"Organization: ...\"",
        fields.join(", ")
    )
}

/// The root package and the workspace members (literal paths, or `dir/*`).
fn packages(tree: &Tree<'_>, root: toml::Table) -> Vec<Package> {
    let members: Vec<String> = (root.get("workspace"))
        .and_then(|workspace| workspace.get("members"))
        .and_then(toml::Value::as_array)
        .map(|members| {
            members
                .iter()
                .filter_map(|member| member.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut packages = Vec::new();
    if root.contains_key("package") {
        packages.push(Package {
            folder: String::new(),
            manifest: root,
        });
    }
    let mut folders: BTreeSet<String> = BTreeSet::new();
    for member in members {
        let member = member.trim_end_matches('/');
        if let Some(parent) = member.strip_suffix("/*") {
            for file in &tree.files {
                if let Some(rest) = file.strip_prefix(&format!("{parent}/"))
                    && let Some(folder) = rest.strip_suffix("/Cargo.toml")
                    && !folder.contains('/')
                {
                    folders.insert(format!("{parent}/{folder}"));
                }
            }
        } else if !member.contains(['*', '?', '[']) {
            folders.insert(member.to_owned());
        }
    }
    for folder in folders {
        let manifest = tree
            .text(&format!("{folder}/Cargo.toml"))
            .and_then(|text| text.parse::<toml::Table>().ok());
        if let Some(manifest) = manifest {
            packages.push(Package { folder, manifest });
        }
    }
    packages
}

/// rustc writes the paths of what it compiles into the binary (panic messages, debug info),
/// and so does the C compiler of a `-sys` crate (`__FILE__`, debug info; the `cc` crate adds
/// CFLAGS to its own): the work folder and $TMPDIR, which `gantry repro` varies, are written as
/// `/build` and `/tmp` wherever they are. And a release build's thin LTO (on by default across a
/// crate's codegen units) names promoted symbols after a hash of bitcode that LLVM does not
/// always write the same way: without a symbol table the binary does not carry them. Build and
/// test share the settings, so the test step reuses what the build compiled.
const REPRODUCIBLE: &str = r#"RUSTFLAGS=\"--remap-path-prefix=$PWD=/build --remap-path-prefix=$TMPDIR=/tmp\" CFLAGS=\"-ffile-prefix-map=$PWD=/build -ffile-prefix-map=$TMPDIR=/tmp\" CXXFLAGS=\"-ffile-prefix-map=$PWD=/build -ffile-prefix-map=$TMPDIR=/tmp\" CARGO_PROFILE_RELEASE_STRIP=symbols "#;

pub(super) fn plan(tree: &Tree<'_>, host: &Host) -> Result<Plan, String> {
    let text = tree.text("Cargo.toml").ok_or("cannot read Cargo.toml")?;
    let root: toml::Table = text
        .parse()
        .map_err(|error| format!("Cargo.toml is not valid TOML: {error}"))?;
    let packages = packages(tree, root);
    if packages.is_empty() {
        return Err(
            "Cargo.toml has neither [package] nor workspace members gantry init can find".into(),
        );
    }
    let name = safe_name(
        &packages
            .iter()
            .find_map(Package::name)
            .map_or_else(|| name_of_folder(&tree.folder_name), str::to_owned),
    );
    let about = about(packages.iter().find(|package| package.name().is_some()));
    let binaries: Vec<String> = packages
        .iter()
        .flat_map(|package| package.binaries(tree))
        .collect();
    let mut notes = Vec::new();
    if !tree.has("Cargo.lock") {
        notes.push("there is no Cargo.lock: run `cargo generate-lockfile` and commit it; the pipeline builds `--locked`".to_owned());
    }
    let toolchain = host.rust_toolchain.clone().unwrap_or_else(|| {
        notes.push(
            "found no Rust toolchain (`rustc --print sysroot`): set `[tools] rust` to one"
                .to_owned(),
        );
        "~/.rustup/toolchains/stable-x86_64-unknown-linux-gnu".to_owned()
    });

    let manifests: Vec<String> = packages
        .iter()
        .map(|package| package.path("Cargo.toml"))
        .collect();
    let roots: Vec<String> = packages
        .iter()
        .flat_map(|package| package.target_roots(tree))
        .collect();
    let mut folders: BTreeSet<&str> = BTreeSet::new();
    for root in &roots {
        if let Some(slash) = root.rfind('/') {
            folders.insert(&root[..slash]);
        }
    }
    let mut stand_ins = String::new();
    if !folders.is_empty() {
        let _ = write!(
            stand_ins,
            "mkdir -p {} && ",
            folders.iter().copied().collect::<Vec<_>>().join(" ")
        );
    }
    if !roots.is_empty() {
        let _ = write!(stand_ins, "touch {} && ", roots.join(" "));
    }

    let mut lock_inputs = manifests.clone();
    lock_inputs.push("Cargo.lock".to_owned());
    let mut sources = lock_inputs.clone();
    for package in &packages {
        sources.push(package.path("src/**"));
        if tree.has(&package.path("build.rs")) {
            sources.push(package.path("build.rs"));
        }
    }
    if tree.has(".cargo/config.toml") {
        sources.push(".cargo/config.toml".to_owned());
    }
    let mut build_inputs = sources.clone();
    build_inputs.extend(["out/vendor/".to_owned(), "out/vendor.toml".to_owned()]);
    let mut test_inputs = build_inputs.clone();
    for package in &packages {
        for folder in ["tests/", "examples/", "benches/"] {
            let path = package.path(folder);
            if tree
                .files
                .range(path.clone()..)
                .next()
                .is_some_and(|file| file.starts_with(&path))
            {
                test_inputs.push(format!("{path}**"));
                sources.push(format!("{path}**"));
            }
        }
    }

    let (artifacts, build_run, build_outputs, subject) = if binaries.is_empty() {
        notes.push("no binary found (src/main.rs, [[bin]]): the build step checks the library; declare the release artifacts in `[pipeline] artifacts`".to_owned());
        (
            Vec::new(),
            format!(
                "{REPRODUCIBLE}cargo build --release --locked --offline --config out/vendor.toml && mkdir -p out/build && cargo metadata --locked --offline --format-version 1 --no-deps --config out/vendor.toml > out/build/metadata.json"
            ),
            vec!["out/build/metadata.json".to_owned()],
            vec!["out/build/metadata.json".to_owned()],
        )
    } else {
        let copies: Vec<String> = binaries
            .iter()
            .map(|bin| format!("target/release/{bin}"))
            .collect();
        let outputs: Vec<String> = binaries
            .iter()
            .map(|bin| format!("out/bin/{bin}"))
            .collect();
        (
            outputs.clone(),
            format!(
                "{REPRODUCIBLE}cargo build --release --locked --offline --config out/vendor.toml --bins && mkdir -p out/bin && cp {} out/bin/",
                copies.join(" ")
            ),
            outputs.clone(),
            outputs,
        )
    };
    let artifacts_line = if artifacts.is_empty() {
        "# artifacts = [\"out/...\"]              # what a release ships".to_owned()
    } else {
        format!(
            "artifacts = {}          # what a release ships; everything else is internal",
            array(&artifacts)
        )
    };
    let pipeline = format!(
        r#"# {name}: written by `gantry init` (docs/pipeline.md). Check it with `gantry check pipeline.toml`.
[pipeline]
name = {name_quoted}
{artifacts_line}

# The Rust toolchain: read-only at /tools/rust and digested into every link, so a new
# toolchain builds again. Pin the one your project uses.
[tools]
rust = {toolchain}

[defaults]
env = {{ LANG = "C.UTF-8" }}
tools = ["rust"]
timeout = "60m"

# The only step with network: the crates Cargo.lock pins, by checksum. cargo reads the
# manifests' targets, not their code, so empty stand-ins keep this step keyed on the
# manifests and the lock alone: a source edit does not fetch again.
[steps.vendor]
run = "{stand_ins}cargo vendor --locked --versioned-dirs out/vendor > out/vendor.toml"
inputs = {lock_inputs}
outputs = ["out/vendor/", "out/vendor.toml"]
network = true
retry = {{ attempts = 3, backoff = "5s" }}

# Offline from here. `target` is a warm folder: kept between runs so an edit rebuilds only
# what changed, never part of the cache key; `gantry repro` rebuilds without it. Add any
# file the build reads besides these (include_str!, a build script's data).
[steps.build]
run = "{build_run}"
inputs = {build_inputs}
outputs = {build_outputs}
warm = ["target"]

[steps.test]
run = "{reproducible}cargo test --release --locked --offline --config out/vendor.toml"
inputs = {test_inputs}
warm = ["target"]

# SBOMs of the lock; each crate's licence is read from the vendored copy the build used, the
# project's own from its manifests.
{sboms}"#,
        name_quoted = quoted(&name),
        reproducible = REPRODUCIBLE,
        toolchain = quoted(&toolchain),
        lock_inputs = array(&lock_inputs),
        sboms = sbom_steps(
            &name,
            "Cargo.lock",
            &[
                "vendored = \"out/vendor/\"".to_owned(),
                format!("manifests = {}", array(&manifests)),
                about,
                // One document for every binary: the first is the product `about` names.
                if subject.len() == 1 {
                    format!("subject = {}", quoted(&subject[0]))
                } else {
                    format!("subject = {}", array(&subject))
                },
            ],
        ),
        build_inputs = array(&build_inputs),
        build_outputs = array(&build_outputs),
        test_inputs = array(&test_inputs),
    );
    let kind = if binaries.is_empty() {
        format!("Rust (Cargo), {} package(s), no binary", packages.len())
    } else {
        format!("Rust (Cargo), binaries: {}", binaries.join(", "))
    };
    Ok(Plan {
        kind,
        pipeline,
        policy: policy(
            &name,
            &["vendor", "build", "test"],
            &sources,
            &["/usr", "/usr/bin/*", "/bin/*", "/tools/rust"],
            &["vendor"],
        ),
        ignore: ignore(&["/target"]),
        artifacts,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree<'a>(files: &[&str], read: &'a dyn Fn(&str) -> Option<String>) -> Tree<'a> {
        Tree {
            files: files.iter().map(|file| (*file).to_owned()).collect(),
            read,
            folder_name: "hexyl-0.16.0".into(),
        }
    }

    #[test]
    fn a_binary_crate_gets_vendor_build_test_and_sboms_that_check() {
        let read = |path: &str| {
            (path == "Cargo.toml").then(|| {
                "[package]\nname = \"hexyl\"\nversion = \"0.16.0\"\n[[bin]]\nname = \"hexyl\"\npath = \"src/main.rs\"\n[[test]]\nname = \"integration_tests\"\npath = \"tests/integration_tests.rs\"\n".to_owned()
            })
        };
        let files = [
            "Cargo.toml",
            "Cargo.lock",
            "src/main.rs",
            "src/lib.rs",
            "tests/integration_tests.rs",
            "README.md",
        ];
        let plan = plan(
            &tree(&files, &read),
            &Host {
                rust_toolchain: Some("~/.rustup/toolchains/x".into()),
            },
        )
        .expect("plan");
        assert_eq!(plan.artifacts, ["out/bin/hexyl"]);
        assert!(plan.pipeline.contains("mkdir -p src tests && touch src/lib.rs src/main.rs tests/integration_tests.rs && cargo vendor"), "{}", plan.pipeline);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        let pipeline = super::super::tests::checks(&plan);
        assert_eq!(pipeline.steps.len(), 5);
        // Neither the work folder nor $TMPDIR reaches the binary, through rustc or a `-sys`
        // crate's C compiler, nor do ThinLTO's symbol names; build and test share them.
        for flag in [
            "--remap-path-prefix=$PWD=/build --remap-path-prefix=$TMPDIR=/tmp",
            r#"CFLAGS=\"-ffile-prefix-map=$PWD=/build -ffile-prefix-map=$TMPDIR=/tmp\""#,
            "CARGO_PROFILE_RELEASE_STRIP=symbols cargo build",
            "CARGO_PROFILE_RELEASE_STRIP=symbols cargo test",
        ] {
            assert!(
                plan.pipeline.contains(flag),
                "{flag} not in {}",
                plan.pipeline
            );
        }
    }
}
