//! petrel-load against the real daemon on config/bench.toml (private journal, fsync on):
//! every order acknowledged, no rejects but the races a live book makes, and the `bench`
//! command's echo-versus-engine report and its exit status.

use petrel_benches::load::{run_load, LoadOptions, Login, Mix, ResponseCounts};
use petrel_testkit::config::{write_bench_config, write_bench_config_with_feed};
use petrel_testkit::engine_binary::engine_binary;
use petrel_testkit::Daemon;
use petrel_workload::lobster;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn options(daemon: &Daemon, sessions: usize, mix: Mix) -> LoadOptions {
    LoadOptions {
        target: daemon.addr,
        logins: (1..=sessions)
            .map(|i| Login { user: format!("LOAD{i:02}"), password: format!("load{i:02}") })
            .collect(),
        rate_per_s: 2_000,
        duration: Duration::from_secs(2),
        warmup: Duration::ZERO,
        mix,
        seed: 11,
        response_timeout: Duration::from_secs(20),
        spin: Duration::ZERO,
        first_user_ref: 1,
        feed_listen: None,
    }
}

#[test]
fn every_order_of_the_exchange_core_mix_is_acknowledged_by_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(engine_binary(), &write_bench_config(dir.path()));
    let mix =
        Mix::ExchangeCore { symbol: "BENCH".into(), mid_price: 1_000_000, tick: 100, resting_target: 1_000 };
    // The client replaces and cancels only orders it has seen accepted, so how many of each
    // it sends depends on how fast answers come back (engine/workload/tests/mix_shape.rs checks
    // the proportions of the generated mix).
    // A host whose disk stalls fsync for the whole run gets only new orders: run again, each
    // run checked in full, until replaces and cancels have been through the engine too, for as
    // many runs as a generous deadline allows (a count of runs would depend on the disk).
    let deadline = Instant::now() + Duration::from_secs(600);
    let mut seen = ResponseCounts::default();
    for attempt in 0u32.. {
        let mut o = options(&daemon, 4, mix.clone());
        o.first_user_ref = 1 + attempt * 1_000_000;
        let r = run_load(&o).unwrap();
        let c = &r.counts;
        assert_eq!(r.sent, 4_000);
        assert_eq!(c.acknowledged(), r.sent, "{c:?}");
        assert_eq!(r.latency_ns.len(), r.sent);
        assert_eq!((r.lost, c.unmatched, c.rejected_new), (0, 0, 0), "{c:?}");
        // A cancel or replace can only fail when a fill got there first.
        assert!(c.rejected_replace + c.cancel_rejected <= c.executions, "{c:?}");
        seen.add(c);
        if (seen.replaced > 0 && seen.canceled > 0) || Instant::now() >= deadline {
            break;
        }
    }
    // The mix trades, replaces and cancels.
    assert!(seen.executions > 0 && seen.accepted > 0, "{seen:?}");
    assert!(seen.replaced > 0 && seen.canceled > 0, "{seen:?}");
}

#[test]
fn the_lobster_replay_is_acknowledged_by_the_engine() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(engine_binary(), &write_bench_config(dir.path()));
    let text = std::fs::read_to_string(lobster::SAMPLE_MESSAGES).unwrap();
    let (_, commands) = lobster::lobster_commands(&text).unwrap();
    let r =
        run_load(&options(&daemon, 2, Mix::Lobster { symbol: "AAPL".into(), commands: Arc::new(commands) }))
            .unwrap();
    let c = &r.counts;
    assert_eq!(c.acknowledged(), r.sent, "{c:?}");
    assert_eq!((r.lost, c.unmatched, c.rejected_new, c.rejected_replace), (0, 0, 0, 0), "{c:?}");
    assert!(c.executions > 0 && c.canceled > 0, "{c:?}");
}

