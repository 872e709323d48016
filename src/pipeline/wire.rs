//! The pipeline file exactly as written: serde structs that keep source spans, so that
//! validation can point at the offending key. Nothing outside `pipeline/` sees these.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineFileWire {
    pub pipeline: Option<Spanned<PipelineSectionWire>>,
    pub defaults: Option<Spanned<DefaultsWire>>,
    /// Host toolchains by name, shown read-only at `/tools/NAME` to the steps that list them.
    pub tools: Option<Spanned<IndexMap<Spanned<String>, Spanned<String>>>>,
    /// The REAPI server steps run on.
    pub executor: Option<Spanned<ExecutorWire>>,
    /// What a run may use before it fails at its end.
    pub budget: Option<Spanned<BudgetWire>>,
    /// Template registries by name (read before the file is validated, by
    /// `template::resolve`; checked here at their lines).
    pub registries: Option<Spanned<IndexMap<Spanned<String>, Spanned<RegistryWire>>>>,
    #[serde(default)]
    /// Each with only the keys it has: 50,000 full [`StepWire`]s were 112 MB.
    pub steps: IndexMap<Spanned<String>, Spanned<super::stored_step::StoredStep>>,
}

/// `[registries.NAME]`: where the registry is and the publishers' public keys it trusts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryWire {
    pub url: Spanned<String>,
    #[serde(default)]
    pub keys: Vec<Spanned<String>>,
}

/// `[budget]`: `cpu_hours`, and `cost` priced with `rate_card`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetWire {
    pub cpu_hours: Option<Spanned<toml::Value>>,
    pub cost: Option<Spanned<toml::Value>>,
    pub rate_card: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutorWire {
    pub remote: Option<Spanned<String>>,
    pub instance: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSectionWire {
    pub name: Spanned<String>,
    pub root: Option<Spanned<String>>,
    pub description: Option<String>,
    pub artifacts: Option<Spanned<Vec<Spanned<String>>>>,
    /// Who the run's usage is for (`gantry run --tenant` overrides it).
    pub tenant: Option<Spanned<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefaultsWire {
    pub env: Option<IndexMap<Spanned<String>, Spanned<String>>>,
    pub timeout: Option<Spanned<String>>,
    pub retry: Option<Spanned<RetryWire>>,
    pub tools: Option<Vec<Spanned<String>>>,
    pub limits: Option<Spanned<LimitsWire>>,
}

/// `limits = { processes, memory, tmp, output }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsWire {
    pub processes: Option<Spanned<i64>>,
    pub memory: Option<Spanned<String>>,
    pub tmp: Option<Spanned<String>>,
    pub output: Option<Spanned<String>>,
}

/// Every key any step kind accepts. Kind-specific keys are checked against the kind during
/// validation, which gives a better message than serde's untagged-enum errors and keeps spans.
/// The rollout's large tables are boxed; the pipeline's map keeps each step as a
/// [`StoredStep`](super::stored_step::StoredStep), only the keys it has.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepWire {
    pub kind: Option<Spanned<String>>,
    pub description: Option<String>,
    pub run: Option<Spanned<RunWire>>,
    pub flake: Option<Spanned<String>>,
    pub expr: Option<Spanned<String>>,
    pub file: Option<Spanned<String>>,
    pub attr: Option<Spanned<String>>,
    pub builders: Option<Spanned<Vec<Spanned<String>>>>,
    pub key: Option<Spanned<String>>,
    pub from: Option<Spanned<String>>,
    pub format: Option<Spanned<String>>,
    pub subject: Option<Spanned<SubjectWire>>,
    pub vendored: Option<Spanned<String>>,
    pub manifests: Option<Spanned<Vec<Spanned<String>>>>,
    pub about: Option<Spanned<AboutWire>>,
    pub import: Option<Spanned<bool>>,
    pub output: Option<Spanned<String>>,
    pub stage: Option<Spanned<String>>,
    pub baseline: Option<Spanned<String>>,
    pub evidence: Option<Spanned<IndexMap<Spanned<String>, Spanned<String>>>>,
    pub require: Option<Spanned<IndexMap<Spanned<String>, Spanned<toml::Value>>>>,
    pub strategy: Option<Spanned<String>>,
    pub traffic: Option<Spanned<Box<TrafficWire>>>,
    pub health: Option<Spanned<Box<HealthWire>>>,
    pub canary: Option<Spanned<Box<CanaryWire>>>,
    pub analysis: Option<Spanned<Box<AnalysisWire>>>,
    pub rollback_window: Option<Spanned<String>>,
    pub rehearse: Option<Spanned<bool>>,
    pub verify: Option<Spanned<Box<VerifyWire>>>,
    pub start: Option<Spanned<Vec<Spanned<String>>>>,
    pub tools: Option<Spanned<Vec<Spanned<String>>>>,
    pub executor: Option<Spanned<String>>,
    pub warm: Option<Spanned<Vec<Spanned<String>>>>,
    pub sbom: Option<Spanned<String>>,
    pub db: Option<Spanned<String>>,
    pub vex: Option<Spanned<Vec<Spanned<String>>>>,
    pub allow: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub inputs: Vec<Spanned<String>>,
    #[serde(default)]
    pub outputs: Vec<Spanned<String>>,
    #[serde(default)]
    pub needs: Vec<Spanned<String>>,
    pub env: Option<IndexMap<Spanned<String>, Spanned<String>>>,
    pub network: Option<Spanned<bool>>,
    pub timeout: Option<Spanned<String>>,
    pub retry: Option<Spanned<RetryWire>>,
    pub publish: Option<Spanned<bool>>,
    pub limits: Option<Spanned<LimitsWire>>,
    /// A template's steps instead of the step's own: `publisher/name@RANGE`.
    pub uses: Option<Spanned<String>>,
    /// The template's parameters.
    pub with: Option<Spanned<IndexMap<Spanned<String>, Spanned<toml::Value>>>>,
}

