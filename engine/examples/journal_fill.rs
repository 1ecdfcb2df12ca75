//! Writes a large journal to time `journal backup`, `journal restore` and recovery on:
//! COMMANDS commands of the exchange-core mix through the reference sequencer (durability
//! `none`, 64 MiB segments, a snapshot every SNAPSHOT_EVERY commands, snapshots.keep = 2),
//! with the configuration that names it, DIR/engine.toml (one instrument, the mix's accounts, an
//! empty users file, ephemeral ports).
//!
//! ```text
//! cargo run --profile ci -p petrel-engine --example journal_fill -- 10_000_000 /tmp/fill
//! petrel-engine journal backup --config /tmp/fill/engine.toml --to /tmp/fill-backup
//! ```
//! (defaults: 1,000,000 commands, target/journal-fill, a snapshot every 1,000,000 commands).
//! docs/OPERATIONS.md, "Backup and restore", lists the figures of a 10-million-command run.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Instant;

use petrel_engine::clock::SystemClock;
use petrel_engine::config::Config;
use petrel_engine::core::CountingSink;
use petrel_engine::recovery::recover;
use petrel_engine::runtime::reference::Sequencer;
use petrel_workload::{exchange_core_mix, ACCOUNTS};

/// Commands per group commit.
const COMMIT_EVERY: usize = 1_000;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let count = |i: usize, default: u64| -> u64 {
        args.get(i).map_or(default, |s| s.replace('_', "").parse().expect("a whole number"))
    };
    let commands_count = count(1, 1_000_000) as usize;
    let dir = args.get(2).map_or_else(|| PathBuf::from("target/journal-fill"), PathBuf::from);
    let snapshot_every = count(3, 1_000_000);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear the directory");
    }
    std::fs::create_dir_all(&dir).unwrap();
    let config = write_config(&dir, snapshot_every);

    eprint!("generating {commands_count} commands ... ");
    let (commands, _) = exchange_core_mix(commands_count, 1);
    eprintln!("done");
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let mut sequencer = Sequencer::new(recovered.engine, recovered.writer, SystemClock)
        .with_snapshots(config.snapshots.clone(), config.journal.clone());
    let started = Instant::now();
    let mut sink = CountingSink::default();
    for chunk in commands.chunks(COMMIT_EVERY) {
        for command in chunk {
            sequencer.submit(command, &mut sink).unwrap();
        }
        sequencer.commit().unwrap();
    }
    let elapsed = started.elapsed();
    println!("config      {}", config.path.display());
    println!("commands    {} in {:.1} s", commands.len(), elapsed.as_secs_f64());
    println!("last seq    {}", sequencer.engine().last_sequence());
    println!("state hash  {}", sequencer.engine().state_hash());
}

/// The workload's benchmark configuration (as the test kit writes it), with production-sized
/// segments and group commits, journal durability `none`, and an empty users file.
fn write_config(dir: &std::path::Path, snapshot_every: u64) -> Config {
    let text = petrel_testkit::config::bench_config_text(ACCOUNTS, "none", snapshot_every);
    let mut text = text
        .replace("segment_size_bytes = 1_048_576", "segment_size_bytes = 67_108_864")
        .replace("write_buffer_bytes = 65_536", "write_buffer_bytes = 1_048_576")
        .replace("listen = \"127.0.0.1:15000\"", "listen = \"127.0.0.1:0\"");
    text.push_str("\n[admin]\nlisten = \"127.0.0.1:0\"\n");
    let users = dir.join("users.toml");
    std::fs::write(&users, "# no users: nobody logs in to this engine\n").unwrap();
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = dir.join("engine.toml");
    std::fs::write(&path, text).unwrap();
    Config::load(&path).unwrap()
}
