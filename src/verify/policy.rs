//! Verification policies (docs/verify.md): which keys may attest which steps and when, and
//! what an artifact's evidence must hold. Wire structs keep spans so that every mistake is
//! shown at its line; `parse` is pure, `load_keys` reads the key files through a closure.

use std::ops::Range;
use std::path::{Path, PathBuf};

use globset::{GlobSet, GlobSetBuilder};
use serde::Deserialize;
use toml::Spanned;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile};
use crate::digest::Digest;
use crate::keys::{EcdsaVerifier, Verifier};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFileWire {
    policy: Option<Spanned<SectionWire>>,
    #[serde(default)]
    keys: Vec<Spanned<KeyWire>>,
    require: Option<Spanned<RequireWire>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionWire {
    name: Spanned<String>,
    #[expect(
        dead_code,
        reason = "free text, accepted so that a policy can explain itself"
    )]
    description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyWire {
    id: Spanned<String>,
    public: Spanned<String>,
    steps: Option<Spanned<Vec<Spanned<String>>>>,
    not_before: Option<Spanned<toml::Value>>,
    not_after: Option<Spanned<toml::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RequireWire {
    #[serde(default)]
    steps: Vec<Spanned<String>>,
    provenance: Option<bool>,
    sbom: Option<bool>,
    reproduced: Option<bool>,
    rollout: Option<bool>,
    #[serde(default)]
    sources: Vec<Spanned<String>>,
    tools: Option<Vec<Spanned<String>>>,
    network: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    gates: Vec<Spanned<String>>,
    pipeline: Option<Spanned<String>>,
    vulns: Option<Spanned<VulnsWire>>,
    templates_from: Option<Vec<Spanned<String>>>,
}

/// `vulns = { max_severity = "medium", db_not_older_than = "7d" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VulnsWire {
    max_severity: Option<Spanned<String>>,
    db_not_older_than: Option<Spanned<String>>,
}

/// What a required vulnerability scan must show.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VulnsRequirement {
    /// No vulnerability above this (unknown severity counts as high); `none` when not given.
    pub max_severity: crate::vulns::severity::Level,
    /// Seconds: the scanned database's newest advisory at most this old at verification.
    pub db_not_older_than: Option<i64>,
}

/// A validated policy.
#[derive(Clone, Debug)]
pub struct Policy {
    pub name: String,
    pub source: SourceFile,
    /// SHA-256 of the policy file's bytes: reports and VSAs name the exact policy.
    pub digest: Digest,
    pub keys: Vec<KeySpec>,
    pub require: Require,
}

/// A key the policy trusts, before its file is read.
#[derive(Clone, Debug)]
pub struct KeySpec {
    pub id: String,
    /// The public key's PEM file, resolved against the policy's folder.
    pub public: PathBuf,
    pub public_span: Range<usize>,
    /// Globs over what the key may attest: step names, and `provenance`, `sbom` (an SBOM
    /// attestation no step's link lists), `reproducibility`.
    pub steps: GlobSet,
    pub step_patterns: Vec<String>,
    /// Unix seconds; the key is valid only inside `[not_before, not_after]`.
    pub not_before: Option<i64>,
    pub not_after: Option<i64>,
}

/// What every artifact's evidence must hold.
#[derive(Clone, Debug)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "independent switches of the policy file, one per `require` key"
)]
pub struct Require {
    /// Steps that must have a valid attestation in the run.
    pub steps: Vec<String>,
    pub provenance: bool,
    pub sbom: bool,
    pub reproduced: bool,
    /// A signed rollout record of the run promoted the artifact.
    pub rollout: bool,
    /// Workspace materials allowed without an attesting step.
    pub sources: GlobSet,
    pub source_patterns: Vec<String>,
    /// Materials outside the workspace (tools, Nix store paths) allowed; `None`: any, listed
    /// in the report.
    pub tools: Option<GlobSet>,
    pub tool_patterns: Vec<String>,
    /// Steps allowed to have had the network (globs over step names); `None`: any, listed in
    /// the report.
    pub network: Option<GlobSet>,
    pub network_patterns: Vec<String>,
    /// Gates that must have passed in the run, under the run's pipeline; `*`: every gate of
    /// the approved pipeline.
    pub gates: Vec<String>,
    /// The approved pipeline file (resolved against the policy's folder): the run must have
    /// executed exactly it, and each gate judged its thresholds.
    pub pipeline: Option<PathBuf>,
    pub pipeline_span: Option<Range<usize>>,
    /// A signed vulnerability scan of each artifact, recent and below a severity.
    pub vulns: Option<VulnsRequirement>,
    /// Key ids of the publishers whose templates a run may use; `None`: not checked.
    pub templates_from: Option<Vec<String>>,
}

