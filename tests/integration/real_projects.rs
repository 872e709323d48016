//! Two real public projects nobody here wrote, brought from the package registries at test
//! time and pinned by digest (nothing of them is kept in this repository): zlib 1.2.13 (C,
//! configure and make), Debian's source archive of it, and hexyl 0.16.0 (a Rust CLI, 68 crates
//! from crates.io). Each goes the way a new user's project does: `gantry init` → run → verify
//! → repro → an edit and a commit → a commit that touches nothing a step reads →
//! `release --reproduce` → `release verify`, with the number of steps each run executed.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::{GANTRY, Run, sha256_hex};

const ZLIB: Download = Download {
    url: "http://deb.debian.org/debian/pool/main/z/zlib/zlib_1.2.13.dfsg.orig.tar.bz2",
    sha256: "71feb7947e3c00ef125f83b79a4e529bde31171e5babe48b391f06758d1ab0a1",
    folder: "zlib-1.2.13.dfsg",
    unpack: "xjf",
};

const HEXYL: Download = Download {
    url: "https://static.crates.io/crates/hexyl/hexyl-0.16.0.crate",
    sha256: "43d56dd04872b6c6d429f18d2e03df95f853feb618c7cd8bf22d0e6851ce5ef8",
    folder: "hexyl-0.16.0",
    unpack: "xzf",
};

struct Download {
    url: &'static str,
    sha256: &'static str,
    folder: &'static str,
    unpack: &'static str,
}

/// A project's work tree: a git repository of the unpacked sources, its own HOME.
struct Project {
    _dir: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
}

impl Download {
    /// Downloads, checks the digest, unpacks and commits the project.
    fn project(&self) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("gantry-real-")
            .tempdir()
            .expect("tempdir");
        let archive = dir.path().join("archive");
        let fetched = Command::new("curl")
            .args(["-sSfL", "--retry", "3", "-o"])
            .arg(&archive)
            .arg(self.url)
            .status()
            .expect("curl");
        assert!(
            fetched.success(),
            "cannot download {}: these tests need the package registries (deb.debian.org, static.crates.io), as `bash scripts/test.sh` has",
            self.url
        );
        let bytes = std::fs::read(&archive).expect("archive");
        assert_eq!(sha256_hex(&bytes), self.sha256, "{} changed", self.url);
        // Owned by whoever unpacks it (git refuses a repository someone else owns).
        let unpacked = Command::new("tar")
            .arg("--no-same-owner")
            .arg(format!("-{}", self.unpack))
            .arg(&archive)
            .current_dir(dir.path())
            .status()
            .expect("tar");
        assert!(unpacked.success());
        let root = dir.path().join(self.folder);
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).expect("home");
        let project = Project {
            _dir: dir,
            root,
            home,
        };
        project.git(&["init", "-q"]);
        project.commit("the sources as released");
        project
    }
}

impl Project {
    fn git(&self, args: &[&str]) {
        let status = Command::new("git")
            .args(["-c", "user.name=Real", "-c", "user.email=real@example.org"])
            .args(args)
            .current_dir(&self.root)
            .env("GIT_AUTHOR_DATE", "2026-11-01T12:00:00Z")
            .env("GIT_COMMITTER_DATE", "2026-11-01T12:00:00Z")
            .status()
            .expect("git");
        assert!(status.success(), "git {args:?}");
    }

