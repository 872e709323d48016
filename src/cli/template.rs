//! `gantry template publish|update|yank` (docs/templates.md).

use std::path::PathBuf;

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::error::{Error, Result};
use crate::template::manifest::Name;

#[derive(Debug, clap::Subcommand)]
pub(super) enum Command {
    /// Check a template folder, pack it canonically, sign it and add it to a registry folder
    /// (refused when the version exists or a compatible release breaks the interface).
    Publish(PublishArgs),
    /// Resolve a pipeline's templates again (all, or those named) and rewrite `gantry.lock`.
    Update(UpdateArgs),
    /// Mark a version withdrawn in a registry folder: the resolver no longer picks it (a lock
    /// that pins it still works).
    Yank(YankArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct PublishArgs {
    /// The template's folder (with `template.toml`).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The registry folder.
    #[arg(long, value_name = "DIR")]
    registry: PathBuf,
    /// The publisher's signing key (default: the development key).
    #[arg(long)]
    key: Option<PathBuf>,
    /// Print the publication as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct UpdateArgs {
    /// The pipeline file.
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// Templates to resolve again (`publisher/name`); all when none is given.
    #[arg(value_name = "NAME")]
    names: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub(super) struct YankArgs {
    /// `publisher/name@VERSION`.
    #[arg(value_name = "NAME@VERSION")]
    version: String,
    /// The registry folder.
    #[arg(long, value_name = "DIR")]
    registry: PathBuf,
}

pub(super) fn run(command: &Command, environment: &Environment) -> Result<u8> {
    match command {
        Command::Publish(args) => publish(args, environment),
        Command::Update(args) => update(args, environment),
        Command::Yank(args) => {
            let (name, version) = args.version.split_once('@').ok_or_else(|| {
                Error::Usage(format!(
                    "`{}` is not `publisher/name@VERSION`",
                    args.version
                ))
            })?;
            let name = Name::parse(name).map_err(Error::Usage)?;
            crate::template::publish::yank(&args.registry, &name, version)?;
            println!("yanked {name}@{version}");
            Ok(0)
        }
    }
}

fn publish(args: &PublishArgs, environment: &Environment) -> Result<u8> {
    let signer = signer(args.key.as_deref(), environment)?;
    let published = crate::template::publish::publish(
        &args.dir,
        &args.registry,
        &signer,
        crate::pipeline::validate::check_template,
    )?;
    if args.json {
        let json = serde_json::json!({
            "name": published.name.to_string(),
            "version": published.version,
            "sha256": published.digest.hex(),
            "key": published.key,
            "pack": published.pack,
        });
        println!("{json}");
    } else {
        println!(
            "published {}@{} (sha256:{}, signed by {})",
            published.name,
            published.version,
            published.digest.hex(),
            published.key
        );
    }
    Ok(0)
}

fn update(args: &UpdateArgs, environment: &Environment) -> Result<u8> {
    for name in &args.names {
        Name::parse(name).map_err(Error::Usage)?;
    }
    let mode = crate::pipeline::TemplateMode::Update(args.names.clone());
    let pipeline = environment.load_as(&args.file, &mode)?;
    let mut pins: Vec<&crate::template::Pin> = (pipeline.steps.iter())
        .filter_map(|step| step.template.as_ref().map(|template| &template.pin))
        .collect();
    pins.sort_by(|a, b| a.name.cmp(&b.name));
    pins.dedup();
    for pin in pins {
        println!(
            "{}@{} from {} (sha256:{})",
            pin.name,
            pin.version,
            pin.registry,
            pin.digest.hex()
        );
    }
    Ok(0)
}
