//! The validated pipeline: what every later stage (graph, plan, execution, attestation) uses.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diagnostic::SourceFile;
use crate::digest::Digest;

/// Index of a step in [`Pipeline::steps`] (file order).
pub type StepId = usize;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Pipeline {
    pub name: String,
    pub source: SourceFile,
    /// Absolute path of the pipeline file.
    pub file: PathBuf,
    /// Digest of the pipeline file's bytes: attestations name the exact pipeline they ran.
    pub digest: Digest,
    /// Absolute workspace root; every input and output path is relative to it.
    pub root: PathBuf,
    /// `[tools]`: host toolchains by name, in file order.
    pub tools: Vec<Tool>,
    /// `[executor]`: the REAPI server steps run on (`--remote` overrides it).
    pub remote: Option<Remote>,
    pub steps: Vec<Step>,
    /// `[pipeline] artifacts`: the outputs (files, or folders by each of their files) that a
    /// release ships; `None` ships every exec and nix output gates do not judge.
    pub artifacts: Option<Vec<String>>,
    /// `[pipeline] tenant` (or `gantry run --tenant`): who the run's usage is for.
    pub tenant: Option<String>,
    /// `[budget]`: what a run may use; exceeding it fails the run at its end.
    pub budget: Option<Budget>,
}

/// `[budget]` (docs/usage.md): limits on what the steps a run executes use.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Budget {
    /// CPU time, in microseconds (`cpu_hours` exactly).
    pub cpu_us: Option<u64>,
    /// `cpu_hours` as written, for messages.
    pub cpu_hours: Option<String>,
    /// At most this much, as written (a decimal in the rate card's currency).
    pub cost: Option<String>,
    /// The rate card that prices `cost` (absolute).
    pub rate_card: Option<PathBuf>,
}

