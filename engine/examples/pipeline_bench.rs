//! Durable throughput of the pipeline and replay speed of recovery.
//!
//! `cargo run --release -p petrel-engine --example pipeline_bench -- [COMMANDS] [DIR] [IDLE] [MODE] [STANDBY] [FEED]`
//! (defaults: 1_000_000 commands of the exchange-core mix, a fresh directory under
//! target/pipeline-bench, idle `park`; `spin-yield` for the other strategy; mode `pipeline`, or
//! `run-to-completion`: this thread, the gateway, then runs the core itself as the gateway does;
//! standby `none`, or `standby` / `local`: a hot standby in this process, over loopback TCP, its
//! own journal under DIR, with `replication.ack` set so: with `standby` a command counts once
//! both journals hold it); feed `none`, or `feed`: the market-data feed as the gateway keeps
//! it (every released event published into the feed journal, committed per release batch, the
//! `petrel-feed` thread sending MoldUDP64 by unicast to 127.0.0.1:15200, config/bench.toml's),
//! or `record`: the feed journal alone, as a hot standby keeps it (no thread sends it).
//!
//! Prints, for fsync durability:
//! - pipeline: commands/s from the first push to the last durable release, through the real
//!   gateway port (this thread is the gateway), with group-commit figures;
//! - bounds: the matcher alone (apply into a counting sink, one thread, no journal), and the disk
//!   alone (the same bytes in the same number of write+fdatasync batches); the pipeline's ratio
//!   to the lower of the two;
//! - replay: recovery of the whole journal (scan with checksums, then decode and apply), records/s.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use petrel_engine::config::{
    AccountInfo, Ack, AdminConfig, Config, DataPath, GatewayConfig, IdleStrategy, LogConfig,
    MarketDataConfig, ReplicationConfig, Role, RuntimeConfig, Secret, SnapshotConfig, StandbyLoss,
    ThreadConfig,
};
use petrel_engine::core::{CountingSink, Engine};
use petrel_engine::journal::{Durability, JournalConfig};
use petrel_engine::market_data::MarketData;
use petrel_engine::port::{DurableOutbound, InboundCommand};
use petrel_engine::recovery::recover;
use petrel_engine::replication::{
    epoch::EpochHistory, primary::Primary, standby::Follower, ReplicationStats,
};
use petrel_engine::runtime::Runtime;
use petrel_workload::{bench_config, exchange_core_mix, ACCOUNTS};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let commands_count: usize =
        args.get(1).map_or(1_000_000, |s| s.replace('_', "").parse().expect("COMMANDS"));
    let dir = args.get(2).map_or_else(|| PathBuf::from("target/pipeline-bench"), PathBuf::from);
    let idle = match args.get(3).map(String::as_str) {
        None | Some("park") => IdleStrategy::Park { min_us: 50, max_us: 1_000 },
        Some("spin-yield") => IdleStrategy::SpinYield { spins: 1_000 },
        Some(other) => panic!("IDLE is park or spin-yield, not {other}"),
    };
    let mode = match args.get(4).map(String::as_str) {
        None | Some("pipeline") => DataPath::Pipeline,
        Some("run-to-completion") => DataPath::RunToCompletion,
        Some(other) => panic!("MODE is pipeline or run-to-completion, not {other}"),
    };
    if dir.exists() {
        std::fs::remove_dir_all(&dir).expect("clear the benchmark directory");
    }
    std::fs::create_dir_all(&dir).unwrap();
    let mut config = config(&dir, idle);
    config.runtime.mode = mode;
    let ack = match args.get(5).map(String::as_str) {
        None | Some("none") => None,
        Some("standby") => Some(Ack::Standby),
        Some("local") => Some(Ack::Local),
        Some(other) => panic!("STANDBY is none, standby or local, not {other}"),
    };
    config.replication = ack.map(|ack| replication_config(&dir, ack));
    let (feed_on, feed_sent) = match args.get(6).map(String::as_str) {
        None | Some("none") => (false, false),
        Some("feed") => (true, true),
        Some("record") => (true, false),
        Some(other) => panic!("FEED is none, feed or record, not {other}"),
    };
    config.market_data = feed_on.then(feed_config);

    eprint!("generating {commands_count} commands ... ");
    let (commands, _) = exchange_core_mix(commands_count, 1);
    eprintln!("done");

    // ---- the pipeline, fsync -----------------------------------------------------------
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let (runtime, port) = Runtime::start(&config, recovered).unwrap();
    let stats = runtime.stats();
    let standby = config.replication.as_ref().map(|r| start_standby(&config, r, &port));
    // As the gateway's release path does: publish each released event, commit per batch.
    let mut feed =
        if feed_sent { MarketData::open(&config, 0) } else { MarketData::open_unpublished(&config, 0) }
            .expect("open the market-data feed");
    let started = Instant::now();
    let mut releaser = DurableOutbound::new();
    let mut core = port.core.take();
    let (mut next, mut completed, mut events) = (0usize, 0usize, 0u64);
    let release =
        |releaser: &mut DurableOutbound, events: &mut u64, completed: &mut usize, feed: &mut MarketData| {
            let mut progressed = false;
            while let Some(event) = releaser.next(&port) {
                feed.publish(&event);
                *events += 1;
                *completed += usize::from(event.last_of_command);
                progressed = true;
            }
            if progressed {
                feed.commit();
            }
            progressed
        };
    while completed < commands.len() {
        let mut progressed = false;
        while next < commands.len() && port.try_submit(InboundCommand::new(0, commands[next])).is_ok() {
            next += 1;
            progressed = true;
        }
        if let Some(core) = core.as_mut() {
            progressed |= core.run(&mut || {
                release(&mut releaser, &mut events, &mut completed, &mut feed);
            });
        }
        progressed |= release(&mut releaser, &mut events, &mut completed, &mut feed);
        if !progressed {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    let pipeline = started.elapsed();
    drop(core);
    if let Some(stats) = feed.stats() {
        let recorded = stats.recorded_sequence.load(Ordering::Relaxed);
        drop(feed); // End of Session, after the publisher has sent everything recorded
        eprintln!("feed: {recorded} messages recorded, {} sent", stats.sent_sequence.load(Ordering::Relaxed));
    }
    if let Some((primary, stop, follower, replication)) = standby {
        eprintln!(
            "standby: {} records shipped, its durable mark {}",
            replication.records_total.load(Ordering::Relaxed),
            replication.standby_durable.load(Ordering::Relaxed)
        );
        stop.store(true, Ordering::Release);
        follower.join().unwrap();
        primary.shutdown();
    }
    let batches = stats.journal_batches_total.load(Ordering::Relaxed);
    let bytes = stats.journal_bytes_total.load(Ordering::Relaxed);
    let (commit_p50, commit_p99) = {
        let h = stats.journal_commit_ns.lock().unwrap();
        (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
    };
    let (service_p50, service_p99) = {
        let h = stats.matcher_service_ns.lock().unwrap();
        (h.value_at_quantile(0.5), h.value_at_quantile(0.99))
    };
    let ring_full: Vec<String> = petrel_engine::port::Ring::ALL
        .iter()
        .map(|r| format!("{}={}", r.as_str(), stats.ring_full(*r)))
        .collect();
    runtime.shutdown(false).unwrap();
    let pipeline_rate = commands.len() as f64 / pipeline.as_secs_f64();

    // ---- bounds ------------------------------------------------------------------------
    let mut engine = Engine::new(&config.engine).unwrap();
    let mut sink = CountingSink::default();
    let started = Instant::now();
    for (i, command) in commands.iter().enumerate() {
        engine.apply(command, i as u64 + 1, i as u64, &mut sink);
    }
    let matcher_rate = commands.len() as f64 / started.elapsed().as_secs_f64();

    let raw_path = dir.join("raw.bin");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(&raw_path)
        .unwrap();
    let batch_bytes = (bytes / batches.max(1)).max(1) as usize;
    let buffer = vec![0x5au8; batch_bytes];
    let started = Instant::now();
    let mut offset = 0u64;
    for _ in 0..batches {
        file.write_all_at(&buffer, offset).unwrap();
        file.sync_data().unwrap();
        offset += batch_bytes as u64;
    }
    let disk = started.elapsed();
    drop(file);
    std::fs::remove_file(&raw_path).unwrap();
    let disk_rate = commands.len() as f64 / disk.as_secs_f64();
    let bound = matcher_rate.min(disk_rate);

    // ---- replay ------------------------------------------------------------------------
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let timing = recovered.report.timing;
    let replayed = recovered.report.replayed_records;
    assert_eq!(replayed, commands.len() as u64);
    let replay_total = timing.journal_scan + timing.snapshot_load + timing.replay;

    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "pipeline_bench: {} commands of the exchange-core mix, fsync, idle {idle}, {}",
        commands.len(),
        mode.as_str()
    )
    .unwrap();
    writeln!(
        out,
        "pipeline: {:.0} commands/s durable ({:.2} s, {events} events released); {batches} group commits, \
         {:.0} records/commit avg, commit p50 {:.1} us p99 {:.1} us; sequencer service p50 {} ns p99 {} ns; \
         ring full waits: {}",
        pipeline_rate,
        pipeline.as_secs_f64(),
        commands.len() as f64 / batches.max(1) as f64,
        commit_p50 as f64 / 1e3,
        commit_p99 as f64 / 1e3,
        service_p50,
        service_p99,
        ring_full.join(" ")
    )
    .unwrap();
    writeln!(
        out,
        "bounds: matcher alone {matcher_rate:.0} commands/s; disk alone (same {batches} batches of {batch_bytes} bytes, \
         write+fdatasync) {disk_rate:.0} commands/s ({:.2} s); pipeline / min(bounds) = {:.2}",
        disk.as_secs_f64(),
        pipeline_rate / bound
    )
    .unwrap();
    writeln!(
        out,
        "replay: {replayed} records in {:.2} s = {:.0} records/s (scan {:.2} s, apply {:.2} s = {:.0} records/s)",
        replay_total.as_secs_f64(),
        replayed as f64 / replay_total.as_secs_f64(),
        timing.journal_scan.as_secs_f64(),
        timing.replay.as_secs_f64(),
        replayed as f64 / timing.replay.as_secs_f64()
    )
    .unwrap();
}

/// The benchmark workload's engine (one instrument, `ACCOUNTS` accounts) with a journal in `dir`.
fn config(dir: &std::path::Path, idle: IdleStrategy) -> Config {
    let thread = ThreadConfig { cores: Vec::new(), idle };
    Config {
        path: dir.join("bench.toml"),
        engine: bench_config(1 << 16),
        firms: (0..ACCOUNTS).map(|i| format!("F{i:03}")).collect(),
        accounts: (0..ACCOUNTS)
            .map(|i| AccountInfo {
                name: format!("a{i}"),
                firm: format!("F{i:03}"),
                risk_profile: "open".into(),
            })
            .collect(),
        journal: JournalConfig {
            dir: dir.join("journal"),
            file_prefix: "input".into(),
            segment_size_bytes: 64 << 20,
            durability: Durability::Fsync,
            retention: Default::default(),
            max_record_payload_bytes: 64,
            write_buffer_bytes: 1 << 20,
        },
        snapshots: SnapshotConfig { dir: dir.join("snapshots"), every_commands: u64::MAX, keep: 1 },
        runtime: RuntimeConfig {
            mode: DataPath::Pipeline,
            mlockall: false,
            realtime_priority: None,
            gateway: thread.clone(),
            sequencer: thread.clone(),
            journal: thread.clone(),
            housekeeping: ThreadConfig {
                cores: Vec::new(),
                idle: IdleStrategy::Park { min_us: 1_000, max_us: 100_000 },
            },
        },
        gateway: GatewayConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            users_file: dir.join("users.toml"),
            backend: Default::default(),
            max_sessions: 16,
            session_name: "PETREL".into(),
            max_send_backlog_bytes: 8 * 1024 * 1024,
            output_journal_segment_bytes: 1 << 20,
            allow_readable_users_file: false,
        },
        admin: AdminConfig { listen: "127.0.0.1:0".parse().unwrap() },
        log: LogConfig { filter: "warn".into() },
        replication: None,
        market_data: None,
        failover: None,
    }
}

