//! Step templates end to end: published into a registry folder (and the same folder served
//! over HTTP by Python's http.server on loopback), resolved into `gantry.lock`, run, updated,
//! yanked; refused when a pack is tampered with, signed by a key the pipeline does not trust,
//! or a minor release breaks the interface; `--locked` keeps the lock as it is. The attacks
//! (a tampered pack, an untrusted publisher, a swapped statement, ...) are in
//! `hostile::templates`.

use std::path::Path;

use crate::support::{Test, sha256_hex};

const TEMPLATE: &str = r#"[template]
name = "acme/greet"
version = "1.0.0"
description = "Writes a greeting"
gantry = ">=0.1"

[parameters.who]
type = "string"
description = "Whom to greet"

[parameters.shout]
type = "bool"
default = false

[steps.write]
run = ["sh", "-c", "mkdir -p out && echo \"hello $1\" > \"out/greeting-$1\"", "sh", "${{ who }}"]
outputs = ["out/greeting-${{ who }}"]
"#;

pub(crate) fn pipeline(registry: &str, keys: &str, range: &str) -> String {
    format!(
        r#"[pipeline]
name = "greetings"
root = "."

[registries.acme]
url = "{registry}"
keys = ["{keys}"]

[steps.hello]
uses = "acme/greet@{range}"
with = {{ who = "world" }}

[steps.check]
run = "grep -q 'hello world' out/greeting-world && echo ok > out/checked"
inputs = ["out/greeting-world"]
outputs = ["out/checked"]
needs = ["hello"]
"#
    )
}

/// The template at `version`, with `extra` added before its steps.
pub(crate) fn template(test: &Test, version: &str, extra: &str) -> String {
    let folder = format!("templates-src/greet-{version}");
    let text = TEMPLATE
        .replace("version = \"1.0.0\"", &format!("version = \"{version}\""))
        .replace("[steps.write]", &format!("{extra}[steps.write]"));
    test.write(&format!("{folder}/template.toml"), &text);
    folder
}

pub(crate) fn publish(test: &Test, folder: &str) -> crate::support::Run {
    test.run([
        "template",
        "publish",
        folder,
        "--registry",
        "registry",
        "--json",
    ])
}

fn lock_pin(test: &Test) -> (String, String) {
    let lock: toml::Table = toml::from_str(&test.read("gantry.lock")).expect("a TOML lock");
    let pin = &lock["template"].as_array().expect("pins")[0];
    (
        pin["version"].as_str().expect("version").to_owned(),
        pin["sha256"].as_str().expect("sha256").to_owned(),
    )
}

/// A registry of two versions under the development key, and the key trusted.
pub(crate) fn published() -> Test {
    let test = Test::new();
    let first = template(&test, "1.0.0", "");
    let published = publish(&test, &first).success();
    let json: serde_json::Value = serde_json::from_str(&published.stdout()).expect("json");
    let pack = test.path("registry/packs/acme/greet/1.0.0.tar");
    assert_eq!(
        json["sha256"].as_str(),
        Some(sha256_hex(&std::fs::read(&pack).expect("pack")).as_str())
    );
    // Any tar reads the pack.
    let listed = std::process::Command::new("tar")
        .args(["-tvf"])
        .arg(&pack)
        .output()
        .expect("tar");
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains("template.toml"), "{listing}");
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("keys/acme.pub", &public);
    test
}

/// A free port on loopback (bound, read and released).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    listener.local_addr().expect("address").port()
}

/// Python serving `folder` on loopback at `port` with `arguments` (`-m http.server ...` or
/// `-c SCRIPT`), once it accepts connections.
fn serve(folder: &std::path::Path, port: u16, arguments: &[&str]) -> std::process::Child {
    let server = std::process::Command::new("python3")
        .args(arguments)
        .current_dir(folder)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3 (apt-get install python3)");
    let up = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
    assert!(up, "the server on port {port} did not start");
    server
}

