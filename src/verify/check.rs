//! The checks of `gantry verify`, pure: a policy with its keys, the parsed attestations and
//! the artifacts' digests in, a [`Report`] out.

use std::collections::{BTreeSet, HashMap, HashSet};

mod gates;
mod rollout;
mod templates;
mod vulns;

pub use gates::ApprovedPipeline;

use crate::digest::Digest;
use crate::verify::evidence::{Descriptor, EvidenceFile, Kind, Parsed};
use crate::verify::policy::{Policy, TrustedKey};
use crate::verify::report::{ArtifactRef, Check, CheckKind, Finding, PolicyRef, Reason, Report};

use crate::attest::run_folder::{self, PROVENANCE as PROVENANCE_FILE, StepFile};

/// How far a run's claimed time may lie ahead of the verifier's clock.
const CLOCK_SKEW: i64 = 300;

/// An artifact to verify: its name as given and the SHA-256 of its bytes.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub name: String,
    pub digest: Digest,
}

pub struct Input<'a> {
    pub policy: &'a Policy,
    pub keys: &'a [TrustedKey],
    pub evidence: &'a [EvidenceFile],
    pub artifacts: &'a [Artifact],
    /// The policy's approved pipeline, read.
    pub approved: Option<&'a ApprovedPipeline>,
    /// The verifier's clock (Unix seconds): the time keys are checked at when there is no
    /// provenance, and a bound on the time a provenance claims.
    pub now: i64,
}

/// Findings by check, in report order.
#[derive(Default)]
struct Found {
    by_check: HashMap<CheckKind, Vec<Finding>>,
    summaries: HashMap<CheckKind, String>,
}

impl Found {
    fn add(&mut self, check: CheckKind, finding: Finding) {
        let list = self.by_check.entry(check).or_default();
        if !list.iter().any(|other| {
            other.message == finding.message && other.attestation == finding.attestation
        }) {
            list.push(finding);
        }
    }

    fn summary(&mut self, check: CheckKind, text: impl Into<String>) {
        self.summaries.insert(check, text.into());
    }
}

/// One parsed attestation, with its index in the evidence.
struct Item<'a> {
    index: usize,
    file: &'a EvidenceFile,
    parsed: &'a Parsed,
}

/// Runs every check.
#[must_use]
pub fn verify(input: &Input<'_>) -> Report {
    let mut found = Found::default();
    let items = parse_check(input, &mut found);
    let run = choose_run(input, &items, &mut found);
    let time = run
        .and_then(|run| match &run.parsed.kind {
            Kind::Provenance { finished_on, .. } => *finished_on,
            _ => None,
        })
        .unwrap_or(input.now);
    let valid = signatures(input, &items, time, &mut found);
    let run_links = run_links(&items, run, &valid, &mut found);
    let products = Products::new(&run_links);
    subjects_and_chains(input, run, &run_links, &products, &mut found);
    required_steps(input, &run_links, &mut found);
    gates::check(input, &items, run, &valid, &run_links, &mut found);
    sboms(input, &items, &valid, &products, &mut found);
    reproduced(input, &items, run, &valid, &mut found);
    rollout::check(input, &items, &valid, &products, &mut found);
    vulns::check(input, &items, &valid, &mut found);
    templates::check(input, &items, run, &valid, &mut found);
    report(input, run, time, found)
}

fn parse_check<'a>(input: &Input<'a>, found: &mut Found) -> Vec<Item<'a>> {
    let mut items = Vec::new();
    let mut others = 0;
    for (index, file) in input.evidence.iter().enumerate() {
        match &file.content {
            Ok(parsed) => {
                if matches!(parsed.kind, Kind::Other { .. }) {
                    others += 1;
                }
                items.push(Item {
                    index,
                    file,
                    parsed,
                });
            }
            Err(message) => found.add(
                CheckKind::Format,
                Finding::new(
                    Reason::NotAnAttestation,
                    format!("{}: {message}", file.name),
                )
                .in_file(&file.path.display().to_string())
                .digest(Some(&file.digest.hex())),
            ),
        }
    }
    let ignored = if others > 0 {
        format!("; {others} of other predicate types ignored")
    } else {
        String::new()
    };
    found.summary(
        CheckKind::Format,
        format!(
            "{} attestations read, {} in-toto Statements{ignored}",
            input.evidence.len(),
            items.len()
        ),
    );
    items
}

