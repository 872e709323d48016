//! `kind = "exec"`: a command run in the sandbox. This file decides what the command sees:
//! its program (resolved and recorded as a material), its argument vector and environment.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::exec::sandbox::DEFAULT_PATH;
use crate::exec::variation::Variation;
use crate::pipeline::ExecStep;

/// Host folders whose programs a step may run by absolute path (they are visible inside).
const SYSTEM_PREFIXES: &[&str] = &[
    "/usr/",
    "/bin/",
    "/sbin/",
    "/lib/",
    "/lib64/",
    "/etc/",
    "/nix/store/",
];

/// `gantry run --param NAME=VALUE` reaches every command as `GANTRY_PARAM_NAME=VALUE`.
pub const PARAMETER_PREFIX: &str = "GANTRY_PARAM_";

/// In a `gantry release` run, the version being released (`1.4.0`).
pub const RELEASE_VERSION: &str = "GANTRY_RELEASE_VERSION";

/// The variables every step gets, before its declared ones. An explicit allowlist: nothing of
/// the caller's environment reaches a step. `variation` (`gantry repro`) changes the locale
/// and time zone a step did not declare, HOME and TMPDIR. Run parameters and the version being
/// released (`GANTRY_RELEASE_VERSION`, in a `gantry release` run) come last.
#[must_use]
pub fn environment(
    declared: &BTreeMap<String, String>,
    parameters: &BTreeMap<String, String>,
    release_version: Option<&str>,
    source_date_epoch: Option<i64>,
    variation: &Variation,
) -> Vec<(String, String)> {
    let mut env: BTreeMap<String, String> = BTreeMap::new();
    env.insert("PATH".into(), DEFAULT_PATH.into());
    let locale_declared = declared.contains_key("LANG") || declared.contains_key("LC_ALL");
    let locale = match &variation.locale {
        Some(locale) if !locale_declared => locale.as_str(),
        _ => "C.UTF-8",
    };
    env.insert("LANG".into(), locale.into());
    let timezone = variation.timezone.as_deref().unwrap_or("UTC");
    env.insert("TZ".into(), timezone.into());
    if let Some(epoch) = source_date_epoch {
        env.insert("SOURCE_DATE_EPOCH".into(), epoch.to_string());
    }
    env.extend(
        declared
            .iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    // After the declared variables, so a pipeline cannot shadow what the run was given.
    for (name, value) in parameters {
        env.insert(format!("{PARAMETER_PREFIX}{name}"), value.clone());
    }
    if let Some(version) = release_version {
        env.insert(RELEASE_VERSION.into(), version.into());
    }
    if !declared.contains_key("LC_ALL") {
        let lang = env.get("LANG").cloned().unwrap_or_default();
        env.insert("LC_ALL".into(), lang);
    }
    env.insert("HOME".into(), variation.sandbox.home_dir.clone());
    env.insert("TMPDIR".into(), variation.sandbox.tmp_dir.clone());
    env.into_iter().collect()
}

/// Puts each tool's `bin` first on PATH, in the order the step lists them.
pub fn put_tools_on_path(env: &mut [(String, String)], tools: &[crate::exec::tools::Resolved]) {
    if tools.is_empty() {
        return;
    }
    if let Some((_, path)) = env.iter_mut().find(|(name, _)| name == "PATH") {
        let mut folders: Vec<String> = (tools.iter())
            .map(|tool| format!("{}/bin", tool.mount_point))
            .collect();
        folders.push(std::mem::take(path));
        *path = folders.join(":");
    }
}

/// The program a step starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Program {
    /// A host program (visible read-only in the sandbox): the path to exec and the file it
    /// resolves to, recorded as a material.
    System {
        exec_path: String,
        resolved: PathBuf,
    },
    /// A declared input of the step, run by its workspace-relative path.
    Input { path: String },
    /// A program of one of the step's `[tools]`, by its path in the sandbox; the tool's
    /// digest covers it.
    Tool { exec_path: String },
}

/// A tool's folder in the sandbox and on the host, for finding programs in it.
pub type ToolMount = (String, PathBuf);

/// The host file behind `path` (absolute, in the sandbox) when it is inside a tool's folder.
fn in_tool(path: &str, tools: &[ToolMount]) -> Option<PathBuf> {
    tools.iter().find_map(|(mount_point, host)| {
        let rest = path.strip_prefix(mount_point.as_str())?;
        let rest = rest.strip_prefix('/')?;
        Some(host.join(rest))
    })
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path)
        .is_ok_and(|metadata| metadata.is_file() && metadata.permissions().mode() & 0o111 != 0)
}

impl Program {
    #[must_use]
    pub fn exec_path(&self) -> &str {
        match self {
            Self::System { exec_path, .. } | Self::Tool { exec_path } => exec_path,
            Self::Input { path } => path,
        }
    }
}

