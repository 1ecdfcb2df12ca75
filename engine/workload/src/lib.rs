//! Workloads for Petrel's benchmarks, its load generator and its long-run tests.
//!
//! Each generator is deterministic in its seed. Streams are produced against a shadow engine,
//! so cancels and replaces name orders that are really open, as a trading client's would.
//!
//! - [`rng`]: the seeded random numbers every generator draws from.
//! - [`bench_config`]: the one-instrument, many-account configuration the mixes trade on.
//! - [`exchange_core`]: the exchange-core benchmark mix.
//! - [`add_heavy`]: a mix that grows a deep book.
//! - [`deep_queues`]: Liquibook's adds-only workload, millions of orders in fourteen levels.
//! - [`lobster`]: the LOBSTER sample (real Nasdaq flow) as commands, once or in a loop.
//!
//! This crate depends on the matching core only, so that the engine's tests and the benchmarks
//! can both use it without one package depending on the other.

pub mod add_heavy;
pub mod bench_config;
pub mod deep_queues;
pub mod exchange_core;
pub mod lobster;
pub mod rng;
mod shadow;

pub use add_heavy::add_heavy_mix;
pub use bench_config::{bench_config, ACCOUNTS, MID, TICK};
pub use deep_queues::deep_queues_mix;
pub use exchange_core::{exchange_core_mix, MixStats};
pub use lobster::{lobster_commands, lobster_loop, renumber_client_refs};
pub use rng::Rng;
