//! Every pipeline error names `FILE:LINE:COL`, shows the line and a caret, and exits 1.

use crate::support::Test;

fn check_fails(toml: &str) -> String {
    let test = Test::new().file("src/a.txt", "a").pipeline(toml);
    let run = test.run(["check", "pipeline.toml"]).failure(1);
    run.stderr()
}

#[test]
fn unknown_key() {
    let stderr = check_fails("[steps.a]\nrun = \"true\"\ninptus = [\"src/a.txt\"]\n");
    assert!(
        stderr.starts_with("pipeline.toml:7:1: error: unknown key `inptus`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `inputs`?"), "{stderr}");
    assert!(
        stderr.contains("7 | inptus = [\"src/a.txt\"]\n  | ^^^^^^"),
        "{stderr}"
    );
}

#[test]
fn unknown_kind() {
    let stderr = check_fails("[steps.a]\nkind = \"teleport\"\n");
    assert!(
        stderr.starts_with("pipeline.toml:6:8: error: unknown step kind `teleport`"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: known kinds: `exec`"), "{stderr}");
}

#[test]
fn cycle_prints_the_cycle() {
    let stderr = check_fails(
        "[steps.a]\nrun = \"true\"\ninputs = [\"out/c\"]\noutputs = [\"out/a\"]\n\n[steps.b]\nrun = \"true\"\ninputs = [\"out/a\"]\noutputs = [\"out/b\"]\n\n[steps.c]\nrun = \"true\"\nneeds = [\"b\"]\noutputs = [\"out/c\"]\n",
    );
    assert!(
        stderr.starts_with("pipeline.toml:5:8: error: dependency cycle: a → b → c → a"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`b` reads `out/a`, which `a` produces as `out/a`"),
        "{stderr}"
    );
    assert!(stderr.contains("`c` needs `b`"), "{stderr}");
}

#[test]
fn two_steps_claiming_one_output() {
    let stderr = check_fails(
        "[steps.a]\nrun = \"true\"\noutputs = [\"out/x\"]\n[steps.b]\nrun = \"true\"\noutputs = [\"./out/x\"]\n",
    );
    assert!(
        stderr
            .starts_with("pipeline.toml:10:12: error: output `out/x` is also produced by step `a`"),
        "{stderr}"
    );
}

#[test]
fn output_inside_another_steps_output_folder() {
    let stderr = check_fails(
        "[steps.a]\nrun = \"true\"\noutputs = [\"out/\"]\n[steps.b]\nrun = \"true\"\noutputs = [\"out/x\"]\n",
    );
    assert!(
        stderr.contains("error: output `out/x` lies inside output folder `out` of step `a`"),
        "{stderr}"
    );
}

#[test]
fn input_glob_matching_nothing() {
    let stderr = check_fails("[steps.a]\nrun = \"true\"\ninputs = [\"src/*.rs\"]\n");
    assert!(
        stderr.starts_with(
            "pipeline.toml:7:11: error: input `src/*.rs` matches no file and no step's output"
        ),
        "{stderr}"
    );
}

#[test]
fn missing_needs_target() {
    let stderr = check_fails(
        "[steps.build]\nrun = \"true\"\n[steps.b]\nrun = \"true\"\nneeds = [\"buidl\"]\n",
    );
    assert!(
        stderr.starts_with("pipeline.toml:9:10: error: `needs` names `buidl`, which is not a step"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `build`?"), "{stderr}");
}

#[test]
fn toml_syntax_error() {
    let stderr = check_fails("[steps.a\nrun = \"true\"\n");
    assert!(stderr.starts_with("pipeline.toml:5:"), "{stderr}");
}

#[test]
fn paths_escaping_the_workspace() {
    let stderr = check_fails(
        "[steps.a]\nrun = \"true\"\ninputs = [\"../secret\"]\noutputs = [\".gantry/cas/x\"]\n",
    );
    assert!(
        stderr
            .contains("pipeline.toml:7:11: error: invalid input: `../secret` leaves the workspace"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "pipeline.toml:8:12: error: invalid output: `.gantry/cas/x` is inside `.gantry`"
        ),
        "{stderr}"
    );
}

#[test]
fn run_reports_the_same_errors_and_runs_nothing() {
    let test = Test::new().pipeline("[steps.a]\nrun = \"touch ran\"\nneeds = [\"ghost\"]\n");
    test.run(["run", "pipeline.toml"])
        .failure(1)
        .stderr_contains("error: `needs` names `ghost`");
    assert!(!test.path("ran").exists() && !test.path(".gantry").exists());
}

#[test]
fn missing_file_is_an_environment_error() {
    Test::new()
        .run(["check", "nope.toml"])
        .failure(3)
        .stderr_contains("error: cannot read `nope.toml`");
}

/// `*` stays within one folder: `*.c` beside a folder output is neither a read of that output
/// nor an edge to it (zlib's Makefile build, where every top-level source had to be listed by
/// name), while `out/*.o` in another step is.
#[test]
fn a_star_glob_beside_a_folder_output_reads_only_its_own_folder() {
    let test = Test::new()
        .file("a.c", "int a;\n")
        .file("b.c", "int b;\n")
        .file("sub/c.c", "int c;\n")
        .pipeline(
            r#"[steps.compile]
run = "mkdir -p out; for f in *.c; do cp $f out/${f%.c}.o; done"
inputs = ["*.c"]
outputs = ["out/"]

[steps.link]
run = "cat out/*.o > lib.a"
inputs = ["out/*.o"]
outputs = ["lib.a"]
"#,
        );
    test.run(["check", "pipeline.toml"]).success();
    let run = test.gantry_run(&[]).success();
    assert_eq!(run.finished()["executed"], 2);
    assert_eq!(test.read("lib.a"), "int a;\nint b;\n");
    let link = crate::attestations::statement(&crate::support::attested(
        &run.run_dir(),
        "compile.intoto.json",
    ));
    let materials: Vec<&str> = (link["predicate"]["materials"]
        .as_array()
        .expect("materials"))
    .iter()
    .filter_map(|material| material["name"].as_str())
    .filter(|name| !name.starts_with('/'))
    .collect();
    assert_eq!(materials, ["a.c", "b.c"]);
}

/// `warm`: exec steps only; a folder of the build folder that no input comes from and no output
/// holds (an output may lie inside it); each problem at its line.
#[test]
fn warm_folders_are_checked_at_their_line() {
    let stderr = check_fails(
        "[steps.a]\nrun = \"true\"\ninputs = [\"target/x.rs\"]\noutputs = [\"out/\", \"target/release/app\"]\nwarm = [\"target\", \"out/cache\", \"../up\", \"*.o\", \".\"]\n\n[steps.b]\nkind = \"sign\"\ninputs = [\"out/a\"]\nkey = \"dev\"\nwarm = [\"x\"]\n",
    );
    for expected in [
        "pipeline.toml:9:9: error: warm folder `target` overlaps input `target/x.rs`",
        "pipeline.toml:9:19: error: warm folder `out/cache` lies in output `out`",
        "pipeline.toml:9:32: error: invalid warm folder: `../up` leaves the workspace",
        "pipeline.toml:9:41: error: warm folder `*.o` is a glob",
        "pipeline.toml:9:48: error: invalid warm folder: `.` names the workspace root itself",
        "pipeline.toml:15:8: error: `warm` does not apply to sign steps",
    ] {
        assert!(stderr.contains(expected), "{expected}\n{stderr}");
    }
}

/// Unknown keys do not hide the other mistakes: every one is reported, with the rest of the
/// file's errors, in the file's order.
#[test]
fn every_unknown_key_and_every_other_mistake_at_once() {
    let stderr = check_fails(
        "[steps.a]\nrun = \"true\"\ninptus = [\"x\"]\n\n[steps.b]\nrun = \"true\"\nneeds = [\"zz\"]\noutputs = [\"/abs\"]\nlimits = { memroy = \"1GiB\" }\n",
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(": error: "))
        .collect();
    assert_eq!(errors.len(), 4, "{stderr}");
    assert!(
        errors[0].starts_with("pipeline.toml:7:1: error: unknown key `inptus`"),
        "{stderr}"
    );
    assert!(errors[1].contains("`needs` names `zz`"), "{stderr}");
    assert!(errors[2].contains("`/abs` is absolute"), "{stderr}");
    assert!(errors[3].contains("unknown key `memroy`"), "{stderr}");
    assert!(stderr.contains("did you mean `memory`?"), "{stderr}");
}

#[test]
fn the_graphs_mistakes_come_with_the_files_other_mistakes() {
    // Step `a` has a mistake of its own (left out of the graph); `b` and `c` claim one output
    // and `c` reads the output of `a`: the clash is reported with the timeout, and the input
    // that only `a` would provide is not (it is no mistake once `a` is right).
    let stderr = check_fails(
        "[pipeline]\nname = \"p\"\n\n[steps.a]\nrun = \"true\"\noutputs = [\"out/a\"]\ntimeout = \"soon\"\n\n[steps.b]\nrun = \"true\"\noutputs = [\"out/b\"]\n\n[steps.c]\nrun = \"true\"\ninputs = [\"out/a\"]\noutputs = [\"out/b\"]\n",
    );
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(": error: "))
        .collect();
    assert_eq!(errors.len(), 2, "{stderr}");
    assert!(errors[0].contains("invalid timeout"), "{stderr}");
    assert!(
        errors[1].starts_with("pipeline.toml:16:")
            && errors[1].contains("output `out/b` is also produced by step `b`"),
        "{stderr}"
    );
}

#[test]
fn a_cycle_comes_with_a_mistake_elsewhere_in_a_whole_file() {
    let stderr = check_fails(
        "[pipeline]\nname = \"p\"\nartifacts = [\"out/none\"]\n\n[steps.a]\nrun = \"true\"\ninputs = [\"out/b\"]\noutputs = [\"out/a\"]\n\n[steps.b]\nrun = \"true\"\ninputs = [\"out/a\"]\noutputs = [\"out/b\"]\n",
    );
    assert!(
        stderr.contains("artifact `out/none` is no output"),
        "{stderr}"
    );
    assert!(stderr.contains("cycle"), "{stderr}");
}
