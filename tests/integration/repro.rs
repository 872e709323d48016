//! `gantry repro`: a rebuild from scratch in varied surroundings, checked output by output
//! against a run's attestations, with the cause and a diffoscope report for each difference
//! and a signed reproducibility Statement. Real sandbox, real Nix, real diffoscope.

use std::fs;
use std::path::{Path, PathBuf};

use crate::attestations::{openssl_verifies, statement};
use crate::nix::require_nix;
use crate::signing::sigstore_verifies;
use crate::support::{Run, Test};

/// Fails with the install hint when diffoscope is missing: CI must not skip these silently.
fn require_diffoscope() {
    crate::support::require_tool(
        "diffoscope",
        "--version",
        "`apt-get install --no-install-recommends diffoscope` (bash scripts/test.sh installs it)",
    );
}

const EXEC_PIPELINE: &str = r#"
[steps.same]
run = "cat src/a.txt src/b.txt > out/same.txt"
inputs = ["src/a.txt", "src/b.txt"]
outputs = ["out/same.txt"]

[steps.stamp]
run = "date +%s%N > out/time.txt"
outputs = ["out/time.txt"]

[steps.package]
run = "tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf out/pkg.tar out/same.txt out/time.txt"
inputs = ["out/same.txt", "out/time.txt"]
outputs = ["out/pkg.tar"]

[steps.lint]
run = "test -s src/a.txt"
inputs = ["src/a.txt"]
"#;

fn exec_test() -> Test {
    require_diffoscope();
    Test::new()
        .file("src/a.txt", "a\n")
        .file("src/b.txt", "b\n")
        .pipeline(EXEC_PIPELINE)
}

fn repro(test: &Test, extra: &[&str]) -> Run {
    let output = test
        .command()
        .args(["repro", "pipeline.toml"])
        .args(extra)
        .output()
        .expect("run gantry");
    Run { output }
}

/// The single folder under `attestations/repro/`.
fn repro_folder(test: &Test) -> PathBuf {
    let mut folders: Vec<PathBuf> = fs::read_dir(test.path("attestations/repro"))
        .expect("repro folder")
        .flatten()
        .map(|entry| entry.path())
        .collect();
    folders.sort();
    folders.pop().expect("a repro run")
}

fn results(statement: &serde_json::Value) -> Vec<(String, bool)> {
    statement["predicate"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| {
            (
                result["name"].as_str().expect("name").to_owned(),
                result["reproduced"].as_bool().expect("reproduced"),
            )
        })
        .collect()
}

/// The summary block of one output: its line and the indented lines under it.
fn block<'a>(stdout: &'a str, output: &str) -> Vec<&'a str> {
    let mut lines = stdout.lines().skip_while(|line| {
        !(line.starts_with("  ") && line.split_whitespace().nth(1) == Some(output))
    });
    let mut block: Vec<&str> = lines.next().into_iter().collect();
    block.extend(lines.take_while(|line| line.starts_with("       ")));
    block
}

/// The workspace and its cache are untouched; nothing of the rebuild is left behind.
fn assert_untouched(test: &Test, attested_time: &str) {
    assert_eq!(test.read("out/time.txt"), *attested_time);
    let leftovers: Vec<_> = fs::read_dir(test.path(".gantry/repro"))
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    test.gantry_run(&[]).success();
}

