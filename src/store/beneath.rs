//! Paths beneath a folder, walked one component at a time by descriptor and never through a
//! symbolic link. A step's slot is written by the step, so gantry reads it as hostile: a step
//! that replaces `out` with a link to `/etc` must not get gantry to read, chmod or move a host
//! file. Each component is opened with `O_NOFOLLOW` relative to the folder before it, so the
//! kernel refuses a link wherever it sits, and everything afterwards (stat, open, rename)
//! happens relative to a descriptor, never by re-resolving a path.

use std::ffi::{CString, OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::ffi::OsStringExt as _;
use std::path::Path;

/// An open folder.
#[derive(Debug)]
pub struct Folder {
    fd: OwnedFd,
}

/// Why a path beneath a folder could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// `path` (relative, up to and including the offending component) is a symbolic link.
    #[error("`{path}` is a symbolic link")]
    Link { path: String },
    #[error("`{path}` is not a folder")]
    NotFolder { path: String },
    #[error("`{path}` does not exist")]
    Missing { path: String },
    #[error("`{path}`: {source}")]
    Io { path: String, source: io::Error },
}

/// What `lstat` says a name is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File { executable: bool },
    Folder,
    Link,
    Other,
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(io::Error::other)
}

fn check(result: libc::c_int) -> io::Result<libc::c_int> {
    if result < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(result)
    }
}

const FOLDER_FLAGS: libc::c_int =
    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;

