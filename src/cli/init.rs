//! `gantry init [FOLDER]`: a pipeline, a policy and `.gitignore` lines for the project in FOLDER
//! (`init::plan` decides; this reads the folder and writes the files).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::atomic;
use crate::cli::Environment;
use crate::error::{Error, Result};
use crate::init::{Host, Tree};

#[derive(Debug, clap::Args)]
pub(super) struct Args {
    /// The project's folder.
    #[arg(default_value = ".")]
    folder: PathBuf,
    /// Overwrite `pipeline.toml` and `policies/release.toml` when they exist.
    #[arg(long)]
    force: bool,
    /// The key whose public half the policy trusts (default: the development key).
    #[arg(long)]
    key: Option<PathBuf>,
}

/// Folders never listed when the project is not a git repository: build products and stores.
const NOT_SOURCES: [&str; 7] = [
    ".git",
    ".gantry",
    "attestations",
    "out",
    "target",
    "node_modules",
    "result",
];

pub(super) fn run(args: &Args, environment: &Environment) -> Result<u8> {
    let folder = std::path::absolute(&args.folder).map_err(Error::read(&args.folder))?;
    if !folder.is_dir() {
        return Err(Error::Usage(format!(
            "`{}` is not a folder",
            args.folder.display()
        )));
    }
    let (files, in_git) = list(&folder)?;
    // A manifest that is a link is not followed: a repository's `Cargo.toml -> /etc/shadow`
    // would otherwise be read, and a parse error would quote it. (A file under a linked
    // folder is never listed: git lists the link, the walk does not enter it.)
    let read = |path: &str| {
        let path = folder.join(path);
        let link = std::fs::symlink_metadata(&path).is_ok_and(|metadata| metadata.is_symlink());
        (!link)
            .then(|| crate::bounded::read_to_string(&path, crate::bounded::Kind::Pipeline).ok())
            .flatten()
    };
    let tree = Tree {
        files,
        read: &read,
        folder_name: folder.file_name().map_or_else(
            || "project".to_owned(),
            |name| name.to_string_lossy().into_owned(),
        ),
    };
    let host = Host {
        rust_toolchain: tree
            .files
            .contains("Cargo.toml")
            .then(|| rust_toolchain(environment.home.as_deref()))
            .flatten(),
    };
    let plan = crate::init::plan(&tree, &host).map_err(|message| Error::Input {
        path: args.folder.clone(),
        message,
    })?;
    let pipeline = folder.join("pipeline.toml");
    let policy = folder.join("policies/release.toml");
    for path in [&pipeline, &policy] {
        if path.exists() && !args.force {
            return Err(Error::Usage(format!(
                "`{}` exists; pass --force to replace it",
                path.display()
            )));
        }
    }
    let signer = crate::cli::keys::signer(args.key.as_deref(), environment)?;
    let public = folder.join("policies/dev.pub");
    let write = |path: &Path, text: &str| {
        atomic::write_creating_parents(path, text.as_bytes()).map_err(Error::write(path))
    };
    write(&pipeline, &plan.pipeline)?;
    write(&policy, &plan.policy)?;
    write(&public, crate::keys::Signer::public_key_pem(&signer))?;
    let added = add_ignored(&folder.join(".gitignore"), &plan.ignore)?;

    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "found: {}", plan.kind);
    let _ = writeln!(
        out,
        "wrote: pipeline.toml, policies/release.toml, policies/dev.pub (the key that signs runs here)"
    );
    if !added.is_empty() {
        let _ = writeln!(out, "added to .gitignore: {}", added.join(" "));
    }
    for note in &plan.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let artifact = plan.artifacts.first().map_or("ARTIFACT", String::as_str);
    let _ = writeln!(out, "next:");
    let _ = writeln!(out, "  gantry check pipeline.toml");
    let _ = writeln!(out, "  gantry run pipeline.toml");
    let _ = writeln!(
        out,
        "  gantry verify --policy policies/release.toml {artifact}"
    );
    let _ = writeln!(out, "  gantry repro pipeline.toml");
    let commit = if in_git {
        "  git add -A && git commit -m 'gantry pipeline'"
    } else {
        "  git init && git add -A && git commit -m 'gantry pipeline'"
    };
    let _ = writeln!(out, "{commit}");
    let _ = writeln!(out, "  gantry release 0.1.0 --dry-run");
    Ok(0)
}

/// The folder's files: git's index when the folder is a repository's work tree, else a walk
/// that skips build products.
fn list(folder: &Path) -> Result<(std::collections::BTreeSet<String>, bool)> {
    if let Ok(repository) = git2::Repository::open(folder)
        && repository
            .workdir()
            .is_some_and(|workdir| same(workdir, folder))
    {
        let index = repository.index().map_err(|error| Error::Input {
            path: folder.join(".git/index"),
            message: error.message().to_owned(),
        })?;
        let files = index
            .iter()
            .filter_map(|entry| String::from_utf8(entry.path).ok())
            .collect();
        return Ok((files, true));
    }
    let mut files = std::collections::BTreeSet::new();
    let walk = walkdir::WalkDir::new(folder)
        .follow_links(false)
        .into_iter()
        .filter_entry(|entry| {
            entry.depth() != 1 || !NOT_SOURCES.iter().any(|name| entry.file_name() == *name)
        });
    for entry in walk.flatten() {
        if entry.file_type().is_file()
            && let Ok(relative) = entry.path().strip_prefix(folder)
            && let Some(relative) = relative.to_str()
        {
            files.insert(relative.to_owned());
            if files.len() > 200_000 {
                return Err(Error::Usage(format!(
                    "`{}` holds over 200,000 files outside git; run gantry init in the project's own folder",
                    folder.display()
                )));
            }
        }
    }
    Ok((files, false))
}

fn same(left: &Path, right: &Path) -> bool {
    match (left.canonicalize(), right.canonicalize()) {
        (Ok(left), Ok(right)) => left == right,
        _ => false,
    }
}

/// The Rust toolchain `rustc` on PATH belongs to, written `~/...` when under the home folder
/// (`[tools]` resolves it against the home of whoever runs gantry).
fn rust_toolchain(home: Option<&Path>) -> Option<String> {
    let output = std::process::Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let sysroot = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    Some(
        match home.and_then(|home| sysroot.strip_prefix(home).ok()) {
            Some(relative) => format!("~/{}", relative.display()),
            None => sysroot.display().to_string(),
        },
    )
}

/// Appends the lines `.gitignore` lacks; returns them.
fn add_ignored(path: &Path, lines: &[String]) -> Result<Vec<String>> {
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(source) => return Err(Error::read(path)(source)),
    };
    let present: std::collections::HashSet<&str> = existing.lines().map(str::trim).collect();
    let added: Vec<String> = (lines.iter())
        .filter(|line| {
            !present.contains(line.as_str()) && !present.contains(line.trim_end_matches('/'))
        })
        .cloned()
        .collect();
    if !added.is_empty() {
        let mut text = existing.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for line in &added {
            text.push_str(line);
            text.push('\n');
        }
        atomic::write(path, text.as_bytes()).map_err(Error::write(path))?;
    }
    Ok(added)
}