/// Whether `name` may name a tenant: 1 to 64 letters, digits, `.`, `_` or `-`, starting with
/// a letter or a digit (it goes into file names of reports and into CSV cells).
pub fn check_tenant(name: &str) -> Result<(), String> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{name}` is not a tenant name: 1 to 64 letters, digits, `.`, `_` or `-`, starting with a letter or a digit"
        ))
    }
}

/// A host toolchain (a folder outside the system folders, such as a Rust toolchain) that the
/// steps listing it see read-only at `/tools/NAME`, with `/tools/NAME/bin` first on PATH. Its
/// whole tree's digest is a material of those steps and part of their action keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    /// As written: absolute, or `~/...` for the caller's home folder.
    pub path: String,
}

impl Tool {
    /// Where the sandbox shows a tool.
    pub const MOUNT_FOLDER: &'static str = "/tools";

    #[must_use]
    pub fn mount_point(&self) -> String {
        format!("{}/{}", Self::MOUNT_FOLDER, self.name)
    }

    /// The host path, `~/` resolved against `home`; `None` when it needs a home and has none.
    #[must_use]
    pub fn host_path(&self, home: Option<&std::path::Path>) -> Option<PathBuf> {
        match self.path.strip_prefix("~/") {
            Some(rest) => home.map(|home| home.join(rest)),
            None => Some(PathBuf::from(&self.path)),
        }
    }
}

impl Pipeline {
    /// Whether a release ships the output (or folder output's file) `name`.
    #[must_use]
    pub fn is_artifact(&self, name: &str) -> bool {
        self.artifacts.as_ref().is_none_or(|declared| {
            (declared.iter()).any(|artifact| super::path::is_within(name, artifact))
        })
    }

    #[must_use]
    pub fn step_id(&self, name: &str) -> Option<StepId> {
        self.steps.iter().position(|step| step.name == name)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Step {
    pub name: String,
    /// Where `[steps.NAME]` is written, for diagnostics about the whole step.
    pub name_span: Range<usize>,
    pub kind: StepKind,
    pub inputs: Vec<InputPattern>,
    pub outputs: Vec<OutputPath>,
    pub needs: Vec<Named>,
    /// Declared environment, defaults merged in; the sandbox adds its fixed variables.
    pub env: BTreeMap<String, String>,
    /// Names of the `[tools]` the step sees (exec steps and drills), defaults merged in.
    pub tools: Vec<String>,
    pub network: bool,
    /// `executor = "local" | "remote"`; unset: remote when the run has a remote.
    pub executor: Option<Placement>,
    pub timeout: Option<Duration>,
    pub retry: Retry,
    /// The step's outputs are release artifacts: subjects of the run's provenance even when
    /// another step reads them (outputs nothing reads always are).
    pub publish: bool,
    /// What the step may use; not part of its action key (a limit decides whether a step
    /// succeeds, not what it makes).
    pub limits: Limits,
    /// The template it was expanded from (`uses`), if any.
    #[serde(default)]
    pub template: Option<Box<TemplateUse>>,
}

/// A step's template: which version, by its pack's digest, and the step's name in it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateUse {
    pub pin: crate::template::Pin,
    /// The step's name in the template (`compile` of `build.compile`).
    pub step: String,
    /// Where its pack came from.
    pub uri: String,
    /// The key id of the publisher's key that signed it.
    pub publisher_key: String,
}

/// Per-step resource limits (`limits = { ... }`; docs/security.md, property 7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Processes and threads at once.
    pub processes: u64,
    /// Bytes of memory, its `/tmp` and HOME included.
    pub memory: u64,
    /// Bytes of `/tmp` and HOME (a tmpfs).
    pub tmp: u64,
    /// Bytes of outputs, together; also the largest single file the step may write.
    pub output: u64,
}

impl Default for Limits {
    /// Generous enough for a large Rust or C++ build, small enough that a fork or memory bomb
    /// stops at the step.
    fn default() -> Self {
        Self {
            processes: 4096,
            memory: 8 << 30,
            tmp: 2 << 30,
            output: 16 << 30,
        }
    }
}

/// A REAPI server and instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remote {
    /// `grpc://HOST:PORT`.
    pub url: String,
    pub instance: String,
}

/// Where a step's command runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Placement {
    Local,
    Remote,
}

/// The closed set of step kinds. Each later capability adds a variant and a file in `kinds/`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum StepKind {
    Exec(ExecStep),
    Nix(NixStep),
    Sign(SignStep),
    // The larger kinds are boxed: every step is as large as the largest kind held inline,
    // and 50,000 exec steps at 664 bytes each were 33 MB for the whole run.
    Sbom(Box<SbomStep>),
    Gate(Box<GateStep>),
    Rollout(Box<crate::rollout::plan::RolloutStep>),
    Vulns(Box<VulnsStep>),
}