/// The greeting template with its greeting in a script beside it (`greet.sh`, writing
/// `script`), published with the development key, trusted, and a pipeline using it (without
/// the check step).
pub(crate) fn published_with_script(test: &Test, script: &str) {
    let folder = "templates-src/script";
    test.write(
        &format!("{folder}/template.toml"),
        &TEMPLATE.replace(
            "run = [\"sh\", \"-c\", \"mkdir -p out && echo \\\"hello $1\\\" > \\\"out/greeting-$1\\\"\", \"sh\", \"${{ who }}\"]",
            "run = [\"sh\", \"${{ template_dir }}/greet.sh\", \"${{ who }}\"]",
        ),
    );
    test.write(&format!("{folder}/greet.sh"), script);
    publish(test, folder).success();
    let public = test.run(["keys", "public"]).success().stdout();
    test.write("keys/acme.pub", &public);
    let full = pipeline("registry", "keys/acme.pub", "^1");
    test.write(
        "pipeline.toml",
        &full[..full.find("[steps.check]").expect("check")],
    );
}

#[test]
fn a_published_template_is_resolved_locked_run_updated_and_yanked() {
    let test = published();
    test.write(
        "pipeline.toml",
        &pipeline("registry", "keys/acme.pub", "^1"),
    );
    let run = test.gantry_run(&[]).success();
    let statuses = run.statuses();
    assert_eq!(
        statuses.get("hello.write").map(String::as_str),
        Some("executed"),
        "{statuses:?}"
    );
    assert_eq!(statuses.get("check").map(String::as_str), Some("executed"));
    assert_eq!(test.read("out/greeting-world"), "hello world\n");
    let pack = std::fs::read(test.path("registry/packs/acme/greet/1.0.0.tar")).expect("pack");
    assert_eq!(lock_pin(&test), ("1.0.0".to_owned(), sha256_hex(&pack)));

    // A compatible release: the lock keeps its pin until asked to update.
    let second = template(
        &test,
        "1.1.0",
        "[parameters.greeting]\ntype = \"string\"\ndefault = \"hello\"\n\n",
    );
    publish(&test, &second).success();
    test.gantry_run(&[]).success();
    assert_eq!(lock_pin(&test).0, "1.0.0");
    let updated = test.run(["template", "update", "pipeline.toml"]).success();
    assert!(
        updated.stdout().contains("acme/greet@1.1.0 from acme"),
        "{}",
        updated.stdout()
    );
    assert_eq!(lock_pin(&test).0, "1.1.0");

    // A minor release that breaks the interface is refused, naming the change.
    let breaking = template(&test, "1.2.0", "");
    let text = test
        .read(&format!("{breaking}/template.toml"))
        .replace("[parameters.shout]\ntype = \"bool\"\ndefault = false\n", "");
    test.write(&format!("{breaking}/template.toml"), &text);
    publish(&test, &breaking)
        .failure(2)
        .stderr_contains("parameter `shout` removed")
        .stderr_contains("new major version (2.0.0)");
    // A version is published once.
    publish(&test, &second)
        .failure(2)
        .stderr_contains("is published already");

    // Yanked, 1.1.0 is no longer picked; the highest other is.
    test.run([
        "template",
        "yank",
        "acme/greet@1.1.0",
        "--registry",
        "registry",
    ])
    .success();
    test.run(["template", "update", "pipeline.toml", "acme/greet"])
        .success();
    assert_eq!(lock_pin(&test).0, "1.0.0");

    // CI: a range the lock does not satisfy is refused, and the lock stays.
    let lock = test.read("gantry.lock");
    test.write(
        "pipeline.toml",
        &pipeline("registry", "keys/acme.pub", "^2"),
    );
    test.gantry_run(&["--locked"])
        .failure(1)
        .stderr_contains("which `^2` does not allow, and --locked keeps it");
    assert_eq!(test.read("gantry.lock"), lock);
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("`^2` allows no published version");
}