/// `subject = "out/app"`, or for a sbom step several: `subject = ["out/a", "out/b"]`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum SubjectWire {
    One(String),
    Many(Vec<String>),
}

impl SubjectWire {
    /// The one subject a gate or a rollout is about; an array is a mistake at its line.
    pub fn one(
        subject: &Spanned<SubjectWire>,
        kind: &str,
        errors: &mut Vec<super::Diagnostic>,
    ) -> Option<Spanned<String>> {
        match subject.get_ref() {
            SubjectWire::One(path) => Some(Spanned::new(subject.span(), path.clone())),
            SubjectWire::Many(_) => {
                errors.push(
                    super::Diagnostic::at(
                        format!("a {kind} step is about one subject"),
                        subject.span(),
                    )
                    .hint("name one artifact: `subject = \"out/app\"`"),
                );
                None
            }
        }
    }

    /// Each subject named, with the span of the whole value.
    #[must_use]
    pub fn each(subject: &Spanned<SubjectWire>) -> Vec<Spanned<String>> {
        let paths = match subject.get_ref() {
            SubjectWire::One(path) => std::slice::from_ref(path),
            SubjectWire::Many(paths) => paths.as_slice(),
        };
        (paths.iter())
            .map(|path| Spanned::new(subject.span(), path.clone()))
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RunWire {
    Shell(String),
    Argv(Vec<String>),
}

/// `about = { name, version, supplier, license, purl }` of a sbom step.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AboutWire {
    pub name: Option<Spanned<String>>,
    pub version: Option<Spanned<String>>,
    pub supplier: Option<Spanned<String>>,
    pub license: Option<Spanned<String>>,
    pub purl: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryWire {
    pub attempts: Spanned<i64>,
    pub backoff: Option<Spanned<String>>,
}

/// `traffic = { haproxy = { ... } }`: one backend.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrafficWire {
    pub haproxy: Option<Spanned<HaproxyWire>>,
    pub nginx: Option<Spanned<NginxWire>>,
    pub command: Option<Spanned<CommandWire>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NginxWire {
    pub upstream: Spanned<String>,
    pub stable: Spanned<String>,
    pub canary: Spanned<String>,
    pub access_log: Spanned<String>,
    pub reload: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandWire {
    pub run: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusWire {
    pub url: Spanned<String>,
    pub requests: Spanned<String>,
    pub errors: Spanned<String>,
    pub latency: Option<Spanned<String>>,
    pub max_latency: Option<Spanned<String>>,
}

/// `verify = { policy = "...", attestations = [...] }`: the subject passes the policy first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyWire {
    pub policy: Spanned<String>,
    pub attestations: Option<Spanned<Vec<Spanned<String>>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HaproxyWire {
    pub socket: Spanned<String>,
    pub backend: Spanned<String>,
    pub stable: Spanned<String>,
    pub canary: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthWire {
    pub url: Spanned<String>,
    pub interval: Option<Spanned<String>>,
    pub healthy_after: Option<Spanned<i64>>,
    pub timeout: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryWire {
    pub steps: Option<Spanned<Vec<Spanned<i64>>>>,
    pub min_requests: Option<Spanned<i64>>,
    pub interval: Option<Spanned<String>>,
    pub max_wait: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisWire {
    pub method: Option<Spanned<String>>,
    pub alpha: Option<Spanned<f64>>,
    pub beta: Option<Spanned<f64>>,
    pub baseline_error_rate: Option<Spanned<f64>>,
    pub delta: Option<Spanned<f64>>,
    pub prometheus: Option<Spanned<PrometheusWire>>,
}