fn sha(digest: &Digest) -> String {
    digest.hex()
}

/// The provenance the artifacts are checked against: the one that lists them all.
fn choose_run<'a, 'b>(
    input: &Input<'_>,
    items: &'b [Item<'a>],
    found: &mut Found,
) -> Option<&'b Item<'a>> {
    let provenances: Vec<&Item<'a>> = items
        .iter()
        .filter(|item| matches!(item.parsed.kind, Kind::Provenance { .. }))
        .collect();
    let covers = |item: &Item<'_>| {
        input.artifacts.iter().all(|artifact| {
            let hex = sha(&artifact.digest);
            item.parsed
                .subjects
                .iter()
                .any(|subject| subject.sha256.as_deref() == Some(hex.as_str()))
        })
    };
    let covering: Vec<&Item<'a>> = provenances
        .iter()
        .copied()
        .filter(|item| covers(item))
        .collect();
    match (covering.as_slice(), provenances.as_slice()) {
        ([one], _) | ([], [one]) => Some(*one),
        ([], []) => {
            if input.policy.require.provenance {
                found.add(
                    CheckKind::Run,
                    Finding::new(
                        Reason::NoProvenance,
                        "no SLSA provenance among the attestations, and the policy requires one",
                    ),
                );
            }
            None
        }
        (many, all) => {
            let names: Vec<String> = if many.is_empty() { all } else { many }
                .iter()
                .map(|item| item.file.path.display().to_string())
                .collect();
            found.add(
                CheckKind::Run,
                Finding::new(
                    Reason::MixedRuns,
                    format!(
                        "attestations of more than one run: {}; verify one run at a time",
                        names.join(", ")
                    ),
                ),
            );
            None
        }
    }
}

/// What each attestation attests, for the policy's `steps` globs.
fn attested_as<'a>(item: &'a Item<'_>, producers: &HashMap<String, &'a str>) -> Option<&'a str> {
    match &item.parsed.kind {
        Kind::Link { name, .. } => Some(name),
        // The run's own record, signed with its provenance's key: the key that may attest
        // the provenance may attest what the run used.
        Kind::Provenance { .. } | Kind::Usage => Some("provenance"),
        Kind::Sbom { .. } => Some(
            producers
                .get(&sha(&item.file.digest))
                .copied()
                .unwrap_or("sbom"),
        ),
        Kind::TestResult(_) => Some(
            producers
                .get(&sha(&item.file.digest))
                .copied()
                .unwrap_or("gate"),
        ),
        Kind::Vulns(_) => Some(
            producers
                .get(&sha(&item.file.digest))
                .copied()
                .unwrap_or("vulns"),
        ),
        Kind::Reproducibility { .. } => Some("reproducibility"),
        Kind::Rollout { step, .. } => Some(
            producers
                .get(&sha(&item.file.digest))
                .copied()
                .unwrap_or(step),
        ),
        // Nothing the policy names: it must only be signed by a key of the policy.
        Kind::Other { .. } => None,
    }
}

