//! What `gantry verify` found: every check by name, and for each failure the attestation,
//! field and digest at fault. The same value is printed as text or as JSON (`--json`).

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub passed: bool,
    pub policy: PolicyRef,
    /// The run the evidence is from (the provenance's invocation id).
    pub run: Option<String>,
    /// The time keys' windows were checked at (RFC 3339).
    pub time: String,
    pub artifacts: Vec<ArtifactRef>,
    pub checks: Vec<Check>,
    /// Every attestation read, with the digest of its bytes.
    pub attestations: Vec<ArtifactRef>,
}

#[derive(Clone, Debug, Serialize)]
pub struct PolicyRef {
    pub name: String,
    pub path: String,
    pub sha256: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ArtifactRef {
    pub name: String,
    pub sha256: String,
}

/// The checks, in the order they are reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// Every file is a DSSE envelope around an in-toto Statement v1.
    Format,
    /// Every envelope is signed by a key the policy allows for what it attests, in its window.
    Signatures,
    /// The attestations are one run's: those its provenance lists, unchanged, and no others.
    Run,
    /// Each artifact is a subject of the provenance and a product of an attested step.
    Subject,
    /// Every material, followed back, is a product of an attested step or an allowed source.
    Chain,
    /// Every required step has a valid attestation in the run.
    Steps,
    /// Every required gate passed, judging the thresholds of the (approved) pipeline the
    /// run executed.
    Gates,
    /// An SBOM attestation of the run has the artifact as its subject.
    Sbom,
    /// A reproducibility attestation says the artifact reproduced.
    Reproduced,
    /// A rollout record of the run promoted the artifact.
    Rollout,
    /// A signed vulnerability scan of the artifact, of a recent database, finds nothing above
    /// the policy's severity.
    Vulns,
    /// Every template the run's steps came from was signed by a publisher the policy trusts
    /// and is the one the approved pipeline's lock pins.
    Templates,
}

impl CheckKind {
    pub const ALL: [Self; 12] = [
        Self::Format,
        Self::Signatures,
        Self::Run,
        Self::Subject,
        Self::Chain,
        Self::Steps,
        Self::Gates,
        Self::Sbom,
        Self::Reproduced,
        Self::Rollout,
        Self::Vulns,
        Self::Templates,
    ];

    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Format => "format",
            Self::Signatures => "signatures",
            Self::Run => "run",
            Self::Subject => "subject",
            Self::Chain => "chain",
            Self::Steps => "steps",
            Self::Gates => "gates",
            Self::Sbom => "sbom",
            Self::Reproduced => "reproduced",
            Self::Rollout => "rollout",
            Self::Vulns => "vulns",
            Self::Templates => "templates",
        }
    }
}

/// Why something failed: a fixed set, so that scripts (and the tamper tests) can rely on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    NotAnAttestation,
    BadSignature,
    KeyNotAllowed,
    KeyOutsideWindow,
    TimeInFuture,
    NoProvenance,
    MixedRuns,
    Missing,
    DigestMismatch,
    Misnamed,
    NotInRun,
    Duplicate,
    NotASubject,
    NoProducer,
    Substituted,
    UnattestedMaterial,
    SourceMismatch,
    ToolNotAllowed,
    NetworkNotAllowed,
    StepMissing,
    SbomMissing,
    NotReproduced,
    NotRolledOut,
    RolledBack,
    GateMissing,
    GateFailed,
    PipelineMismatch,
    PipelineNotApproved,
    ThresholdChanged,
    ScanMissing,
    DatabaseStale,
    Vulnerable,
    TemplateNotTrusted,
    TemplateNotLocked,
    TemplateUnlisted,
}

#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub check: CheckKind,
    pub passed: bool,
    /// `false` when the policy does not ask for it (sbom, reproduced).
    pub required: bool,
    /// One line: what was checked.
    pub summary: String,
    pub failures: Vec<Finding>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub reason: Reason,
    pub message: String,
    /// The attestation file at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestation: Option<String>,
    /// The field in its statement, as a path: `predicate.materials[2].digest.sha256`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The digest at fault (what was found).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

impl Finding {
    #[must_use]
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            attestation: None,
            field: None,
            digest: None,
        }
    }

    #[must_use]
    pub fn in_file(mut self, attestation: &str) -> Self {
        self.attestation = Some(attestation.to_owned());
        self
    }

    #[must_use]
    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    #[must_use]
    pub fn digest(mut self, digest: Option<&str>) -> Self {
        self.digest = digest.map(str::to_owned);
        self
    }
}

impl Report {
    /// Every finding's reason, for scripts and tests.
    #[must_use]
    pub fn reasons(&self) -> Vec<Reason> {
        self.checks
            .iter()
            .flat_map(|check| check.failures.iter().map(|finding| finding.reason))
            .collect()
    }

    /// The human report: one line per check, then each failure with where it is.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "policy `{}` ({}, sha256 {})",
            self.policy.name,
            self.policy.path,
            short(&self.policy.sha256)
        );
        if let Some(run) = &self.run {
            let _ = writeln!(out, "run {run}, keys checked at {}", self.time);
        } else {
            let _ = writeln!(out, "no run provenance; keys checked at {}", self.time);
        }
        for artifact in &self.artifacts {
            let _ = writeln!(
                out,
                "artifact {} (sha256 {})",
                artifact.name,
                short(&artifact.sha256)
            );
        }
        for check in &self.checks {
            let status = match (check.passed, check.required) {
                (true, true) => "ok  ",
                (true, false) => "skip",
                (false, _) => "FAIL",
            };
            let _ = writeln!(
                out,
                "  {status} {:<10} {}",
                check.check.name(),
                check.summary
            );
            for finding in &check.failures {
                let _ = writeln!(out, "         - {}", finding.message);
                let mut place = Vec::new();
                if let Some(file) = &finding.attestation {
                    place.push(format!("in {file}"));
                }
                if let Some(field) = &finding.field {
                    place.push(format!("at {field}"));
                }
                if let Some(digest) = &finding.digest {
                    place.push(format!("sha256 {digest}"));
                }
                if !place.is_empty() {
                    let _ = writeln!(out, "           {}", place.join(", "));
                }
            }
        }
        let failed = self.checks.iter().filter(|check| !check.passed).count();
        if self.passed {
            let _ = writeln!(out, "PASSED: every check holds");
        } else {
            let _ = writeln!(out, "FAILED: {failed} of {} checks", self.checks.len());
        }
        out
    }
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}
