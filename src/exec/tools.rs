//! Host toolchains (`[tools]`): each resolved against the caller's home and digested, whole
//! tree, the first time a step of the run needs it. The digest goes into the action key and
//! the link's materials, so a changed compiler re-runs what it built; the host path does not,
//! so two users with the same toolchain in different homes share cache entries.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::digest::{Digest, DigestBuilder};
use crate::pipeline::model::Tool;
use crate::store::StatCache;

/// A tool as a step sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub name: String,
    /// The real folder on the host (symlinks resolved).
    pub host: PathBuf,
    /// Where the sandbox shows it.
    pub mount_point: String,
    pub digest: Digest,
}

/// The run's tools, resolved lazily.
pub struct Tools {
    entries: BTreeMap<String, (Tool, OnceLock<Result<Resolved, String>>)>,
    home: Option<PathBuf>,
    /// Signing key files in use: no tool may hold one.
    keys: Vec<PathBuf>,
}

impl Tools {
    #[must_use]
    pub fn new(tools: &[Tool], home: Option<PathBuf>, keys: Vec<PathBuf>) -> Self {
        Self {
            entries: (tools.iter())
                .map(|tool| (tool.name.clone(), (tool.clone(), OnceLock::new())))
                .collect(),
            home,
            keys,
        }
    }

    /// Checks every tool's real folder against [`refuse_protected`] without digesting it
    /// (`gantry check`, and a run before its first step).
    pub fn check(&self) -> Result<(), String> {
        for (tool, _) in self.entries.values() {
            let Some(path) = tool.host_path(self.home.as_deref()) else {
                continue;
            };
            if let Ok(host) = std::fs::canonicalize(&path) {
                refuse_protected(tool, &host, self.home.as_deref(), &self.keys)?;
            }
        }
        Ok(())
    }

    /// The tool called `name`, digested on first use (later calls wait for the first).
    pub fn get(&self, name: &str, stats: &StatCache) -> Result<Resolved, String> {
        let (tool, resolved) = self
            .entries
            .get(name)
            .ok_or_else(|| format!("internal: tool `{name}` is not declared"))?;
        resolved
            .get_or_init(|| resolve(tool, self.home.as_deref(), &self.keys, stats))
            .clone()
    }
}

fn resolve(
    tool: &Tool,
    home: Option<&Path>,
    keys: &[PathBuf],
    stats: &StatCache,
) -> Result<Resolved, String> {
    let written = &tool.path;
    let path = tool.host_path(home).ok_or_else(|| {
        format!(
            "tool `{}`: `{written}` needs a home folder, and HOME is not set",
            tool.name
        )
    })?;
    let host = std::fs::canonicalize(&path).map_err(|error| {
        let mut message = format!("tool `{}`: `{}`: {error}", tool.name, path.display());
        if let Some(hint) = install_hint(written) {
            message.push_str("; ");
            message.push_str(&hint);
        }
        message
    })?;
    if !host.is_dir() {
        return Err(format!(
            "tool `{}`: `{}` is not a folder",
            tool.name,
            host.display()
        ));
    }
    refuse_protected(tool, &host, home, keys)?;
    let digest = tree_digest(&host, stats).map_err(|error| {
        format!(
            "tool `{}`: cannot read `{}`: {error}",
            tool.name,
            host.display()
        )
    })?;
    Ok(Resolved {
        name: tool.name.clone(),
        mount_point: tool.mount_point(),
        host,
        digest,
    })
}

/// How to get a toolchain the pipeline names by its usual place, when it is missing.
fn install_hint(written: &str) -> Option<String> {
    let (_, rest) = written.split_once(".rustup/toolchains/")?;
    let toolchain = rest.split('/').next().filter(|name| !name.is_empty())?;
    Some(format!(
        "install it with `rustup toolchain install {toolchain}` (or point `[tools]` at the toolchain you have: `rustc --print sysroot`)"
    ))
}

/// Refuses a tool whose real folder (links resolved) is `/`, is or holds a home folder, is
/// or holds or sits inside `.ssh`, `.gnupg` or gantry's key folder of a home, or holds a
/// signing key in use: steps see a tool whole.
pub fn refuse_protected(
    tool: &Tool,
    host: &Path,
    home: Option<&Path>,
    keys: &[PathBuf],
) -> Result<(), String> {
    let canonical =
        |path: &Path| std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let refuse = |what: String| {
        Err(format!(
            "tool `{}`: `{}` {what}; a tool is shown whole to steps, so name the toolchain's own folder",
            tool.name,
            host.display()
        ))
    };
    if host == Path::new("/") {
        return refuse("is the whole file system".to_owned());
    }
    let mut homes = vec![PathBuf::from("/root"), PathBuf::from("/home")];
    homes.extend(home.map(canonical));
    if host.parent() == Some(Path::new("/home")) {
        return refuse("is a home folder".to_owned());
    }
    for folder in &homes {
        if folder.starts_with(host) {
            return refuse(format!(
                "is or holds the home folder `{}`",
                folder.display()
            ));
        }
    }
    let secrets = homes.iter().flat_map(|folder| {
        [".ssh", ".gnupg", ".local/share/gantry"].map(|inside| canonical(&folder.join(inside)))
    });
    for secret in secrets {
        if host.starts_with(&secret) || secret.starts_with(host) {
            return refuse(format!("is, holds or sits inside `{}`", secret.display()));
        }
    }
    for key in keys {
        if canonical(key).starts_with(host) {
            return refuse(format!("holds the signing key `{}`", key.display()));
        }
    }
    Ok(())
}

