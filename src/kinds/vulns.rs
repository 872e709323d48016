//! The `vulns` step kind: the SBOM's components against the advisory database (both inputs,
//! so their digests key the step and its link names them), with the VEX documents, signed as
//! an in-toto vulns statement about the artifacts the SBOM describes. A scan above the
//! thresholds fails the step; its statement still goes into the run folder for the auditor.
//! Runs in gantry.

use crate::attest::link::Byproducts;
use crate::attest::run_folder::StepFile;
use crate::digest::Digest;
use crate::exec::action_key::ActionKey;
use crate::exec::commit::Failure;
use crate::exec::context::Context;
use crate::exec::inputs::{self, InputFile};
use crate::kinds::in_process::{
    InProcess, LinkParts, Made, action_environment, keep_in_run_folder, store_file,
};
use crate::pipeline::StepId;
use crate::pipeline::model::VulnsStep;
use crate::vulns::db::{Database, Form, Source};
use crate::vulns::{components, scan, statement, threshold, vex};

/// Bump when what a vulns step writes changes in a way gantry's version does not capture.
const VERSION: u32 = 1;

pub struct VulnsAction {
    key: Digest,
    spec: VulnsStep,
    inputs: Vec<InputFile>,
}

impl InProcess for VulnsAction {
    fn key(&self) -> Digest {
        self.key
    }

    fn inputs(&self) -> &[InputFile] {
        &self.inputs
    }

    fn make(&self, context: &Context, id: StepId) -> Result<Made, Failure> {
        make(context, id, self)
    }
}

pub(crate) fn plan(context: &Context, id: StepId, spec: &VulnsStep) -> Result<VulnsAction, String> {
    let step = &context.pipeline.steps[id];
    let inputs = inputs::resolve(context, id)?;
    let mut key = ActionKey::of_step(step, step.kind.name(), VERSION);
    key.text("gantry", env!("CARGO_PKG_VERSION"))
        .text("key id", context.signer.key_id())
        .text(
            "spec",
            &serde_json::to_string(spec).map_err(|error| error.to_string())?,
        );
    // An allowance with an end date judges differently tomorrow: such a scan holds for the day.
    if spec
        .thresholds
        .allow
        .iter()
        .any(|allowance| allowance.until.is_some())
    {
        key.text("day", &today());
    }
    for input in &inputs {
        key.input(&input.path, &input.digest);
    }
    Ok(VulnsAction {
        key: key.finish(),
        spec: spec.clone(),
        inputs,
    })
}

fn today() -> String {
    crate::time::rfc3339(crate::time::unix_now())[..10].to_owned()
}

/// Reads a planned input, checking it is what was planned.
fn read(input: &InputFile, kind: crate::bounded::Kind) -> Result<Vec<u8>, Failure> {
    let bytes = crate::bounded::read(&input.host, kind)
        .map_err(|error| Failure::input(format!("cannot read `{}`: {error}", input.path)))?;
    if Digest::of_bytes(&bytes) != input.digest {
        return Err(Failure::input(format!(
            "`{}` changed while the run read it",
            input.path
        )));
    }
    Ok(bytes)
}

fn find<'a>(inputs: &'a [InputFile], path: &str) -> Result<&'a InputFile, Failure> {
    inputs
        .iter()
        .find(|input| input.path == path)
        .ok_or_else(|| Failure::input(format!("`{path}` is not a file")))
}

/// The database's advisory files among the inputs, by their path in the folder.
fn database(spec: &VulnsStep, inputs: &[InputFile]) -> Result<Database, Failure> {
    let prefix = format!("{}/", spec.db.trim_end_matches('/'));
    let sources: Vec<Source> = (inputs.iter())
        .filter_map(|input| {
            let relative = input.path.strip_prefix(&prefix)?;
            Some(Source {
                host: input.host.clone(),
                relative: relative.to_owned(),
                form: Form::of(relative)?,
                expected: Some(input.digest),
            })
        })
        .collect();
    if sources.is_empty() {
        return Err(Failure::input(format!(
            "`{}` holds no advisory (OSV records `*.json` or RustSec `RUSTSEC-*.md` files)",
            spec.db
        )));
    }
    Database::read(sources).map_err(Failure::input)
}

fn make(context: &Context, id: StepId, action: &VulnsAction) -> Result<Made, Failure> {
    let started = crate::time::rfc3339(crate::time::unix_now());
    let step = &context.pipeline.steps[id];
    let spec = &action.spec;
    let sbom = read(
        find(&action.inputs, &spec.sbom)?,
        crate::bounded::Kind::Attestation,
    )?;
    let listed = components::read(&sbom).map_err(|message| {
        Failure::input(format!(
            "`{}` is not an SBOM gantry reads: {message}",
            spec.sbom
        ))
    })?;
    let database = database(spec, &action.inputs)?;
    for (path, problem) in &database.unreadable {
        // Named as the pipeline names it (in the workspace), its text escaped: an advisory
        // database is somebody else's.
        let shown = path.strip_prefix(&context.pipeline.root).unwrap_or(path);
        context.reporter.emit(&crate::report::Event::Warning {
            step: Some(step.name.clone()),
            message: crate::report::escape::controls(&format!(
                "skipped advisory `{}`: {problem}",
                shown.display()
            ))
            .into_owned(),
        });
    }
    let mut statements = Vec::new();
    for path in &spec.vex {
        let bytes = read(find(&action.inputs, path)?, crate::bounded::Kind::Policy)?;
        statements.extend(vex::read(&bytes, path).map_err(|message| {
            Failure::input(format!(
                "`{path}` is not a VEX document gantry reads: {message}"
            ))
        })?);
    }
    let scan = scan::scan(&database, &listed.components, &statements);
    let finished = crate::time::rfc3339(crate::time::unix_now());
    let judged = threshold::judge(&scan, &spec.thresholds, &finished[..10]);
    let statement = statement::statement(&statement::Inputs {
        listed: &listed,
        db: &spec.db,
        snapshot: &database.snapshot,
        scan: &scan,
        judged: &judged,
        started,
        finished,
    })
    .map_err(|message| Failure::input(format!("`{}`: {message}", spec.sbom)))?;
    let body =
        serde_json::to_vec(&statement).map_err(|error| Failure::internal(error.to_string()))?;
    let envelope = crate::attest::dsse::sign_deterministic(
        crate::attest::PAYLOAD_TYPE,
        &body,
        context.signer.as_ref(),
    );
    let mut bytes = serde_json::to_vec_pretty(&envelope)
        .map_err(|error| Failure::internal(error.to_string()))?;
    bytes.push(b'\n');
    if !judged.passed {
        keep_in_run_folder(context, &step.name, StepFile::Vulns, &bytes)?;
        return Err(Failure::refused(format!(
            "vulnerability scan of `{}` failed: {}",
            spec.sbom,
            crate::report::escape::controls(&judged.failures.join("; "))
        )));
    }
    let records = vec![store_file(context, spec.output.clone(), &bytes)?];
    let mut command = vec![
        "gantry".to_owned(),
        "vulns".to_owned(),
        "scan".to_owned(),
        spec.sbom.clone(),
        "--db".to_owned(),
        spec.db.clone(),
    ];
    for path in &spec.vex {
        command.extend(["--vex".to_owned(), path.clone()]);
    }
    Ok(Made {
        records,
        link: LinkParts {
            command,
            byproducts: Byproducts {
                result: Some("pass".to_owned()),
                ..Byproducts::default()
            },
            environment: action_environment(&action.key),
        },
    })
}
