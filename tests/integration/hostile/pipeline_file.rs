//! Property 5: the pipeline file stays in its repository. `root` cannot leave it, outputs never
//! name git's, gantry's or the attestations' folders or the pipeline file, and `[tools]` never
//! mounts a home, `.ssh` or `.gnupg`, gantry's key folder or a signing key. Each is refused by
//! `gantry check`, at its line.

use std::fmt::Write as _;

use crate::support::Test;

fn check(test: &Test) -> crate::support::Run {
    test.run(["check", "pipeline.toml"])
}

#[test]
fn root_cannot_leave_the_pipelines_folder_or_repository() {
    let test = Test::new().file(
        "pipeline.toml",
        "[pipeline]\nname = \"t\"\nroot = \"../elsewhere\"\n\n[steps.a]\nrun = \"true\"\n",
    );
    let run = check(&test).failure(1);
    let stderr = run.stderr();
    assert!(stderr.contains("pipeline.toml:3:8"), "{stderr}");
    assert!(stderr.contains("outside"), "{stderr}");

    // Inside a repository, a pipeline in a sub-folder may name the repository's root.
    let inside = Test::new()
        .file("pipelines/build.toml", "[pipeline]\nname = \"t\"\nroot = \"..\"\n\n[steps.a]\nrun = \"echo > out/a\"\noutputs = [\"out/a\"]\n")
        .file("README", "x");
    let status = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(inside.root())
        .status()
        .expect("git");
    assert!(status.success());
    inside.run(["check", "pipelines/build.toml"]).success();
    let escape = Test::new().file(
        "repo/pipelines/build.toml",
        "[pipeline]\nname = \"t\"\nroot = \"../..\"\n\n[steps.a]\nrun = \"true\"\n",
    );
    std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(escape.path("repo"))
        .status()
        .expect("git");
    escape
        .run(["check", "repo/pipelines/build.toml"])
        .failure(1)
        .stderr_contains("outside");
}

#[test]
fn outputs_cannot_name_git_gantry_attestations_or_the_pipeline_file() {
    for (output, words) in [
        (".git/hooks/pre-commit", "`.git`"),
        (".gantry/", "`.gantry`"),
        (".git/", "`.git`"),
        (".gantry/ac/forged", "`.gantry`"),
        ("attestations/run/provenance.intoto.json", "`attestations`"),
        ("pipeline.toml", "the pipeline file itself"),
    ] {
        let test = Test::new().pipeline(&format!(
            "[steps.ok]\nrun = \"echo > out/ok\"\noutputs = [\"out/ok\"]\n\n[steps.evil]\nrun = \"true\"\noutputs = [\"{output}\"]\n"
        ));
        let run = check(&test).failure(1);
        let stderr = run.stderr();
        assert!(stderr.contains(words), "{output}: {stderr}");
        assert!(
            stderr.contains("pipeline.toml:11:"),
            "{output}: at its line: {stderr}"
        );
    }
}

#[test]
fn tools_cannot_mount_homes_keys_or_the_whole_system() {
    for (path, words) in [
        ("/", "the whole file system"),
        ("~/", "home folder itself"),
        ("~/.", "not an absolute folder"),
        ("~/.ssh", "SSH or GnuPG"),
        ("~/.gnupg/private", "SSH or GnuPG"),
        ("/home/alice/.ssh", "SSH or GnuPG"),
        ("~/.local", "gantry's signing key folder"),
        ("~/.local/share/gantry", "gantry's signing key folder"),
        ("/root", "home folder"),
        ("/home", "home folder"),
        ("/home/alice", "home folder"),
    ] {
        let test = Test::new().pipeline(&format!(
            "[tools]\nevil = \"{path}\"\n\n[steps.a]\nrun = \"true\"\ntools = [\"evil\"]\n"
        ));
        let run = check(&test).failure(1);
        let stderr = run.stderr();
        assert!(stderr.contains(words), "{path}: {stderr}");
        assert!(
            stderr.contains("pipeline.toml:6:8"),
            "{path}: at its line: {stderr}"
        );
    }
    // A real toolchain folder is fine.
    let test = Test::new().pipeline(
        "[tools]\nrust = \"~/.rustup/toolchains/stable\"\n\n[steps.a]\nrun = \"true\"\ntools = [\"rust\"]\n",
    );
    check(&test).success();
}

