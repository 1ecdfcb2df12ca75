//! petrel-engine: the daemon around the matching core.
pub use petrel_core as core;
