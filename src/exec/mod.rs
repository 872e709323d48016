//! The engine below the kinds: one step's execution, the sandbox, the inputs and outputs it
//! moves, host tools, warm folders. The run layer (`crate::run`) drives it.

pub mod action_key;
pub mod command;
pub mod commit;
pub mod context;
pub mod epoch;
pub mod executor;
pub mod failure;
pub mod host;
pub mod inputs;
pub mod outputs;
pub mod placer;
pub mod program;
pub mod sandbox;
pub mod scratch;
pub mod stored;
pub mod tools;
pub mod variation;
pub mod vouch;
pub mod warm;

pub use executor::Executor;