#[test]
fn repro_names_each_irreproducible_exec_output_and_why() {
    let test = exec_test();
    test.gantry_run(&[]).success();
    let attested_time = test.read("out/time.txt");
    let run = repro(&test, &[]).failure(1);
    let stdout = run.stdout();
    assert!(
        block(&stdout, "out/same.txt")[0].ends_with("reproduced"),
        "{stdout}"
    );
    let stamp = block(&stdout, "out/time.txt").join("\n");
    assert!(stamp.contains("DIFFERS"), "{stdout}");
    assert!(
        stamp.contains(
            "differs even when rebuilt in the standard surroundings: the step is not deterministic"
        ),
        "{stamp}"
    );
    assert!(stamp.contains("diffoscope: attestations/repro/"), "{stamp}");
    assert!(
        stamp.contains(&format!("| -{}", attested_time.trim())),
        "the excerpt shows the attested time: {stamp}"
    );
    let package = block(&stdout, "out/pkg.tar").join("\n");
    assert!(package.contains("DIFFERS"), "{stdout}");
    assert!(
        package.contains("why: inputs differ: out/time.txt (from step `stamp`, not reproduced)"),
        "{package}"
    );
    assert!(
        stdout.contains("1 of 3 outputs reproduced; not reproduced in: stamp, package"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  lint     (no outputs)  ran"),
        "a step without outputs has nothing to compare: {stdout}"
    );

    // The reports are real diffoscope output, saved next to the Statement.
    let folder = repro_folder(&test);
    let report =
        fs::read_to_string(folder.join("diffoscope/stamp/out/time.txt.txt")).expect("stamp report");
    assert!(
        report.contains(&format!("-{}", attested_time.trim())),
        "{report}"
    );
    let tar_report = fs::read_to_string(folder.join("diffoscope/package/out/pkg.tar.txt"))
        .expect("package report");
    assert!(
        tar_report.contains("out/time.txt"),
        "diffoscope looks inside the tar: {tar_report}"
    );

    // The signed Statement: subjects are the attested outputs, results say which reproduced.
    let statement_path = folder.join("reproducibility.intoto.json");
    let statement = statement(&statement_path);
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(
        statement["predicateType"],
        "https://gantry.dev/attestation/reproducibility/v1"
    );
    assert_eq!(statement["subject"].as_array().expect("subjects").len(), 3);
    assert_eq!(
        statement["subject"][1]["digest"]["sha256"],
        crate::sandbox::sha256_hex(attested_time.as_bytes()).as_str()
    );
    assert_eq!(
        results(&statement),
        [
            ("out/same.txt".to_owned(), true),
            ("out/time.txt".to_owned(), false),
            ("out/pkg.tar".to_owned(), false)
        ]
    );
    let predicate = &statement["predicate"];
    assert_eq!(predicate["reproduced"], false);
    assert_eq!(predicate["results"][2]["changedInputs"][0], "out/time.txt");
    assert_eq!(
        predicate["results"][1]["attribution"]["kind"],
        "nondeterministic"
    );
    assert_eq!(
        predicate["results"][1]["diffoscope"]["name"],
        "diffoscope/stamp/out/time.txt.txt"
    );
    assert_eq!(
        predicate["results"][1]["diffoscope"]["digest"]["sha256"],
        crate::sandbox::sha256_hex(report.as_bytes()).as_str()
    );
    assert_eq!(
        predicate["rebuild"]["variations"]
            .as_array()
            .expect("variations")
            .len(),
        10
    );
    let public_key = test.path("public.pem");
    fs::write(&public_key, test.run(["key", "public"]).success().stdout()).expect("write");
    assert!(
        openssl_verifies(&statement_path, &public_key, test.root()),
        "openssl verifies the Statement's signature"
    );

    assert_untouched(&test, &attested_time);
}

#[test]
fn a_reproducible_pipeline_exits_zero_and_steps_can_be_chosen() {
    let test = exec_test();
    test.gantry_run(&[]).success();
    let run = repro(&test, &["--step", "same", "--bundles"]).success();
    assert!(
        run.stdout().contains("all 1 outputs reproduced"),
        "{}",
        run.stdout()
    );
    assert!(!run.stdout().contains("out/time.txt"), "{}", run.stdout());
    let folder = repro_folder(&test);
    let statement = statement(&folder.join("reproducibility.intoto.json"));
    assert_eq!(statement["predicate"]["reproduced"], true);
    // `--bundles`: the Statement and the rebuild's link, each as a Sigstore bundle with a
    // `dsseEnvelope` that sigstore-js verifies with the key.
    let public_key = test.path("public.pem");
    fs::write(&public_key, test.run(["key", "public"]).success().stdout()).expect("write");
    for name in ["reproducibility.sigstore.json", "same.sigstore.json"] {
        let bundle = folder.join(name);
        assert!(sigstore_verifies(&bundle, &public_key, None), "{name}");
        let json: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(&bundle).expect("bundle")).expect("json");
        assert!(json["dsseEnvelope"].is_object(), "{name}");
    }
    // `--step package` rebuilds what it depends on too, and blames it.
    let run = repro(&test, &["--step", "package", "--json"]).failure(1);
    let last: serde_json::Value =
        serde_json::from_str(run.stdout().lines().last().expect("a line")).expect("json");
    assert_eq!(last["event"], "repro_finished");
    assert_eq!(last["reproduced"], false);
    let names: Vec<&str> = last["result"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| result["step"].as_str().expect("step"))
        .collect();
    assert_eq!(names, ["same", "stamp", "package"]);
}

