//! `gantry sbom --from SOURCE --format spdx|cyclonedx [--subject ARTIFACT]... -o FILE`: the
//! document, then its signed attestation beside it (`FILE.intoto.json`). The options of a
//! pipeline's sbom step, on the command line: `--vendored`, `--manifest`, `--about-*`,
//! `--import`. The flow is `sbom::standalone`; this file checks the arguments and renders.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::error::{Error, Result};
use crate::sbom::{self, Format, standalone};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// What to describe: a Cargo.lock, a Nix store path or out-link (its closure), or a
    /// folder (every file).
    #[arg(long, value_name = "SOURCE")]
    from: PathBuf,
    /// The document format.
    #[arg(long, value_parser = ["spdx", "cyclonedx"], default_value = "spdx")]
    format: String,
    /// The artifact the document is for (default: the source itself); again for each other
    /// artifact it is for (several binaries of one lock).
    #[arg(long, value_name = "ARTIFACT")]
    subject: Vec<PathBuf>,
    /// A `cargo vendor --versioned-dirs` folder: each crate's licence is read there, not in
    /// the host's registry cache.
    #[arg(long, value_name = "FOLDER")]
    vendored: Option<PathBuf>,
    /// A workspace's own `Cargo.toml`, whose package licence the document takes (repeat it).
    #[arg(long = "manifest", value_name = "CARGO_TOML")]
    manifests: Vec<PathBuf>,
    /// The product the subject is: its name.
    #[arg(long, value_name = "NAME")]
    about_name: Option<String>,
    /// Its version.
    #[arg(long, value_name = "VERSION")]
    about_version: Option<String>,
    /// Its supplier, as SPDX writes one: `Organization: NAME` or `Person: NAME`.
    #[arg(long, value_name = "SUPPLIER")]
    about_supplier: Option<String>,
    /// Its licence, an SPDX expression (`MIT OR Apache-2.0`).
    #[arg(long, value_name = "EXPRESSION")]
    about_license: Option<String>,
    /// Its package URL (`pkg:cargo/hexyl@0.16.0`).
    #[arg(long, value_name = "PURL")]
    about_purl: Option<String>,
    /// `--from` is an SBOM another tool wrote (SPDX or `CycloneDX` JSON): attest it as it is,
    /// about `--subject`.
    #[arg(long, requires = "subject", conflicts_with_all = ["vendored", "manifests", "about_name", "about_version", "about_supplier", "about_license", "about_purl"])]
    import: bool,
    /// Where to write the document; the attestation goes to `FILE.intoto.json`.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Signs the attestation (default: the development key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Also write the attestation as a Sigstore bundle (`FILE.sigstore.json`).
    #[arg(long)]
    bundle: bool,
    /// Print the result as one JSON line.
    #[arg(long)]
    json: bool,
}

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let format = Format::parse(&args.format)
        .ok_or_else(|| Error::Usage(format!("unknown format `{}`", args.format)))?;
    let time = creation_time(environment, &args.from)?;
    let signer = signer(args.key.as_deref(), environment)?;
    let written = standalone::write(
        &standalone::Request {
            from: args.from.clone(),
            format,
            subjects: args.subject.clone(),
            about: about(args)?,
            import: args.import,
            vendored: args.vendored.clone(),
            manifests: args.manifests.clone(),
            cargo_home: environment.cargo_folder(),
            time,
            output: args.output.clone(),
            bundle: args.bundle,
        },
        &signer,
    )?;
    let inventory = &written.inventory;
    let mut stdout = std::io::stdout().lock();
    if args.json {
        let line = serde_json::json!({
            "event": "sbom_written",
            "format": written.format.name(),
            "document": written.document.display().to_string(),
            "attestation": written.attestation.display().to_string(),
            "bundle": written.bundle.map(|path| path.display().to_string()),
            "subject": inventory.subject.name,
            "packages": inventory.packages.len(),
            "files": inventory.files.len(),
            "created": crate::time::rfc3339(time),
        });
        let _ = writeln!(stdout, "{line}");
    } else {
        let _ = writeln!(
            stdout,
            "wrote {} ({} packages, {} files) and {}",
            written.document.display(),
            inventory.packages.len(),
            inventory.files.len(),
            written.attestation.display()
        );
    }
    Ok(0)
}

/// `--about-*`, each checked as the pipeline's `about` is; `None` when none is given.
fn about(args: &Args) -> Result<Option<sbom::About>> {
    let check = |flag: &str, value: &Option<String>, problem: &dyn Fn(&str) -> Option<String>| {
        let Some(value) = value else {
            return Ok(None);
        };
        let text = value.trim();
        if text.is_empty() || text.contains(['\n', '\0']) {
            return Err(Error::Usage(format!("`--{flag}` must be one line of text")));
        }
        match problem(text) {
            Some(problem) => Err(Error::Usage(format!("`--{flag}`: {problem}"))),
            None => Ok(Some(text.to_owned())),
        }
    };
    let fine = |_: &str| None;
    let about = sbom::About {
        name: check("about-name", &args.about_name, &fine)?,
        version: check("about-version", &args.about_version, &fine)?,
        supplier: check(
            "about-supplier",
            &args.about_supplier,
            &sbom::About::supplier_problem,
        )?,
        license: check(
            "about-license",
            &args.about_license,
            &sbom::About::license_problem,
        )?,
        purl: check("about-purl", &args.about_purl, &sbom::About::purl_problem)?,
    };
    Ok((about != sbom::About::default()).then_some(about))
}

/// `SOURCE_DATE_EPOCH`, else the commit time of the git repository the source is in, else
/// the Unix epoch: never the clock, so the same inputs give the same document.
fn creation_time(environment: &Environment, from: &Path) -> Result<i64> {
    if let Some(text) = &environment.source_date_epoch {
        return text
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|seconds| *seconds >= 0)
            .ok_or_else(|| {
                Error::Usage(format!(
                    "SOURCE_DATE_EPOCH must be a number of seconds since 1970, not `{text}`"
                ))
            });
    }
    let folder = if from.is_dir() {
        from
    } else {
        from.parent().unwrap_or(Path::new("."))
    };
    let folder = if folder.as_os_str().is_empty() {
        Path::new(".")
    } else {
        folder
    };
    Ok(crate::git::commit_time(folder).unwrap_or(0))
}
