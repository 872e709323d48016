//! Real public projects nobody here wrote, brought from the package registries at test time
//! and pinned by digest (nothing of them is kept in this repository): zlib 1.2.13 (C,
//! configure and make), Debian's source archive of it; hexyl 0.16.0 (a Rust CLI, 68 crates
//! from crates.io); proto-list 1.2.4 (npm, its tests on 122 packages); tomli 2.0.1 (Python,
//! flit); Google's uuid 1.6.0 (a Go library, Debian's source archive). Each goes the way a
//! new user's project does: `gantry init` → run → verify → repro → an edit and a commit → a
//! commit that touches nothing a step reads → `release --reproduce` → `release verify`, with
//! the steps each run executed. A Nix flake goes the same way, but it is one of ours: nixpkgs
//! cannot be fetched here, so the only flakes that build offline are `/bin/sh` derivations.

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

const PROTO_LIST: Download = Download {
    url: "https://registry.npmjs.org/proto-list/-/proto-list-1.2.4.tgz",
    sha256: "dc8ad2a9d6ea9f2fc4714cc1ccab04c50ec0b0d824cb3656cfe00405f4f895fe",
    folder: "package",
    unpack: "xzf",
};

const TOMLI: Download = Download {
    url: "https://files.pythonhosted.org/packages/c0/3f/d7af728f075fb08564c5949a9c95e44352e23dee646869fa104a3b2060a3/tomli-2.0.1.tar.gz",
    sha256: "de526c12914f0c550d15924c62d72abc48d6fe7364aa87328337a31007fe8a4f",
    folder: "tomli-2.0.1",
    unpack: "xzf",
};

const UUID: Download = Download {
    url: "http://deb.debian.org/debian/pool/main/g/golang-github-google-uuid/golang-github-google-uuid_1.6.0.orig.tar.gz",
    sha256: "ee63376b5675376c60e055ed66e5f3651ccc703bd580c022b8ad00cea309252d",
    folder: "uuid-1.6.0",
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
            "cannot download {}: these tests need the package registries (deb.debian.org, static.crates.io, the npm registry, PyPI), as `bash scripts/test.sh` has",
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
        Project::in_folder(dir, root)
    }
}

impl Project {
    /// A project of these files, written here.
    fn written(folder: &str, files: &[(&str, &str)]) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("gantry-real-")
            .tempdir()
            .expect("tempdir");
        let root = dir.path().join(folder);
        for (file, text) in files {
            let path = root.join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        Project::in_folder(dir, root)
    }