#[test]
fn every_variation_reaches_the_step() {
    require_diffoscope();
    let script = "pwd; echo HOME=$HOME TMPDIR=$TMPDIR LANG=$LANG TZ=$TZ; cat /proc/sys/kernel/hostname; id -u; id -g; \
                  umask; test -d \"$TMPDIR\" && echo tmpdir-exists; \
                  read -r up rest < /proc/uptime; echo uptime-days=$(( ${up%.*} / 86400 ))";
    let test = Test::new().pipeline(&format!(
        "[steps.env]\nrun = '''{{ {script}; }} > out/env.txt'''\noutputs = [\"out/env.txt\"]\n"
    ));
    test.gantry_run(&[]).success();
    let standard = test.read("out/env.txt");
    assert!(standard.starts_with("/build\nHOME=/home/build TMPDIR=/tmp LANG=C.UTF-8 TZ=UTC\ngantry\n1000\n1000\n0022\ntmpdir-exists\n"), "{standard}");
    let run = repro(&test, &[]).failure(1);
    let report = fs::read_to_string(repro_folder(&test).join("diffoscope/env/out/env.txt.txt"))
        .expect("report");
    for varied in [
        "+/rebuild/build-path-varied",
        "+HOME=/home/rebuilder TMPDIR=/tmp/varied-tmpdir LANG=fr_CH.UTF-8 TZ=GMT-14",
        "+gantry-repro",
        "+2000",
        "+0002",
    ] {
        assert!(report.contains(varied), "{varied:?} not in\n{report}");
    }
    let stdout = run.stdout();
    assert!(
        stdout.contains(
            "differs when build-path or home or tmpdir or hostname or user or umask or locale \
             or timezone or clock varies"
        ),
        "each variation is found to matter, file order alone not: {stdout}"
    );
    let days: u64 = report
        .lines()
        .find_map(|line| line.strip_prefix("+uptime-days="))
        .expect("rebuilt uptime")
        .parse()
        .expect("number");
    assert!(days >= 398, "the boot clock moved: {days} days");
    // `--vary none` rebuilds in the standard surroundings: this step then reproduces.
    repro(&test, &["--vary", "none"]).success();
}

#[test]
fn unsorted_folder_listings_are_caught_by_varying_file_order() {
    require_diffoscope();
    let mut test = Test::new();
    for name in ["a", "b", "c", "d", "e", "f", "g", "h"] {
        test = test.file(&format!("src/{name}.txt"), name);
    }
    let test = test.pipeline(
        "[steps.unsorted]\nrun = \"find src -type f > out/list.txt\"\ninputs = [\"src/\"]\noutputs = [\"out/list.txt\"]\n\n\
         [steps.sorted]\nrun = \"find src -type f | sort > out/sorted.txt\"\ninputs = [\"src/\"]\noutputs = [\"out/sorted.txt\"]\n",
    );
    test.gantry_run(&[]).success();
    let run = repro(&test, &["--vary", "file-order"]).failure(1);
    let stdout = run.stdout();
    assert!(
        block(&stdout, "out/sorted.txt")[0].ends_with("reproduced"),
        "{stdout}"
    );
    let unsorted = block(&stdout, "out/list.txt").join("\n");
    assert!(unsorted.contains("DIFFERS"), "{stdout}");
    assert!(
        unsorted
            .contains("reproduces in the standard surroundings and differs when file-order varies"),
        "{unsorted}"
    );
    assert!(unsorted.contains("Ordering differences only"), "{unsorted}");
}

#[test]
fn repro_refuses_what_it_cannot_check() {
    let test = exec_test();
    repro(&test, &[])
        .failure(2)
        .stderr_contains("run the pipeline first or pass `--against`");
    test.gantry_run(&[]).success();
    repro(&test, &["--vary", "colour"])
        .failure(2)
        .stderr_contains("unknown variation `colour`");
    repro(&test, &["--step", "nosuch"])
        .failure(2)
        .stderr_contains(
            "no step `nosuch` in the pipeline; its steps are: same, stamp, package, lint",
        );
    // A tampered attestation is refused, not compared.
    let run_dir = fs::read_dir(test.path("attestations"))
        .expect("runs")
        .flatten()
        .map(|entry| entry.path())
        .find(|path| crate::support::attested(path, "same.intoto.json").exists())
        .expect("run folder");
    let attestation = crate::support::attested(&run_dir, "same.intoto.json");
    let mut envelope: serde_json::Value =
        serde_json::from_slice(&fs::read(&attestation).expect("read")).expect("json");
    envelope["payload"] = serde_json::Value::from("eyJ4IjoxfQ==");
    fs::remove_file(&attestation).expect("unlink the CAS hard link");
    fs::write(&attestation, envelope.to_string()).expect("write");
    repro(&test, &["--against", run_dir.to_str().expect("utf8")])
        .failure(1)
        .stderr_contains("is not the file its run's SHA256SUMS names");
    // In a run folder holding its files itself, the signature gives it away.
    crate::support::flatten_run(&run_dir);
    repro(&test, &["--against", run_dir.to_str().expect("utf8")])
        .failure(1)
        .stderr_contains("no signature verifies with the given key");
}

