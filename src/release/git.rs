//! What a release asks of git, through libgit2: the built commit, existing release tags, the
//! commits since the last one, and the annotated tag it creates.

use std::path::{Path, PathBuf};

use crate::release::notes::Commit;

pub struct Repository {
    inner: git2::Repository,
}

/// An existing tag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tag {
    /// The commit it points at (through the tag object).
    pub commit: String,
    /// An annotated tag's message; `None` for a lightweight tag.
    pub message: Option<String>,
}

fn describe(error: &git2::Error) -> String {
    error.message().to_owned()
}

impl Repository {
    /// The repository holding `root`.
    pub fn open(root: &Path) -> Result<Self, String> {
        git2::Repository::discover(root)
            .map(|inner| Self { inner })
            .map_err(|error| {
                format!(
                    "`{}` is not in a git repository ({}); a release is cut from a commit",
                    root.display(),
                    describe(&error)
                )
            })
    }

    /// HEAD's commit id.
    pub fn head(&self) -> Result<String, String> {
        let commit = (self.inner.head())
            .and_then(|head| head.peel_to_commit())
            .map_err(|error| format!("HEAD is not a commit: {}", describe(&error)))?;
        Ok(commit.id().to_string())
    }

    /// Paths that differ from HEAD, what gantry writes (`generated`) aside.
    pub fn changed_paths(&self, root: &Path, generated: &[PathBuf]) -> Result<Vec<String>, String> {
        crate::git::changed_paths(&self.inner, root, generated)
            .map_err(|error| format!("cannot read the work tree's status: {}", describe(&error)))
    }

    /// Every tag's name.
    pub fn tag_names(&self) -> Result<Vec<String>, String> {
        let names = (self.inner.tag_names(None))
            .map_err(|error| format!("cannot list tags: {}", describe(&error)))?;
        Ok(names.iter().flatten().map(str::to_owned).collect())
    }

    /// The tag called `name`, if there is one.
    pub fn tag(&self, name: &str) -> Result<Option<Tag>, String> {
        let reference = match self.inner.find_reference(&format!("refs/tags/{name}")) {
            Ok(reference) => reference,
            Err(error) if error.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(error) => return Err(format!("cannot read tag `{name}`: {}", describe(&error))),
        };
        let message = (reference.peel_to_tag().ok()).map(|tag| {
            String::from_utf8_lossy(tag.message_bytes().unwrap_or_default()).into_owned()
        });
        let commit = (reference.peel_to_commit()).map_err(|error| {
            format!(
                "tag `{name}` does not lead to a commit: {}",
                describe(&error)
            )
        })?;
        Ok(Some(Tag {
            commit: commit.id().to_string(),
            message,
        }))
    }

    /// The commits reachable from `head` but not from `since` (a tag), newest first.
    pub fn commits_since(&self, head: &str, since: Option<&str>) -> Result<Vec<Commit>, String> {
        let walk = || -> Result<Vec<Commit>, git2::Error> {
            let mut walk = self.inner.revwalk()?;
            walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)?;
            walk.push(git2::Oid::from_str(head)?)?;
            if let Some(tag) = since {
                let commit = self
                    .inner
                    .find_reference(&format!("refs/tags/{tag}"))?
                    .peel_to_commit()?;
                walk.hide(commit.id())?;
            }
            let mut commits = Vec::new();
            for id in walk {
                let commit = self.inner.find_commit(id?)?;
                let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
                let (summary, body) = message.split_once('\n').unwrap_or((&message, ""));
                commits.push(Commit {
                    id: commit.id().to_string(),
                    summary: summary.trim().to_owned(),
                    body: body.trim().to_owned(),
                });
            }
            Ok(commits)
        };
        walk().map_err(|error| format!("cannot read the history: {}", describe(&error)))
    }

    /// Creates the annotated tag `name` on `commit`; never moves an existing one. The tagger
    /// is git's configured user, else `gantry <gantry@localhost>`.
    pub fn create_tag(&self, name: &str, commit: &str, message: &str) -> Result<String, String> {
        let create = || -> Result<git2::Oid, git2::Error> {
            let target = self.inner.find_object(git2::Oid::from_str(commit)?, None)?;
            let tagger = self
                .inner
                .signature()
                .or_else(|_| git2::Signature::now("gantry", "gantry@localhost"))?;
            self.inner.tag(name, &target, &tagger, message, false)
        };
        create()
            .map(|id| id.to_string())
            .map_err(|error| format!("cannot create tag `{name}`: {}", describe(&error)))
    }
}
