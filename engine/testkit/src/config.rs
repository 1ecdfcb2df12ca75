//! Configuration files for tests, each in its own directory: the development configuration
//! (config/dev.toml) for the gateway tests, the benchmark one (config/bench.toml) for the load
//! tests, and a generated one equivalent to the workload's `bench_config` for the runtime tests.

use std::path::{Path, PathBuf};

use crate::REPO;

/// The development configuration's order-rate limit (1,000 orders a second of sequenced time).
/// A limit counted in time makes a test's verdict depend on the machine's speed: a fast machine
/// sends more than 1,000 orders in a second where a slow one does not. Tests lift it unless
/// they test the limit itself, with a window no run outlasts ([`write_config_with_rate_limit`]).
const DEV_RATE_LIMIT: &str = "max_orders_per_window = 1_000       # new orders and replaces accepted per rate window ...\nrate_window_ms = 1_000              # ... of this length, in sequenced (journal) time\n";

/// A test configuration: the development one with its own journal, an ephemeral port and the
/// chosen network backend, and no order-rate limit (see [`DEV_RATE_LIMIT`]).
pub fn write_config(dir: &Path, backend: &str) -> PathBuf {
    write_config_rate(dir, backend, "max_orders_per_window = \"unlimited\"\n")
}

/// [`write_config`] with the standard profile limited to `orders` new orders and replaces per
/// hour: a window no test outlasts, so the order that passes the limit is the same on any
/// machine.
pub fn write_config_with_rate_limit(dir: &Path, backend: &str, orders: u32) -> PathBuf {
    write_config_rate(
        dir,
        backend,
        &format!("max_orders_per_window = {orders}\nrate_window_ms = 3_600_000\n"),
    )
}

fn write_config_rate(dir: &Path, backend: &str, rate_limit: &str) -> PathBuf {
    let dev = std::fs::read_to_string(format!("{REPO}/config/dev.toml")).unwrap();
    assert_eq!(dev.matches(DEV_RATE_LIMIT).count(), 1, "config/dev.toml's standard rate limit moved");
    let users = std::fs::canonicalize(format!("{REPO}/config/dev-users.toml")).unwrap();
    let text = dev
        .replace(DEV_RATE_LIMIT, rate_limit)
        .replace("dir = \"../var/journal\"", &format!("dir = \"{}\"", dir.join("journal").display()))
        .replace("dir = \"../var/snapshots\"", &format!("dir = \"{}\"", dir.join("snapshots").display()))
        .replace("listen = \"127.0.0.1:15000\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9180\"", "listen = \"127.0.0.1:0\"")
        .replace("users_file = \"dev-users.toml\"", &format!("users_file = \"{}\"", users.display()))
        .replace("backend = \"auto\"", &format!("backend = \"{backend}\""));
    let path = dir.join("engine.toml");
    std::fs::write(&path, with_runtime_mode(text)).unwrap();
    path
}

/// The first line of config/bench.toml's `[market_data]` section, its last.
const BENCH_FEED_SECTION: &str = "\n# Market-data feed:";
/// Where config/bench.toml sends its feed.
const BENCH_FEED_DESTINATION: &str = "destinations = [\"127.0.0.1:15200\"]";

/// config/bench.toml with a private journal and snapshots under `dir`, an ephemeral port and
/// no admin endpoint clash, and no market-data feed (so that tests never send to the fixed
/// port a developer's `petrel-load --feed-listen` may be on).
pub fn write_bench_config(dir: &Path) -> PathBuf {
    let bench = std::fs::read_to_string(format!("{REPO}/config/bench.toml")).unwrap();
    let (without_feed, _) =
        bench.split_once(BENCH_FEED_SECTION).expect("config/bench.toml ends with its feed");
    write_bench_text(dir, without_feed.to_owned() + "\n")
}