/// Every entry below `root` by relative path, in name order: folders, symlinks by target,
/// files by content and executable bit. Files are hashed on every core, and through the stat
/// cache, so a toolchain is read in full once and only stat-ed after.
pub fn tree_digest(root: &Path, stats: &StatCache) -> io::Result<Digest> {
    enum Entry {
        Folder,
        Link(PathBuf),
        File { executable: bool },
    }
    let mut entries = Vec::new();
    for entry in walkdir::WalkDir::new(root)
        .min_depth(1)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(io::Error::other)?;
        let relative = entry
            .path()
            .strip_prefix(root)
            .map_err(io::Error::other)?
            .to_path_buf();
        let kind = entry.file_type();
        let described = if kind.is_dir() {
            Entry::Folder
        } else if kind.is_symlink() {
            Entry::Link(std::fs::read_link(entry.path())?)
        } else if kind.is_file() {
            let mode = entry
                .metadata()
                .map_err(io::Error::other)?
                .permissions()
                .mode();
            Entry::File {
                executable: mode & 0o111 != 0,
            }
        } else {
            continue;
        };
        entries.push((relative, described));
    }
    let digests = crate::parallel::map(&entries, |(relative, entry)| match entry {
        Entry::File { .. } => stats.digest(&root.join(relative)).map(Some),
        _ => Ok(None),
    });
    let mut builder = DigestBuilder::new("gantry-tool-tree/1");
    for ((relative, entry), digest) in entries.iter().zip(digests) {
        builder.str(&relative.to_string_lossy());
        match entry {
            Entry::Folder => {
                builder.str("dir");
            }
            Entry::Link(target) => {
                builder.str("symlink").str(&target.to_string_lossy());
            }
            Entry::File { executable } => {
                let digest = digest?.unwrap_or(Digest::of_bytes(&[]));
                builder
                    .str(if *executable { "executable" } else { "file" })
                    .field(digest.as_bytes());
            }
        }
    }
    Ok(builder.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_digest_follows_content_names_modes_and_links_not_times() {
        let folder = tempfile::tempdir().unwrap();
        let root = folder.path();
        std::fs::create_dir(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/cc"), "#!/bin/sh\n").unwrap();
        std::fs::write(root.join("README"), "hello").unwrap();
        std::os::unix::fs::symlink("bin/cc", root.join("cc")).unwrap();
        let stats = StatCache::load(folder.path().join("stat-cache-elsewhere"));
        let digest = || tree_digest(root, &stats).unwrap();
        let first = digest();
        assert_eq!(first, digest());
        let mut permissions = std::fs::metadata(root.join("bin/cc"))
            .unwrap()
            .permissions();
        permissions.set_mode(0o755);
        std::fs::set_permissions(root.join("bin/cc"), permissions).unwrap();
        let executable = digest();
        assert_ne!(first, executable);
        std::fs::write(root.join("README"), "hullo").unwrap();
        let edited = digest();
        assert_ne!(executable, edited);
        std::fs::remove_file(root.join("cc")).unwrap();
        std::os::unix::fs::symlink("bin/cd", root.join("cc")).unwrap();
        assert_ne!(edited, digest());
    }

    #[test]
    fn a_missing_rustup_toolchain_says_how_to_install_it() {
        assert_eq!(
            install_hint("~/.rustup/toolchains/1.95.0-x86_64-unknown-linux-gnu").as_deref(),
            Some(
                "install it with `rustup toolchain install 1.95.0-x86_64-unknown-linux-gnu` (or point `[tools]` at the toolchain you have: `rustc --print sysroot`)"
            )
        );
        assert_eq!(install_hint("/opt/cross"), None);
    }

    #[test]
    fn a_home_relative_tool_needs_a_home() {
        let tool = Tool {
            name: "rust".into(),
            path: "~/.rustup/toolchains/stable".into(),
        };
        let tools = Tools::new(std::slice::from_ref(&tool), None, Vec::new());
        let stats = StatCache::load(PathBuf::from("/nonexistent/stat-cache"));
        let error = tools.get("rust", &stats).unwrap_err();
        assert!(error.contains("HOME is not set"), "{error}");
        let missing = Tools::new(&[tool], Some(PathBuf::from("/nonexistent")), Vec::new());
        let error = missing.get("rust", &stats).unwrap_err();
        assert!(error.contains("/nonexistent/.rustup"), "{error}");
    }
}
