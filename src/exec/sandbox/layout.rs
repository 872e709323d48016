//! The fixed part of every sandbox's setup, computed once per run: identity maps, hostname,
//! the tmpfs root, the host's system folders read-only, `/dev`, `/proc`, `/tmp` and HOME.

use std::ffi::CString;
use std::io;
use std::path::Path;

use crate::exec::sandbox::child::Operation;
use crate::exec::sandbox::{Identity, Profile, c_path, locked_flags, push_read_only_bind};

/// Host folders shown read-only when they exist. `/bin`, `/lib` and the like are symlinks
/// into `/usr` on merged-usr systems and are recreated as such.
const SYSTEM_FOLDERS: &[&str] = &[
    "/usr", "/etc", "/nix", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

/// Kernel interfaces hidden from steps, as runc and Docker hide them: files become
/// `/dev/null`, folders an empty read-only tmpfs. Each is masked when the host's `/proc` has it.
const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
];

/// Kernel interfaces shown read-only (runc's and Docker's list).
const READ_ONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Operations up to (not including) the step's own `/build` mount.
pub(super) fn base_operations(
    root: &Path,
    identity: Identity,
    profile: &Profile,
) -> io::Result<Vec<Operation>> {
    let mut operations = namespaces(root, identity, profile)?;
    system_folders(root, &mut operations)?;
    devices(root, &mut operations)?;
    private_folders(root, &mut operations, profile)?;
    kernel_interfaces(root, &mut operations)?;
    if let Identity::Dropped { uid, gid } = identity {
        operations.push(Operation::Chown {
            path: inside(root, &profile.home_dir)?,
            uid,
            gid,
        });
    }
    Ok(operations)
}

/// The last operations of a root gantry's child, after its mounts and `chdir`: become the
/// unprivileged host user, then enter a user namespace of that user's own (a single mapping of
/// one's own id needs no privilege) that shows the step the profile's uid and gid.
pub(super) fn become_step_user(identity: Identity, profile: &Profile) -> Vec<Operation> {
    let Identity::Dropped { uid, gid } = identity else {
        return Vec::new();
    };
    vec![Operation::BecomeStepUser {
        uid,
        gid,
        uid_map: format!("{} {uid} 1", profile.uid).into_bytes(),
        gid_map: format!("{} {gid} 1", profile.gid).into_bytes(),
    }]
}

fn inside(root: &Path, path: &str) -> io::Result<CString> {
    c_path(&root.join(path.trim_start_matches('/')))
}

/// Makes `folder` (absolute, inside the sandbox) and its parents, mode 0755.
pub(super) fn make_folders(
    root: &Path,
    folder: &str,
    operations: &mut Vec<Operation>,
) -> io::Result<()> {
    let mut path = String::new();
    for part in folder.split('/').filter(|part| !part.is_empty()) {
        path.push('/');
        path.push_str(part);
        operations.push(Operation::Mkdir {
            path: inside(root, &path)?,
            mode: 0o755,
        });
    }
    Ok(())
}

/// An unprivileged gantry's child starts in a new user namespace and maps its own ids there; a
/// root gantry's child keeps the host's until [`become_step_user`].
fn namespaces(root: &Path, identity: Identity, profile: &Profile) -> io::Result<Vec<Operation>> {
    let mut operations = Vec::new();
    if let Identity::Own { uid, gid } = identity {
        operations.extend([
            Operation::WriteFile {
                path: c"/proc/self/setgroups".into(),
                bytes: b"deny".to_vec(),
            },
            Operation::WriteFile {
                path: c"/proc/self/uid_map".into(),
                bytes: format!("{} {uid} 1", profile.uid).into_bytes(),
            },
            Operation::WriteFile {
                path: c"/proc/self/gid_map".into(),
                bytes: format!("{} {gid} 1", profile.gid).into_bytes(),
            },
        ]);
    }
    operations.extend([
        Operation::SetHostname {
            name: profile.hostname.as_bytes().to_vec(),
        },
        // Nothing mounted from here on may propagate back to the host.
        Operation::Mount {
            source: None,
            target: c"/".into(),
            fstype: None,
            flags: libc::MS_REC | libc::MS_PRIVATE,
            data: None,
        },
        Operation::Mount {
            source: Some(c"tmpfs".into()),
            target: c_path(root)?,
            fstype: Some(c"tmpfs".into()),
            flags: libc::MS_NOSUID | libc::MS_NODEV,
            data: Some(c"mode=0755".into()),
        },
    ]);
    Ok(operations)
}