/// Programs found on PATH during one run: thousands of steps running `sh` resolve it once.
/// Each resolution keeps the tool folders it was made with, so that a later run can make it
/// again (`run::settled`).
#[derive(Default)]
pub struct ProgramCache {
    found: std::sync::Mutex<Found>,
    digests: std::sync::Mutex<std::collections::HashMap<PathBuf, crate::digest::Digest>>,
}

/// Each resolution by (name, PATH): the tool folders it was made with, and what it found.
type Found = std::collections::HashMap<(String, String), (Vec<ToolMount>, Result<Program, String>)>;

/// A program found by name on a PATH, and what it was: what a run's steps ran, for
/// `run::settled` to find again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolution {
    pub name: String,
    pub path: String,
    pub tools: Vec<ToolMount>,
    pub program: Program,
    /// A host program's digest (a tool's program is covered by the tool's digest).
    pub digest: Option<crate::digest::Digest>,
}

impl ProgramCache {
    /// The digest of a host program, hashed (or stat-checked) once per run.
    pub fn digest(
        &self,
        path: &Path,
        stats: &crate::store::StatCache,
    ) -> std::io::Result<crate::digest::Digest> {
        let mut digests = self
            .digests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(digest) = digests.get(path) {
            return Ok(*digest);
        }
        let digest = stats.digest(path)?;
        digests.insert(path.to_path_buf(), digest);
        Ok(digest)
    }

    pub fn resolve(
        &self,
        step: &ExecStep,
        env: &[(String, String)],
        inputs: &[String],
        tools: &[ToolMount],
    ) -> Result<Program, String> {
        let name = &step.argv[0];
        if name.contains('/') && !name.starts_with('/') {
            return resolve_program(step, env, inputs, tools);
        }
        let path = env
            .iter()
            .find(|(variable, _)| variable == "PATH")
            .map_or(DEFAULT_PATH, |(_, value)| value.as_str());
        let key = (name.clone(), path.to_owned());
        let mut found = self
            .found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        found
            .entry(key)
            .or_insert_with(|| (tools.to_vec(), resolve_program(step, env, inputs, tools)))
            .1
            .clone()
    }

    /// Every program this run found by name, with the digest of each host program hashed:
    /// `None` when a resolution failed or a host program was not hashed.
    #[must_use]
    pub fn resolutions(&self) -> Option<Vec<Resolution>> {
        let found = self
            .found
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let digests = self
            .digests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut resolutions = Vec::with_capacity(found.len());
        for ((name, path), (tools, program)) in found.iter() {
            let program = program.as_ref().ok()?.clone();
            let digest = match &program {
                Program::System { resolved, .. } => Some(*digests.get(resolved)?),
                Program::Input { .. } | Program::Tool { .. } => None,
            };
            resolutions.push(Resolution {
                name: name.clone(),
                path: path.clone(),
                tools: tools.clone(),
                program,
                digest,
            });
        }
        resolutions
            .sort_by(|left, right| (&left.name, &left.path).cmp(&(&right.name, &right.path)));
        Some(resolutions)
    }

    /// Whether `resolution` is what this run finds: the same program by the same search, and
    /// a host program with the same content (through the stat cache). The search's result is
    /// kept for the run's steps.
    pub fn finds_again(&self, resolution: &Resolution, stats: &crate::store::StatCache) -> bool {
        let step = ExecStep {
            argv: vec![resolution.name.clone()],
            warm: Vec::new(),
        };
        let env = [("PATH".to_owned(), resolution.path.clone())];
        let found = self.resolve(&step, &env, &[], &resolution.tools);
        if found.as_ref() != Ok(&resolution.program) {
            return false;
        }
        match (&resolution.program, &resolution.digest) {
            (Program::System { resolved, .. }, Some(digest)) => {
                self.digest(resolved, stats).ok().as_ref() == Some(digest)
            }
            (Program::Input { .. } | Program::Tool { .. }, None) => true,
            _ => false,
        }
    }
}