/// Indices (into the evidence) of the attestations signed by a key allowed for them, in its
/// window at `time`.
fn signatures(
    input: &Input<'_>,
    items: &[Item<'_>],
    time: i64,
    found: &mut Found,
) -> HashSet<usize> {
    let mut producers: HashMap<String, &str> = HashMap::new();
    for item in items {
        if let Kind::Link { name, .. } = &item.parsed.kind {
            for subject in &item.parsed.subjects {
                if let Some(hex) = &subject.sha256 {
                    producers.insert(hex.clone(), name);
                }
            }
        }
    }
    if time > input.now + CLOCK_SKEW {
        found.add(
            CheckKind::Signatures,
            Finding::new(
                Reason::TimeInFuture,
                format!(
                    "the provenance says the run finished at {}, after the verifier's clock ({})",
                    crate::time::rfc3339(time),
                    crate::time::rfc3339(input.now)
                ),
            )
            .field("predicate.runDetails.metadata.finishedOn"),
        );
    }
    let mut valid = HashSet::new();
    let mut checked = 0;
    for item in items {
        checked += 1;
        let verifying: Vec<&TrustedKey> = (item.parsed.signed_by.iter())
            .filter_map(|&index| input.keys.get(index))
            .collect();
        match judge(&verifying, item, attested_as(item, &producers), time) {
            Ok(()) => {
                valid.insert(item.index);
            }
            Err(finding) => found.add(
                CheckKind::Signatures,
                finding.in_file(&item.file.path.display().to_string()),
            ),
        }
    }
    let vouched = (items.iter())
        .filter(|item| item.parsed.vouched && valid.contains(&item.index))
        .count();
    let through = if vouched > 0 {
        format!(" ({vouched} of them by the signed provenance that lists their bytes)")
    } else {
        String::new()
    };
    found.summary(
        CheckKind::Signatures,
        format!(
            "{} of {checked} attestations signed by a key the policy allows for them{through}",
            valid.len()
        ),
    );
    valid
}

/// Whether a key of the policy signed `item`, may attest `name`, and was valid at `time`.
fn judge(
    verifying: &[&TrustedKey],
    item: &Item<'_>,
    name: Option<&str>,
    time: i64,
) -> Result<(), Finding> {
    let Some(first) = verifying.first() else {
        return Err(Finding::new(
            Reason::BadSignature,
            format!(
                "no signature on `{}` verifies with a key of the policy",
                item.file.name
            ),
        )
        .field("signatures")
        .digest(Some(&sha(&item.file.digest))));
    };
    let Some(name) = name else {
        return Ok(());
    };
    let allowed: Vec<&&TrustedKey> = verifying.iter().filter(|key| key.allows(name)).collect();
    let Some(key) = allowed.first() else {
        return Err(Finding::new(
            Reason::KeyNotAllowed,
            format!(
                "`{}` attests `{name}`, which key `{}` may not attest (it may: {})",
                item.file.name,
                first.spec.id,
                first.spec.step_patterns.join(", ")
            ),
        )
        .field("signatures[0].keyid"));
    };
    if allowed.iter().any(|key| key.valid_at(time)) {
        return Ok(());
    }
    let bound =
        |value: Option<i64>| value.map_or_else(|| "any time".to_owned(), crate::time::rfc3339);
    Err(Finding::new(
        Reason::KeyOutsideWindow,
        format!(
            "`{}` is signed by key `{}`, valid from {} until {}, but the run is of {}",
            item.file.name,
            key.spec.id,
            bound(key.spec.not_before),
            bound(key.spec.not_after),
            crate::time::rfc3339(time)
        ),
    )
    .field("signatures[0].keyid"))
}

/// The run's step links: those the provenance lists, byte for byte, and validly signed.
/// Without a provenance: every validly signed link, one per step.
fn run_links<'a, 'b>(
    items: &'b [Item<'a>],
    run: Option<&Item<'a>>,
    valid: &HashSet<usize>,
    found: &mut Found,
) -> Vec<&'b Item<'a>> {
    match run {
        Some(run) => bound_links(items, run, valid, found),
        None => unbound_links(items, valid, found),
    }
}

fn is_link(item: &Item<'_>) -> bool {
    matches!(item.parsed.kind, Kind::Link { .. })
}

/// Without a provenance: every validly signed link, one per step.
fn unbound_links<'a, 'b>(
    items: &'b [Item<'a>],
    valid: &HashSet<usize>,
    found: &mut Found,
) -> Vec<&'b Item<'a>> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    let mut links = Vec::new();
    for item in items
        .iter()
        .filter(|item| is_link(item) && valid.contains(&item.index))
    {
        let Kind::Link { name, .. } = &item.parsed.kind else {
            continue;
        };
        if let Some(first) = seen.insert(name, &item.file.name) {
            found.add(
                CheckKind::Run,
                Finding::new(
                    Reason::Duplicate,
                    format!(
                        "`{}` and `{first}` both attest step `{name}`",
                        item.file.name
                    ),
                )
                .in_file(&item.file.path.display().to_string()),
            );
            continue;
        }
        links.push(item);
    }
    found.summary(
        CheckKind::Run,
        format!("no provenance: {} step links taken as one run", links.len()),
    );
    links
}

