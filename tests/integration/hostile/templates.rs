//! Hostile registries, packs and template folders: a pack changed after the lock pinned it, a
//! publisher the pipeline does not trust, a statement taken from another version, a cached
//! pack edited, a template folder holding a link, a value that looks like a reference.

use crate::support::{Test, sha256_hex};
use crate::templates::{pipeline, publish, published, template};

#[test]
fn a_tampered_pack_and_an_untrusted_publisher_are_refused_before_anything_runs() {
    let test = published();
    test.write(
        "pipeline.toml",
        &pipeline("registry", "keys/acme.pub", "^1"),
    );
    test.gantry_run(&[]).success();
    std::fs::remove_dir_all(test.path(".gantry/templates")).expect("clear the cache");
    std::fs::remove_dir_all(test.path("out")).expect("clear the outputs");

    // The registry's pack changed after the lock pinned it.
    let pack = test.path("registry/packs/acme/greet/1.0.0.tar");
    let original = std::fs::read(&pack).expect("pack");
    let mut tampered = original.clone();
    let at = (tampered.windows(5))
        .position(|window| window == b"hello")
        .expect("the script's text");
    tampered[at..at + 5].copy_from_slice(b"pwned");
    std::fs::write(&pack, &tampered).expect("tamper");
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("refused `acme/greet@1.0.0`: its pack is sha256:");
    assert!(!test.path("out").exists(), "nothing ran");
    std::fs::write(&pack, &original).expect("restore");

    // Signed by someone the pipeline does not trust.
    let mallory = test
        .command()
        .env("HOME", test.path("mallory"))
        .args(["keys", "public"])
        .output()
        .expect("mallory's key");
    test.write(
        "keys/mallory.pub",
        &String::from_utf8_lossy(&mallory.stdout),
    );
    test.write(
        "pipeline.toml",
        &pipeline("registry", "keys/mallory.pub", "^1"),
    );
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("its signature does not verify with a key the registry's `keys` name");
    assert!(!test.path("out").exists(), "nothing ran");

    // A cached pack whose bytes changed is fetched again.
    test.write(
        "pipeline.toml",
        &pipeline("registry", "keys/acme.pub", "^1"),
    );
    test.gantry_run(&[]).success();
    let cached = test
        .path(".gantry/templates")
        .join(format!("{}.tar", sha256_hex(&original)));
    std::fs::write(&cached, b"not the pack").expect("tamper the cache");
    std::fs::remove_dir_all(test.path("out")).expect("clear the outputs");
    std::fs::remove_dir_all(test.path(".gantry/ac")).ok();
    test.gantry_run(&[]).success();
    assert_eq!(std::fs::read(&cached).expect("cached"), original);
}

#[test]
fn a_statement_from_another_version_is_refused() {
    let test = published();
    let second = template(&test, "1.1.0", "");
    publish(&test, &second).success();
    test.write(
        "pipeline.toml",
        &pipeline("registry", "keys/acme.pub", "=1.0.0"),
    );
    // The registry serves 1.1.0's (validly signed) statement as 1.0.0's.
    std::fs::copy(
        test.path("registry/packs/acme/greet/1.1.0.tar.intoto.json"),
        test.path("registry/packs/acme/greet/1.0.0.tar.intoto.json"),
    )
    .expect("swap");
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("refused `acme/greet@1.0.0`: its statement is about another pack");
    assert!(!test.path("out").exists(), "nothing ran");
}

#[test]
fn a_template_folder_with_a_link_is_not_published() {
    let test = Test::new();
    let folder = template(&test, "1.0.0", "");
    std::os::unix::fs::symlink("/etc/passwd", test.path(&format!("{folder}/passwd")))
        .expect("a link");
    publish(&test, &folder)
        .failure(2)
        .stderr_contains("`passwd` in the template is not a regular file");
    assert!(!test.path("registry").exists(), "nothing published");
}

#[test]
fn a_value_that_looks_like_a_reference_is_data() {
    let test = published();
    let full = pipeline("registry", "keys/acme.pub", "^1");
    let text = full[..full.find("[steps.check]").expect("the check step")]
        .replace("who = \"world\"", "who = \"${{ shout }}\"");
    test.write("pipeline.toml", &text);
    // Filled again it would be `out/greeting-false`; as data it is a glob, refused at the
    // template's line.
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("output `out/greeting-${{ shout }}` is a glob");
    assert!(!test.path("out").exists(), "nothing ran");
}

/// The template cache is never followed through a link: `.gantry/templates` as a link is
/// refused; an unpacked files folder replaced by a link (to a copy an earlier step could
/// overwrite) is made again as a real folder from the verified pack.
#[test]
fn links_in_the_template_cache_are_refused_or_replaced() {
    let test = Test::new();
    crate::templates::published_with_script(
        &test,
        "mkdir -p out && echo \"hello $1\" > \"out/greeting-$1\"\n",
    );
    test.gantry_run(&[]).success();

    let pack = std::fs::read(test.path("registry/packs/acme/greet/1.0.0.tar")).expect("pack");
    let files = test
        .path(".gantry/templates")
        .join(format!("{}.files", sha256_hex(&pack)));
    // A link to a copy elsewhere (here identical; an earlier step could rewrite it).
    crate::support::copy_tree(&files, &test.path("elsewhere"));
    std::fs::remove_dir_all(&files).expect("remove");
    std::os::unix::fs::symlink(test.path("elsewhere"), &files).expect("link");
    std::fs::remove_dir_all(test.path("out")).expect("clear");
    std::fs::remove_dir_all(test.path(".gantry/ac")).ok();
    test.gantry_run(&[]).success();
    let metadata = std::fs::symlink_metadata(&files).expect("files");
    assert!(metadata.is_dir(), "a real folder again, not a link");

    // The cache folder itself a link: refused before anything runs.
    std::fs::rename(test.path(".gantry/templates"), test.path("cache-elsewhere")).expect("move");
    std::os::unix::fs::symlink(test.path("cache-elsewhere"), test.path(".gantry/templates"))
        .expect("link");
    std::fs::remove_dir_all(test.path("out")).expect("clear");
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("not a folder (a link?)");
    assert!(!test.path("out").exists(), "nothing ran");
}

/// A registry that cannot answer stops the resolution: the next one listing the same name
/// does not get to supply the template.
#[test]
fn a_failing_registry_does_not_hand_the_template_to_the_next() {
    let test = published();
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        listener.local_addr().expect("address").port()
    };
    let text = pipeline("registry", "keys/acme.pub", "^1").replace(
        "[registries.acme]",
        &format!("[registries.first]\nurl = \"http://127.0.0.1:{closed}/\"\nkeys = [\"keys/acme.pub\"]\n\n[registries.acme]"),
    );
    test.write("pipeline.toml", &text);
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("registry `first`");
    assert!(!test.path("gantry.lock").exists(), "no lock written");
    assert!(!test.path("out").exists(), "nothing ran");
}