/// config/bench.toml's feed: unicast to 127.0.0.1:15200, every other key its default.
fn feed_config() -> MarketDataConfig {
    MarketDataConfig {
        session: "BENCH1".into(),
        multicast_group: None,
        multicast_interface: None,
        multicast_ttl: 1,
        destinations: vec!["127.0.0.1:15200".parse().unwrap()],
        retransmission_listen: None,
        snapshot_listen: None,
        attributed_accounts: Vec::new(),
        heartbeat_interval_ms: 1_000,
        max_packet_bytes: 1_400,
        max_messages_per_request: 1_000,
        requests_per_second_per_requester: 100,
        journal_segment_bytes: 16 << 20,
    }
}

fn replication_config(dir: &std::path::Path, ack: Ack) -> ReplicationConfig {
    ReplicationConfig {
        role: Role::Primary,
        cluster_id: "bench".into(),
        secret_file: dir.join("secret"),
        secret: Secret(b"a benchmark's own secret bytes".to_vec()),
        listen: "127.0.0.1:0".parse().unwrap(),
        peer: "127.0.0.1:9".parse().unwrap(),
        ack,
        on_standby_loss: StandbyLoss::Halt,
        rejoin: Default::default(),
    }
}

type Standby = (Primary, Arc<AtomicBool>, std::thread::JoinHandle<()>, Arc<ReplicationStats>);

