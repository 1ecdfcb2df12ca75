//! petrel-engine: the daemon around the deterministic matching core.
//!
//! Today: the core (re-exported as `core`) and the LOBSTER import used by `replay-lobster`.
//! The runtime (sequencer, journal, pinned pipeline) and the OUCH gateway build on these; see
//! docs/ARCHITECTURE.md.

pub use petrel_core as core;
pub mod lobster;