const NIX_FILE: &str = r#"{
  good = derivation {
    name = "good"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" "echo SALT > $out" ];
  };
  clock = derivation {
    name = "clock"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" "read -r up rest < /proc/uptime; /bin/mkdir $out; echo $up > $out/uptime; echo SALT > $out/fixed" ];
  };
}
"#;

fn store_copies(name: &str) -> Vec<String> {
    fs::read_dir("/nix/store")
        .expect("store")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|entry| entry.ends_with(&format!("-{name}.check")))
        .collect()
}

#[test]
fn repro_rebuilds_nix_derivations_and_explains_the_irreproducible_one() {
    require_nix();
    require_diffoscope();
    // A salt per test run, so the derivations are new to this machine's store.
    let salt = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        .to_string();
    let test = Test::new()
        .file("nix/default.nix", &NIX_FILE.replace("SALT", &salt))
        .pipeline(
            "[steps.good]\nkind = \"nix\"\nfile = \"nix/default.nix\"\nattr = \"good\"\noutputs = [\"result-good\"]\n\n\
             [steps.clock]\nkind = \"nix\"\nfile = \"nix/default.nix\"\nattr = \"clock\"\noutputs = [\"result-clock\"]\n\n\
             [steps.use]\nrun = \"cat result-good > out/use.txt\"\ninputs = [\"result-good\"]\noutputs = [\"out/use.txt\"]\n",
        );
    test.gantry_run(&[]).success();
    let clock_path = fs::read_link(test.path("result-clock")).expect("out-link");
    let run = repro(&test, &[]).failure(1);
    let stdout = run.stdout();
    let good = fs::read_link(test.path("result-good")).expect("out-link");
    let good_block = block(&stdout, good.to_str().expect("utf8"));
    assert!(good_block[0].ends_with("reproduced"), "{stdout}");
    assert!(
        block(&stdout, "out/use.txt")[0].ends_with("reproduced"),
        "{stdout}"
    );
    let clock = block(&stdout, clock_path.to_str().expect("utf8")).join("\n");
    assert!(clock.contains("DIFFERS"), "{stdout}");
    assert!(
        clock.contains("why: Nix built the same derivation twice"),
        "{clock}"
    );
    assert!(
        clock.contains(".check/uptime"),
        "diffoscope names the file: {clock}"
    );
    let folder = repro_folder(&test);
    let report_name = format!(
        "diffoscope/clock/{}.txt",
        clock_path.to_str().expect("utf8").trim_start_matches('/')
    );
    let report = fs::read_to_string(folder.join(&report_name)).expect("report");
    assert!(report.contains("/uptime"), "{report}");
    assert!(
        !report.contains("/fixed"),
        "only the differing file: {report}"
    );
    let statement = statement(&folder.join("reproducibility.intoto.json"));
    let results = results(&statement);
    assert!(
        results.contains(&(clock_path.display().to_string(), false)),
        "{results:?}"
    );
    assert!(
        results.contains(&(good.display().to_string(), true)),
        "{results:?}"
    );
    // The rebuilt NAR hash is Nix's own hash of the differing copy, not the store's.
    let clock_result = statement["predicate"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|result| result["step"] == "clock")
        .expect("clock")
        .clone();
    assert_ne!(clock_result["attested"], clock_result["rebuilt"]);
    // Nix's kept copy and build folder are cleaned up; the attested path stays valid.
    assert!(
        store_copies("clock").is_empty(),
        "{:?}",
        store_copies("clock")
    );
    assert!(Path::new(&clock_path).join("uptime").is_file());
    assert_eq!(
        fs::read_link(test.path("result-clock")).expect("out-link"),
        clock_path,
        "the workspace's out-link is untouched"
    );
}

