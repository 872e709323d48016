//! Every file in `pipelines/` validates, and the README's example runs.

use std::path::Path;

use crate::support::GANTRY;

#[test]
fn every_bundled_pipeline_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut count = 0;
    for entry in std::fs::read_dir(root.join("pipelines")).expect("pipelines/") {
        let path = entry.expect("entry").path();
        if path
            .extension()
            .is_some_and(|extension| extension == "toml")
        {
            let output = std::process::Command::new(GANTRY)
                .arg("check")
                .arg(&path)
                .current_dir(root)
                .output()
                .expect("gantry");
            assert!(
                output.status.success(),
                "{}: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
            count += 1;
        }
    }
    assert!(count >= 1);
}

/// Copies `pipelines/` and `examples/` into a fresh git repository (the pipelines' root is
/// the git root), so running them leaves this checkout alone.
pub(crate) fn example_workspace() -> crate::support::Test {
    let test = crate::support::Test::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for folder in ["pipelines", "examples", "policies", "templates"] {
        crate::support::copy_tree(&root.join(folder), &test.path(folder));
    }
    let git = test
        .command_for("git")
        .args(["init", "-q"])
        .status()
        .expect("git");
    assert!(git.success());
    test
}

#[test]
fn the_readme_example_runs_and_reruns_from_the_cache() {
    let test = example_workspace();
    let run = |expected: &str| {
        let output = test
            .command()
            .args(["run", "pipelines/hello.toml", "--json"])
            .output()
            .expect("gantry");
        let run = crate::support::Run { output }.success();
        assert_eq!(run.statuses()["package"], expected);
    };
    run("executed");
    assert_eq!(
        test.read("out/hello/ab.txt"),
        test.read("examples/hello/src/a.txt") + &test.read("examples/hello/src/b.txt")
    );
    run("cached");
    // The README's claim: the example reproduces bit for bit in varied surroundings.
    let output = test
        .command()
        .args(["repro", "pipelines/hello.toml"])
        .output()
        .expect("gantry");
    let repro = crate::support::Run { output }.success();
    assert!(
        repro.stdout().contains("all 4 outputs reproduced"),
        "{}",
        repro.stdout()
    );
}

#[test]
fn the_hello_policy_verifies_the_example_s_tarball() {
    let test = example_workspace();
    let output = test
        .command()
        .args(["run", "pipelines/hello.toml", "--json"])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.success();
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("policies/dev.pub", &public);
    let output = test
        .command()
        .args([
            "verify",
            "--policy",
            "policies/hello.toml",
            "--attestations",
        ])
        .arg(run.run_dir())
        .arg("out/hello/pkg.tar")
        .output()
        .expect("gantry verify");
    let verdict = crate::support::Run { output }.success();
    assert!(verdict.stdout().contains("PASSED"), "{}", verdict.stdout());
}

#[test]
fn the_nix_example_builds_and_packages_its_result() {
    crate::nix::require_nix();
    let test = example_workspace();
    let output = test
        .command()
        .args(["run", "pipelines/nix.toml", "--json"])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.success();
    assert_eq!(run.statuses()["hello"], "executed");
    assert_eq!(test.read("out/nix/greeting.txt"), "hello from nix\n");
    let output = test
        .command()
        .args(["repro", "pipelines/nix.toml"])
        .output()
        .expect("gantry");
    let repro = crate::support::Run { output }.success();
    assert!(
        repro.stdout().contains("outputs reproduced") && !repro.stdout().contains("DIFFERS"),
        "{}",
        repro.stdout()
    );
}

/// gantry's own flake: nixpkgs can't be fetched here, so this checks what can be checked
/// offline: flake.nix parses, flake.lock pins the nixos-25.05 revision, and Nix agrees the lock
/// matches flake.nix's inputs (`--no-update-lock-file` fails when it would change).
#[test]
fn the_flake_parses_and_its_lock_is_consistent() {
    crate::nix::require_nix();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test = crate::support::Test::new();
    for file in ["flake.nix", "flake.lock", "Cargo.toml"] {
        test.write(
            file,
            &std::fs::read_to_string(root.join(file)).expect("read"),
        );
    }
    let parse = test
        .command_for("nix-instantiate")
        .args(["--parse", "flake.nix"])
        .output()
        .expect("nix-instantiate");
    assert!(
        parse.status.success(),
        "{}",
        String::from_utf8_lossy(&parse.stderr)
    );
    let nix = |args: &[&str]| crate::nix::nix(&test, &[&["--offline"], args].concat());
    let flake = format!("path:{}", test.root().display());
    nix(&["flake", "lock", "--no-update-lock-file", &flake]);
    let metadata: serde_json::Value = serde_json::from_str(&nix(&[
        "flake",
        "metadata",
        "--json",
        "--no-write-lock-file",
        &flake,
    ]))
    .expect("json");
    let nixpkgs = &metadata["locks"]["nodes"]["nixpkgs"];
    assert_eq!(
        nixpkgs["locked"]["rev"],
        "ac62194c3917d5f474c1a844b6fd6da2db95077d"
    );
    assert_eq!(
        nixpkgs["locked"]["narHash"],
        "sha256-16KkgfdYqjaeRGBaYsNrhPRRENs0qzkQVUooNHtoy2w="
    );
    assert_eq!(nixpkgs["original"]["ref"], "nixos-25.05");
    assert_eq!(
        metadata["description"]
            .as_str()
            .map(|d| d.starts_with("gantry")),
        Some(true)
    );
}