/// Finds the program `step` runs, the way a shell would inside the sandbox.
pub fn resolve_program(
    step: &ExecStep,
    env: &[(String, String)],
    inputs: &[String],
    tools: &[ToolMount],
) -> Result<Program, String> {
    let name = &step.argv[0];
    if let Some(host) = in_tool(name, tools) {
        return if is_executable(&host) {
            Ok(Program::Tool {
                exec_path: name.clone(),
            })
        } else {
            Err(format!(
                "program `{name}` is not an executable file of the tool"
            ))
        };
    }
    if name.starts_with('/') {
        let resolved =
            std::fs::canonicalize(name).map_err(|_| format!("program `{name}` does not exist"))?;
        let visible = SYSTEM_PREFIXES
            .iter()
            .any(|prefix| resolved.starts_with(prefix) || name.starts_with(prefix));
        if !visible {
            return Err(format!(
                "program `{name}` is outside the sandbox's system folders (/usr, /bin, /etc, /nix/store); declare it as an input and run it by its relative path"
            ));
        }
        return Ok(Program::System {
            exec_path: name.clone(),
            resolved,
        });
    }
    if name.contains('/') {
        let relative = name.trim_start_matches("./");
        if inputs.iter().any(|input| input == relative) {
            return Ok(Program::Input {
                path: format!("./{relative}"),
            });
        }
        return Err(format!(
            "program `{name}` is not a declared input of the step; add it to `inputs`"
        ));
    }
    let path = env
        .iter()
        .find(|(variable, _)| variable == "PATH")
        .map_or(DEFAULT_PATH, |(_, value)| value.as_str());
    for folder in path.split(':').filter(|folder| folder.starts_with('/')) {
        let candidate = Path::new(folder).join(name);
        if let Some(host) = in_tool(&candidate.to_string_lossy(), tools) {
            if is_executable(&host) {
                return Ok(Program::Tool {
                    exec_path: candidate.to_string_lossy().into_owned(),
                });
            }
            continue;
        }
        if is_executable(&candidate) {
            let resolved = std::fs::canonicalize(&candidate)
                .map_err(|error| format!("program `{name}`: {error}"))?;
            return Ok(Program::System {
                exec_path: candidate.to_string_lossy().into_owned(),
                resolved,
            });
        }
    }
    Err(format!(
        "program `{name}` not found in the sandbox's PATH ({path})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_is_an_allowlist_with_declared_overrides() {
        let declared = BTreeMap::from([
            ("MODE".to_owned(), "release".to_owned()),
            ("LANG".to_owned(), "de_DE.UTF-8".to_owned()),
        ]);
        let env: BTreeMap<_, _> = environment(
            &declared,
            &BTreeMap::new(),
            None,
            Some(42),
            &Variation::none(),
        )
        .into_iter()
        .collect();
        assert_eq!(env["MODE"], "release");
        assert_eq!(env["LC_ALL"], "de_DE.UTF-8");
        assert_eq!(env["SOURCE_DATE_EPOCH"], "42");
        assert_eq!(env["HOME"], crate::exec::sandbox::HOME_DIR);
        assert_eq!(env.len(), 8);
    }

    #[test]
    fn a_variation_changes_only_what_the_step_left_undeclared() {
        let all = Variation::of(&crate::exec::variation::Aspect::ALL.into_iter().collect());
        let env = |declared: &[(&str, &str)]| -> BTreeMap<String, String> {
            let declared = declared
                .iter()
                .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
                .collect();
            environment(&declared, &BTreeMap::new(), None, None, &all)
                .into_iter()
                .collect()
        };
        let free = env(&[]);
        assert_eq!(free["LANG"], crate::exec::variation::VARIED_LOCALE);
        assert_eq!(free["LC_ALL"], crate::exec::variation::VARIED_LOCALE);
        assert_eq!(free["TZ"], crate::exec::variation::VARIED_TIMEZONE);
        assert_eq!(free["HOME"], all.sandbox.home_dir);
        assert_eq!(free["TMPDIR"], all.sandbox.tmp_dir);
        let pinned = env(&[("LANG", "C.UTF-8"), ("TZ", "UTC")]);
        assert_eq!(pinned["LANG"], "C.UTF-8");
        assert_eq!(pinned["LC_ALL"], "C.UTF-8");
        assert_eq!(pinned["TZ"], "UTC");
    }

    #[test]
    fn resolves_programs_from_path_and_inputs() {
        let env = environment(
            &BTreeMap::new(),
            &BTreeMap::new(),
            None,
            None,
            &Variation::none(),
        );
        let shell = resolve_program(
            &ExecStep {
                argv: vec!["sh".into()],
                warm: Vec::new(),
            },
            &env,
            &[],
            &[],
        )
        .unwrap();
        assert!(matches!(shell, Program::System { .. }));
        let script = resolve_program(
            &ExecStep {
                argv: vec!["./build.sh".into()],
                warm: Vec::new(),
            },
            &env,
            &["build.sh".into()],
            &[],
        )
        .unwrap();
        assert_eq!(
            script,
            Program::Input {
                path: "./build.sh".into()
            }
        );
        assert!(
            resolve_program(
                &ExecStep {
                    argv: vec!["./other.sh".into()],
                    warm: Vec::new(),
                },
                &env,
                &[],
                &[]
            )
            .is_err()
        );
        assert!(
            resolve_program(
                &ExecStep {
                    argv: vec!["no-such-program-xyz".into()],
                    warm: Vec::new(),
                },
                &env,
                &[],
                &[]
            )
            .is_err()
        );
    }
}
