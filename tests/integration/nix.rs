//! `kind = "nix"` steps against the real `nix` (Debian's nix-bin 2.8, offline): local flakes
//! whose derivations use `builder = "/bin/sh"`.

use std::process::Command;

use crate::support::{Run, Test};

/// Fails with the install hint when Nix is missing: CI must not skip these silently.
pub(crate) fn require_nix() {
    crate::support::require_tool(
        "nix",
        "--version",
        "`apt-get install nix-bin` (bash scripts/test.sh installs it)",
    );
}

pub(crate) const FLAKE: &str = r#"{
  outputs = { self }: let
    sh = name: script: derivation {
      inherit name; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" script ];
    };
  in {
    packages.x86_64-linux = rec {
      dep = sh "dep" "echo dep > $out";
      hello = derivation {
        name = "hello"; system = "x86_64-linux"; builder = "/bin/sh";
        src = ./greeting.txt;
        args = [ "-c" "read -r g < $src; echo \"$g from ${dep}\" > $out" ];
      };
      tree = sh "tree" "/bin/mkdir -p $out/bin; echo data > $out/data; printf '#!/bin/sh\\necho hi\\n' > $out/bin/hi; /bin/chmod +x $out/bin/hi";
      broken = sh "broken" "echo the builder broke >&2; exit 3";
    };
  };
}
"#;

fn nix_test(pipeline: &str) -> Test {
    require_nix();
    Test::new()
        .file("nix/flake.nix", FLAKE)
        .file("nix/greeting.txt", "hello\n")
        .pipeline(pipeline)
}