/// A link that leads a tool to the caller's home, or a tool folder that holds the signing key
/// in use, is caught once the real folder is known.
#[test]
fn a_tool_that_leads_to_a_home_or_a_key_is_refused() {
    let test = Test::new();
    std::os::unix::fs::symlink(test.path("home"), test.path("innocent")).expect("link");
    let innocent = test.path("innocent");
    let test = test.pipeline(&format!(
        "[tools]\nevil = \"{}\"\n\n[steps.a]\nrun = \"true\"\ntools = [\"evil\"]\n",
        innocent.display()
    ));
    check(&test)
        .failure(1)
        .stderr_contains("is or holds the home folder");
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("is or holds the home folder");

    let keys = Test::new().file("keys/cosign.key", "not a real key");
    let folder = keys.path("keys");
    let keys = keys.pipeline(&format!(
        "[tools]\nevil = \"{}\"\n\n[steps.look]\nrun = \"echo > out/a\"\noutputs = [\"out/a\"]\ntools = [\"evil\"]\n\n[steps.sign]\nkind = \"sign\"\ninputs = [\"out/a\"]\nkey = \"keys/cosign.key\"\n",
        folder.display()
    ));
    check(&keys)
        .failure(1)
        .stderr_contains("holds the signing key");
}

/// A file with mistakes still has its graph's mistakes reported (`gantry check` shows all at
/// once), but a `root` that leaves the repository is one of them, and then nothing there is
/// read: no input is looked for in the folder it names.
#[test]
fn a_root_outside_is_not_read_even_to_report_other_mistakes() {
    let test = Test::new()
        .file("secret/key.pem", "private\n")
        .file(
            "project/pipeline.toml",
            "[pipeline]\nname = \"t\"\nroot = \"../secret\"\nartifacts = []\n\n[steps.a]\nrun = \"true\"\ninputs = [\"key.pem\", \"nothing-here\"]\noutputs = [\"out/a\"]\n",
        );
    let run = test
        .command()
        .current_dir(test.path("project"))
        .args(["check", "pipeline.toml"])
        .output()
        .expect("gantry");
    let run = crate::support::Run { output: run }.failure(1);
    let stderr = run.stderr();
    assert!(stderr.contains("outside"), "{stderr}");
    assert!(stderr.contains("`artifacts` is empty"), "{stderr}");
    assert!(
        !stderr.contains("nothing-here"),
        "gantry looked for inputs in the folder outside: {stderr}"
    );
}

/// Each step is kept as only the keys it has until it is converted (`pipeline/stored_step.rs`):
/// every mistake in a file of many steps is still found, at its own line and column, whatever
/// the step it sits in and whatever keys the steps around it hold.
#[test]
fn every_steps_mistakes_are_found_at_their_lines_in_a_file_of_many_steps() {
    let mut text = String::from("[pipeline]\nname = \"t\"\n");
    for index in 0..300 {
        let _ = write!(
            text,
            "\n[steps.s{index}]\nrun = \"echo > out/s{index}\"\noutputs = [\"out/s{index}\"]\nenv = {{ A = \"1\" }}\n"
        );
    }
    // An sbom step given a command's `env`, and a key no kind has in the step after it.
    text.push_str("\n[steps.bom]\nkind = \"sbom\"\nfrom = \"cargo\"\nsubject = \"out/s0\"\noutput = \"out/bom.json\"\nenv = { A = \"1\" }\n");
    text.push_str("\n[steps.last]\nrun = \"true\"\nrnu = \"x\"\n");
    let test = Test::new().file("pipeline.toml", &text);
    let stderr = check(&test).failure(1).stderr();
    let bom_env = 1 + text
        .lines()
        .enumerate()
        .filter(|(_, line)| line.starts_with("env = "))
        .map(|(number, _)| number)
        .last()
        .expect("the sbom step's env");
    let unknown = 1 + text
        .lines()
        .position(|line| line.starts_with("rnu = "))
        .expect("the unknown key");
    assert!(
        stderr.contains(&format!("pipeline.toml:{unknown}:1")) && stderr.contains("rnu"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("pipeline.toml:{bom_env}:9"))
            && stderr.contains("`env` does not apply to sbom steps"),
        "{stderr}"
    );
}