/// [`MASKED`] and [`READ_ONLY`], after the fresh `/proc` is mounted.
fn kernel_interfaces(root: &Path, operations: &mut Vec<Operation>) -> io::Result<()> {
    let proc_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    for path in MASKED {
        let Ok(metadata) = std::fs::symlink_metadata(path) else {
            continue;
        };
        let target = inside(root, path)?;
        operations.push(if metadata.is_dir() {
            Operation::Mount {
                source: Some(c"tmpfs".into()),
                target,
                fstype: Some(c"tmpfs".into()),
                flags: libc::MS_RDONLY | proc_flags,
                data: Some(c"size=4k,mode=0555".into()),
            }
        } else {
            Operation::Mount {
                source: Some(c"/dev/null".into()),
                target,
                fstype: None,
                flags: libc::MS_BIND,
                data: None,
            }
        });
    }
    for path in READ_ONLY {
        if std::fs::symlink_metadata(path).is_err() {
            continue;
        }
        let target = inside(root, path)?;
        push_read_only_bind(operations, target.clone(), target, proc_flags);
    }
    Ok(())
}

fn system_folders(root: &Path, operations: &mut Vec<Operation>) -> io::Result<()> {
    for folder in SYSTEM_FOLDERS {
        let path = Path::new(folder);
        let Ok(metadata) = std::fs::symlink_metadata(path) else {
            continue;
        };
        let target = inside(root, folder)?;
        if metadata.file_type().is_symlink() {
            let link = std::fs::read_link(path)?;
            operations.push(Operation::Symlink {
                target: c_path(&link)?,
                link: target,
            });
        } else if metadata.is_dir() {
            operations.push(Operation::Mkdir {
                path: target.clone(),
                mode: 0o755,
            });
            push_read_only_bind(operations, c_path(path)?, target, locked_flags(path)?);
        }
    }
    Ok(())
}

fn devices(root: &Path, operations: &mut Vec<Operation>) -> io::Result<()> {
    operations.push(Operation::Mkdir {
        path: inside(root, "/dev")?,
        mode: 0o755,
    });
    for device in DEVICES {
        let target = inside(root, &format!("/dev/{device}"))?;
        operations.push(Operation::CreateFile {
            path: target.clone(),
        });
        operations.push(Operation::Mount {
            source: Some(CString::new(format!("/dev/{device}"))?),
            target,
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
        });
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        operations.push(Operation::Symlink {
            target: CString::new(target)?,
            link: inside(root, &format!("/dev/{name}"))?,
        });
    }
    shared_folder(root, "/dev/shm", operations)
}

/// A sticky, world-writable folder (`/tmp`, `/dev/shm`). mkdir applies the umask; chmod sets
/// the mode for real.
fn shared_folder(root: &Path, folder: &str, operations: &mut Vec<Operation>) -> io::Result<()> {
    operations.push(Operation::Mkdir {
        path: inside(root, folder)?,
        mode: 0o1777,
    });
    operations.push(Operation::Chmod {
        path: inside(root, folder)?,
        mode: 0o1777,
    });
    Ok(())
}

fn private_folders(
    root: &Path,
    operations: &mut Vec<Operation>,
    profile: &Profile,
) -> io::Result<()> {
    operations.push(Operation::Mkdir {
        path: inside(root, "/proc")?,
        mode: 0o555,
    });
    // A fresh proc: the step is pid 1 of its own pid namespace and sees only its processes.
    operations.push(Operation::Mount {
        source: Some(c"proc".into()),
        target: inside(root, "/proc")?,
        fstype: Some(c"proc".into()),
        flags: libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        data: None,
    });
    shared_folder(root, "/tmp", operations)?;
    if profile.tmp_dir != "/tmp" {
        let parent = profile
            .tmp_dir
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent);
        make_folders(root, parent, operations)?;
        shared_folder(root, &profile.tmp_dir, operations)?;
    }
    make_folders(root, &profile.home_dir, operations)
}