/// A trusted key, its file read.
pub struct TrustedKey {
    pub spec: KeySpec,
    pub verifier: EcdsaVerifier,
}

impl TrustedKey {
    /// Whether the key may attest `name` (a step, `provenance`, ...).
    #[must_use]
    pub fn allows(&self, name: &str) -> bool {
        self.spec.steps.is_match(name)
    }

    /// Whether `time` lies in the key's window.
    #[must_use]
    pub fn valid_at(&self, time: i64) -> bool {
        self.spec.not_before.is_none_or(|start| time >= start)
            && self.spec.not_after.is_none_or(|end| time <= end)
    }

    #[must_use]
    pub fn key_id(&self) -> &str {
        self.verifier.key_id()
    }
}

/// Parses and validates a policy file; `source.path` is where it was read from.
pub fn parse(source: &SourceFile) -> Result<Policy, Diagnostics> {
    let fail = |items| Diagnostics {
        file: source.clone(),
        items,
        more: Vec::new(),
    };
    let (wire, mut errors) =
        crate::pipeline::read_reporting_unknown::<PolicyFileWire>(&source.text);
    let Some(wire) = wire else {
        return Err(fail(errors));
    };
    let name = if let Some(section) = &wire.policy {
        let name = section.get_ref().name.get_ref().trim().to_owned();
        if name.is_empty() {
            errors.push(Diagnostic::at(
                "the policy's name must not be empty",
                section.get_ref().name.span(),
            ));
        }
        name
    } else {
        errors.push(
            Diagnostic::new("missing `[policy]` table", Some(0..0))
                .hint("start the file with `[policy]` and `name = \"...\"`"),
        );
        String::new()
    };
    let folder = source.path.parent().unwrap_or(Path::new(""));
    let keys = convert_keys(&wire.keys, folder, &mut errors);
    let require = convert_require(wire.require.as_ref(), folder, &mut errors);
    if !errors.is_empty() {
        return Err(fail(errors));
    }
    Ok(Policy {
        name,
        digest: Digest::of_bytes(source.text.as_bytes()),
        source: source.clone(),
        keys,
        require: require.unwrap_or_else(|| Require {
            steps: Vec::new(),
            provenance: true,
            sbom: false,
            reproduced: false,
            rollout: false,
            sources: GlobSet::empty(),
            source_patterns: Vec::new(),
            tools: None,
            tool_patterns: Vec::new(),
            network: None,
            network_patterns: Vec::new(),
            gates: Vec::new(),
            pipeline: None,
            pipeline_span: None,
            vulns: None,
            templates_from: None,
        }),
    })
}

fn convert_keys(
    wire: &[Spanned<KeyWire>],
    folder: &Path,
    errors: &mut Vec<Diagnostic>,
) -> Vec<KeySpec> {
    if wire.is_empty() {
        errors.push(
            Diagnostic::new("the policy trusts no key", Some(0..0)).hint(
                "add `[[keys]]` with `id`, `public = \"keys/release.pub\"` and `steps = [\"*\"]`",
            ),
        );
    }
    let mut keys: Vec<KeySpec> = Vec::new();
    for key in wire {
        let span = key.span();
        let key = key.get_ref();
        let id = key.id.get_ref().trim().to_owned();
        if id.is_empty() {
            errors.push(Diagnostic::at(
                "a key's `id` must not be empty",
                key.id.span(),
            ));
        } else if keys.iter().any(|other| other.id == id) {
            errors.push(Diagnostic::at(
                format!("key `{id}` is listed twice"),
                key.id.span(),
            ));
        }
        if key.public.get_ref().trim().is_empty() {
            errors.push(
                Diagnostic::at("`public` must name a PEM file", key.public.span())
                    .hint("a path relative to the policy file, like `keys/release.pub`"),
            );
        }
        let Some(steps) = &key.steps else {
            errors.push(
                Diagnostic::at(format!("key `{id}` does not say what it may attest"), span)
                    .hint("add `steps = [\"*\"]` (everything) or the step names, like `steps = [\"build\", \"provenance\"]`"),
            );
            continue;
        };
        let (matcher, patterns) = globs(steps.get_ref(), "step name", errors);
        let not_before = time(key.not_before.as_ref(), errors);
        let not_after = time(key.not_after.as_ref(), errors);
        if let (Some(start), Some(end), Some(wire_end)) = (not_before, not_after, &key.not_after)
            && end < start
        {
            errors.push(Diagnostic::at(
                "`not_after` is before `not_before`: the key is never valid",
                wire_end.span(),
            ));
        }
        keys.push(KeySpec {
            id,
            public: folder.join(key.public.get_ref()),
            public_span: key.public.span(),
            steps: matcher,
            step_patterns: patterns,
            not_before,
            not_after,
        });
    }
    keys
}

