//! This package's side of the test kit: petrel-testkit (the daemon harness, the OUCH test
//! client, the config writers) with this package's daemon binary, and the helpers that need the
//! engine's own types, which the kit cannot depend on.
#![allow(dead_code)] // each test binary uses a different part

pub mod engine_setup;
pub mod metrics_sample;
pub mod pipeline;

#[allow(unused_imports)] // a test binary that only needs the engine-side helpers
pub use petrel_testkit::*;

/// The daemon built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_petrel-engine");