    fn commit(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["commit", "-q", "--allow-empty", "-m", message]);
    }

    fn gantry(&self, args: &[&str]) -> Run {
        let rustup = std::env::var_os("RUSTUP_HOME").map_or_else(
            || PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".rustup"),
            PathBuf::from,
        );
        let output = Command::new(GANTRY)
            .args(args)
            .current_dir(&self.root)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            // `gantry init` asks rustc which toolchain it is; rustup finds it here.
            .env("RUSTUP_HOME", rustup)
            .output()
            .expect("run gantry");
        Run { output }
    }

    /// `gantry run pipeline.toml`: the steps it executed, by name.
    fn run(&self) -> Vec<String> {
        let run = self.gantry(&["run", "pipeline.toml", "--json"]).success();
        let mut executed: Vec<String> = (run.statuses().into_iter())
            .filter(|(_, status)| status == "executed")
            .map(|(step, _)| step)
            .collect();
        executed.sort();
        executed
    }

    fn append(&self, file: &str, text: &str) {
        let path = self.root.join(file);
        let mut contents = std::fs::read_to_string(&path).expect("read");
        contents.push_str(text);
        std::fs::write(&path, contents).expect("write");
    }

    /// `gantry verify` of the newest run of the pipeline the policy approves (no
    /// `--attestations`: the shortcut a user types).
    fn verifies(&self, artifact: &str) {
        let verified = self
            .gantry(&["verify", "--policy", "policies/release.toml", artifact])
            .success();
        assert!(
            verified
                .stderr()
                .contains("(the newest run of pipeline.toml)"),
            "{}",
            verified.stderr()
        );
    }

    /// `release VERSION --reproduce`, then `release verify VERSION`.
    fn releases(&self, version: &str) {
        let cut = self.gantry(&["release", version, "--reproduce"]).success();
        let said = format!("{}{}", cut.stdout(), cut.stderr());
        assert!(said.contains(&format!("tagged   v{version}")), "{said}");
        self.gantry(&["release", "verify", version]).success();
    }
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn path(root: &Path, relative: &str) -> PathBuf {
    root.join(relative)
}

#[test]
fn zlib_from_init_to_a_verified_reproduced_release() {
    let zlib = ZLIB.project();
    let init = zlib.gantry(&["init"]).success();
    assert!(
        init.stdout().contains("found: C (configure and make)"),
        "{}",
        init.stdout()
    );
    zlib.commit("gantry pipeline");
    assert_eq!(
        zlib.run(),
        names(&["build", "package", "sbom-cyclonedx", "sbom-spdx", "test"])
    );
    assert!(path(&zlib.root, "out/install/usr/lib/libz.so.1.2.13").is_file());
    zlib.verifies("out/dist/zlib.tar.gz");
    zlib.gantry(&["repro", "pipeline.toml"]).success();

    // A comment in a source file: the library is built and tested again, and its bytes are
    // the same, so nothing after it runs.
    zlib.append("adler32.c", "/* an edit */\n");
    zlib.commit("an edit");
    assert_eq!(zlib.run(), names(&["build", "test"]));
    // A commit that touches nothing a step reads (a CI file) runs nothing.
    std::fs::create_dir_all(zlib.root.join(".github")).expect("mkdir");
    std::fs::write(zlib.root.join(".github/ci.yml"), "on: push\n").expect("write");
    zlib.commit("ci");
    assert_eq!(zlib.run(), Vec::<String>::new());
    zlib.verifies("out/dist/zlib.tar.gz");
    zlib.releases("1.2.13");
}

#[test]
fn hexyl_from_init_to_a_verified_reproduced_release() {
    let hexyl = HEXYL.project();
    let init = hexyl.gantry(&["init"]).success();
    assert!(
        init.stdout()
            .contains("found: Rust (Cargo), binaries: hexyl"),
        "{}",
        init.stdout()
    );
    hexyl.commit("gantry pipeline");
    assert_eq!(
        hexyl.run(),
        names(&["build", "sbom-cyclonedx", "sbom-spdx", "test", "vendor"])
    );
    let version = Command::new(path(&hexyl.root, "out/bin/hexyl"))
        .arg("--version")
        .output()
        .expect("hexyl runs");
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        "hexyl 0.16.0"
    );
    hexyl.verifies("out/bin/hexyl");

    // A source edit builds and tests again with the warm `target` (no download: the vendor
    // step is keyed on the manifests and the lock).
    hexyl.append("src/main.rs", "// an edit\n");
    hexyl.commit("an edit");
    let executed = hexyl.run();
    assert!(
        executed.contains(&"build".to_owned()) && executed.contains(&"test".to_owned()),
        "{executed:?}"
    );
    assert!(!executed.contains(&"vendor".to_owned()), "{executed:?}");
    hexyl.append("README.md", "\nAn edit nothing builds from.\n");
    hexyl.commit("docs");
    assert_eq!(hexyl.run(), Vec::<String>::new());
    hexyl.verifies("out/bin/hexyl");
    hexyl.releases("0.16.1");
}
