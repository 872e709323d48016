//! Attestation documents: in-toto Statement v1, predicates, DSSE envelopes. Pure data and
//! encoding; keys come in through the `Signer` trait.

pub mod bundle;
pub mod dsse;
pub mod jsonl;
pub mod predicate;
pub mod provenance;
pub mod run_folder;
pub mod statement;

pub use dsse::Envelope;
pub use predicate::link::{self, LINK_PREDICATE_TYPE, Link};
pub use statement::{DigestSet, PAYLOAD_TYPE, ResourceDescriptor, Statement};