#[test]
fn a_registry_served_over_http_on_loopback_works_and_the_cache_works_offline() {
    let test = published();
    let port = free_port();
    let mut server = serve(
        &test.path("registry"),
        port,
        &[
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ],
    );
    let url = format!("http://127.0.0.1:{port}/");
    test.write("pipeline.toml", &pipeline(&url, "keys/acme.pub", "^1"));
    let run = test.gantry_run(&[]);
    let _ = server.kill();
    let _ = server.wait();
    run.success();
    assert_eq!(test.read("out/greeting-world"), "hello world\n");
    assert_eq!(lock_pin(&test).0, "1.0.0");
    // The server is gone: the lock and the cache are enough.
    std::fs::remove_dir_all(test.path("out")).expect("clear the outputs");
    std::fs::remove_dir_all(test.path(".gantry/ac")).ok();
    test.gantry_run(&["--locked"]).success();
    assert!(Path::new(&test.path("out/checked")).exists());
}

/// `gantry verify` with `[require] templates_from` and the approved pipeline: the run's
/// templates signed by a trusted publisher and pinned by the lock pass; another publisher
/// list, or a lock that moved on, fail with their reasons.
#[test]
fn verify_requires_templates_from_trusted_publishers_and_the_lock() {
    let test = published();
    test.write(
        "pipeline.toml",
        &pipeline("registry", "keys/acme.pub", "^1"),
    );
    let run = test.gantry_run(&[]).success();
    let folder = run.run_dir();
    let provenance = crate::support::envelope_statement(&folder.join("provenance.intoto.json"));
    let dependency = (provenance["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .expect("dependencies")
        .iter())
    .find(|dependency| dependency["name"] == "template:acme/greet@1.0.0")
    .expect("the template among the resolved dependencies")
    .clone();
    let pack = std::fs::read(test.path("registry/packs/acme/greet/1.0.0.tar")).expect("pack");
    assert_eq!(
        dependency["digest"]["sha256"].as_str(),
        Some(sha256_hex(&pack).as_str())
    );
    assert!(
        dependency["uri"]
            .as_str()
            .is_some_and(|uri| uri.ends_with("registry/packs/acme/greet/1.0.0.tar")),
        "{dependency}"
    );
    let link = crate::support::envelope_statement(&crate::support::attested(
        &folder,
        "hello.write.intoto.json",
    ));
    assert_eq!(
        link["predicate"]["environment"]["template"]["step"], "write",
        "{link}"
    );
    assert_eq!(
        link["predicate"]["environment"]["template"]["version"],
        "1.0.0"
    );

    let verify = |trusted: &str| {
        test.write(
            "policy.toml",
            &format!(
                "[policy]\nname = \"templates\"\n[[keys]]\nid = \"dev\"\npublic = \"keys/acme.pub\"\nsteps = [\"*\"]\n[require]\npipeline = \"pipeline.toml\"\ntemplates_from = [{trusted}]\n"
            ),
        );
        let run = test.run([
            "verify",
            "--policy",
            "policy.toml",
            "--attestations",
            folder.to_str().expect("utf8"),
            "--json",
            "out/checked",
        ]);
        let report: serde_json::Value = serde_json::from_str(&run.stdout())
            .unwrap_or_else(|_| panic!("a JSON report: {}{}", run.stdout(), run.stderr()));
        let check = (report["checks"].as_array().expect("checks").iter())
            .find(|check| check["check"] == "templates")
            .expect("a templates check")
            .clone();
        (run.code(), check)
    };
    let (code, check) = verify("\"dev\"");
    assert_eq!(code, 0, "{check}");
    let (code, check) = verify("\"someone-else\"");
    assert_eq!(code, 1, "{check}");
    assert_eq!(
        check["failures"][0]["reason"], "template-not-trusted",
        "{check}"
    );

    // The lock moves on to 1.1.0: the run's 1.0.0 is no longer the approved pin.
    let second = template(&test, "1.1.0", "");
    publish(&test, &second).success();
    test.run(["template", "update", "pipeline.toml"]).success();
    let (code, check) = verify("\"dev\"");
    assert_eq!(code, 1, "{check}");
    assert_eq!(
        check["failures"][0]["reason"], "template-not-locked",
        "{check}"
    );
}

/// `template search`, `info` and the catalogue page, which headless Chromium renders: every
/// template, its versions (the yanked one marked), its parameters and its publisher's key.
#[test]
fn a_registry_is_searched_described_and_rendered_as_a_page_chromium_reads() {
    crate::support::require_tool(
        "chromium",
        "--version",
        "apt-get install chromium (scripts/test.sh installs it)",
    );
    let test = published();
    let second = template(&test, "1.1.0", "");
    publish(&test, &second).success();
    test.run([
        "template",
        "yank",
        "acme/greet@1.1.0",
        "--registry",
        "registry",
    ])
    .success();
    let found = test
        .run([
            "template",
            "search",
            "greeting",
            "--registry",
            "registry",
            "--json",
        ])
        .success()
        .stdout();
    let found: serde_json::Value = serde_json::from_str(&found).expect("json");
    assert_eq!(found[0]["name"], "acme/greet", "{found}");
    assert_eq!(
        found[0]["version"], "1.0.0",
        "the newest not yanked: {found}"
    );
    let nothing = test
        .run([
            "template",
            "search",
            "nothing-like-it",
            "--registry",
            "registry",
        ])
        .success()
        .stdout();
    assert!(nothing.is_empty(), "{nothing}");
    let info = test
        .run(["template", "info", "acme/greet", "--registry", "registry"])
        .success()
        .stdout();
    assert!(
        info.contains("1.1.0 (yanked)") && info.contains("who: string, required"),
        "{info}"
    );

    test.run(["template", "index", "--registry", "registry", "--html"])
        .success();
    let page = test.read("registry/index.html");
    assert!(
        !page.contains("<script") && !page.contains("src="),
        "self-contained"
    );
    let dom = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!(
            "file://{}",
            test.path("registry/index.html").display()
        ))
        .env("HOME", test.path("home"))
        .output()
        .expect("chromium");
    let dom = String::from_utf8_lossy(&dom.stdout);
    let key = test
        .read("registry/index/acme/greet.json")
        .split("\"key\": \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the publisher's key id")
        .to_owned();
    for expected in [
        "<h2 id=\"acme/greet\">acme/greet</h2>",
        "1.1.0 (yanked)",
        "<code>who</code>",
        key.as_str(),
    ] {
        assert!(
            dom.contains(expected),
            "Chromium's DOM lacks {expected}: {dom}"
        );
    }
}