    /// The sources in `root`, committed, with a HOME of their own.
    fn in_folder(dir: tempfile::TempDir, root: PathBuf) -> Project {
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

    /// `gantry init`, which must have found `kind`, and a commit of what it wrote.
    fn init(&self, kind: &str) {
        let init = self.gantry(&["init"]).success();
        assert!(
            init.stdout().contains(&format!("found: {kind}\n")),
            "{}",
            init.stdout()
        );
        self.commit("gantry pipeline");
    }

    /// A commit of a CI file, which no step reads: the run after it executes nothing.
    fn commits_nothing_a_step_reads(&self) {
        std::fs::create_dir_all(self.root.join(".github")).expect("mkdir");
        std::fs::write(self.root.join(".github/ci.yml"), "on: push\n").expect("write");
        self.commit("ci");
        assert_eq!(self.run(), Vec::<String>::new());
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
    zlib.init("C (configure and make)");
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
    zlib.commits_nothing_a_step_reads();
    zlib.verifies("out/dist/zlib.tar.gz");
    zlib.releases("1.2.13");
}

#[test]
fn hexyl_from_init_to_a_verified_reproduced_release() {
    let hexyl = HEXYL.project();
    hexyl.init("Rust (Cargo), binaries: hexyl");
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

#[test]
fn an_npm_package_from_init_to_a_verified_reproduced_release() {
    let package = PROTO_LIST.project();
    // The registry's tarball has no lock file; a project commits one (npm resolves it).
    let locked = Command::new("npm")
        .args(["install", "--package-lock-only", "--ignore-scripts"])
        .args(["--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&package.root)
        .env("HOME", &package.home)
        .status()
        .expect("npm");
    assert!(locked.success(), "npm cannot reach the npm registry");
    package.commit("lock");
    package.init("npm (package.json)");
    assert_eq!(
        package.run(),
        names(&["build", "deps", "sbom-cyclonedx", "sbom-spdx"])
    );
    let tarball = "out/dist/proto-list-1.2.4.tgz";
    assert!(path(&package.root, tarball).is_file());
    package.verifies(tarball);
    package.gantry(&["repro", "pipeline.toml"]).success();

    // An edit tests and packs again, offline: the packages are keyed on the lock alone.
    package.append("proto-list.js", "// an edit\n");
    package.commit("an edit");
    assert_eq!(
        package.run(),
        names(&["build", "sbom-cyclonedx", "sbom-spdx"])
    );
    package.commits_nothing_a_step_reads();
    package.verifies(tarball);
    package.releases("1.2.5");
}

#[test]
fn a_python_package_from_init_to_a_verified_reproduced_release() {
    let tomli = TOMLI.project();
    tomli.init("Python (pyproject.toml)");
    assert_eq!(
        tomli.run(),
        names(&["build", "deps", "sbom-cyclonedx", "sbom-spdx"])
    );
    let wheel = "out/dist/tomli-2.0.1-py3-none-any.whl";
    assert!(path(&tomli.root, wheel).is_file());
    tomli.verifies(wheel);
    tomli.gantry(&["repro", "pipeline.toml"]).success();

    tomli.append("src/tomli/_parser.py", "# an edit\n");
    tomli.commit("an edit");
    assert_eq!(
        tomli.run(),
        names(&["build", "sbom-cyclonedx", "sbom-spdx"])
    );
    tomli.commits_nothing_a_step_reads();
    tomli.verifies(wheel);
    tomli.releases("2.0.2");
}

#[test]
fn a_go_library_from_init_to_a_verified_reproduced_release() {
    let uuid = UUID.project();
    uuid.init("Go (go.mod), a library");
    // No go.sum: nothing to fetch, so no step has the network.
    assert!(
        !std::fs::read_to_string(uuid.root.join("pipeline.toml"))
            .expect("pipeline")
            .contains("network = true")
    );
    assert_eq!(
        uuid.run(),
        names(&["build", "sbom-cyclonedx", "sbom-spdx", "test"])
    );
    let archive = "out/dist/uuid-src.tar.gz";
    uuid.verifies(archive);
    uuid.gantry(&["repro", "pipeline.toml"]).success();

    uuid.append("uuid.go", "// an edit\n");
    uuid.commit("an edit");
    assert_eq!(
        uuid.run(),
        names(&["build", "sbom-cyclonedx", "sbom-spdx", "test"])
    );
    uuid.commits_nothing_a_step_reads();
    uuid.verifies(archive);
    uuid.releases("1.6.1");
}

#[test]
fn a_nix_flake_from_init_to_a_verified_reproduced_release() {
    let flake = Project::written(
        "greeting",
        &[
            (
                "flake.nix",
                r#"{
  outputs = { self }: {
    packages.x86_64-linux.default = derivation {
      name = "greeting";
      system = "x86_64-linux";
      builder = "/bin/sh";
      args = [ "-c" "read -r line < ${./greeting.txt}; echo \"$line\" > $out" ];
    };
  };
}
"#,
            ),
            ("greeting.txt", "hello\n"),
        ],
    );
    flake.init("Nix (flake.nix)");
    assert_eq!(
        flake.run(),
        names(&["build", "sbom-cyclonedx", "sbom-spdx"])
    );
    flake.verifies("out/result");
    flake.gantry(&["repro", "pipeline.toml"]).success();
    flake.append("greeting.txt", "again\n");
    flake.commit("an edit");
    assert_eq!(
        flake.run(),
        names(&["build", "sbom-cyclonedx", "sbom-spdx"])
    );
    flake.verifies("out/result");
    flake.releases("1.0.1");
}

/// A C program whose Makefile names its source by absolute path, so `__FILE__` and the debug
/// information hold the folder it is built in ($TMPDIR's copy of the work folder): the flags
/// `gantry init` writes make that `/tmp/src/...` wherever $TMPDIR and the work folder are, so
/// the program reproduces when `gantry repro` moves both.
#[test]
fn a_c_program_that_prints_its_own_source_path_reproduces() {
    let project = Project::written(
        "where",
        &[
            (
                "Makefile",
                "PREFIX ?= /usr/local\nall: where\nwhere: where.c\n\t$(CC) $(CPPFLAGS) $(CFLAGS) -g -O2 -o where $(CURDIR)/where.c\ninstall: where\n\tinstall -D -m 755 where $(DESTDIR)$(PREFIX)/bin/where\n",
            ),
            (
                "where.c",
                "#include <stdio.h>\nint main(void) { puts(__FILE__); return 0; }\n",
            ),
        ],
    );
    project.init("C (make)");
    assert_eq!(
        project.run(),
        names(&["build", "package", "sbom-cyclonedx", "sbom-spdx"])
    );
    let printed = Command::new(project.root.join("out/install/usr/bin/where"))
        .output()
        .expect("the program runs");
    assert_eq!(
        String::from_utf8_lossy(&printed.stdout),
        "/tmp/src/where.c\n"
    );
    let repro = project.gantry(&["repro", "pipeline.toml"]).success();
    assert!(
        repro.stdout().contains("outputs reproduced"),
        "{}",
        repro.stdout()
    );
}