#[test]
fn bench_reports_engine_over_echo_and_flags_reused_user_refs() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(engine_binary(), &write_bench_config(dir.path()));
    let addr = daemon.addr.to_string();
    let admin = daemon.admin.expect("the daemon logged its admin address").to_string();
    let histogram = dir.path().join("engine.hgrm");
    let bench = |extra: &[&str]| {
        // A generous response timeout: this checks the report and exit status, not latency, and
        // a loaded CI host can stall fsync for seconds.
        let mut args = vec![
            "bench",
            "--target",
            &addr,
            "--duration-s",
            "1",
            "--warmup-s",
            "0",
            "--response-timeout-ms",
            "30000",
        ];
        args.extend_from_slice(extra);
        Command::new(env!("CARGO_BIN_EXE_petrel-load")).args(&args).output().unwrap()
    };
    // Two rates, each echo then engine, the second run's UserRefNums past the first's.
    let out = bench(&[
        "--rate",
        "1000,500",
        "--admin",
        &admin,
        "--sessions",
        "2",
        "--histogram",
        histogram.to_str().unwrap(),
        "--max-p99-us",
        "600000000",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("engine/echo"), "ratio row: {stdout}");
    assert!(stdout.contains("echo: 1000 orders/s") && stdout.contains("engine: 1000 orders/s"), "{stdout}");
    assert!(stdout.contains("== 500 orders/s ==") && stdout.contains("engine: 500 orders/s"), "{stdout}");
    // The engine's own figures over each engine run, and the goal for its fsync journal.
    // A table row (the name padded) and a decomposition line each, per rate.
    assert_eq!(stdout.matches("\ndurable write  ").count(), 2, "a durable-write row per rate: {stdout}");
    assert_eq!(stdout.matches("\nin engine  ").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("\ndurable write (journal group commit, in the engine): p50 ").count(), 2);
    assert_eq!(stdout.matches("\nin engine (wire to wire, socket to socket): p50 ").count(), 2);
    assert_eq!(stdout.matches("goal, durability fsync:").count(), 2, "{stdout}");
    assert!(
        stdout.contains("engine p50 - echo p50 = ")
            && stdout.contains(" x durable-write p50 (goal <= 1.5): ")
    );
    assert!(stdout.contains("echo p99 + 2 x durable-write p99 = "), "{stdout}");
    for rate in [1000, 500] {
        let file = dir.path().join(format!("engine-{rate}.hgrm"));
        assert!(std::fs::read_to_string(&file).unwrap().contains("#[Max"), "{}", file.display());
    }

    // The journal remembers the accounts' last UserRefNums: a second run starting at 1 is
    // refused by the engine, and petrel-load says so and exits 1 ... An admin endpoint that
    // cannot be reached leaves the echo and engine figures, and says why the rest is missing.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().to_string();
    let out = bench(&["--rate", "1000", "--sessions", "2", "--admin", &nobody]);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("new orders were rejected") && stderr.contains("--first-user-ref"), "{stderr}");
    assert!(stdout.contains("engine/echo") && !stdout.contains("\ndurable write  "), "no row: {stdout}");
    assert!(stdout.contains(&format!("not measured: cannot reach the engine's admin endpoint at {nobody}")));
    // ... and one that starts above them runs clean.
    let out = bench(&["--rate", "1000", "--sessions", "2", "--admin", &admin, "--first-user-ref", "1000000"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A wrong password is a login error, status 2.
    let out = bench(&["--login", "LOAD01:wrong", "--admin", &admin]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("login rejected"));
}

/// The feed's figures in the table's row named `name`: its count (the last column).
fn row_count(stdout: &str, name: &str) -> u64 {
    let row =
        stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name:?} row: {stdout}"));
    row.split_whitespace().last().unwrap().parse().unwrap_or_else(|_| panic!("{row}"))
}

#[test]
fn bench_with_the_feed_reports_each_resting_order_s_add_order_beside_the_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    // A port nobody else uses for the engine's unicast feed, which petrel-load then listens on.
    let feed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let daemon = Daemon::start(engine_binary(), &write_bench_config_with_feed(dir.path(), feed));
    let (addr, feed) = (daemon.addr.to_string(), feed.to_string());
    let admin = daemon.admin.expect("the daemon logged its admin address").to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_petrel-load"))
        .args(["bench", "--target", &addr, "--admin", &admin, "--feed-listen", &feed])
        .args(["--rate", "1000", "--duration-s", "2", "--warmup-s", "0", "--sessions", "2"])
        .args(["--response-timeout-ms", "30000"])
        .output()
        .unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // In the same table as the OUCH round trip, over the same run: the new orders that rested
    // were each joined to their Add Order.
    assert!(row_count(&stdout, "engine ") > 0, "{stdout}");
    let joined = row_count(&stdout, "feed add ");
    assert!(joined > 0, "{stdout}");
    assert_eq!(row_count(&stdout, "feed - ack "), joined, "{stdout}");
    assert!(stdout.contains("Only orders that rest on the book get an Add Order."), "{stdout}");
    let summary = stdout.lines().find(|l| l.starts_with("feed: ")).expect("the feed's summary line");
    assert!(summary.contains(&format!("{joined} joined to their Accepted")), "{summary}");
    assert!(summary.contains("gaps ") && summary.contains("messages missing"), "{summary}");
    assert!(stdout.contains("goal, feed: feed - ack p50 = "), "{stdout}");
}