impl StepKind {
    /// Names accepted by `kind = "..."`.
    pub const NAMES: &'static [&'static str] =
        &["exec", "nix", "sign", "sbom", "gate", "rollout", "vulns"];

    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Exec(_) => "exec",
            Self::Nix(_) => "nix",
            Self::Sign(_) => "sign",
            Self::Sbom(_) => "sbom",
            Self::Gate(_) => "gate",
            Self::Rollout(_) => "rollout",
            Self::Vulns(_) => "vulns",
        }
    }

    /// Whether the step makes something new of its inputs; sign and sbom steps only vouch for
    /// or describe them, so what they read is still a release artifact.
    #[must_use]
    pub fn consumes_inputs(&self) -> bool {
        matches!(self, Self::Exec(_) | Self::Nix(_))
    }

    /// Why what the step makes holds a measurement of now (a drill's seconds, a scan's
    /// times), so that no rebuild makes it again; `None` for the kinds whose outputs are a
    /// function of their inputs.
    #[must_use]
    pub fn measures_now(&self) -> Option<&'static str> {
        match self {
            Self::Gate(gate) if matches!(gate.evidence, Evidence::Drill { .. }) => Some(
                "is a drill: it measured time again in the rebuild, and its verdict (which holds the seconds measured) is not compared",
            ),
            Self::Vulns(_) => Some(
                "is a vulnerability scan: its statement holds the times it ran, so it is not compared",
            ),
            _ => None,
        }
    }

    /// The signed document a step of this kind also puts into the run folder, beside its
    /// link, for the auditor: an SBOM's attestation, a gate's verdict, a rollout's record.
    #[must_use]
    pub fn run_folder_document(&self) -> Option<RunFolderDocument> {
        use crate::attest::run_folder::StepFile;
        let (file, output, kept_on_failure) = match self {
            Self::Sbom(sbom) => (
                StepFile::Sbom,
                format!("{}{SBOM_ATTESTATION_SUFFIX}", sbom.output),
                false,
            ),
            Self::Gate(gate) => (StepFile::Gate, gate.output.clone(), true),
            Self::Rollout(rollout) => (StepFile::Rollout, rollout.output.clone(), true),
            Self::Vulns(vulns) => (StepFile::Vulns, vulns.output.clone(), true),
            Self::Exec(_) | Self::Nix(_) | Self::Sign(_) => return None,
        };
        Some(RunFolderDocument {
            file,
            output,
            kept_on_failure,
        })
    }
}

/// A document a step puts into the run folder as `STEP` + `file`'s suffix.
pub struct RunFolderDocument {
    pub file: crate::attest::run_folder::StepFile,
    /// The step's output that holds it.
    pub output: String,
    /// A failed step (a gate that failed, a rollout rolled back) wrote it there itself: it is
    /// no output then, but the auditor's evidence still.
    pub kept_on_failure: bool,
}

/// A command run in the sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecStep {
    /// The argument vector; a string `run` becomes `["/bin/sh", "-c", string]`.
    pub argv: Vec<String>,
    /// Warm folders (`warm = ["target"]`): kept from one run of the step to the next, never
    /// materials nor part of the action key; `gantry repro` rebuilds without them.
    pub warm: Vec<String>,
}

/// A Nix build, run by the `nix` command; its `outputs` are out-links to the built paths.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NixStep {
    pub installable: crate::nix::Installable,
    /// Nix machine specifications for distributed builds (`--builders`); empty for none.
    pub builders: Vec<String>,
}

/// Signs each input artifact, writing `ARTIFACT.sig` and `ARTIFACT.sigstore.json` beside it
/// (the step's `outputs`, derived from its inputs during validation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignStep {
    pub key: KeyRef,
    pub key_span: Range<usize>,
}

/// Describes `from` (a `Cargo.lock`, a folder, a Nix step's out-link) as an SBOM for
/// `subject`, writing the document to `output` and its signed attestation to
/// `output` + [`SBOM_ATTESTATION_SUFFIX`] (the step's `outputs`; `from` and `subject` are its
/// `inputs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbomStep {
    pub from: String,
    pub format: crate::sbom::Format,
    /// The artifacts the document is for (the first is the product `about` describes); none:
    /// `from` itself.
    pub subjects: Vec<String>,
    pub output: String,
    /// A `cargo vendor --versioned-dirs` folder the lock's crates come from: their licences are
    /// read there (`NAME-VERSION/Cargo.toml`), never from the host's registry cache.
    pub vendored: Option<String>,
    /// The workspace's own `Cargo.toml` files: its packages' licences are read there.
    pub manifests: Vec<String>,
    /// What the subject is (`about = { ... }`): name, version, supplier, licence, purl.
    pub about: Option<crate::sbom::About>,
    /// `from` is an SBOM another tool wrote (`import = true`): attested as it is, its format
    /// read from it.
    pub import: bool,
}