/// The links the provenance lists, byte for byte, validly signed; anything else in the run's
/// folder is reported.
fn bound_links<'a, 'b>(
    items: &'b [Item<'a>],
    run: &Item<'a>,
    valid: &HashSet<usize>,
    found: &mut Found,
) -> Vec<&'b Item<'a>> {
    let Kind::Provenance {
        byproducts,
        invocation_id,
        ..
    } = &run.parsed.kind
    else {
        return Vec::new();
    };
    let in_folder: Vec<&Item<'a>> = items
        .iter()
        .filter(|item| item.file.folder == run.file.folder)
        .collect();
    let listed = listed(&in_folder, run, byproducts, found);
    let links: Vec<&Item<'a>> = in_folder
        .iter()
        .copied()
        .filter(|item| is_link(item) && listed.contains(&item.index) && valid.contains(&item.index))
        .collect();
    // An SBOM or a gate's attestation belongs to the run as `<step>.sbom.intoto.json` or
    // `<step>.gate.intoto.json` of the step whose link lists it as a product.
    let made_by: HashMap<String, &str> = links
        .iter()
        .flat_map(|item| {
            let step = match &item.parsed.kind {
                Kind::Link { name, .. } => name.as_str(),
                _ => "",
            };
            (item.parsed.subjects.iter())
                .filter_map(move |subject| Some((subject.sha256.clone()?, step)))
        })
        .collect();
    let named_for_its_step = |item: &Item<'_>, kind: StepFile| {
        (made_by.get(&sha(&item.file.digest))).is_some_and(|step| item.file.name == kind.name(step))
    };
    if run.file.name != PROVENANCE_FILE {
        found.add(
            CheckKind::Run,
            Finding::new(
                Reason::Misnamed,
                format!(
                    "the run's provenance is `{}`, not `{PROVENANCE_FILE}`",
                    run.file.name
                ),
            )
            .in_file(&run.file.path.display().to_string()),
        );
    }
    for item in &in_folder {
        let stray = match item.parsed.kind {
            // A listed name with other bytes was reported as such.
            Kind::Link { .. } => {
                !listed.contains(&item.index)
                    && !byproducts
                        .iter()
                        .any(|byproduct| byproduct.name == item.file.name)
            }
            Kind::Sbom { .. } => !named_for_its_step(item, StepFile::Sbom),
            Kind::TestResult(_) => !named_for_its_step(item, StepFile::Gate),
            Kind::Rollout { .. } => !named_for_its_step(item, StepFile::Rollout),
            Kind::Vulns(_) => !named_for_its_step(item, StepFile::Vulns),
            Kind::Provenance { .. } => false,
            // The run's usage names its provenance as its subject.
            Kind::Usage => {
                item.file.name != run_folder::USAGE
                    || !(item.parsed.subjects.iter()).any(|subject| {
                        subject.sha256.as_deref() == Some(sha(&run.file.digest).as_str())
                    })
            }
            Kind::Reproducibility { .. } | Kind::Other { .. } => true,
        };
        if stray {
            found.add(
                CheckKind::Run,
                Finding::new(
                    Reason::NotInRun,
                    format!(
                        "`{}` is not part of run {invocation_id}: its provenance does not list it",
                        item.file.name
                    ),
                )
                .in_file(&item.file.path.display().to_string())
                .digest(Some(&sha(&item.file.digest))),
            );
        }
    }
    found.summary(
        CheckKind::Run,
        format!(
            "run {invocation_id}: {} step links, each as its provenance lists it",
            links.len()
        ),
    );
    links
}

