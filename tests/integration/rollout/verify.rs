//! A rollout verifies its artifact against a policy before any traffic moves, and
//! `gantry verify` can require the signed rollout record: the release is the artifact that
//! was built, passed its policy and was promoted.

use super::site::{Proxy, Site, pipeline, run_under_load, serial, site};

const BUILD: &str = "[steps.package]\nrun = \"mkdir -p out && echo release 2 > out/app.tar && echo notes > out/notes.txt\"\noutputs = [\"out/app.tar\", \"out/notes.txt\"]\n\n";

/// A policy over the run's steps, with `require` lines added.
fn policy(require: &str) -> String {
    format!(
        "[policy]\nname = \"deploy\"\n\n[[keys]]\nid = \"dev\"\npublic = \"dev.pub\"\nsteps = [\"*\"]\n\n[require]\n{require}tools = [\"/usr\", \"/usr/bin/*\", \"/bin/*\"]\n"
    )
}

/// The site's pipeline, rolling out the built `out/app.tar` after verifying it.
fn verified_pipeline(site: &Site<Proxy>, policy: &str) -> String {
    let plain = pipeline(
        site,
        "blue-green",
        &format!(
            "rollback_window = \"1s\"\ncanary = {{ interval = \"200ms\" }}\nverify = {{ policy = \"{policy}\" }}\n"
        ),
    );
    plain
        .replace("subject = \"app.tar\"", "subject = \"out/app.tar\"")
        .replace("[steps.deploy]", &format!("{BUILD}[steps.deploy]"))
}

fn trust_the_development_key(site: &Site<Proxy>) {
    let key = site.test.run(["keys", "public"]).success().stdout();
    site.test.write("policies/dev.pub", &key);
}

#[test]
fn a_rollout_verifies_its_artifact_first_and_verify_requires_its_record() {
    let _serial = serial();
    let site = site(0);
    trust_the_development_key(&site);
    site.test.write(
        "policies/deploy.toml",
        &policy("steps = [\"package\"]\nprovenance = false\n"),
    );
    site.test.write(
        "pipeline.toml",
        &verified_pipeline(&site, "policies/deploy.toml"),
    );
    let (run, load) = run_under_load(&site, 3, true);
    assert_eq!(load.failed, 0, "{}", load.text);
    assert!(
        run.stdout()
            .contains("`out/app.tar` passes the policy `policies/deploy.toml`"),
        "{}",
        run.stdout()
    );
    let record = super::site::record(&run);
    let verified = &record["predicate"]["verified"];
    assert_eq!(verified["passed"], true);
    assert_eq!(verified["policy"], "policies/deploy.toml");
    assert_eq!(site.front.weights(), (0, 100));

    // The auditor's side: the release policy requires the promotion.
    site.test.write(
        "policies/release.toml",
        &policy(
            "steps = [\"package\", \"deploy\"]\nrollout = true\nsources = [\"policies/*.toml\"]\n",
        ),
    );
    let folder = run.run_dir();
    let folder = folder.to_str().expect("utf-8");
    let verify = |artifact: &str| {
        site.test.run([
            "verify",
            "--policy",
            "policies/release.toml",
            "--attestations",
            folder,
            "--json",
            artifact,
        ])
    };
    let passed = verify("out/app.tar").success();
    let report: serde_json::Value = serde_json::from_str(&passed.stdout()).expect("json");
    let rollout = (report["checks"].as_array().expect("checks").iter())
        .find(|check| check["check"] == "rollout")
        .expect("a rollout check")
        .clone();
    assert_eq!(rollout["passed"], true, "{report}");
    assert_eq!(rollout["required"], true);
    // Built by the same run, but never rolled out.
    let failed = verify("out/notes.txt").failure(1);
    assert!(
        failed.stdout().contains("not-rolled-out"),
        "{}",
        failed.stdout()
    );
}

#[test]
fn an_artifact_that_fails_its_policy_is_never_rolled_out() {
    let _serial = serial();
    let site = site(0);
    trust_the_development_key(&site);
    site.test.write(
        "policies/deploy.toml",
        &policy("steps = [\"package\", \"sbom\"]\nprovenance = false\n"),
    );
    site.test.write(
        "pipeline.toml",
        &verified_pipeline(&site, "policies/deploy.toml"),
    );
    let run = site.test.run(["run", "pipeline.toml", "--json"]).failure(1);
    let stdout = run.stdout();
    assert!(
        stdout.contains("`out/app.tar` fails the policy `policies/deploy.toml`")
            && stdout.contains("sbom")
            && stdout.contains("nothing was changed"),
        "{stdout}"
    );
    assert_eq!(run.statuses()["deploy"], "failed");
    assert_eq!(site.front.weights(), (100, 0));
}
