//! Shared workload generators for Petrel's benchmarks and load generator.
