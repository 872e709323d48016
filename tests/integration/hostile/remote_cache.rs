//! A remote (REAPI) action cache is untrusted storage: anyone who may write to it can map an
//! action to any result. gantry keeps the link it signed for a fresh remote run beside the
//! result, and takes a result from the remote's cache only when such a link, signed by a
//! trusted key, names the action and lists exactly the result's outputs.

use std::process::Command;

use crate::grid::Grid;
use crate::hostile::{says, shared_key};
use crate::support::Test;

const PIPELINE: &str = r#"[steps.a]
run = "echo real > out/a"
outputs = ["out/a"]

[steps.t]
run = "mkdir -p out/t/deep; echo tree > out/t/deep/f"
outputs = ["out/t/"]
"#;

/// The remote action a step's link names (`hash/size`).
fn remote_action(run: &crate::support::Run, step: &str) -> String {
    let link = crate::support::attested(&run.run_dir(), format!("{step}.intoto.json"));
    let statement = crate::attestations::statement(&link);
    statement["predicate"]["environment"]["sandbox"]["remoteAction"]
        .as_str()
        .expect("the link names its remote action")
        .to_owned()
}

fn cache_hits(run: &crate::support::Run) -> Vec<bool> {
    ["a", "t"]
        .iter()
        .map(|step| {
            let link = crate::support::attested(&run.run_dir(), format!("{step}.intoto.json"));
            crate::attestations::statement(&link)["predicate"]["environment"]["sandbox"]
                ["remoteCacheHit"]
                .as_bool()
                .expect("remoteCacheHit")
        })
        .collect()
}