/// Without `--against`, `gantry repro FILE` checks the newest run of FILE, not the newest run
/// of whatever pipeline ran last in the workspace.
#[test]
fn repro_checks_the_newest_run_of_its_own_pipeline() {
    let pipeline = |name: &str, step: &str| {
        format!(
            "[pipeline]\nname = \"{name}\"\nroot = \".\"\n\n[steps.{step}]\nrun = \"echo {step} > out/{step}\"\noutputs = [\"out/{step}\"]\n"
        )
    };
    let test = Test::new()
        .file("one.toml", &pipeline("one", "a"))
        .file("two.toml", &pipeline("two", "b"));
    let one = test.run(["run", "one.toml", "--json"]).success();
    test.run(["run", "two.toml", "--json"]).success();
    let repro = test
        .run(["repro", "one.toml", "--vary", "none", "--json"])
        .success();
    let last: serde_json::Value =
        serde_json::from_str(repro.stdout().lines().last().expect("a line")).expect("JSON");
    assert_eq!(
        last["against"],
        one.run_dir().display().to_string(),
        "{last}"
    );
    assert_eq!(last["reproduced"], true);
}

/// A reproduction holds for the bytes it rebuilt: a later no-op run (a new run id, the same
/// outputs) still passes a policy that wants `reproduced = true`; an output with other bytes
/// does not.
#[test]
fn a_reproduction_holds_for_a_later_run_with_the_same_bytes() {
    let test = Test::new()
        .file("src/a.txt", "a\n")
        .pipeline("[steps.copy]\nrun = \"cp src/a.txt out/a\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/a\"]\n");
    let first = test.gantry_run(&[]).success();
    repro(&test, &["--vary", "none", "--json"]).success();
    let reproduction = repro_folder(&test);
    // A later run with a provenance of its own (another tenant; with nothing changed at all
    // it would name the first run's).
    let later = test.gantry_run(&["--tenant", "later"]).success();
    assert_ne!(later.run_dir(), first.run_dir());
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("dev.pub", &public);
    test.write(
        "policy.toml",
        "[policy]\nname = \"p\"\n\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"*\"]\n\n[require]\nsteps = [\"copy\"]\nprovenance = true\nreproduced = true\nsources = [\"src/*\"]\ntools = [\"/usr\", \"/usr/bin/*\", \"/bin/*\"]\n",
    );
    let verify = |run: &Run| {
        let output = test
            .command()
            .args(["verify", "--policy", "policy.toml", "--attestations"])
            .arg(run.run_dir())
            .arg("--attestations")
            .arg(&reproduction)
            .arg("out/a")
            .output()
            .expect("verify");
        Run { output }
    };
    verify(&later).success();
    test.write("src/a.txt", "changed\n");
    let changed = test.gantry_run(&[]).success();
    let refused = verify(&changed).failure(1);
    assert!(
        refused
            .stdout()
            .contains("no valid reproducibility attestation covers `out/a` with these bytes"),
        "{}",
        refused.stdout()
    );
}

/// A drill gate's verdict holds the seconds it measured: `gantry repro` runs it again but does
/// not compare it (it said so), and a pipeline with one can reproduce.
#[test]
fn a_drill_gate_does_not_stop_a_reproduction() {
    let test = Test::new()
        .file("src/a.txt", "a\n")
        .pipeline("[steps.copy]\nrun = \"cp src/a.txt out/a\"\ninputs = [\"src/a.txt\"]\noutputs = [\"out/a\"]\n\n[steps.restore]\nkind = \"gate\"\nevidence = { drill = \"cat out/a > /dev/null\" }\ninputs = [\"out/a\"]\nrequire = { seconds_max = 60 }\n");
    test.gantry_run(&[]).success();
    let checked = repro(&test, &["--vary", "none", "--json"]).success();
    assert!(
        checked.stdout().contains("`restore` is a drill"),
        "{}",
        checked.stdout()
    );
}

/// A folder of many files that reproduced is one line of the summary (a vendored crates
/// folder printed 3,250 lines); what differs is still listed one by one.
#[test]
fn a_reproduced_folder_of_many_files_is_one_line() {
    let test = Test::new().pipeline(
        "[steps.vendor]\nrun = \"mkdir -p out/vendor && for i in $(seq 1 40); do echo $i > out/vendor/f$i; done\"\noutputs = [\"out/vendor/\"]\n",
    );
    test.gantry_run(&[]).success();
    let checked = repro(&test, &["--vary", "none"]).success();
    let text = checked.stdout();
    assert!(text.contains("40 outputs reproduced"), "{text}");
    assert!(text.lines().count() < 20, "{text}");
}