fn convert_require(
    wire: Option<&Spanned<RequireWire>>,
    folder: &Path,
    errors: &mut Vec<Diagnostic>,
) -> Option<Require> {
    let require = wire?.get_ref();
    let steps = step_names(&require.steps, false, errors);
    let gates = step_names(&require.gates, true, errors);
    if let Some(all) = require.gates.iter().find(|gate| gate.get_ref() == "*")
        && require.pipeline.is_none()
    {
        errors.push(
            Diagnostic::at(
                "`*` means every gate of the approved pipeline, and there is none",
                all.span(),
            )
            .hint(
                "add `pipeline = \"gantry.toml\"` (the reviewed pipeline file), or name the gates",
            ),
        );
    }
    let pipeline = require.pipeline.as_ref().and_then(|pipeline| {
        if pipeline.get_ref().trim().is_empty() {
            errors.push(Diagnostic::at(
                "`pipeline` must name the approved pipeline file",
                pipeline.span(),
            ));
            return None;
        }
        Some(folder.join(pipeline.get_ref()))
    });
    for source in &require.sources {
        if source.get_ref().starts_with('/') {
            errors.push(
                Diagnostic::at(
                    "sources are workspace paths, relative to its root",
                    source.span(),
                )
                .hint("materials outside the workspace (tools, /nix/store) go in `tools`"),
            );
        }
    }
    let (sources, source_patterns) = globs(&require.sources, "source path", errors);
    let (tools, tool_patterns) = match &require.tools {
        Some(tools) => {
            let (set, patterns) = globs(tools, "tool path", errors);
            (Some(set), patterns)
        }
        None => (None, Vec::new()),
    };
    let (network, network_patterns) = match &require.network {
        Some(steps) => {
            let (set, patterns) = globs(steps, "step name", errors);
            (Some(set), patterns)
        }
        None => (None, Vec::new()),
    };
    Some(Require {
        steps,
        provenance: require.provenance.unwrap_or(true),
        sbom: require.sbom.unwrap_or(false),
        reproduced: require.reproduced.unwrap_or(false),
        rollout: require.rollout.unwrap_or(false),
        sources,
        source_patterns,
        tools,
        tool_patterns,
        network,
        network_patterns,
        gates,
        pipeline,
        pipeline_span: require.pipeline.as_ref().map(Spanned::span),
        vulns: require
            .vulns
            .as_ref()
            .and_then(|wire| convert_vulns(wire.get_ref(), errors)),
        templates_from: require.templates_from.as_ref().map(|keys| {
            if keys.is_empty() {
                errors.push(
                    Diagnostic::new("`templates_from` is empty: no template would pass", None)
                        .hint("list the key ids of the publishers you trust (`gantry keys public` prints a key's id), or leave it out"),
                );
            }
            keys.iter().map(|key| key.get_ref().clone()).collect()
        }),
    })
}