/// The bundled gauntlet: its steps write real reports offline, the 13 gates pass and sign,
/// `release` runs, the report and the mutation check hold, and the policy verifies it.
#[test]
fn the_gauntlet_example_passes_its_13_stages_and_its_policy() {
    let test = example_workspace();
    let run = test
        .run(["run", "pipelines/gauntlet.toml", "--json"])
        .success();
    let statuses = run.statuses();
    assert_eq!(statuses.len(), 27);
    assert!(
        statuses.values().all(|status| status == "executed"),
        "{statuses:?}"
    );
    assert_eq!(
        test.read("out/gauntlet/release/calc.tar"),
        test.read("out/gauntlet/calc.tar")
    );

    // Within its `[budget]`, by the usage document it signed.
    assert!(run.finished().get("over_budget").is_none());
    let folder = run.run_dir();
    let usage = crate::support::envelope_statement(&folder.join("usage.intoto.json"));
    let cpu_us: u64 = (usage["predicate"]["steps"]
        .as_array()
        .expect("steps")
        .iter())
    .map(|step| {
        let used = &step["usage"];
        used["cpuUserUs"].as_u64().unwrap_or(0) + used["cpuSystemUs"].as_u64().unwrap_or(0)
    })
    .sum();
    assert!(cpu_us > 0 && cpu_us < 180_000_000, "{cpu_us} µs of CPU");
    let folder = folder.to_str().expect("utf-8");
    let report = test.run(["gauntlet", "report", folder, "--json"]).success();
    let report: serde_json::Value = serde_json::from_str(&report.stdout()).expect("json");
    assert_eq!(
        (&report["gates"], &report["failed"]),
        (&13.into(), &0.into())
    );
    let stages: Vec<&str> = (report["stages"].as_array().expect("stages").iter())
        .map(|stage| stage["name"].as_str().expect("name"))
        .collect();
    assert_eq!(stages.len(), 13);
    assert_eq!(
        (stages[0], stages[11], stages[12]),
        (
            "01 unit tests",
            "12 restore drill",
            "13 known vulnerabilities"
        )
    );

    let perturb = test.run([
        "gauntlet",
        "perturb",
        "pipelines/gauntlet.toml",
        "--seed",
        "1",
        "--cases",
        "600",
        "--json",
    ]);
    assert_eq!(perturb.code(), 0, "{}", perturb.stdout());
    let perturb: serde_json::Value = serde_json::from_str(&perturb.stdout()).expect("json");
    assert_eq!(perturb["holes"], serde_json::json!([]));
    assert_eq!(perturb["score"], 1.0);

    let public = test.run(["keys", "public"]).success().stdout();
    test.write("policies/dev.pub", &public);
    let verify = |folder: &str| {
        test.command()
            .args([
                "verify",
                "--policy",
                "policies/gauntlet.toml",
                "--attestations",
            ])
            .arg(folder)
            .arg("out/gauntlet/release/calc.tar")
            .output()
            .expect("gantry verify")
    };
    let verdict = crate::support::Run {
        output: verify(folder),
    }
    .success();
    assert!(verdict.stdout().contains("PASSED"), "{}", verdict.stdout());

    // Again: every report's gate from the cache, the two drills measured anew.
    let again = test
        .run(["run", "pipelines/gauntlet.toml", "--json"])
        .success();
    let executed: Vec<String> = (again.statuses().into_iter())
        .filter(|(_, status)| status == "executed")
        .map(|(step, _)| step)
        .collect();
    assert_eq!(executed, ["gate-restore", "gate-rollback"]);
}

/// A bug in the library: the unit and integration gates fail on the tests' real failures,
/// and `release` does not run.
#[test]
fn the_gauntlet_example_blocks_a_broken_release() {
    let test = example_workspace();
    let library = test.read("examples/gauntlet/src/calc.sh");
    let broken = library.replace("echo $(($1 * $2))", "echo $(($1 + $2))");
    assert_ne!(broken, library);
    test.write("examples/gauntlet/src/calc.sh", &broken);
    let run = test
        .run(["run", "pipelines/gauntlet.toml", "--keep-going", "--json"])
        .failure(1);
    let statuses = run.statuses();
    for gate in ["gate-unit", "gate-integration"] {
        assert_eq!(statuses[gate], "failed", "{statuses:?}");
    }
    assert_eq!(statuses["gate-coverage"], "executed");
    assert_eq!(statuses["release"], "skipped");
    assert!(
        run.stdout().contains("failures <= 0: 1"),
        "{}",
        run.stdout()
    );
}

