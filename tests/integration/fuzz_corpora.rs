//! Every input the fuzzers kept (`fuzz/corpus/<target>/`) and every crash they found and we
//! fixed (`fuzz/regressions/<target>/`) goes through its parser again on every test run,
//! without the nightly toolchain the fuzzers need (docs/security.md, property 12).

use std::path::Path;

#[test]
fn every_fuzz_corpus_input_still_parses_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for (name, target) in gantry::fuzz::TARGETS {
        let mut inputs = 0;
        for folder in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(folder).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("corpus entry").path();
                let bytes = std::fs::read(&path).expect("corpus file");
                let outcome = std::panic::catch_unwind(|| target(&bytes));
                assert!(
                    outcome.is_ok(),
                    "{} panics the `{name}` parser",
                    path.display()
                );
                inputs += 1;
            }
        }
        assert!(
            inputs > 0,
            "the `{name}` target has no corpus under fuzz/corpus/{name}"
        );
        replayed += inputs;
    }
    eprintln!("replayed {replayed} fuzz inputs");
}