fn convert_vulns(wire: &VulnsWire, errors: &mut Vec<Diagnostic>) -> Option<VulnsRequirement> {
    use crate::vulns::severity::Level;
    let before = errors.len();
    let max_severity = wire
        .max_severity
        .as_ref()
        .map_or(Some(Level::None), |text| {
            let level = Level::parse(text.get_ref());
            if level.is_none() {
                errors.push(
                    Diagnostic::at(
                        format!("`{}` is not a severity", text.get_ref()),
                        text.span(),
                    )
                    .hint(format!("one of {}", Level::NAMES.join(", "))),
                );
            }
            level
        });
    let db_not_older_than = wire.db_not_older_than.as_ref().and_then(|text| {
        match crate::duration::parse(text.get_ref()) {
            Ok(window) if !window.is_zero() => {
                Some(i64::try_from(window.as_secs()).unwrap_or(i64::MAX))
            }
            Ok(_) => {
                errors.push(Diagnostic::at(
                    "a database window of zero admits no scan",
                    text.span(),
                ));
                None
            }
            Err(message) => {
                errors.push(
                    Diagnostic::at(message, text.span()).hint("like `db_not_older_than = \"7d\"`"),
                );
                None
            }
        }
    });
    (errors.len() == before).then_some(VulnsRequirement {
        max_severity: max_severity?,
        db_not_older_than,
    })
}

/// Step names as a pipeline allows them (and `*` where `all` may stand for every one).
fn step_names(names: &[Spanned<String>], all: bool, errors: &mut Vec<Diagnostic>) -> Vec<String> {
    let mut valid_names = Vec::new();
    for step in names {
        let name = step.get_ref();
        let valid = (all && name == "*")
            || name
                .chars()
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            valid_names.push(name.clone());
        } else {
            errors.push(
                Diagnostic::at(format!("`{name}` is not a step name"), step.span())
                    .hint("step names use letters, digits, `-` and `_`, and start with a letter"),
            );
        }
    }
    valid_names
}

fn globs(
    patterns: &[Spanned<String>],
    what: &str,
    errors: &mut Vec<Diagnostic>,
) -> (GlobSet, Vec<String>) {
    let mut builder = GlobSetBuilder::new();
    let mut texts = Vec::with_capacity(patterns.len());
    for pattern in patterns {
        let text = pattern.get_ref();
        // `*` crosses `/` only as `**`, as in pipelines' inputs.
        match globset::GlobBuilder::new(text)
            .literal_separator(true)
            .build()
        {
            Ok(glob) if !text.is_empty() => {
                builder.add(glob);
                texts.push(text.clone());
            }
            Ok(_) => errors.push(Diagnostic::at(
                format!("an empty {what} pattern"),
                pattern.span(),
            )),
            Err(error) => errors.push(Diagnostic::at(
                format!("invalid {what} pattern `{text}`: {}", error.kind()),
                pattern.span(),
            )),
        }
    }
    let set = builder.build().unwrap_or_else(|_| GlobSet::empty());
    (set, texts)
}

/// A `not_before`/`not_after`: an RFC 3339 string or a TOML offset date-time.
fn time(value: Option<&Spanned<toml::Value>>, errors: &mut Vec<Diagnostic>) -> Option<i64> {
    let value = value?;
    let text = match value.get_ref() {
        toml::Value::String(text) => text.clone(),
        toml::Value::Datetime(datetime) => datetime.to_string(),
        _ => String::new(),
    };
    let parsed = crate::time::parse_rfc3339(&text);
    if parsed.is_none() {
        errors.push(
            Diagnostic::at("not an RFC 3339 date-time with a time zone", value.span())
                .hint("like `2026-01-01T00:00:00Z`"),
        );
    }
    parsed
}

