//! Drives the real `nix` command (2.8 or later) and reads its JSON: `nix build --json`,
//! `nix path-info --json`, `nix hash path`, `nix show-config --json`. There is no usable Rust
//! crate for the store (nix-compat on crates.io is an empty placeholder), and the CLI is the
//! interface Nix keeps stable; see ARCHITECTURE.md.

pub mod hash;
pub mod nar;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use serde::Deserialize;

use crate::digest::Digest;
pub use crate::host_tool::{Captured, Ended};

/// What to build: the three ways a pipeline names a Nix build.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Installable {
    /// A flake output such as `./nix#hello`.
    Flake(String),
    /// A Nix expression evaluating to a derivation.
    Expr(String),
    /// A file (relative to the workspace root) and an optional attribute path in it.
    File { file: String, attr: Option<String> },
}

impl Installable {
    /// The arguments naming this installable on `nix build`.
    #[must_use]
    pub fn arguments(&self) -> Vec<String> {
        match self {
            Self::Flake(reference) => vec![reference.clone()],
            Self::Expr(expression) => vec!["--expr".to_owned(), expression.clone()],
            Self::File { file, attr } => {
                let mut arguments = vec!["--file".to_owned(), file.clone()];
                arguments.extend(attr.clone());
                arguments
            }
        }
    }

    /// The local folder of a flake reference (`./nix#hello` → `nix`), relative to the
    /// workspace root; `None` for remote flakes and for non-flake installables.
    #[must_use]
    pub fn local_flake(&self) -> Option<&str> {
        let Self::Flake(reference) = self else {
            return None;
        };
        let location = reference.split('#').next().unwrap_or_default();
        let location = location.strip_prefix("path:").unwrap_or(location);
        let location = location.split('?').next().unwrap_or_default();
        let path_like = [".", ".."].contains(&location)
            || ["./", "../", "/"]
                .iter()
                .any(|prefix| location.starts_with(prefix));
        if path_like {
            Some(location.strip_prefix("./").unwrap_or(location))
        } else {
            None
        }
    }
}

/// One installable `nix build --json` built.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Built {
    #[serde(rename = "drvPath")]
    pub drv_path: String,
    /// Output name → store path.
    pub outputs: BTreeMap<String, String>,
}

/// A store path's entry in the Nix database.
#[derive(Clone, Debug, Deserialize)]
pub struct PathInfo {
    pub path: String,
    #[serde(rename = "narHash", deserialize_with = "nar_hash")]
    pub nar_hash: Digest,
    #[serde(rename = "narSize", default)]
    pub nar_size: u64,
    #[serde(default)]
    pub references: Vec<String>,
    #[serde(default)]
    pub deriver: Option<String>,
}

fn nar_hash<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Digest, D::Error> {
    let text = String::deserialize(deserializer)?;
    hash::parse(&text)
        .ok_or_else(|| serde::de::Error::custom(format!("unreadable narHash `{text}`")))
}

/// The settings that decide how hermetic a Nix build is; recorded in attestations.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub version: String,
    pub system: String,
    pub sandbox: String,
}

#[derive(Debug, thiserror::Error)]
pub enum NixError {
    #[error(
        "`nix` was not found on PATH; install Nix (Debian: `apt-get install nix-bin`) or set GANTRY_NIX"
    )]
    Missing,
    #[error("cannot run `nix`: {0}")]
    Spawn(std::io::Error),
    #[error("`nix {command}` failed ({ended}){}", stderr_tail(.stderr))]
    Failed {
        command: String,
        ended: Ended,
        stderr: String,
    },
    #[error("cannot read the output of `nix {command}`: {message}")]
    Output { command: String, message: String },
}

fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|line| !line.is_empty()).collect();
    if lines.is_empty() {
        return String::new();
    }
    format!(": {}", lines[lines.len().saturating_sub(3)..].join(" / "))
}

/// How gantry calls `nix`: which binary, from which folder, with which limits.
pub struct Nix<'a> {
    pub program: PathBuf,
    pub directory: &'a Path,
    pub timeout: Option<Duration>,
    pub cancel: &'a AtomicBool,
}

impl<'a> Nix<'a> {
    /// `$GANTRY_NIX`, else `nix` on PATH, as [`configure`] was told.
    pub fn locate(
        directory: &'a Path,
        timeout: Option<Duration>,
        cancel: &'a AtomicBool,
    ) -> Result<Self, NixError> {
        let program = PROGRAM.get().cloned().flatten().ok_or(NixError::Missing)?;
        Ok(Self {
            program,
            directory,
            timeout,
            cancel,
        })
    }

    /// Runs `nix ARGS` with the flakes features on, returning what it printed.
    pub fn run(&self, arguments: &[String]) -> Result<Captured, NixError> {
        let mut all: Vec<OsString> = vec![
            "--extra-experimental-features".into(),
            "nix-command flakes".into(),
        ];
        all.extend(arguments.iter().map(OsString::from));
        let captured = crate::host_tool::run(
            &self.program,
            &all,
            self.directory,
            self.timeout,
            self.cancel,
        )
        .map_err(NixError::Spawn)?;
        if captured.ended == Ended::Exited(0) {
            Ok(captured)
        } else {
            Err(NixError::Failed {
                command: arguments.first().cloned().unwrap_or_default(),
                ended: captured.ended,
                stderr: String::from_utf8_lossy(&captured.stderr).into_owned(),
            })
        }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, arguments: &[String]) -> Result<T, NixError> {
        let captured = self.run(arguments)?;
        serde_json::from_slice(&captured.stdout).map_err(|error| NixError::Output {
            command: arguments.first().cloned().unwrap_or_default(),
            message: error.to_string(),
        })
    }