/// A template's other files (a script) ship in its pack and reach its steps read-only at
/// `${{ template_dir }}`; the unpacked copy in the cache is made again when it was changed.
#[test]
fn a_templates_script_reaches_its_steps_and_an_edited_copy_is_restored() {
    let test = Test::new();
    published_with_script(
        &test,
        "mkdir -p out && echo \"hello from a script, $1\" > \"out/greeting-$1\"\n",
    );
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(test.path("registry/packs/acme/greet/1.0.0.tar"))
        .output()
        .expect("tar");
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout),
        "greet.sh\ntemplate.toml\n"
    );
    test.gantry_run(&[]).success();
    assert_eq!(
        test.read("out/greeting-world"),
        "hello from a script, world\n"
    );

    // The unpacked copy edited in the cache: made again from the pack on the next run.
    let pack = std::fs::read(test.path("registry/packs/acme/greet/1.0.0.tar")).expect("pack");
    let script = test
        .path(".gantry/templates")
        .join(format!("{}.files/greet.sh", sha256_hex(&pack)));
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod");
    std::fs::write(&script, "echo pwned > out/greeting-world\n").expect("edit");
    std::fs::remove_dir_all(test.path("out")).expect("clear");
    std::fs::remove_dir_all(test.path(".gantry/ac")).ok();
    test.gantry_run(&[]).success();
    assert_eq!(
        test.read("out/greeting-world"),
        "hello from a script, world\n"
    );
}

