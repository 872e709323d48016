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
}

impl Tools {
    #[must_use]
    pub fn new(tools: &[Tool], home: Option<PathBuf>) -> Self {
        Self {
            entries: (tools.iter())
                .map(|tool| (tool.name.clone(), (tool.clone(), OnceLock::new())))
                .collect(),
            home,
        }
    }

    /// The tool called `name`, digested on first use (later calls wait for the first).
    pub fn get(&self, name: &str, stats: &StatCache) -> Result<Resolved, String> {
        let (tool, resolved) = self
            .entries
            .get(name)
            .ok_or_else(|| format!("internal: tool `{name}` is not declared"))?;
        resolved
            .get_or_init(|| resolve(tool, self.home.as_deref(), stats))
            .clone()
    }
}

fn resolve(tool: &Tool, home: Option<&Path>, stats: &StatCache) -> Result<Resolved, String> {
    let written = &tool.path;
    let path = tool.host_path(home).ok_or_else(|| {
        format!(
            "tool `{}`: `{written}` needs a home folder, and HOME is not set",
            tool.name
        )
    })?;
    let host = std::fs::canonicalize(&path)
        .map_err(|error| format!("tool `{}`: `{}`: {error}", tool.name, path.display()))?;
    if !host.is_dir() {
        return Err(format!(
            "tool `{}`: `{}` is not a folder",
            tool.name,
            host.display()
        ));
    }
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
    fn a_home_relative_tool_needs_a_home() {
        let tool = Tool {
            name: "rust".into(),
            path: "~/.rustup/toolchains/stable".into(),
        };
        let tools = Tools::new(std::slice::from_ref(&tool), None);
        let stats = StatCache::load(PathBuf::from("/nonexistent/stat-cache"));
        let error = tools.get("rust", &stats).unwrap_err();
        assert!(error.contains("HOME is not set"), "{error}");
        let missing = Tools::new(&[tool], Some(PathBuf::from("/nonexistent")));
        let error = missing.get("rust", &stats).unwrap_err();
        assert!(error.contains("/nonexistent/.rustup"), "{error}");
    }
}
