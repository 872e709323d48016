//! Everything a run shares between its steps.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

use crate::exec::executor::LazyExecutor;
pub use crate::exec::program::ProgramCache;
use crate::exec::scratch::Slots;
use crate::exec::variation::Variation;
use crate::graph::Graph;
use crate::keys::Signer;
use crate::pipeline::Pipeline;
use crate::report::Reporter;
use crate::store::{OutputRecord, Store, Tree};

pub struct Context {
    pub pipeline: Pipeline,
    pub graph: Graph,
    pub store: Store,
    pub executor: LazyExecutor,
    /// The REAPI executor, when the run has a remote (`[executor]` or `--remote`).
    pub remote: Option<LazyExecutor>,
    /// Signs the run's attestations.
    pub signer: Box<dyn Signer>,
    /// The keys whose links vouch for a cached result: the run's own, then any given with
    /// `--trust-cache-key` ([`crate::exec::vouch`]).
    pub cache_verifiers: Vec<Box<dyn crate::keys::Verifier>>,
    /// The keys sign steps sign artifacts with.
    pub artifact_keys: Keys,
    /// Where sbom steps look up crates' licences (`CARGO_HOME`, else `~/.cargo`).
    pub cargo_home: Option<PathBuf>,
    pub run_id: String,
    /// `attestations/<run-id>/`.
    pub run_dir: PathBuf,
    /// `<cache>/tmp/<run-id>/`: scratch folders of steps in flight.
    pub scratch: PathBuf,
    /// HEAD's commit time, recorded in the provenance.
    pub source_date_epoch: Option<i64>,
    /// The host system exec steps see (`exec::host`): in their action keys and links.
    pub host: crate::exec::host::HostSystem,
    /// When each tracked file last changed; `None` outside git.
    pub last_changes: Option<crate::git::last_change::LastChanges>,
    /// Each step's `SOURCE_DATE_EPOCH`, once asked (`exec::epoch`).
    pub epochs: Vec<OnceLock<Option<i64>>>,
    /// `--param NAME=VALUE`: given to every command as `GANTRY_PARAM_NAME`.
    pub parameters: std::collections::BTreeMap<String, String>,
    /// `gantry release`: recorded in the provenance.
    pub release: Option<crate::attest::provenance::ReleaseParameter>,
    /// Set on Ctrl-C / SIGTERM: running sandboxes are killed, nothing new starts.
    pub cancel: AtomicBool,
    pub reporter: Reporter,
    /// The digest of each step's attestation in the run folder, once placed.
    pub attestations: Vec<OnceLock<crate::digest::Digest>>,
    /// Links new attestations into the attestation store.
    pub placer: crate::exec::placer::Placer,
    /// The attestation store beside the run folder.
    pub stored: crate::exec::stored::StoredAttestations,
    /// Each finished step's outputs, for the steps that read them.
    pub results: Vec<OnceLock<Arc<StepResult>>>,
    /// What each failed attempt used (the last of a failed step's, and every one a retry
    /// followed), by step: billed like any execution (docs/usage.md).
    pub failed_attempts: std::sync::Mutex<Vec<(crate::pipeline::StepId, crate::store::Usage)>>,
    pub programs: ProgramCache,
    /// `[tools]`, resolved and digested on first use.
    pub tools: crate::exec::tools::Tools,
    /// Scratch folders steps run in, reused from step to step.
    pub slots: Slots,
    /// The Nix settings attestations record, read once per run by the first Nix step.
    pub nix_settings: OnceLock<Result<crate::nix::Settings, String>>,
    /// Where outputs are materialised and later steps read them: the root, except in a
    /// rebuild, which leaves the workspace alone.
    pub output_root: PathBuf,
    /// The steps' surroundings: standard, or varied by `gantry repro`.
    pub variation: Variation,
    /// `variation.sandbox.describe()`, made once: every action key holds it.
    pub sandbox_settings: String,
    /// A `gantry repro` rebuild: no cache hits.
    pub rebuild: bool,
    /// Nix steps are built again with `nix build --rebuild` and compared.
    pub nix_check: bool,
}

impl Context {
    /// What `id` used, when measured: a cache hit's is read from the cache now.
    #[must_use]
    pub fn usage_of(&self, id: crate::pipeline::StepId) -> Option<crate::store::Usage> {
        let result = self.results.get(id)?.get()?;
        (result.usage.clone()).or_else(|| {
            (result.cached.as_ref()).and_then(|key| self.store.actions.saved_usage(key))
        })
    }
}

/// What a finished step produced.
#[derive(Clone, Debug, Default)]
pub struct StepResult {
    pub outputs: Vec<OutputRecord>,
    /// Listings of folder outputs, by output index.
    pub trees: HashMap<usize, Tree>,
    /// What running it used (a cache hit: what the execution that made the entry used), when
    /// measured and read: [`Context::usage_of`] reads a cache hit's.
    pub usage: Option<crate::store::Usage>,
    /// A cache hit's action key: its usage is read from the cache only when wanted (a usage
    /// document, `--json` events), so a no-op run does not decode thousands of them.
    pub cached: Option<crate::digest::Digest>,
}

/// The keys sign steps sign with, loaded before the run starts (a password may be asked).
#[derive(Clone, Default)]
pub struct Keys {
    /// By step name (a `gantry repro --step` selection renumbers steps).
    pub by_step: std::collections::HashMap<String, std::sync::Arc<dyn crate::keys::Signer>>,
    /// The key files, absolute: never sources, so no step's sandbox ever holds one.
    pub files: Vec<std::path::PathBuf>,
}