/// The project's `gantry.toml` at the root names registries for every pipeline; a pipeline's
/// own registry of the same name wins.
#[test]
fn registries_named_in_the_projects_gantry_toml_serve_every_pipeline() {
    let test = published();
    let full = pipeline("registry", "keys/acme.pub", "^1");
    let start = full.find("[registries.acme]").expect("registries");
    let end = full.find("[steps.hello]").expect("steps");
    test.write("gantry.toml", &full[start..end]);
    test.write(
        "pipeline.toml",
        &format!("{}{}", &full[..start], &full[end..]),
    );
    test.gantry_run(&[]).success();
    assert_eq!(test.read("out/greeting-world"), "hello world\n");
    // The pipeline's own `acme`, pointing nowhere, wins over the project's.
    test.write(
        "pipeline.toml",
        &full.replace("url = \"registry\"", "url = \"elsewhere\""),
    );
    std::fs::remove_file(test.path("gantry.lock")).expect("unlock");
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("no registry lists `acme/greet`");
}

/// Two uses of one template whose ranges no published version satisfies together: the error
/// names both ranges and what each alone would take, at each use's line.
#[test]
fn a_conflict_between_two_uses_is_named() {
    let test = published();
    let second = template(&test, "2.0.0", "");
    publish(&test, &second).success();
    let full = pipeline("registry", "keys/acme.pub", "^1");
    test.write(
        "pipeline.toml",
        &format!("{full}\n[steps.again]\nuses = \"acme/greet@^2\"\nwith = {{ who = \"again\" }}\n"),
    );
    test.gantry_run(&[])
        .failure(1)
        .stderr_contains("no version of `acme/greet` in registry `acme` satisfies `^1` and `^2`: `^1` alone takes 1.0.0; `^2` alone takes 2.0.0")
        .stderr_contains("pipeline.toml:10:8")
        .stderr_contains("pipeline.toml:20:8");
    assert!(!test.path("out").exists(), "nothing ran");
}

/// A registry on an HTTPS site (Python's http.server behind TLS on loopback, its certificate
/// made here and trusted through `CURL_CA_BUNDLE`): read with the host's curl; the same
/// registry under a certificate nobody trusts is refused.
#[test]
fn a_registry_served_over_https_is_read_with_its_certificate_checked() {
    crate::support::require_tool("curl", "--version", "apt-get install curl");
    let test = published();
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(test.path("tls.key"))
        .arg("-out")
        .arg(test.path("tls.crt"))
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = free_port();
    let server_script = format!(
        "import http.server, ssl\nserver = http.server.ThreadingHTTPServer(('127.0.0.1', {port}), http.server.SimpleHTTPRequestHandler)\ncontext = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\ncontext.load_cert_chain('{}', '{}')\nserver.socket = context.wrap_socket(server.socket, server_side=True)\nserver.serve_forever()\n",
        test.path("tls.crt").display(),
        test.path("tls.key").display()
    );
    let mut server = serve(&test.path("registry"), port, &["-c", &server_script]);
    test.write(
        "pipeline.toml",
        &pipeline(&format!("https://127.0.0.1:{port}/"), "keys/acme.pub", "^1"),
    );
    let untrusted = test
        .command()
        .args(["run", "pipeline.toml"])
        .output()
        .expect("gantry");
    let trusted = test
        .command()
        .env("CURL_CA_BUNDLE", test.path("tls.crt"))
        .args(["run", "pipeline.toml", "--json"])
        .output()
        .expect("gantry");
    let _ = server.kill();
    let _ = server.wait();
    crate::support::Run { output: untrusted }
        .failure(1)
        .stderr_contains("certificate");
    crate::support::Run { output: trusted }.success();
    assert_eq!(test.read("out/greeting-world"), "hello world\n");
    assert!(test.read("gantry.lock").contains("registry = \"acme\""));
}