/// The primary's replication thread on `port`, and a follower thread with its own journal and
/// engine under DIR/standby, connected before this returns.
fn start_standby(
    config: &Config,
    replication: &ReplicationConfig,
    port: &petrel_engine::port::GatewayPort,
) -> Standby {
    let stats = Arc::new(ReplicationStats::default());
    let epochs = EpochHistory::load(&config.journal.dir, &config.journal.file_prefix).unwrap();
    let mut primary_config = config.clone();
    primary_config.replication = Some(replication.clone());
    let primary =
        Primary::start(&primary_config, epochs.current(), false, port.clone(), Arc::clone(&stats), None)
            .unwrap();
    let mut standby_config = config.clone();
    standby_config.journal.dir = config.journal.dir.parent().unwrap().join("standby");
    let (writer, _) = petrel_engine::journal::Journal::open(&standby_config.journal).unwrap();
    let engine = Engine::new(&config.engine).unwrap();
    let epochs = EpochHistory::load(&standby_config.journal.dir, "input").unwrap();
    let follow = ReplicationConfig { role: Role::Standby, peer: primary.addr, ..replication.clone() };
    let follower_stats = Arc::new(ReplicationStats::default());
    let files = petrel_engine::replication::standby::Files {
        snapshots: SnapshotConfig {
            dir: standby_config.journal.dir.join("snapshots"),
            ..config.snapshots.clone()
        },
        journal: standby_config.journal.clone(),
    };
    // The standby writes every account's stream too, as it does in the daemon.
    let sessions = petrel_engine::gateway::GatewaySettings::from_config(&standby_config).sessions_dir;
    let regeneration = petrel_engine::gateway::Regeneration {
        tails: petrel_engine::gateway::OutputTails::read(&sessions, standby_config.accounts.len()).unwrap(),
        collection: petrel_engine::recovery::Collection::NotAsked,
        last_sequence: 0,
    };
    let mirror = petrel_engine::gateway::Mirror::open(&standby_config, regeneration).unwrap();
    let mut follower =
        Follower::new(engine, writer, epochs, mirror, follow, Arc::clone(&follower_stats), files);
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            follower.run(&stop).unwrap();
        })
    };
    while !stats.connected.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(10));
    }
    (primary, stop, thread, stats)
}