/// The files of the run's folder that the provenance's byproducts name with their digest.
fn listed(
    in_folder: &[&Item<'_>],
    run: &Item<'_>,
    byproducts: &[Descriptor],
    found: &mut Found,
) -> HashSet<usize> {
    let provenance_file = run.file.path.display().to_string();
    let mut by_name: HashMap<&str, &Item<'_>> = HashMap::with_capacity(in_folder.len());
    for item in in_folder {
        by_name.entry(item.file.name.as_str()).or_insert(item);
    }
    let mut listed = HashSet::new();
    for (position, byproduct) in byproducts.iter().enumerate() {
        let field = || format!("predicate.runDetails.byproducts[{position}]");
        let Some(item) = by_name.get(byproduct.name.as_str()) else {
            found.add(
                CheckKind::Run,
                Finding::new(
                    Reason::Missing,
                    format!(
                        "the provenance lists `{}`, which is not among the attestations",
                        byproduct.name
                    ),
                )
                .in_file(&provenance_file)
                .field(field())
                .digest(byproduct.sha256.as_deref()),
            );
            continue;
        };
        if byproduct.sha256.as_deref() == Some(sha(&item.file.digest).as_str()) {
            listed.insert(item.index);
            continue;
        }
        found.add(
            CheckKind::Run,
            Finding::new(
                Reason::DigestMismatch,
                format!(
                    "`{}` is not the attestation the provenance lists (sha256 {})",
                    item.file.name,
                    byproduct.sha256.as_deref().unwrap_or("none")
                ),
            )
            .in_file(&item.file.path.display().to_string())
            .field(format!("{}.digest.sha256 of {provenance_file}", field()))
            .digest(Some(&sha(&item.file.digest))),
        );
    }
    listed
}

/// The run links' products: by digest, and by name (out-links under their workspace name).
struct Products<'a> {
    by_name: HashMap<&'a str, Vec<(usize, Option<&'a str>)>>,
    digests: HashSet<&'a str>,
}

impl<'a> Products<'a> {
    fn new(links: &[&'a Item<'a>]) -> Self {
        let mut by_name: HashMap<&'a str, Vec<(usize, Option<&'a str>)>> = HashMap::new();
        let mut digests = HashSet::new();
        for (position, link) in links.iter().enumerate() {
            for subject in &link.parsed.subjects {
                let hex = subject.sha256.as_deref();
                by_name
                    .entry(&subject.name)
                    .or_default()
                    .push((position, hex));
                if let Some(out_link) = &subject.out_link {
                    by_name.entry(out_link).or_default().push((position, hex));
                }
                if let Some(hex) = hex {
                    digests.insert(hex);
                }
            }
        }
        Self { by_name, digests }
    }
}