    /// `nix build --json`, with an out-link or none; also returns what Nix logged.
    pub fn build(
        &self,
        installable: &Installable,
        out_link: Option<&Path>,
        extra: &[&str],
    ) -> Result<(Vec<Built>, Captured), NixError> {
        let mut arguments = vec!["build".to_owned(), "--json".to_owned()];
        match out_link {
            Some(link) => {
                arguments.push("--out-link".to_owned());
                arguments.push(link.to_string_lossy().into_owned());
            }
            None => arguments.push("--no-link".to_owned()),
        }
        arguments.extend(extra.iter().map(|&argument| argument.to_owned()));
        arguments.extend(installable.arguments());
        let captured = self.run(&arguments)?;
        let built = serde_json::from_slice(&captured.stdout).map_err(|error| NixError::Output {
            command: "build".to_owned(),
            message: error.to_string(),
        })?;
        Ok((built, captured))
    }

    /// `nix path-info --json` of store paths; `derivation` reads `.drv` paths as themselves,
    /// `recursive` adds their closures.
    pub fn path_info(
        &self,
        paths: &[&str],
        derivation: bool,
        recursive: bool,
    ) -> Result<Vec<PathInfo>, NixError> {
        let mut arguments = vec!["path-info".to_owned(), "--json".to_owned()];
        if derivation {
            arguments.push("--derivation".to_owned());
        }
        if recursive {
            arguments.push("--recursive".to_owned());
        }
        arguments.extend(paths.iter().map(|&path| path.to_owned()));
        self.json(&arguments)
    }

    /// `nix hash path`: the SHA-256 of the NAR serialisation of any path, in the store or not.
    pub fn hash_path(&self, path: &Path) -> Result<Digest, NixError> {
        let captured = self.run(&[
            "hash".to_owned(),
            "path".to_owned(),
            "--type".to_owned(),
            "sha256".to_owned(),
            "--base16".to_owned(),
            path.to_string_lossy().into_owned(),
        ])?;
        let text = String::from_utf8_lossy(&captured.stdout);
        Digest::from_hex(text.trim()).ok_or_else(|| NixError::Output {
            command: "hash".to_owned(),
            message: format!("not a hex SHA-256: `{}`", text.trim()),
        })
    }

    /// The version, system and sandbox setting in effect.
    pub fn settings(&self) -> Result<Settings, NixError> {
        #[derive(Deserialize)]
        struct Setting {
            value: serde_json::Value,
        }
        let config: BTreeMap<String, Setting> =
            self.json(&["show-config".to_owned(), "--json".to_owned()])?;
        let text = |name: &str| {
            config
                .get(name)
                .map(|setting| match &setting.value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .unwrap_or_default()
        };
        let version = self.run(&["--version".to_owned()])?;
        Ok(Settings {
            version: String::from_utf8_lossy(&version.stdout)
                .trim()
                .rsplit(' ')
                .next()
                .unwrap_or_default()
                .to_owned(),
            system: text("system"),
            sandbox: text("sandbox"),
        })
    }
}

/// Where `nix` is, once the CLI has said (`configure`); `None` inside: not found.
static PROGRAM: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// Says where `nix` is: `explicit` (`$GANTRY_NIX`), else `nix` in `path` (`$PATH`). The CLI
/// calls it once, as it reads the process environment and nothing below it does.
pub fn configure(explicit: Option<PathBuf>, path: Option<&std::ffi::OsStr>) {
    let program = explicit.or_else(|| find_on_path("nix", path?));
    let _ = PROGRAM.set(program);
}

fn find_on_path(name: &str, path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path)
        .map(|folder| folder.join(name))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_flakes_are_recognised() {
        let flake = |text: &str| Installable::Flake(text.to_owned());
        assert_eq!(flake("./nix#hello").local_flake(), Some("nix"));
        assert_eq!(flake(".#hello").local_flake(), Some("."));
        assert_eq!(flake("path:./nix#x").local_flake(), Some("nix"));
        assert_eq!(flake("/abs/flake#x").local_flake(), Some("/abs/flake"));
        assert_eq!(flake("github:NixOS/nixpkgs#hello").local_flake(), None);
        assert_eq!(Installable::Expr("1".to_owned()).local_flake(), None);
    }

    #[test]
    fn build_json_is_read() {
        let built: Vec<Built> = serde_json::from_str(
            r#"[{"drvPath":"/nix/store/r3f9l9f32qpzwmdgizjpbwn3ff2n6ny7-hello.drv","outputs":{"out":"/nix/store/fvchbymk0m4jvldpb9m5hy0bjy2lf30k-hello"}}]"#,
        )
        .expect("json");
        assert_eq!(
            built[0].outputs["out"],
            "/nix/store/fvchbymk0m4jvldpb9m5hy0bjy2lf30k-hello"
        );
        let info: Vec<PathInfo> = serde_json::from_str(
            r#"[{"path":"/nix/store/fvchbymk0m4jvldpb9m5hy0bjy2lf30k-hello","narHash":"sha256-HDfQGvQL4ugGkd48w99EN3ppmvuxfGjwgJZLL9Bx/BM=","narSize":120,"references":[],"deriver":"/nix/store/r3f9l9f32qpzwmdgizjpbwn3ff2n6ny7-hello.drv","registrationTime":1795444034,"ultimate":true}]"#,
        )
        .expect("json");
        assert_eq!(
            info[0].nar_hash.hex(),
            "1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13"
        );
    }
}