/// `nix <args>` as the tests' gantry sees it.
pub(crate) fn nix(test: &Test, args: &[&str]) -> String {
    let output = test
        .command_for("nix")
        .args(["--extra-experimental-features", "nix-command flakes"])
        .args(args)
        .output()
        .expect("run nix");
    assert!(
        output.status.success(),
        "nix {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn statement(run: &Run, step: &str) -> serde_json::Value {
    use base64::Engine;
    let text = std::fs::read_to_string(crate::support::attested(
        &run.run_dir(),
        format!("{step}.intoto.json"),
    ))
    .expect("attestation");
    let envelope: serde_json::Value = serde_json::from_str(&text).expect("envelope");
    let payload = base64::engine::general_purpose::STANDARD
        .decode(envelope["payload"].as_str().expect("payload"))
        .expect("base64");
    serde_json::from_slice(&payload).expect("statement")
}

pub(crate) fn hex_of_sri(sri: &str) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(sri.strip_prefix("sha256-").expect("sri"))
        .expect("base64");
    bytes.iter().fold(String::new(), |mut hex, byte| {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

#[test]
fn a_nix_step_attests_its_store_paths_by_nar_hash() {
    let test = nix_test(
        r#"
[steps.hello]
kind = "nix"
flake = "./nix#hello"
outputs = ["result-hello"]
"#,
    );
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.statuses()["hello"], "executed");
    let link = std::fs::read_link(test.path("result-hello")).expect("out-link");
    let store_path = link.to_string_lossy().into_owned();
    assert!(store_path.starts_with("/nix/store/"), "{store_path}");
    assert!(
        test.read("result-hello")
            .starts_with("hello from /nix/store/")
    );

    let info: serde_json::Value =
        serde_json::from_str(&nix(&test, &["path-info", "--json", &store_path])).expect("json");
    let nar_hex = hex_of_sri(info[0]["narHash"].as_str().expect("narHash"));
    let hashed = nix(
        &test,
        &["hash", "path", "--type", "sha256", "--base16", &store_path],
    );
    assert_eq!(nar_hex, hashed.trim(), "path-info and hash path agree");

    let statement = statement(&run, "hello");
    let subjects = statement["subject"].as_array().expect("subjects");
    assert_eq!(subjects.len(), 1);
    assert_eq!(subjects[0]["name"], store_path.as_str());
    assert_eq!(subjects[0]["digest"]["sha256"], nar_hex.as_str());
    assert_eq!(subjects[0]["annotations"]["outLink"], "result-hello");

    let drv = info[0]["deriver"].as_str().expect("deriver");
    let materials = statement["predicate"]["materials"]
        .as_array()
        .expect("materials");
    let role = |role: &str| -> Vec<String> {
        materials
            .iter()
            .filter(|material| material["annotations"]["role"] == role)
            .map(|material| material["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(role("derivation"), [drv]);
    let inputs = role("input-derivation");
    assert!(
        inputs.len() == 1 && inputs[0].ends_with("-dep.drv"),
        "{inputs:?}"
    );
    let sources = role("source");
    assert!(
        sources.len() == 1 && sources[0].ends_with("-greeting.txt"),
        "{sources:?}"
    );
    // Every store material's digest is the NAR hash Nix records for it.
    let closure: serde_json::Value = serde_json::from_str(&nix(
        &test,
        &["path-info", "--json", "--derivation", "--recursive", drv],
    ))
    .expect("json");
    let closure = closure.as_array().expect("closure");
    let store_materials: Vec<_> = materials
        .iter()
        .filter(|material| material["annotations"]["role"].is_string())
        .collect();
    assert_eq!(store_materials.len(), closure.len());
    for info in closure {
        let name = info["path"].as_str().expect("path");
        let material = store_materials
            .iter()
            .find(|material| material["name"] == name)
            .unwrap_or_else(|| panic!("{name} is not a material"));
        assert_eq!(
            material["digest"]["sha256"].as_str(),
            Some(hex_of_sri(info["narHash"].as_str().expect("narHash")).as_str()),
            "{name}"
        );
    }
    let environment = &statement["predicate"]["environment"];
    assert_eq!(environment["drvPath"], drv);
    let version = nix(&test, &["--version"]);
    assert_eq!(
        environment["nix"]["version"].as_str(),
        version.trim().rsplit(' ').next()
    );
}

#[test]
fn nix_outputs_feed_later_steps_and_a_rerun_is_cached() {
    let test = nix_test(
        r#"
[steps.hello]
kind = "nix"
flake = "./nix#hello"
outputs = ["result-hello"]

[steps.tree]
kind = "nix"
flake = "./nix#tree"
outputs = ["build/result-tree"]

[steps.package]
run = "cat result-hello > out/report.txt && ls build/result-tree >> out/report.txt && build/result-tree/bin/hi >> out/report.txt"
inputs = ["result-hello", "build/result-tree"]
outputs = ["out/report.txt"]
"#,
    );
    let first = test.gantry_run(&[]).success();
    assert_eq!(first.statuses()["package"], "executed");
    let report = test.read("out/report.txt");
    assert!(report.starts_with("hello from /nix/store/"), "{report}");
    assert!(report.ends_with("bin\ndata\nhi\n"), "{report}");

    let second = test.gantry_run(&[]).success();
    for step in ["hello", "tree", "package"] {
        assert_eq!(second.statuses()[step], "cached", "{step}");
        assert!(
            crate::support::attested(&second.run_dir(), format!("{step}.intoto.json")).is_file()
        );
    }
    // The package step's materials name the out-link with its target's NAR hash.
    let package = statement(&second, "package");
    let hello = statement(&second, "hello");
    let material = package["predicate"]["materials"]
        .as_array()
        .expect("materials")
        .iter()
        .find(|material| material["name"] == "result-hello")
        .cloned()
        .expect("result-hello material");
    assert_eq!(material["digest"], hello["subject"][0]["digest"]);
}

#[test]
fn a_changed_flake_lock_is_rebuilt_and_attested_anew() {
    require_nix();
    let test = Test::new()
        .file(
            "nix/dep/flake.nix",
            "{ outputs = { self }: { message = builtins.readFile ./message.txt; }; }\n",
        )
        .file("nix/dep/message.txt", "one")
        .file(
            "nix/flake.nix",
            r#"{
  inputs.dep.url = "path:./dep";
  outputs = { self, dep }: {
    packages.x86_64-linux.hello = derivation {
      name = "hello"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" "echo '${dep.message}' > $out" ];
    };
  };
}
"#,
        )
        .pipeline(
            r#"
[steps.hello]
kind = "nix"
flake = "./nix#hello"
outputs = ["result"]

[steps.copy]
run = "cp result out/copy.txt"
inputs = ["result"]
outputs = ["out/copy.txt"]
"#,
        );
    nix(&test, &["flake", "lock", "./nix"]);
    let first = test.gantry_run(&[]).success();
    assert_eq!(test.read("out/copy.txt"), "one\n");
    let lock_before = statement(&first, "hello");

    test.write("nix/dep/message.txt", "two");
    nix(&test, &["flake", "lock", "--update-input", "dep", "./nix"]);
    let second = test.gantry_run(&[]).success();
    assert_eq!(second.statuses()["hello"], "executed");
    assert_eq!(second.statuses()["copy"], "executed");
    assert_eq!(test.read("out/copy.txt"), "two\n");
    let lock_after = statement(&second, "hello");
    let lock_digest = |statement: &serde_json::Value| {
        statement["predicate"]["materials"]
            .as_array()
            .expect("materials")
            .iter()
            .find(|material| material["name"] == "nix/flake.lock")
            .map(|material| material["digest"]["sha256"].clone())
            .expect("flake.lock material")
    };
    assert_ne!(lock_digest(&lock_before), lock_digest(&lock_after));
    assert_ne!(lock_before["subject"], lock_after["subject"]);
}

#[test]
fn expr_and_file_installables_build() {
    require_nix();
    let test = Test::new()
        .file(
            "default.nix",
            r#"{ greeting = derivation { name = "greeting"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo from-file > $out" ]; }; }"#,
        )
        .pipeline(
            r#"
[steps.from-expr]
kind = "nix"
expr = 'derivation { name = "e"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "echo from-expr > $out" ]; }'
outputs = ["result-expr"]

[steps.from-file]
kind = "nix"
file = "default.nix"
attr = "greeting"
outputs = ["result-file"]
"#,
        );
    let run = test.gantry_run(&[]).success();
    assert_eq!(test.read("result-expr"), "from-expr\n");
    assert_eq!(test.read("result-file"), "from-file\n");
    // The Nix file is a source the step read, by its SHA-256 (not only a store path a policy
    // must allow as a tool), and the provenance resolves it.
    let link = statement(&run, "from-file");
    let file = (link["predicate"]["materials"]
        .as_array()
        .expect("materials")
        .iter())
    .find(|material| material["name"] == "default.nix")
    .expect("default.nix is a material");
    assert_eq!(
        file["digest"]["sha256"],
        crate::support::sha256_hex(test.read("default.nix").as_bytes())
    );
    let provenance = statement(&run, "provenance");
    assert!(
        (provenance["predicate"]["buildDefinition"]["resolvedDependencies"].as_array())
            .expect("dependencies")
            .iter()
            .any(|dependency| dependency["name"] == "default.nix"),
        "{provenance}"
    );
}

#[test]
fn a_failed_nix_build_shows_nix_s_error() {
    let test = nix_test(
        r#"
[steps.broken]
kind = "nix"
flake = "./nix#broken"
"#,
    );
    let run = test.run(["run", "pipeline.toml"]).failure(1);
    let stderr = run.stderr();
    assert!(
        stderr.contains("step `broken` failed: nix build failed (exit code 1)"),
        "{stderr}"
    );
    assert!(stderr.contains("the builder broke"), "{stderr}");
    assert!(stderr.contains("nix build --json --no-link"), "{stderr}");
}

#[test]
fn a_nix_build_past_its_timeout_is_killed() {
    require_nix();
    let marker = format!("gantry-nix-timeout-{}", std::process::id());
    let test = Test::new().pipeline(&format!(
        r#"
[steps.slow]
kind = "nix"
expr = 'derivation {{ name = "slow"; system = "x86_64-linux"; builder = "/bin/sh"; args = [ "-c" "/bin/sleep 60; : {marker}" ]; }}'
timeout = "1s"
"#
    ));
    let run = test.run(["run", "pipeline.toml"]).failure(1);
    assert!(
        run.stderr().contains("nix build failed (timed out)"),
        "{}",
        run.stderr()
    );
    let left = Command::new("pgrep")
        .args(["-f", &marker])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "the builder outlived gantry: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

#[test]
fn a_nix_step_builds_on_a_remote_builder_and_gets_the_output_back() {
    require_nix();
    let sshd = crate::sshd::Sshd::start();
    // A derivation no other run has built: else Nix would find it in the local store.
    let nonce = format!("{:?}", std::time::SystemTime::now());
    let flake = r#"{
  outputs = { self }: {
    packages.x86_64-linux.far = derivation {
      name = "far"; system = "x86_64-linux"; builder = "/bin/sh";
      nonce = ./nonce.txt;
      args = [ "-c" "echo built far away > $out" ];
    };
  };
}
"#;
    let test = Test::new()
        .file("nix/flake.nix", flake)
        .file("nix/nonce.txt", &nonce)
        .pipeline(&format!(
            "[steps.far]\nkind = \"nix\"\nflake = \"./nix#far\"\noutputs = [\"result-far\"]\nbuilders = [\"{}\"]\n",
            sshd.builder()
        ));
    let output = test
        .command()
        .args(["run", "pipeline.toml", "--json"])
        .env("NIX_SSHOPTS", sshd.ssh_options())
        .output()
        .expect("gantry run");
    let run = Run { output }.success();
    assert_eq!(test.read("result-far"), "built far away\n");
    let out = std::fs::read_link(test.path("result-far")).expect("out-link");
    let name = out.file_name().expect("store name");
    assert!(
        sshd.store().join(name).exists(),
        "the output was built in the builder's store ({})",
        sshd.store().display()
    );
    let link = statement(&run, "far");
    let environment = &link["predicate"]["environment"];
    assert_eq!(environment["builders"][0], sshd.builder());
    let drv = environment["drvPath"].as_str().expect("drvPath");
    assert!(
        environment["builtOn"][drv]
            .as_str()
            .is_some_and(|uri| uri.starts_with("ssh://root@127.0.0.1")),
        "{environment}"
    );
}