/// [`write_bench_config`] with config/bench.toml's market-data feed, sent to `feed` instead.
pub fn write_bench_config_with_feed(dir: &Path, feed: std::net::SocketAddr) -> PathBuf {
    let bench = std::fs::read_to_string(format!("{REPO}/config/bench.toml")).unwrap();
    assert!(bench.contains(BENCH_FEED_DESTINATION), "config/bench.toml's feed destination moved");
    write_bench_text(dir, bench.replace(BENCH_FEED_DESTINATION, &format!("destinations = [\"{feed}\"]")))
}

fn write_bench_text(dir: &Path, bench: String) -> PathBuf {
    let users = std::fs::canonicalize(format!("{REPO}/config/bench-users.toml")).unwrap();
    let replaced = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "config/bench.toml no longer contains {from:?}");
        text.replace(from, to)
    };
    let text = replaced(
        bench,
        "dir = \"../var/bench/journal\"",
        &format!("dir = \"{}\"", dir.join("journal").display()),
    );
    let text = replaced(
        text,
        "dir = \"../var/bench/snapshots\"",
        &format!("dir = \"{}\"", dir.join("snapshots").display()),
    );
    let text = replaced(text, "listen = \"127.0.0.1:15100\"", "listen = \"127.0.0.1:0\"");
    let text = replaced(text, "listen = \"127.0.0.1:9190\"", "listen = \"127.0.0.1:0\"");
    let text =
        replaced(text, "users_file = \"bench-users.toml\"", &format!("users_file = \"{}\"", users.display()));
    let path = dir.join("bench.toml");
    std::fs::write(&path, with_runtime_mode(text)).unwrap();
    path
}

/// A configuration equivalent to the workload's `bench_config` (one instrument, `accounts`
/// accounts in separate firms, no binding limits), with the given journal durability and
/// snapshot interval; journal and snapshots under `var/` beside the file it is written to.
pub fn bench_config_text(accounts: u32, durability: &str, snapshot_every: u64) -> String {
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
    for firm in 0..accounts {
        text.push_str(&format!("\n[[firms]]\nname = \"F{firm:03}\"\n"));
    }
    for account in 0..accounts {
        text.push_str(&format!(
            "\n[[accounts]]\nname = \"a{account}\"\nfirm = \"F{account:03}\"\nrisk_profile = \"open\"\n"
        ));
    }
    with_runtime_mode(text)
}

/// The environment variable that chooses the data path of every test configuration:
/// `run-to-completion` or `pipeline`. CI runs the gateway, crash, regeneration and
/// no-allocation suites once more with it set, so that they hold on both; unset, each
/// configuration keeps its own (`config/dev.toml`: run-to-completion; the runtime tests'
/// generated one: the default, pipeline).
pub const RUNTIME_MODE_ENV: &str = "PETREL_TEST_RUNTIME_MODE";

/// `text` with `runtime.mode` set from [`RUNTIME_MODE_ENV`] when that is set.
pub fn with_runtime_mode(text: String) -> String {
    let Ok(mode) = std::env::var(RUNTIME_MODE_ENV) else { return text };
    assert!(
        mode == "run-to-completion" || mode == "pipeline",
        "{RUNTIME_MODE_ENV}={mode:?}: expected run-to-completion or pipeline"
    );
    set_runtime_mode(&text, &mode)
}

/// `text` (a whole configuration) with `runtime.mode = mode`, in its `[runtime]` table (added
/// when it has none).
pub fn set_runtime_mode(text: &str, mode: &str) -> String {
    let line = format!("mode = \"{mode}\"");
    let mut out = String::with_capacity(text.len() + line.len() + 12);
    let mut in_runtime = false;
    let mut placed = false;
    for l in text.lines() {
        if l.trim_start().starts_with('[') {
            in_runtime = l.trim() == "[runtime]";
        }
        if in_runtime && l.trim_start().starts_with("mode ") {
            continue; // replaced by the line written under the header
        }
        out.push_str(l);
        out.push('\n');
        if l.trim() == "[runtime]" {
            out.push_str(&line);
            out.push('\n');
            placed = true;
        }
    }
    if !placed {
        out.push_str(&format!("\n[runtime]\n{line}\n"));
    }
    out
}