/// As an attacker with write access to the remote: runs `script` (after helpers to store a blob
/// and map an action to a result) with `BuildGrid`'s own Python client and `args`.
fn attack(grid: &Grid, script: &str, args: &[&str]) {
    let python = std::path::Path::new(grid.bgd()).with_file_name("python");
    let helpers = r#"
import hashlib, sys, grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2 as re
from buildgrid._protos.build.bazel.remote.execution.v2 import remote_execution_pb2_grpc as rg
channel = grpc.insecure_channel(sys.argv[1])
def store(data):
    digest = re.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
    rg.ContentAddressableStorageStub(channel).BatchUpdateBlobs(re.BatchUpdateBlobsRequest(
        requests=[re.BatchUpdateBlobsRequest.Request(digest=digest, data=data)]))
    return digest
def map_to(action_digest, path, digest):
    rg.ActionCacheStub(channel).UpdateActionResult(re.UpdateActionResultRequest(
        action_digest=action_digest,
        action_result=re.ActionResult(output_files=[re.OutputFile(path=path, digest=digest)])))
def parse(text):
    hash, size = text.split("/")
    return re.Digest(hash=hash, size_bytes=int(size))
"#;
    let target = grid.url().trim_start_matches("grpc://");
    let output = Command::new(python)
        .args(["-c", &format!("{helpers}{script}"), target])
        .args(args)
        .output()
        .expect("python");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Maps `action` to a result whose `path` holds `content`.
fn poison(grid: &Grid, action: &str, path: &str, content: &str) {
    let script = "map_to(parse(sys.argv[2]), sys.argv[3], store(sys.argv[4].encode()))";
    attack(grid, script, &[action, path, content]);
}

/// Keeps the envelope in file `link` as the link key `key_id` signed for `action`, where
/// gantry looks for it (the made-up action whose salt names both).
fn plant_link(grid: &Grid, action: &str, key_id: &str, link: &std::path::Path) {
    let script = r#"
action, key_id, link = sys.argv[2:5]
command = store(re.Command(arguments=["true"]).SerializeToString())
root = store(re.Directory().SerializeToString())
entry = store(re.Action(command_digest=command, input_root_digest=root,
    salt=f"gantry link for action {action} signed by key {key_id}".encode()).SerializeToString())
map_to(entry, "link.intoto.json", store(open(link, "rb").read()))
"#;
    attack(
        grid,
        script,
        &[action, key_id, link.to_str().expect("utf-8")],
    );
}

/// The key id a link's signature names.
fn key_id(link: &std::path::Path) -> String {
    crate::attestations::envelope(link)["signatures"][0]["keyid"]
        .as_str()
        .expect("keyid")
        .to_owned()
}

#[test]
fn a_remote_cache_result_is_used_only_when_a_trusted_link_vouches_for_it() {
    let grid = Grid::start(10);
    let worker = grid.worker("w", 2);
    let workspace = || Test::new().pipeline(PIPELINE);
    let first = workspace();
    let key = shared_key(&first);
    let remote = |test: &Test, key: &str| {
        test.gantry_run(&["--remote", grid.url(), "--key", key])
            .success()
    };
    let run = remote(&first, &key);
    let first_run_dir = run.run_dir();
    assert_eq!(cache_hits(&run), [false, false]);
    assert_eq!(worker.started().len(), 2);
    let action = remote_action(&run, "a");

    // Legitimate: another machine with the same key takes both results from the remote.
    let second = workspace();
    let run = remote(&second, &key);
    assert_eq!(cache_hits(&run), [true, true]);
    assert_eq!(worker.started().len(), 2, "nothing ran again");
    assert_eq!(second.read("out/t/deep/f"), "tree\n");

    // A machine with a key nobody trusted runs both again, and says why.
    let other = workspace();
    let other_key = shared_key(&other);
    let run = remote(&other, &other_key);
    let other_run_dir = run.run_dir();
    assert_eq!(cache_hits(&run), [false, false]);
    assert_eq!(worker.started().len(), 4);
    says(
        &run,
        &format!(
            "the remote action cache's result for action {action} is not vouched for: no link signed by a trusted key is kept beside it; ran the action again"
        ),
    );

    // Both keys' links are kept: the first key still takes the (same) results.
    let third = workspace();
    let run = remote(&third, &key);
    assert_eq!(cache_hits(&run), [true, true]);
    assert_eq!(worker.started().len(), 4);

    // An attacker maps the action to a result of their own: it is not restored, the step
    // runs again, and the forged bytes are in no output, link or provenance.
    poison(&grid, &action, "out/a", "forged\n");
    let victim = workspace();
    let run = remote(&victim, &key);
    says(
        &run,
        &format!(
            "the remote action cache's result for action {action} is not vouched for: its outputs are not the subjects of its link; ran the action again"
        ),
    );
    assert_eq!(victim.read("out/a"), "real\n");
    assert_eq!(cache_hits(&run), [false, true]);
    assert_eq!(worker.started().len(), 5);
    let forged = crate::support::sha256_hex(b"forged\n");
    for entry in std::fs::read_dir(run.run_dir()).expect("run folder") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).unwrap_or_default();
        assert!(!text.contains(&forged), "a forged digest was signed");
    }
    // A link signed by a key nobody trusted, planted where the trusted key's link is kept.
    let own = crate::support::attested(&run.run_dir(), "a.intoto.json");
    let trusted_id = key_id(&own);
    let foreign = crate::support::attested(&other_run_dir, "a.intoto.json");
    plant_link(&grid, &action, &trusted_id, &foreign);
    poison(&grid, &action, "out/a", "forged\n");
    let victim = workspace();
    let run = remote(&victim, &key);
    says(
        &run,
        "its link is not signed by this run's key or a key given with --trust-cache-key",
    );
    assert_eq!(victim.read("out/a"), "real\n");

    // A genuine link, replayed: step t's link, kept as step a's.
    plant_link(
        &grid,
        &action,
        &trusted_id,
        &crate::support::attested(&first_run_dir, "t.intoto.json"),
    );
    poison(&grid, &action, "out/a", "forged\n");
    let victim = workspace();
    let run = remote(&victim, &key);
    says(&run, "its link was made for another action");
    assert_eq!(victim.read("out/a"), "real\n");

    // The fresh run put the real result back: the next machine takes it again.
    let next = workspace();
    let run = remote(&next, &key);
    assert_eq!(cache_hits(&run), [true, true]);
    assert_eq!(next.read("out/a"), "real\n");
}