impl Folder {
    /// Opens `path` itself (its own parents are gantry's and trusted; the last component must
    /// not be a link).
    pub fn open(path: &Path) -> io::Result<Self> {
        let path = CString::new(path.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: open with a valid NUL-terminated path.
        let fd = check(unsafe { libc::open(path.as_ptr(), FOLDER_FLAGS) })?;
        // SAFETY: a fresh descriptor we own.
        Ok(Self {
            // SAFETY: a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    fn open_child(&self, name: &OsStr) -> io::Result<Self> {
        let name = c_name(name)?;
        // SAFETY: openat relative to a descriptor we own, with a valid name.
        let fd = check(unsafe { libc::openat(self.fd.as_raw_fd(), name.as_ptr(), FOLDER_FLAGS) })?;
        // SAFETY: a fresh descriptor we own.
        Ok(Self {
            // SAFETY: a fresh descriptor we own.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The folder at `relative` (`/`-separated, no `.` or `..`; empty for this one).
    pub fn folder(&self, relative: &str) -> Result<Self, Refusal> {
        let mut current: Option<Self> = None;
        let mut walked = String::new();
        for part in relative.split('/').filter(|part| !part.is_empty()) {
            if !walked.is_empty() {
                walked.push('/');
            }
            walked.push_str(part);
            if part == "." || part == ".." {
                return Err(Refusal::NotFolder { path: walked });
            }
            let base = current.as_ref().unwrap_or(self);
            let opened = base.open_child(OsStr::new(part)).map_err(|source| {
                match base.kind(OsStr::new(part)) {
                    Ok(Some(Kind::Link)) => Refusal::Link {
                        path: walked.clone(),
                    },
                    Ok(Some(_)) => Refusal::NotFolder {
                        path: walked.clone(),
                    },
                    Ok(None) => Refusal::Missing {
                        path: walked.clone(),
                    },
                    Err(_) => Refusal::Io {
                        path: walked.clone(),
                        source,
                    },
                }
            })?;
            current = Some(opened);
        }
        match current {
            Some(folder) => Ok(folder),
            None => self.duplicate().map_err(|source| Refusal::Io {
                path: String::new(),
                source,
            }),
        }
    }

    fn duplicate(&self) -> io::Result<Self> {
        Ok(Self {
            fd: self.fd.try_clone()?,
        })
    }

    /// What `name` is, without following it; `None` when it does not exist.
    pub fn kind(&self, name: &OsStr) -> io::Result<Option<Kind>> {
        let name = c_name(name)?;
        // SAFETY: fstatat into a zeroed struct, relative to our descriptor.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstatat fills `stat` for a name relative to our own descriptor.
        let result = unsafe {
            libc::fstatat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                &raw mut stat,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if result < 0 {
            let error = io::Error::last_os_error();
            return if error.kind() == io::ErrorKind::NotFound {
                Ok(None)
            } else {
                Err(error)
            };
        }
        Ok(Some(kind_of(&stat)))
    }

    /// Opens the regular file `name` for reading; a link, a FIFO or a device is refused
    /// without being opened for real (`O_NONBLOCK`: a FIFO never blocks the open).
    pub fn open_file(&self, name: &OsStr) -> io::Result<File> {
        let c_name = c_name(name)?;
        // SAFETY: openat relative to our descriptor.
        let fd = check(unsafe {
            libc::openat(
                self.fd.as_raw_fd(),
                c_name.as_ptr(),
                libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC,
            )
        })?;
        // SAFETY: a fresh descriptor we own.
        let file = unsafe { File::from_raw_fd(fd) };
        if !file.metadata()?.is_file() {
            return Err(io::Error::other(format!(
                "`{}` is not a regular file",
                name.to_string_lossy()
            )));
        }
        Ok(file)
    }

    /// Where the symbolic link `name` points (not followed).
    pub fn read_link(&self, name: &OsStr) -> io::Result<OsString> {
        let c_name = c_name(name)?;
        let mut buffer = vec![0_u8; libc::PATH_MAX as usize];
        // SAFETY: readlinkat into a buffer of the length given, relative to our descriptor.
        let length = unsafe {
            libc::readlinkat(
                self.fd.as_raw_fd(),
                c_name.as_ptr(),
                buffer.as_mut_ptr().cast(),
                buffer.len(),
            )
        };
        let length = usize::try_from(length).map_err(|_| io::Error::last_os_error())?;
        buffer.truncate(length);
        Ok(OsString::from_vec(buffer))
    }

    /// The folder's entries (not `.` or `..`), sorted by name.
    pub fn entries(&self) -> io::Result<Vec<OsString>> {
        // The descriptor's own /proc link names this very folder, not a path to resolve.
        let mut names: Vec<OsString> =
            std::fs::read_dir(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))?
                .map(|entry| entry.map(|entry| entry.file_name()))
                .collect::<io::Result<_>>()?;
        names.sort_unstable_by(|left, right| left.as_bytes().cmp(right.as_bytes()));
        Ok(names)
    }

    /// Moves `name` out of this folder to `target` (an absolute path gantry owns).
    pub fn rename_to(&self, name: &OsStr, target: &Path) -> io::Result<()> {
        let name = c_name(name)?;
        let target = CString::new(target.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: renameat with valid names; the source is relative to our descriptor.
        check(unsafe {
            libc::renameat(
                self.fd.as_raw_fd(),
                name.as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
            )
        })?;
        Ok(())
    }
}

fn kind_of(stat: &libc::stat) -> Kind {
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => Kind::File {
            executable: stat.st_mode & 0o111 != 0,
        },
        libc::S_IFDIR => Kind::Folder,
        libc::S_IFLNK => Kind::Link,
        _ => Kind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_link_is_followed_anywhere_in_the_path() {
        let base = tempfile::tempdir().expect("tempdir");
        let outside = tempfile::tempdir().expect("outside");
        std::fs::create_dir_all(base.path().join("a/b")).expect("mkdir");
        std::fs::write(outside.path().join("secret"), "x").expect("secret");
        std::os::unix::fs::symlink(outside.path(), base.path().join("a/link")).expect("link");
        std::os::unix::fs::symlink(outside.path().join("secret"), base.path().join("a/b/file"))
            .expect("link");
        let root = Folder::open(base.path()).expect("open");
        assert!(root.folder("a/b").is_ok());
        assert!(matches!(
            root.folder("a/link/deeper"),
            Err(Refusal::Link { path }) if path == "a/link"
        ));
        assert!(matches!(
            root.folder("a/missing"),
            Err(Refusal::Missing { .. })
        ));
        assert!(matches!(
            root.folder("a/.."),
            Err(Refusal::NotFolder { .. })
        ));
        let b = root.folder("a/b").expect("b");
        assert_eq!(b.kind(OsStr::new("file")).expect("kind"), Some(Kind::Link));
        assert!(
            b.open_file(OsStr::new("file")).is_err(),
            "a link is not opened"
        );
        assert!(Folder::open(&base.path().join("a/link")).is_err());
        assert_eq!(
            root.folder("a").expect("a").entries().expect("entries"),
            [OsString::from("b"), OsString::from("link")]
        );
    }
}