/// A warm folder (`warm = ["state"]`) is kept from one run of its step to the next and named in
/// the link, but it is no material: `gantry repro` rebuilds without it. A step whose output does
/// not depend on it reproduces; one whose output does is caught.
#[test]
fn a_warm_folder_is_kept_between_runs_and_repro_rebuilds_without_it() {
    require_diffoscope();
    let test = Test::new().file("in.txt", "hello\n").pipeline(
        r#"[steps.honest]
run = "n=$(cat state/runs 2>/dev/null || echo 0); echo $((n+1)) > state/runs; echo warm=$n >&2; mkdir -p state/bin; tr a-z A-Z < in.txt > state/bin/out"
inputs = ["in.txt"]
outputs = ["state/bin/out"]
warm = ["state"]

[steps.liar]
run = "n=$(cat state/runs 2>/dev/null || echo 0); echo $((n+1)) > state/runs; cat in.txt state/runs > lie.txt"
inputs = ["in.txt"]
outputs = ["lie.txt"]
warm = ["state"]
"#,
    );
    let first = test.gantry_run(&[]).success();
    let link = statement(&crate::support::attested(
        &first.run_dir(),
        "honest.intoto.json",
    ));
    assert_eq!(
        link["predicate"]["environment"]["warm"],
        serde_json::json!([{ "path": "state", "runsBefore": 0 }])
    );
    assert_eq!(test.read("state/bin/out"), "HELLO\n");
    test.write("in.txt", "hello again\n");
    let second = test.gantry_run(&[]).success();
    assert_eq!(second.finished()["executed"], 2);
    let link = statement(&crate::support::attested(
        &second.run_dir(),
        "honest.intoto.json",
    ));
    assert_eq!(
        link["predicate"]["environment"]["warm"],
        serde_json::json!([{ "path": "state", "runsBefore": 1 }])
    );
    assert_eq!(test.read("lie.txt"), "hello again\n2\n");
    let provenance = statement(&second.run_dir().join("provenance.intoto.json"));
    assert_eq!(
        provenance["predicate"]["buildDefinition"]["internalParameters"]["warmFolders"],
        serde_json::json!({ "honest": ["state"], "liar": ["state"] })
    );
    // The warm folder is no workspace file and no source of any step.
    assert!(!test.path("state/runs").exists());

    let run = repro(&test, &["--step", "honest"]).success();
    assert!(
        run.stdout().contains("all 1 outputs reproduced"),
        "{}",
        run.stdout()
    );
    let rebuilt = statement(&repro_folder(&test).join("honest.intoto.json"));
    assert!(rebuilt["predicate"]["environment"]["warm"].is_null());
    let run = repro(&test, &["--step", "liar"]).failure(1);
    assert!(run.stdout().contains("lie.txt"), "{}", run.stdout());
}

/// The rebuilds that explain a difference stop at `--explain-budget`: the difference is still
/// reported, its cause says it was not explained and why, and the Statement says `unexplained`.
#[test]
fn the_explanation_of_a_difference_stops_at_its_budget() {
    let test = exec_test();
    test.gantry_run(&[]).success();
    let run = repro(&test, &["--step", "stamp", "--explain-budget", "0s"]).failure(1);
    let stamp = block(&run.stdout(), "out/time.txt").join("\n");
    assert!(stamp.contains("DIFFERS"), "{stamp}");
    assert!(
        stamp.contains("not explained: the explanation budget of 0ms ran out"),
        "{stamp}"
    );
    assert!(
        !run.stderr()
            .contains("rebuilding in the standard surroundings")
    );
    let statement = statement(&repro_folder(&test).join("reproducibility.intoto.json"));
    let kinds: Vec<&serde_json::Value> = (statement["predicate"]["results"].as_array())
        .expect("results")
        .iter()
        .map(|result| &result["attribution"]["kind"])
        .collect();
    assert!(
        kinds.iter().any(|kind| *kind == "unexplained"),
        "{statement}"
    );
    let explained = repro(&test, &["--step", "stamp", "--json"]).failure(1);
    assert!(!explained.stdout().contains("unexplained"));
}

