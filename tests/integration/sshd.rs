//! An OpenSSH server on 127.0.0.1 for Nix's remote builders, with a client key, stopped when
//! dropped. Its `remote-store` program runs `nix-store` over a `/nix` of its own (a folder
//! bound over `/nix` in a private mount namespace), so what it builds lands in a store apart
//! from the machine's.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct Sshd {
    dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
}

impl Sshd {
    pub(crate) fn start() -> Self {
        crate::support::require_tool(
            "ssh",
            "-V",
            "`apt-get install openssh-client openssh-server` (bash scripts/test.sh installs them)",
        );
        assert!(
            Path::new("/usr/sbin/sshd").exists(),
            "these tests need sshd: `apt-get install openssh-server` (bash scripts/test.sh installs it)"
        );
        // SAFETY: a getter.
        let root = unsafe { libc::geteuid() } == 0;
        assert!(
            root,
            "the remote builder test runs sshd and mount namespaces: run it as root"
        );
        let dir = tempfile::Builder::new()
            .prefix("gantry-sshd-")
            .tempdir()
            .expect("temporary folder");
        let path = |name: &str| dir.path().join(name);
        for key in ["host_key", "client_key"] {
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path(key))
                .status()
                .expect("ssh-keygen");
            assert!(status.success());
        }
        std::fs::copy(path("client_key.pub"), path("authorized_keys")).expect("authorized_keys");
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let port = free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nPidFile {}\n",
            path("host_key").display(),
            path("authorized_keys").display(),
            path("sshd.pid").display(),
        );
        std::fs::write(path("sshd_config"), config).expect("sshd_config");
        std::fs::create_dir_all(path("remote-nix")).expect("remote nix");
        // No build users: this store keeps its own pool of them, so it would take `nixbld1`
        // while a test building in the host's store has it too, and Nix kills every process
        // of a build user it takes (a concurrent test's builder died of SIGKILL that way).
        let store = format!(
            "#!/bin/sh\nexec unshare --mount --propagation private /bin/sh -c 'mount --bind \"$0\" /nix && NIX_CONFIG=\"sandbox = false\nsubstituters =\nbuild-users-group =\" exec nix-store \"$@\"' {} \"$@\"\n",
            path("remote-nix").display()
        );
        std::fs::write(path("remote-store"), store).expect("remote-store");
        set_executable(&path("remote-store"));
        let child = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f"])
            .arg(path("sshd_config"))
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(path("sshd.log")).expect("sshd log"))
            .spawn()
            .expect("start sshd");
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "sshd did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { dir, child, port }
    }

    /// The builder's Nix machine specification.
    pub(crate) fn builder(&self) -> String {
        format!(
            "ssh://root@127.0.0.1?remote-program={} x86_64-linux {} 1 1",
            self.dir.path().join("remote-store").display(),
            self.dir.path().join("client_key").display()
        )
    }

    /// `NIX_SSHOPTS` reaching this server.
    pub(crate) fn ssh_options(&self) -> String {
        format!(
            "-p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR",
            self.port
        )
    }

    /// The builder's own store.
    pub(crate) fn store(&self) -> PathBuf {
        self.dir.path().join("remote-nix/store")
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free port")
}

fn set_executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}
