//! `gantry template publish|update|yank|search|info|index` (docs/templates.md).

use std::path::PathBuf;

use crate::cli::Environment;
use crate::cli::keys::signer;
use crate::error::{Error, Result};
use crate::template::catalog;
use crate::template::manifest::Name;
use crate::template::registry::{self, Location};

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
    /// List a registry's templates whose name or description holds TEXT (all without it).
    Search(SearchArgs),
    /// A template's versions (yanked ones marked), parameters and publisher keys.
    Info(InfoArgs),
    /// Write a registry folder's catalogue page (`--html`, default `REGISTRY/index.html`): every
    /// template, its versions, parameters and publisher, self-contained for a static site.
    Index(IndexArgs),
}

#[derive(Debug, clap::Args)]
pub(super) struct SearchArgs {
    #[arg(value_name = "TEXT")]
    text: Option<String>,
    /// The registry: a folder or an http:// URL.
    #[arg(long, value_name = "DIR|URL")]
    registry: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct InfoArgs {
    /// `publisher/name`.
    #[arg(value_name = "NAME")]
    name: String,
    /// The registry: a folder or an http:// URL.
    #[arg(long, value_name = "DIR|URL")]
    registry: String,
    /// Print the template's index as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub(super) struct IndexArgs {
    /// The registry folder.
    #[arg(long, value_name = "DIR")]
    registry: PathBuf,
    /// Write the HTML page.
    #[arg(long)]
    html: bool,
    /// Where to write it (default: `REGISTRY/index.html`).
    #[arg(short, long, value_name = "FILE", requires = "html")]
    output: Option<PathBuf>,
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
        Command::Search(args) => search(args),
        Command::Info(args) => info(args),
        Command::Index(args) => index(args),
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

fn location(text: &str) -> Result<Location> {
    let here = std::env::current_dir().map_err(|error| Error::Environment {
        message: format!("no current folder: {error}"),
    })?;
    Location::parse(text, &here).map_err(Error::Usage)
}

fn search(args: &SearchArgs) -> Result<u8> {
    let indexes = catalog::indexes(&location(&args.registry)?).map_err(Error::Usage)?;
    let wanted = args.text.as_deref().unwrap_or("").to_lowercase();
    let mut found = Vec::new();
    for index in &indexes {
        let newest = index.versions.iter().rev().find(|entry| !entry.yanked);
        let description = newest.map_or("", |entry| entry.description.as_str());
        if index.name.to_lowercase().contains(&wanted)
            || description.to_lowercase().contains(&wanted)
        {
            found.push((
                index.name.as_str(),
                newest.map(|entry| entry.version.as_str()),
                description,
            ));
        }
    }
    if args.json {
        let json: Vec<serde_json::Value> = (found.iter())
            .map(|(name, version, description)| {
                serde_json::json!({"name": name, "version": version, "description": description})
            })
            .collect();
        println!("{}", serde_json::Value::Array(json));
    } else {
        for (name, version, description) in &found {
            println!(
                "{name}@{}  {description}",
                version.unwrap_or("(all yanked)")
            );
        }
    }
    Ok(0)
}

fn info(args: &InfoArgs) -> Result<u8> {
    let name = Name::parse(&args.name).map_err(Error::Usage)?;
    let index = registry::read_index(&location(&args.registry)?, &name)
        .map_err(Error::Usage)?
        .ok_or_else(|| Error::Usage(format!("the registry holds no `{name}`")))?;
    if args.json {
        println!("{}", String::from_utf8_lossy(&index.render()).trim_end());
        return Ok(0);
    }
    println!("{}", index.name);
    for entry in index.versions.iter().rev() {
        println!(
            "  {}{}  gantry {}  key {}  sha256:{}",
            entry.version,
            if entry.yanked { " (yanked)" } else { "" },
            entry.gantry,
            entry.key,
            entry.sha256
        );
    }
    if let Some(newest) = index.versions.iter().rev().find(|entry| !entry.yanked) {
        println!("parameters of {}:", newest.version);
        for (parameter, shape) in &newest.interface.parameters {
            println!(
                "  {parameter}: {}{}",
                shape.kind.name(),
                if shape.required { ", required" } else { "" }
            );
        }
    }
    Ok(0)
}

fn index(args: &IndexArgs) -> Result<u8> {
    let location = Location::Folder(args.registry.clone());
    let indexes = catalog::indexes(&location).map_err(Error::Usage)?;
    if !args.html {
        for index in &indexes {
            println!("{} ({} versions)", index.name, index.versions.len());
        }
        return Ok(0);
    }
    let output = (args.output.clone()).unwrap_or_else(|| args.registry.join("index.html"));
    let page = catalog::html_page("Step templates", &indexes);
    crate::atomic::write_creating_parents(&output, page.as_bytes())
        .map_err(Error::write(&output))?;
    println!("wrote {} ({} templates)", output.display(), indexes.len());
    Ok(0)
}