/// A difference everywhere in a large output makes a diffoscope report as large: it is cut
/// at `--diffoscope-limit` (at a line's end, with a last line saying so), the summary and the
/// Statement say it was cut, and `--diffoscope-limit none` writes all of it.
#[test]
fn a_diffoscope_report_is_cut_at_its_limit() {
    require_diffoscope();
    let test = Test::new().pipeline(
        "[steps.big]\nrun = 'seq 1 20000 | sed \"s|^|$HOME |\" > out/big.txt'\noutputs = [\"out/big.txt\"]\n",
    );
    test.gantry_run(&[]).success();
    let limited = ["--vary", "home", "--explain-budget", "0s"];
    let run = repro(
        &test,
        &[&limited[..], &["--diffoscope-limit", "4KiB"]].concat(),
    )
    .failure(1);
    let big = block(&run.stdout(), "out/big.txt").join("\n");
    assert!(
        big.contains("(cut at 4KiB; `--diffoscope-limit none` for all of it)"),
        "{big}"
    );
    let folder = repro_folder(&test);
    let report = fs::read_to_string(folder.join("diffoscope/big/out/big.txt.txt")).expect("report");
    let (kept, last) = report
        .trim_end()
        .rsplit_once('\n')
        .expect("more than one line");
    assert!(kept.len() < 4096, "{} bytes kept", kept.len());
    assert!(
        last.starts_with("[gantry: the report is cut here"),
        "{last}"
    );
    assert!(kept.contains("-/home/build 1\n"), "{kept}");
    let predicate = &statement(&folder.join("reproducibility.intoto.json"))["predicate"];
    assert_eq!(predicate["explanation"]["diffoscopeLimitBytes"], 4096);
    assert_eq!(
        predicate["results"][0]["diffoscopeCut"], true,
        "{predicate:#}"
    );

    fs::remove_dir_all(test.path("attestations/repro")).expect("remove");
    let run = repro(
        &test,
        &[&limited[..], &["--diffoscope-limit", "none"]].concat(),
    )
    .failure(1);
    assert!(!run.stdout().contains("cut at"), "{}", run.stdout());
    let folder = repro_folder(&test);
    let report = fs::read_to_string(folder.join("diffoscope/big/out/big.txt.txt")).expect("report");
    assert!(
        report.contains("+/home/rebuilder 20000"),
        "the whole report"
    );
    let predicate = &statement(&folder.join("reproducibility.intoto.json"))["predicate"];
    assert!(predicate["explanation"]["diffoscopeLimitBytes"].is_null());
    assert!(predicate["results"][0]["diffoscopeCut"].is_null());
}

/// A rebuild that explains is started only when it is expected to end within the budget:
/// with rebuilds of four seconds and a budget under eight, the one in the standard
/// surroundings runs and no single variation is tried; the cause and the Statement name the
/// variations left untried.
#[test]
fn explaining_starts_no_rebuild_that_would_not_fit_its_budget() {
    require_diffoscope();
    let test = Test::new().pipeline(
        "[steps.slow]\nrun = 'sleep 4; echo $HOME > out/home.txt'\noutputs = [\"out/home.txt\"]\n",
    );
    test.gantry_run(&[]).success();
    let run = repro(&test, &["--explain-budget", "7900ms"]).failure(1);
    let slow = block(&run.stdout(), "out/home.txt").join("\n");
    assert!(
        slow.contains(
            "it reproduces in the standard surroundings, not tried: build-path, tmpdir, home, \
             file-order"
        ),
        "{slow}"
    );
    assert!(
        run.stdout().contains("explaining: 1 rebuild in "),
        "{}",
        run.stdout()
    );
    let predicate =
        &statement(&repro_folder(&test).join("reproducibility.intoto.json"))["predicate"];
    let explanation = &predicate["explanation"];
    assert_eq!(explanation["rebuilds"], 1, "{explanation:#}");
    assert_eq!(explanation["budgetMs"], 7900);
    assert_eq!(
        explanation["notTried"].as_array().map(Vec::len),
        predicate["rebuild"]["variations"].as_array().map(Vec::len),
        "every variation the rebuild applied is left untried"
    );
    assert_eq!(
        predicate["results"][0]["attribution"]["kind"],
        "unexplained"
    );
    assert_eq!(
        predicate["results"][0]["attribution"]["notTried"][0],
        "build-path"
    );
}
