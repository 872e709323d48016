//! `gantry logs PIPELINE STEP`: what a step printed, from the run's link (which names each
//! stream's digest) and the store (which holds the bytes).

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};

use crate::attest::{Link, Statement};
use crate::cli::Environment;
use crate::digest::Digest;
use crate::error::{Error, Result};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The pipeline file.
    pipeline: PathBuf,
    /// The step.
    step: String,
    /// The run folder (default: the newest run of the pipeline in the attestation folder).
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// Print only this stream.
    #[arg(long, value_parser = ["stdout", "stderr"])]
    only: Option<String>,
    /// Where the runs' folders are (default: `attestations/` in the root).
    #[arg(long, value_name = "DIR")]
    attestations: Option<PathBuf>,
}

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let pipeline = environment.load(&args.pipeline)?;
    if pipeline.step_id(&args.step).is_none() {
        return Err(Error::Usage(format!(
            "pipeline `{}` has no step `{}`",
            pipeline.name, args.step
        )));
    }
    let run = if let Some(run) = &args.run {
        run.clone()
    } else {
        let attestations = args
            .attestations
            .clone()
            .unwrap_or_else(|| pipeline.root.join(crate::run::DEFAULT_ATTESTATIONS));
        let relative = (pipeline.file.strip_prefix(&pipeline.root))
            .unwrap_or(&pipeline.file)
            .to_string_lossy()
            .into_owned();
        crate::repro::attested::latest_run(&attestations, &relative).map_err(Error::Usage)?
    };
    let name = crate::attest::run_folder::StepFile::Link.name(&args.step);
    let link = crate::attest::run_folder::find(&run, &name)
        .map_err(Error::read(&run))?
        .unwrap_or_else(|| run.join(&name));
    let statement = read_statement(&link)?;
    let cas = crate::cli::run::cache_dir(environment, &pipeline).join("cas");
    let streams: Vec<&str> = match args.only.as_deref() {
        Some(stream) => vec![stream],
        None => vec!["stdout", "stderr"],
    };
    let byproducts = &statement.predicate.byproducts;
    for stream in streams {
        let named = if stream == "stdout" {
            &byproducts.stdout
        } else {
            &byproducts.stderr
        };
        let named = named.as_ref();
        let digest = named
            .and_then(|named| Digest::from_hex(&named.sha256))
            .ok_or_else(|| Error::Attestation {
                path: link.clone(),
                message: format!(
                    "the step's link names no {stream} (only exec steps and drills keep their output)"
                ),
            })?;
        let bytes = blob(&cas, &digest).map_err(|message| Error::Input {
            path: link.clone(),
            message,
        })?;
        let truncated = named.is_some_and(|named| named.truncated_at.is_some());
        show(stream, &bytes, truncated);
    }
    Ok(0)
}

/// The Statement inside a link's envelope (its signature is `verify`'s business; the bytes
/// shown are checked against the digest it names).
fn read_statement(link: &Path) -> Result<Statement<Link>> {
    let bytes =
        crate::bounded::read(link, crate::bounded::Kind::Attestation).map_err(Error::read(link))?;
    let invalid = |message: &str| Error::Attestation {
        path: link.to_owned(),
        message: message.to_owned(),
    };
    let envelope: crate::attest::Envelope =
        serde_json::from_slice(&bytes).map_err(|_| invalid("not a DSSE envelope"))?;
    let payload = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        &envelope.payload,
    )
    .map_err(|_| invalid("its payload is not base64"))?;
    serde_json::from_slice(&payload).map_err(|_| invalid("its payload is not a link Statement"))
}

/// A log's bytes from the store, checked against its digest.
fn blob(cas: &Path, digest: &Digest) -> std::result::Result<Vec<u8>, String> {
    let hex = digest.hex();
    let path = cas.join(&hex[..2]).join(&hex);
    let bytes = std::fs::read(&path).map_err(|error| {
        format!(
            "the log {hex} is not in the store `{}` ({error}): it was made on another machine, or the store was cleared",
            cas.display()
        )
    })?;
    if Digest::of_bytes(&bytes) != *digest {
        return Err(format!("the store's copy of log {hex} is corrupt"));
    }
    Ok(bytes)
}

/// Writes a stream where it came from; to a terminal with control characters escaped (a step
/// could otherwise drive the terminal).
fn show(stream: &str, bytes: &[u8], truncated: bool) {
    let terminal = if stream == "stdout" {
        std::io::stdout().is_terminal()
    } else {
        std::io::stderr().is_terminal()
    };
    let text = if terminal {
        crate::report::escape::controls(&String::from_utf8_lossy(bytes))
            .into_owned()
            .into_bytes()
    } else {
        bytes.to_vec()
    };
    let note = truncated.then(|| {
        format!(
            "gantry: {stream} was cut at {} bytes\n",
            crate::exec::sandbox::LOG_LIMIT
        )
    });
    if stream == "stdout" {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&text);
        let _ = out.flush();
    } else {
        let mut out = std::io::stderr().lock();
        let _ = out.write_all(&text);
    }
    if let Some(note) = note {
        eprint!("{note}");
    }
}
