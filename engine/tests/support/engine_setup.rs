//! The runtime tests' engine: a configuration equivalent to the workload's `bench_config`,
//! written to a real file in a temporary directory and loaded, and a reproducible clock.

use std::path::{Path, PathBuf};

use petrel_engine::config::Config;

/// The configuration text: journal and snapshots under `var/` beside the file.
pub fn bench_config_text(durability: &str, snapshot_every: u64) -> String {
    petrel_testkit::config::bench_config_text(petrel_workload::ACCOUNTS, durability, snapshot_every)
}

/// Writes the configuration into `dir` and loads it.
pub fn write_config(dir: &Path, durability: &str, snapshot_every: u64) -> (PathBuf, Config) {
    write_config_text(dir, &bench_config_text(durability, snapshot_every))
}

pub fn write_config_text(dir: &Path, text: &str) -> (PathBuf, Config) {
    let path = dir.join("engine.toml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap();
    (path, config)
}

/// Timestamps for tests: 1 µs apart from a fixed start, so runs are reproducible.
pub fn test_clock() -> petrel_engine::clock::FnClock<impl FnMut() -> u64> {
    let mut now = 1_700_000_000_000_000_000u64;
    petrel_engine::clock::FnClock(move || {
        now += 1_000;
        now
    })
}