/// Reads every key's PEM through `read`; a missing or wrong file is shown at its `public`.
pub fn load_keys(
    policy: &Policy,
    read: &dyn Fn(&Path) -> std::io::Result<String>,
) -> Result<Vec<TrustedKey>, Diagnostics> {
    let mut errors = Vec::new();
    let mut trusted = Vec::new();
    for spec in &policy.keys {
        let pem = match read(&spec.public) {
            Ok(pem) => pem,
            Err(error) => {
                let mut diagnostic = Diagnostic::at(
                    format!("cannot read `{}`: {error}", spec.public.display()),
                    spec.public_span.clone(),
                );
                if error.kind() == std::io::ErrorKind::NotFound {
                    diagnostic = diagnostic.hint(format!(
                        "write the public half of the key that signs the runs there: `gantry keys public [--key FILE] > {}`",
                        spec.public.display()
                    ));
                }
                errors.push(diagnostic);
                continue;
            }
        };
        match EcdsaVerifier::from_pem(&pem) {
            Ok(verifier) => trusted.push(TrustedKey {
                spec: spec.clone(),
                verifier,
            }),
            Err(message) => errors.push(
                Diagnostic::at(
                    format!("`{}`: {message}", spec.public.display()),
                    spec.public_span.clone(),
                )
                .hint(
                    "a PKIX `PUBLIC KEY` PEM, as `gantry keys public` or `cosign public-key` print",
                ),
            ),
        }
    }
    if errors.is_empty() {
        Ok(trusted)
    } else {
        Err(Diagnostics {
            file: policy.source.clone(),
            items: errors,
            more: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<Policy, String> {
        parse(&SourceFile {
            path: PathBuf::from("policies/p.toml"),
            text: std::sync::Arc::from(text),
        })
        .map_err(|diagnostics| diagnostics.render())
    }

    const KEY: &str = "[[keys]]\nid = \"k\"\npublic = \"k.pub\"\nsteps = [\"build\", \"pack*\"]\n";

    #[test]
    fn defaults_are_strict_and_paths_relative_to_the_policy() {
        let policy = parse_text(&format!("[policy]\nname = \"p\"\n{KEY}")).expect("valid");
        assert!(policy.require.provenance);
        assert!(!policy.require.sbom && !policy.require.reproduced);
        assert!(
            !policy.require.sources.is_match("src/a.txt"),
            "no source allowed by default"
        );
        assert!(policy.require.tools.is_none());
        let key = &policy.keys[0];
        assert_eq!(key.public, PathBuf::from("policies/k.pub"));
        assert!(key.steps.is_match("package") && !key.steps.is_match("provenance"));
    }

    #[test]
    fn windows_take_strings_and_toml_datetimes() {
        let policy = parse_text(&format!(
            "[policy]\nname = \"p\"\n{KEY}not_before = 2026-01-01T00:00:00Z\nnot_after = \"2026-12-31T23:59:59+00:00\"\n[require]\nsources = [\"src/*.txt\"]\n"
        ))
        .expect("valid");
        assert_eq!(policy.keys[0].not_before, Some(1_767_225_600));
        assert_eq!(policy.keys[0].not_after, Some(1_798_761_599));
        assert!(policy.require.sources.is_match("src/a.txt"));
        assert!(
            !policy.require.sources.is_match("src/deep/a.txt"),
            "`*` stays in one folder"
        );
    }

    #[test]
    fn mistakes_are_reported_at_their_line() {
        for (text, message) in [
            (
                "[[keys]]\nid = \"k\"\npublic = \"k.pub\"\nsteps = [\"*\"]\n",
                "missing `[policy]` table",
            ),
            ("[policy]\nname = \"p\"\n", "the policy trusts no key"),
            (
                "[policy]\nname = \"p\"\n[[keys]]\nid = \"k\"\npublic = \"k.pub\"\n",
                "p.toml:3:1: error: key `k` does not say what it may attest",
            ),
            (
                &format!("[policy]\nname = \"p\"\n{KEY}{KEY}"),
                "p.toml:8:6: error: key `k` is listed twice",
            ),
            (
                &format!(
                    "[policy]\nname = \"p\"\n{KEY}not_before = \"2027-01-01T00:00:00Z\"\nnot_after = \"2026-01-01T00:00:00Z\"\n"
                ),
                "`not_after` is before `not_before`",
            ),
            (
                &format!("[policy]\nname = \"p\"\n{KEY}[require]\nsteps = [\"no good\"]\n"),
                "p.toml:8:10: error: `no good` is not a step name",
            ),
            (
                &format!("[policy]\nname = \"p\"\n{KEY}[require]\nsources = [\"/etc/passwd\"]\n"),
                "sources are workspace paths",
            ),
            (
                &format!("[policy]\nname = \"p\"\n{KEY}[require]\nsbom = \"yes\"\n"),
                "invalid type: string \"yes\", expected a boolean",
            ),
            (
                &format!("[policy]\nname = \"p\"\n{KEY}[require]\ngates = [\"*\"]\n"),
                "p.toml:8:10: error: `*` means every gate of the approved pipeline, and there is none",
            ),
            (
                &format!("[policy]\nname = \"p\"\n{KEY}[require]\ngates = [\"a b\"]\n"),
                "p.toml:8:10: error: `a b` is not a step name",
            ),
            (
                &format!("[policy]\nname = \"p\"\n{KEY}[require]\nfrobnicate = true\n"),
                "unknown key `frobnicate`",
            ),
        ] {
            let error = parse_text(text).expect_err(text);
            assert!(error.contains(message), "{text:?}: {error}");
        }
    }
}