/// Checks `evidence` (a tool's report) against `thresholds` and writes the signed verdict, a
/// test-result attestation about `subject`, to `output` (the step's only output; the evidence
/// and the subject are its inputs). A failed threshold fails the step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GateStep {
    /// Groups gates in the gauntlet report; `gauntlet` when not given.
    pub stage: String,
    pub evidence: Evidence,
    pub thresholds: Vec<crate::gauntlet::Threshold>,
    /// The release candidate the verdict is about; `None`: the evidence itself.
    pub subject: Option<String>,
    pub output: String,
}

/// Matches the components of `sbom` against the advisory database `db` (a folder), with
/// the `vex` documents, and writes the signed in-toto vulns statement about the artifacts the
/// SBOM describes to `output` (its only output; the rest are its inputs). A scan above the
/// thresholds fails the step, its statement kept in the run folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VulnsStep {
    pub sbom: String,
    pub db: String,
    pub vex: Vec<String>,
    pub thresholds: crate::vulns::threshold::Thresholds,
    pub output: String,
}

/// What a gate judges.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// A tool's report file.
    Report {
        kind: crate::gauntlet::EvidenceKind,
        path: String,
    },
    /// Criterion's folder: each benchmark's last run against the `baseline` it saved.
    Criterion { folder: String, baseline: String },
    /// A command run in the sandbox (with the gate's inputs), timed.
    Drill { argv: Vec<String> },
}

impl Evidence {
    #[must_use]
    pub fn kind(&self) -> crate::gauntlet::EvidenceKind {
        match self {
            Self::Report { kind, .. } => *kind,
            Self::Criterion { .. } => crate::gauntlet::EvidenceKind::Criterion,
            Self::Drill { .. } => crate::gauntlet::EvidenceKind::Drill,
        }
    }

    /// The report, the folder or the command, as the pipeline gives it.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Report { path, .. } => path.clone(),
            Self::Criterion { folder, baseline } => format!("{folder} (baseline {baseline})"),
            Self::Drill { argv } => match argv.as_slice() {
                [shell, flag, script] if shell == "/bin/sh" && flag == "-c" => script.clone(),
                _ => argv.join(" "),
            },
        }
    }
}

/// The workspace folder that holds run folders, unless `--attestations` names another.
pub const ATTESTATIONS: &str = "attestations";

/// Where a gate's attestation goes when `output` is not given: `out/gauntlet/<step>.intoto.json` (with the outputs, not at the repository's root).
pub const GATE_FOLDER: &str = "out/gauntlet";

/// Where a vulns step's statement goes when `output` is not given: `out/vulns/<step>.intoto.json`.
pub const VULNS_FOLDER: &str = "out/vulns";

/// What a sbom step's attestation is called, beside its document.
pub const SBOM_ATTESTATION_SUFFIX: &str = ".intoto.json";

/// Where a signing key file is: a path relative to the workspace root, or an environment
/// variable holding a path (relative to the directory gantry runs in).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum KeyRef {
    Path(String),
    Env(String),
}

/// The suffixes of a sign step's outputs, in the order they are declared per input.
pub const SIGNATURE_SUFFIXES: [&str; 2] = [".sig", ".sigstore.json"];

/// A name with the place it was written.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Named {
    pub name: String,
    pub span: Range<usize>,
}

/// An `inputs` entry: a workspace-relative path or glob.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InputPattern {
    /// Normalised text: no `./`, no trailing `/` (a trailing `/` means the whole folder, kept in
    /// `directory`).
    pub pattern: String,
    pub directory: bool,
    pub is_glob: bool,
    pub span: Range<usize>,
}

/// An `outputs` entry: a file, or a folder when written with a trailing `/`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputPath {
    pub path: String,
    pub directory: bool,
    pub span: Range<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retry {
    /// Total attempts, at least 1.
    pub attempts: u32,
    /// Wait before the second attempt; doubles each time, with jitter.
    pub backoff: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Self {
            attempts: 1,
            backoff: Duration::from_secs(1),
        }
    }
}
