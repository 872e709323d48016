//! Entry points for the coverage-guided fuzzers (`fuzz/`, cargo-fuzz with libFuzzer) and for
//! the integration test that replays their committed corpora on every CI run. Each takes
//! untrusted bytes, runs one parser gantry points at files or messages from outside, and must
//! neither panic, nor hang, nor allocate without bound (docs/security.md, property 12).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message as _;

use crate::diagnostic::SourceFile;
use crate::keys::Verifier;

/// A fuzz target: untrusted bytes in, nothing out.
pub type Target = fn(&[u8]);

/// Every target by name, for the replay test and `fuzz/`.
pub const TARGETS: &[(&str, Target)] = &[
    ("pipeline", pipeline),
    ("policy", policy),
    ("envelope", envelope),
    ("junit", junit),
    ("lcov", lcov),
    ("cobertura", cobertura),
    ("sarif", sarif),
    ("metrics", metrics),
    ("criterion", criterion),
    ("cargo_lock", cargo_lock),
    ("run_log", run_log),
    ("reapi", reapi),
];

fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

fn source(text: &str, name: &str) -> SourceFile {
    SourceFile {
        path: PathBuf::from(name),
        text: Arc::from(text),
    }
}

/// A pipeline file: parsed, validated, and its diagnostics rendered.
pub fn pipeline(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let location = crate::pipeline::validate::Location {
        file: Path::new("/fuzz/pipeline.toml"),
        default_root: Path::new("/fuzz"),
        templates: &crate::template::Templates::new(),
    };
    if let Err(diagnostics) =
        crate::pipeline::validate::parse(&source(text, "pipeline.toml"), &location)
    {
        let _ = diagnostics.render();
    }
}

/// A verification policy: parsed and its diagnostics rendered.
pub fn policy(data: &[u8]) {
    let Some(text) = text(data) else { return };
    if let Err(diagnostics) = crate::verify::policy::parse(&source(text, "policy.toml")) {
        let _ = diagnostics.render();
    }
}

/// A DSSE envelope around an in-toto Statement, as `gantry verify` reads attestation files.
pub fn envelope(data: &[u8]) {
    let _ = crate::verify::evidence::parse(PathBuf::from("fuzz.intoto.json"), 0, data);
}

pub fn junit(data: &[u8]) {
    if let Some(cases) = text(data).and_then(|text| crate::gauntlet::junit::read(text).ok()) {
        let _ = crate::gauntlet::junit::measure(&cases);
    }
}

pub fn lcov(data: &[u8]) {
    if let Some(coverage) = text(data).and_then(|text| crate::gauntlet::coverage::lcov(text).ok()) {
        let _ = crate::gauntlet::coverage::measure(&coverage);
    }
}

pub fn cobertura(data: &[u8]) {
    if let Some(coverage) =
        text(data).and_then(|text| crate::gauntlet::coverage::cobertura(text).ok())
    {
        let _ = crate::gauntlet::coverage::measure(&coverage);
    }
}

pub fn sarif(data: &[u8]) {
    if let Some(findings) = text(data).and_then(|text| crate::gauntlet::sarif::read(text).ok()) {
        let _ = crate::gauntlet::sarif::measure(&findings);
    }
}

/// A metrics JSON file read through a few JSON pointers.
pub fn metrics(data: &[u8]) {
    if let Some(text) = text(data) {
        let _ = crate::gauntlet::metrics::measure(text, &["/p95", "/latency/0/ms", "/a~1b"]);
    }
}

/// criterion's `estimates.json`, as the new and the baseline side of one benchmark.
pub fn criterion(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let middle = (0..=text.len() / 2)
        .rev()
        .find(|&at| text.is_char_boundary(at))
        .unwrap_or(0);
    let (new, base) = text.split_at(middle);
    let files = [
        ("bench/new/estimates.json", new),
        ("bench/main/estimates.json", base),
    ];
    if let Ok(found) = crate::gauntlet::criterion::read(&files, "main") {
        let _ = crate::gauntlet::criterion::measure(&found);
    }
}

/// A Cargo.lock, as an sbom step reads it.
pub fn cargo_lock(data: &[u8]) {
    let Some(text) = text(data) else { return };
    let subject = crate::sbom::Subject {
        name: "out/app".to_owned(),
        digest: None,
        about: None,
    };
    let _ = crate::sbom::cargo::inventory(text, subject, &|_, _| None);
}

/// The run log and its head, split at the first NUL: read as `gantry log show` and checked as
/// `gantry log verify` does (with a verifier that accepts every signature, so the chain and
/// head checks behind the signature check are reached).
pub fn run_log(data: &[u8]) {
    struct AcceptEverything;
    impl Verifier for AcceptEverything {
        fn key_id(&self) -> &'static str {
            "fuzz"
        }
        fn verify(&self, _: &[u8], _: &[u8]) -> bool {
            true
        }
    }
    let (log, head) = match data.iter().position(|&byte| byte == 0) {
        Some(at) => (&data[..at], Some(&data[at + 1..])),
        None => (data, None),
    };
    let _ = crate::runlog::record::read_unverified(log);
    let _ = crate::runlog::record::read_head_unverified(head.unwrap_or_default());
    let _ = crate::runlog::verify(log, head, &AcceptEverything);
}

/// The REAPI and Remote Workers messages gantry decodes from a server or a worker: an output
/// `Tree` (decoded and flattened into paths), a `Directory`, an `Action`, a `Command`, an
/// `ExecuteResponse` and a `BotSession`.
pub fn reapi(data: &[u8]) {
    use crate::remote::reapi;
    if let Ok(tree) = reapi::Tree::decode(data) {
        let _ = crate::remote::tree::flatten(&tree);
    }
    let _ = reapi::Directory::decode(data);
    let _ = reapi::Action::decode(data);
    let _ = reapi::Command::decode(data);
    let _ = reapi::ExecuteResponse::decode(data);
    let _ = crate::remote::bots::BotSession::decode(data);
}
