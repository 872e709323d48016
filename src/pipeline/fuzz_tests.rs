//! Property tests: no input, however broken, makes the parser or the diagnostics renderer
//! panic, and every error it reports points inside the file.

use proptest::prelude::*;

use crate::pipeline::validate::parse_test_text;

const VALID: &str = r#"[pipeline]
name = "hello"
root = "."
[defaults]
env = { LANG = "C.UTF-8" }
timeout = "10m"
retry = { attempts = 2 }
[steps.compile]
run = ["sh", "-c", "cat src/a.txt src/b.txt > out/ab.txt"]
inputs = ["src/*.txt", "lib/**/[ab]?.{c,h}"]
outputs = ["out/ab.txt", "out/dir/"]
env = { MODE = "release" }
[steps.package]
run = "tar -cf out/pkg.tar out/ab.txt"
inputs = ["out/ab.txt"]
outputs = ["out/pkg.tar"]
needs = ["compile"]
network = false
timeout = "1h30m"
retry = { attempts = 3, backoff = "1s" }
"#;

fn check(text: &str) {
    if let Err(diagnostics) = parse_test_text(text) {
        assert!(!diagnostics.items.is_empty());
        for item in &diagnostics.items {
            if let Some(span) = &item.span {
                assert!(
                    span.start <= text.len(),
                    "span {span:?} outside a {}-byte file",
                    text.len()
                );
            }
        }
        let rendered = diagnostics.render();
        assert!(rendered.contains("error:"));
    }
}

fn splice(text: &str, at: usize, remove: usize, insert: &str) -> String {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let mut end = (at + remove).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    format!("{}{insert}{}", &text[..at], &text[end..])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check(&text);
    }

    #[test]
    fn mutated_valid_pipelines_never_panic(
        at in 0usize..VALID.len(),
        remove in 0usize..12,
        insert in prop::sample::select(vec!["", "\"", "[", "]", "=", "\n", "..", "/", "*", "{", "}", "é", "\0", "steps.", "kind = \"x\"\n", "[steps.a]\n", "needs = [\"a\"]\n", "0", "-1", "99999999999999999999"]),
    ) {
        check(&splice(VALID, at, remove, insert));
    }

    #[test]
    fn arbitrary_values_in_every_key_never_panic(
        value in prop::sample::select(vec!["\"\"", "1", "-5", "true", "[]", "[1]", "[\"\"]", "{}", "{ a = 1 }", "\"../x\"", "\"/abs\"", "\"**\"", "\"[\"", "1979-05-27", "\"0s\"", "\"1x\""]),
        key in prop::sample::select(vec!["run", "inputs", "outputs", "needs", "env", "network", "timeout", "retry", "kind", "description"]),
    ) {
        check(&format!("[pipeline]\nname = \"p\"\n[steps.a]\nrun = \"true\"\n[steps.b]\n{key} = {value}\n"));
    }
}

#[test]
fn the_valid_pipeline_parses() {
    let pipeline = parse_test_text(VALID).expect("valid");
    assert_eq!(pipeline.steps.len(), 2);
}