fn subjects_and_chains(
    input: &Input<'_>,
    run: Option<&Item<'_>>,
    links: &[&Item<'_>],
    products: &Products<'_>,
    found: &mut Found,
) {
    let mut chain = Chain {
        input,
        links,
        products,
        run: run.is_some(),
        resolved: match run.map(|run| &run.parsed.kind) {
            Some(Kind::Provenance { resolved, .. }) => resolved,
            _ => &[],
        },
        walked: BTreeSet::new(),
        sources: BTreeSet::new(),
        tools: BTreeSet::new(),
        networked: BTreeSet::new(),
    };
    for artifact in input.artifacts {
        let hex = sha(&artifact.digest);
        if let Some(run) = run
            && !run
                .parsed
                .subjects
                .iter()
                .any(|subject| subject.sha256.as_deref() == Some(hex.as_str()))
        {
            found.add(
                CheckKind::Subject,
                Finding::new(
                    Reason::NotASubject,
                    format!(
                        "`{}` is not a subject of the run's provenance",
                        artifact.name
                    ),
                )
                .in_file(&run.file.path.display().to_string())
                .field("subject")
                .digest(Some(&hex)),
            );
        }
        let producers: Vec<usize> = links
            .iter()
            .enumerate()
            .filter(|(_, link)| {
                link.parsed
                    .subjects
                    .iter()
                    .any(|subject| subject.sha256.as_deref() == Some(hex.as_str()))
            })
            .map(|(position, _)| position)
            .collect();
        if producers.is_empty() {
            found.add(
                CheckKind::Subject,
                Finding::new(
                    Reason::NoProducer,
                    format!("no attested step of the run produced `{}`", artifact.name),
                )
                .digest(Some(&hex)),
            );
        }
        chain.walk(producers, found);
    }
    // Every other step of the run is accounted for too: an SBOM's inputs, a required step's.
    chain.walk((0..links.len()).collect(), found);
    found.summary(
        CheckKind::Subject,
        format!(
            "{}, each a product of an attested step",
            crate::report::counted(input.artifacts.len(), "artifact")
        ),
    );
    let networked = if chain.networked.is_empty() {
        String::new()
    } else {
        let names: Vec<String> = chain
            .networked
            .iter()
            .map(|step| format!("`{step}`"))
            .collect();
        format!("; with the network: {}", names.join(", "))
    };
    found.summary(
        CheckKind::Chain,
        format!(
            "{} followed back to {} and {}{networked}",
            crate::report::counted(chain.walked.len(), "step"),
            crate::report::counted(chain.sources.len(), "allowed source"),
            crate::report::counted(chain.tools.len(), "tool")
        ),
    );
}

/// Following materials back from the artifacts' producers.
struct Chain<'a, 'b> {
    input: &'b Input<'b>,
    links: &'b [&'b Item<'a>],
    products: &'b Products<'b>,
    /// Whether a provenance binds the run (and lists its sources).
    run: bool,
    resolved: &'b [Descriptor],
    walked: BTreeSet<usize>,
    sources: BTreeSet<String>,
    tools: BTreeSet<String>,
    /// Steps on the chain that had the network.
    networked: BTreeSet<String>,
}

impl Chain<'_, '_> {
    fn walk(&mut self, mut queue: Vec<usize>, found: &mut Found) {
        while let Some(position) = queue.pop() {
            if !self.walked.insert(position) {
                continue;
            }
            let link = self.links[position];
            let Kind::Link {
                name: step,
                materials,
                network,
                ..
            } = &link.parsed.kind
            else {
                continue;
            };
            let file = link.file.path.display().to_string();
            if *network {
                self.networked.insert(step.clone());
                if let Some(allowed) = &self.input.policy.require.network
                    && !allowed.is_match(step)
                {
                    found.add(
                        CheckKind::Chain,
                        Finding::new(
                            Reason::NetworkNotAllowed,
                            format!(
                                "step `{step}` had the network, which the policy's `network` does not allow: what it fetched is vouched for by nothing but the step itself"
                            ),
                        )
                        .in_file(&file)
                        .field("predicate.environment.sandbox.network"),
                    );
                }
            }
            for (index, material) in materials.iter().enumerate() {
                match self.material(step, material) {
                    Ok(Some(producer)) => queue.push(producer),
                    Ok(None) => {}
                    Err((finding, digest_field)) => {
                        let field = if digest_field {
                            format!("predicate.materials[{index}].digest.sha256")
                        } else {
                            format!("predicate.materials[{index}]")
                        };
                        found.add(
                            CheckKind::Chain,
                            finding
                                .in_file(&file)
                                .field(field)
                                .digest(material.sha256.as_deref()),
                        );
                    }
                }
            }
        }
    }

    /// Where one material of `step` comes from: the run link that made it (to follow), an
    /// allowed source or tool (`None`), or a finding (and whether it is about the digest).
    fn material(
        &mut self,
        step: &str,
        material: &Descriptor,
    ) -> Result<Option<usize>, (Finding, bool)> {
        let hex = material.sha256.as_deref();
        let name = material.name.as_str();
        if name.starts_with('/') {
            self.tools.insert(name.to_owned());
            return match &self.input.policy.require.tools {
                Some(allowed) if !allowed.is_match(name) => Err((
                    Finding::new(
                        Reason::ToolNotAllowed,
                        format!(
                            "step `{step}` used `{name}`, which the policy's `tools` do not allow"
                        ),
                    ),
                    false,
                )),
                _ => Ok(None),
            };
        }
        if let Some(made) = self.products.by_name.get(name) {
            if let Some((producer, _)) = made
                .iter()
                .find(|(_, made_hex)| hex.is_some() && *made_hex == hex)
            {
                return Ok(Some(*producer));
            }
            let (producer, made_hex) = made[0];
            let maker = match &self.links[producer].parsed.kind {
                Kind::Link { name, .. } => name.as_str(),
                _ => "?",
            };
            return Err((
                Finding::new(
                    Reason::Substituted,
                    format!(
                        "step `{step}` read `{name}` with sha256 {}, but step `{maker}` made sha256 {}",
                        hex.unwrap_or("none"),
                        made_hex.unwrap_or("none")
                    ),
                ),
                true,
            ));
        }
        if !self.input.policy.require.sources.is_match(name) {
            return Err((
                Finding::new(
                    Reason::UnattestedMaterial,
                    format!(
                        "step `{step}` read `{name}`, which no attested step made and the policy's `sources` do not allow"
                    ),
                ),
                false,
            ));
        }
        self.sources.insert(name.to_owned());
        if !self.run {
            return Ok(None);
        }
        match self
            .resolved
            .iter()
            .find(|dependency| dependency.name == name)
        {
            Some(dependency) if hex.is_some() && dependency.sha256.as_deref() == hex => Ok(None),
            Some(dependency) => Err((
                Finding::new(
                    Reason::SourceMismatch,
                    format!(
                        "step `{step}` read source `{name}` with sha256 {}, but the provenance resolved it to {}",
                        hex.unwrap_or("none"),
                        dependency.sha256.as_deref().unwrap_or("none")
                    ),
                ),
                true,
            )),
            None => Err((
                Finding::new(
                    Reason::SourceMismatch,
                    format!(
                        "step `{step}` read source `{name}`, which the provenance's resolvedDependencies do not list"
                    ),
                ),
                false,
            )),
        }
    }
}

fn required_steps(input: &Input<'_>, links: &[&Item<'_>], found: &mut Found) {
    let present: HashSet<&str> = links
        .iter()
        .filter_map(|link| match &link.parsed.kind {
            Kind::Link { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    for step in &input.policy.require.steps {
        if !present.contains(step.as_str()) {
            found.add(
                CheckKind::Steps,
                Finding::new(
                    Reason::StepMissing,
                    format!("no valid attestation of required step `{step}` in the run"),
                ),
            );
        }
    }
    found.summary(
        CheckKind::Steps,
        required_summary(&input.policy.require.steps),
    );
}

/// The required steps by name; a long list by its count and its ends, so that the line stays
/// readable (the JSON report's failures still name each missing step).
fn required_summary(steps: &[String]) -> String {
    const SHOWN: usize = 8;
    match steps {
        [] => "no steps required".to_owned(),
        [first @ .., last] if steps.len() > SHOWN => format!(
            "required: {} steps ({}, …, {last})",
            steps.len(),
            first[..SHOWN - 2].join(", ")
        ),
        _ => format!("required: {}", steps.join(", ")),
    }
}

fn sboms(
    input: &Input<'_>,
    items: &[Item<'_>],
    valid: &HashSet<usize>,
    products: &Products<'_>,
    found: &mut Found,
) {
    if !input.policy.require.sbom {
        found.summary(CheckKind::Sbom, "not required by the policy");
        return;
    }
    for artifact in input.artifacts {
        let hex = sha(&artifact.digest);
        let describing: Vec<&Item<'_>> = items
            .iter()
            .filter(|item| {
                matches!(item.parsed.kind, Kind::Sbom { .. })
                    && valid.contains(&item.index)
                    && item
                        .parsed
                        .subjects
                        .iter()
                        .any(|subject| subject.sha256.as_deref() == Some(hex.as_str()))
            })
            .collect();
        if describing
            .iter()
            .any(|item| products.digests.contains(sha(&item.file.digest).as_str()))
        {
            continue;
        }
        let finding = match describing.first() {
            Some(item) => Finding::new(
                Reason::NotInRun,
                format!(
                    "`{}` describes `{}`, but no step of the run made it",
                    item.file.name, artifact.name
                ),
            )
            .in_file(&item.file.path.display().to_string()),
            None => Finding::new(
                Reason::SbomMissing,
                format!(
                    "no valid SBOM attestation of the run has `{}` as its subject",
                    artifact.name
                ),
            ),
        };
        found.add(CheckKind::Sbom, finding.digest(Some(&hex)));
    }
    found.summary(
        CheckKind::Sbom,
        "an SBOM attestation of the run describes each artifact",
    );
}

fn reproduced(
    input: &Input<'_>,
    items: &[Item<'_>],
    run: Option<&Item<'_>>,
    valid: &HashSet<usize>,
    found: &mut Found,
) {
    if !input.policy.require.reproduced {
        found.summary(CheckKind::Reproduced, "not required by the policy");
        return;
    }
    let run_id = run.and_then(|run| match &run.parsed.kind {
        Kind::Provenance { invocation_id, .. } => Some(invocation_id.as_str()),
        _ => None,
    });
    for artifact in input.artifacts {
        let hex = sha(&artifact.digest);
        let mut verdicts = items
            .iter()
            .filter(|item| valid.contains(&item.index))
            .filter_map(|item| {
                let Kind::Reproducibility {
                    run_id: checked,
                    results,
                } = &item.parsed.kind
                else {
                    return None;
                };
                // A rebuild of another run (an earlier one, before a no-op run made a new run
                // id) holds for the same output path with the same bytes.
                let same_run = run_id.is_none_or(|run_id| run_id == checked);
                results
                    .iter()
                    .find(|(name, attested, _)| {
                        attested.as_deref() == Some(hex.as_str())
                            && (same_run || *name == artifact.name)
                    })
                    .map(|(_, _, reproduced)| (item, *reproduced))
            });
        let verdicts: Vec<_> = verdicts.by_ref().collect();
        if verdicts.iter().any(|(_, reproduced)| *reproduced) {
            continue;
        }
        let finding = match verdicts.first() {
            Some((item, _)) => Finding::new(
                Reason::NotReproduced,
                format!(
                    "`{}` says `{}` did not reproduce",
                    item.file.name, artifact.name
                ),
            )
            .in_file(&item.file.path.display().to_string()),
            None => Finding::new(
                Reason::NotReproduced,
                format!(
                    "no valid reproducibility attestation covers `{}` with these bytes (run `gantry repro` and pass its folder)",
                    artifact.name
                ),
            ),
        };
        found.add(CheckKind::Reproduced, finding.digest(Some(&hex)));
    }
    found.summary(CheckKind::Reproduced, "a rebuild reproduced each artifact");
}

fn report(input: &Input<'_>, run: Option<&Item<'_>>, time: i64, mut found: Found) -> Report {
    let require = &input.policy.require;
    let checks: Vec<Check> = CheckKind::ALL
        .iter()
        .map(|&kind| {
            let failures = found.by_check.remove(&kind).unwrap_or_default();
            let required = match kind {
                CheckKind::Sbom => require.sbom,
                CheckKind::Reproduced => require.reproduced,
                CheckKind::Rollout => require.rollout,
                CheckKind::Vulns => require.vulns.is_some(),
                CheckKind::Gates => !require.gates.is_empty() || require.pipeline.is_some(),
                _ => true,
            };
            Check {
                check: kind,
                passed: failures.is_empty(),
                required,
                summary: found.summaries.remove(&kind).unwrap_or_default(),
                failures,
            }
        })
        .collect();
    Report {
        passed: checks.iter().all(|check| check.passed),
        policy: PolicyRef {
            name: input.policy.name.clone(),
            path: input.policy.source.path.display().to_string(),
            sha256: input.policy.digest.hex(),
        },
        run: run.and_then(|run| match &run.parsed.kind {
            Kind::Provenance { invocation_id, .. } => Some(invocation_id.clone()),
            _ => None,
        }),
        time: crate::time::rfc3339(time),
        artifacts: input
            .artifacts
            .iter()
            .map(|artifact| ArtifactRef {
                name: artifact.name.clone(),
                sha256: artifact.digest.hex(),
            })
            .collect(),
        checks,
        attestations: input
            .evidence
            .iter()
            .map(|file| ArtifactRef {
                name: file.path.display().to_string(),
                sha256: file.digest.hex(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_long_list_of_required_steps_is_summarised_by_count_and_ends() {
        let names = |count: usize| (0..count).map(|i| format!("s{i}")).collect::<Vec<_>>();
        assert_eq!(super::required_summary(&[]), "no steps required");
        assert_eq!(super::required_summary(&names(3)), "required: s0, s1, s2");
        assert_eq!(
            super::required_summary(&names(8)),
            "required: s0, s1, s2, s3, s4, s5, s6, s7"
        );
        assert_eq!(
            super::required_summary(&names(1000)),
            "required: 1000 steps (s0, s1, s2, s3, s4, s5, …, s999)"
        );
    }
}
