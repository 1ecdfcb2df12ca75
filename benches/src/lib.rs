//! Petrel's benchmarks and its load generator. The workloads they replay live in
//! petrel-workload (engine/workload), which the engine's tests share.

pub mod load;

// The load generator's own paths (`crate::Rng`, `petrel_benches::lobster_commands` in the
// petrel-load binary) predate petrel-workload.
pub use petrel_workload::lobster::lobster_commands;
pub use petrel_workload::Rng;