/// The templates example: its steps come from the registry shipped in `templates/`, pinned by
/// the committed `pipelines/gantry.lock` (`--locked`): the SBOM and signature of the release
/// folder and the two gates, each expanded step attested with its template.
#[test]
fn the_templates_example_runs_from_the_shipped_registry_and_its_lock() {
    let test = example_workspace();
    std::fs::create_dir_all(test.path("keys")).expect("keys");
    assert!(crate::attestations::generate_key(
        &test.path("keys/sign.key"),
        "EC",
        "ec_paramgen_curve:P-256"
    ));
    let lock = test.read("pipelines/gantry.lock");
    let output = test
        .command()
        .env("GANTRY_SIGNING_KEY", "keys/sign.key")
        .args(["run", "pipelines/templates.toml", "--locked", "--json"])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output }.success();
    let statuses = run.statuses();
    for step in [
        "package",
        "release.sbom",
        "release.sign",
        "qa.tests",
        "qa.coverage",
    ] {
        assert_eq!(
            statuses.get(step).map(String::as_str),
            Some("executed"),
            "{step}: {statuses:?}"
        );
    }
    assert!(test.path("out/templates.spdx.json").is_file());
    assert!(test.path("out/templates/greeting.tar.sig").is_file());
    assert_eq!(
        test.read("pipelines/gantry.lock"),
        lock,
        "--locked kept the lock"
    );
}

/// The shipped registry holds exactly its sources: each of `templates/src` packs to the digest
/// its index lists (the pack is canonical, whoever packs it), and the catalogue names them all.
#[test]
fn the_shipped_templates_are_their_sources() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test = crate::support::Test::new();
    let catalog =
        std::fs::read_to_string(root.join("templates/registry/catalog.json")).expect("catalog");
    let mut count = 0;
    for entry in std::fs::read_dir(root.join("templates/src/gantry")).expect("sources") {
        let source = entry.expect("entry").path();
        let name = format!(
            "gantry/{}",
            source.file_name().expect("name").to_string_lossy()
        );
        assert!(
            catalog.contains(&format!("\"{name}\"")),
            "{name} in {catalog}"
        );
        let published = test
            .run([
                "template",
                "publish",
                source.to_str().expect("utf8"),
                "--registry",
                "again",
                "--json",
            ])
            .success()
            .stdout();
        let published: serde_json::Value = serde_json::from_str(&published).expect("json");
        let index: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(root.join(format!("templates/registry/index/{name}.json")))
                .expect("index"),
        )
        .expect("json");
        let listed = (index["versions"].as_array().expect("versions").iter())
            .find(|version| version["version"] == published["version"])
            .expect("the source's version is published");
        assert_eq!(listed["sha256"], published["sha256"], "{name}");
        count += 1;
    }
    assert_eq!(count, 3);
}

/// The shipped `gantry/rust-release` template builds a small Cargo project with the test's Rust
/// toolchain as `[tools] rust`: the crates vendored (none here), a locked, offline build, the
/// binary copied to `out/release/` and runnable.
#[test]
fn the_shipped_rust_release_template_builds_a_cargo_project() {
    let test = crate::support::Test::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate::support::copy_tree(&root.join("templates"), &test.path("templates"));
    test.write(
        "Cargo.toml",
        "[package]\nname = \"hello\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    test.write(
        "src/main.rs",
        "fn main() {\n    println!(\"hello from a template\");\n}\n",
    );
    test.write(
        "Cargo.lock",
        "# This file is automatically @generated by Cargo.\n# It is not intended for manual editing.\nversion = 4\n\n[[package]]\nname = \"hello\"\nversion = \"0.1.0\"\n",
    );
    test.write(
        "pipeline.toml",
        &format!(
            "[pipeline]\nname = \"hello\"\nroot = \".\"\n\n[tools]\nrust = \"{}\"\n\n[registries.gantry]\nurl = \"templates/registry\"\nkeys = [\"templates/keys/gantry-templates.pub\"]\n\n[steps.app]\nuses = \"gantry/rust-release@^1\"\nwith = {{ binary = \"hello\" }}\n",
            crate::release::sysroot().display()
        ),
    );
    let run = test.gantry_run(&[]).success();
    let statuses = run.statuses();
    assert_eq!(
        statuses.get("app.build").map(String::as_str),
        Some("executed"),
        "{statuses:?}"
    );
    let output = std::process::Command::new(test.path("out/release/hello"))
        .output()
        .expect("the built binary runs");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "hello from a template\n"
    );
}
