//! Shared by the runtime tests: a configuration file equivalent to the benchmark workload's
//! `bench_config` (one instrument, 100 accounts in separate firms, no binding limits), written
//! to a real file in a temporary directory.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};

use petrel_engine::config::Config;

pub const BIN: &str = env!("CARGO_BIN_EXE_petrel-engine");

/// The configuration text: journal and snapshots under `var/` beside the file.
pub fn bench_config_text(durability: &str, snapshot_every: u64) -> String {
    let mut text = format!(
        r#"
[engine]
max_orders = 65536

[risk_profiles.open]
max_order_qty = "unlimited"
max_order_notional = "unlimited"
price_collar_bps = "unlimited"
max_open_orders = "unlimited"
max_position = "unlimited"
max_orders_per_window = "unlimited"

[[instruments]]
symbol = "BENCH"
tick_size = "0.01"
lot_size = 1
price_band_min = "0.01"
price_band_max = "200.00"
reference_price = "100.00"

[journal]
dir = "var/journal"
file_prefix = "input"
durability = "{durability}"
segment_size_bytes = 1_048_576
max_record_payload_bytes = 64
write_buffer_bytes = 65_536

[snapshots]
dir = "var/snapshots"
every_commands = {snapshot_every}
keep = 2

[gateway]
listen = "127.0.0.1:15000"
users_file = "users.toml"
"#
    );
    for firm in 0..petrel_benches::ACCOUNTS {
        text.push_str(&format!("\n[[firms]]\nname = \"F{firm:03}\"\n"));
    }
    for account in 0..petrel_benches::ACCOUNTS {
        text.push_str(&format!(
            "\n[[accounts]]\nname = \"a{account}\"\nfirm = \"F{account:03}\"\nrisk_profile = \"open\"\n"
        ));
    }
    text
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
