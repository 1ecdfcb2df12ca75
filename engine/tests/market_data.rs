//! The TotalView-ITCH 5.0 feed over MoldUDP64, through real sockets on loopback: the LOBSTER
//! sample (AAPL, 2012-06-21) is driven through the OUCH gateway while an independent ITCH
//! decoder listens (itchfeed, a PyPI package this project did not write, in
//! tests/interop/itch_listener.py) and rebuilds the book, which must equal the engine's: full
//! depth (price, size, order count per level) at the end, and the best bid and ask (price and
//! size) after every command that changed the book. The listener drops packets at random and
//! fills the gaps through the retransmission server; the engine is SIGKILLed mid-stream,
//! restarted, aborted between a command's durability and the recording of its feed message,
//! restarted again, and the numbering goes on without a reuse or a skip. A subscriber joins
//! half-way through the snapshot service; bad requests are refused and counted.
//!
//! Needs python3 (>= 3.11) with venv and PyPI on first run, like the OUCH interop test.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use petrel_engine::config::Config;
use petrel_engine::core::{InstrumentId, Side};
use support::{write_config, Client, Daemon, Got, OwnedOutbound, BIN};

const ITCHFEED: &[&str] = &["itchfeed==1.6.4"];
const LOBSTER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"
);
const SESSION: &str = "PTRLTEST01";

/// The independent listener, a child process fed commands on stdin.
struct Listener {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    port: u16,
}

impl Listener {
    fn start(request_port: u16, drop_rate: f64, seed: u64) -> Listener {
        Listener::start_on(request_port, drop_rate, seed, None, false)
    }

    /// With `group`: a member of that multicast group ("239.x.y.z:port") on loopback. `late`:
    /// it ignores the feed until told to join through the snapshot service ([`Listener::join`]).
    fn start_on(request_port: u16, drop_rate: f64, seed: u64, group: Option<&str>, late: bool) -> Listener {
        let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("itchfeed-venv");
        let python = petrel_testkit::venv::venv_python(&venv, ITCHFEED);
        let mut child = Command::new(python)
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/itch_listener.py"))
            .args(["127.0.0.1", &request_port.to_string(), &drop_rate.to_string(), &seed.to_string()])
            .args(group)
            .env("ITCH_LATE_JOIN", if late { "1" } else { "0" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the ITCH listener");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| panic!("the listener's port, got {line:?}"));
        Listener { child, stdin, stdout, port }
    }

    /// The listener's book once it applied every message up to `last` (filling gaps through
    /// the retransmission server).
    fn report(&mut self, last: u64) -> serde_json::Value {
        self.ask(&format!("report {last}"))
    }

    /// The listener's counters once it has received End of Session.
    fn end_of_session(&mut self) -> serde_json::Value {
        self.ask("eos")
    }

    fn ask(&mut self, command: &str) -> serde_json::Value {
        writeln!(self.stdin, "{command}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        assert!(!line.is_empty(), "the listener ended: {:?}", self.child.try_wait());
        serde_json::from_str(&line).unwrap()
    }
}

impl Listener {
    /// A late joiner takes the book from the snapshot service at `port`.
    fn join(&mut self, port: u16) {
        writeln!(self.stdin, "join 127.0.0.1 {port}").unwrap();
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A UDP port free now on loopback (the request server's, named in the configuration).
fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The development configuration with a feed to the listener and a request server.
fn feed_config(dir: &Path, listener_port: u16, request_port: u16) -> PathBuf {
    feed_config_to(dir, &format!("destinations = [\"127.0.0.1:{listener_port}\"]"), request_port)
}

/// The development configuration with a feed to `destination` (TOML keys) and a request server.
fn feed_config_to(dir: &Path, destination: &str, request_port: u16) -> PathBuf {
    let path = write_config(dir, "epoll");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(&format!(
        "\n[market_data]\nsession = \"{SESSION}\"\n{destination}\n\
         retransmission_listen = \"127.0.0.1:{request_port}\"\nheartbeat_interval_ms = 50\n"
    ));
    std::fs::write(&path, text).unwrap();
    path
}

/// The last sequence number recorded in the feed journal (read-only, beside the running daemon:
/// every message of a command is written before its OUCH answers are sent).
fn feed_recorded(config: &Path) -> u64 {
    let config = Config::load(config).unwrap();
    let location = petrel_engine::market_data::feed_location(&config);
    petrel_journal::open_read_only(&location).unwrap().next_sequence() - 1
}

/// One LOBSTER event the driver sends: 1 a new limit order, 3 a delete, 4 a visible execution
/// (an immediate-or-cancel order against it); hidden executions (5) change no visible book.
struct Event {
    kind: u8,
    order_id: u64,
    size: u32,
    price: u64,
    buy: bool,
}

fn lobster() -> Vec<Event> {
    std::fs::read_to_string(LOBSTER)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Event {
                kind: f[1].parse().unwrap(),
                order_id: f[2].parse().unwrap(),
                size: f[3].parse().unwrap(),
                price: f[4].parse().unwrap(),
                buy: f[5] == "1",
            }
        })
        .filter(|e| matches!(e.kind, 1 | 3 | 4))
        .collect()
}

/// Drives LOBSTER events through OUCH: ALICE enters the resting orders and deletes them, BOB
/// takes. Each command's answer is awaited, so every message of it is recorded when this
/// returns.
struct Driver {
    alice: Client,
    bob: Client,
    next_ref: u32,
    refs: std::collections::HashMap<u64, u32>,
}

impl Driver {
    fn connect(daemon: &Daemon, next_ref: u32, refs: std::collections::HashMap<u64, u32>) -> Driver {
        let mut alice = Client::connect(daemon.addr);
        assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
        let mut bob = Client::connect(daemon.addr);
        assert!(matches!(bob.login("BOB", "bob", 0), Got::LoginAccepted { .. }));
        Driver { alice, bob, next_ref, refs }
    }

    fn send(&mut self, e: &Event) {
        let user_ref = self.next_ref;
        self.next_ref += 1;
        match e.kind {
            1 => {
                self.alice.enter(user_ref, if e.buy { b'B' } else { b'S' }, e.size, "AAPL", e.price, b'0');
                self.refs.insert(e.order_id, user_ref);
                answer(&mut self.alice, user_ref);
            }
            3 => {
                let Some(order) = self.refs.remove(&e.order_id) else { return };
                self.alice.cancel(order, 0);
                answer(&mut self.alice, order);
            }
            _ => {
                // The resting order was on side `buy`; the taker comes from the other side.
                self.bob.enter(user_ref, if e.buy { b'S' } else { b'B' }, e.size, "AAPL", e.price, b'3');
                answer(&mut self.bob, user_ref);
            }
        }
    }
}

/// Reads until the answer to `user_ref` (other messages, such as executions, are skipped).
fn answer(client: &mut Client, user_ref: u32) {
    loop {
        match client.recv().expect("the gateway answers") {
            Got::Ouch(
                OwnedOutbound::Accepted { user_ref: r, .. }
                | OwnedOutbound::Rejected { user_ref: r, .. }
                | OwnedOutbound::Canceled { user_ref: r, .. }
                | OwnedOutbound::CancelReject { user_ref: r },
            ) if r == user_ref => return,
            _ => {}
        }
    }
}

/// The engine's book after recovering its journal (the daemon stopped): per side, best first,
/// [price, size, orders] per level.
fn engine_book(config: &Path) -> (Vec<[u64; 3]>, Vec<[u64; 3]>) {
    let config = Config::load(config).unwrap();
    let recovered = petrel_engine::recovery::recover(&config, &mut |_, _| {}).unwrap();
    let depth = |side| -> Vec<[u64; 3]> {
        recovered
            .engine
            .depth(InstrumentId(0), side, usize::MAX)
            .into_iter()
            .map(|(price, size, orders)| [price as u64, size, u64::from(orders)])
            .collect()
    };
    (depth(Side::Buy), depth(Side::Sell))
}

fn levels(report: &serde_json::Value, side: &str) -> Vec<[u64; 3]> {
    serde_json::from_value(report[side].clone()).unwrap()
}

/// The best bid and ask after each command of the engine's input journal, replayed on a fresh
/// engine: `[sequence, [bid, ask]]`, each side `[price, size]` or null.
fn engine_bbo_by_command(config: &Config) -> Vec<(u64, serde_json::Value)> {
    let mut engine = petrel_engine::core::Engine::new(&config.engine).unwrap();
    let location =
        petrel_journal::JournalLocation::new(config.journal.dir.clone(), config.journal.file_prefix.clone());
    let recovery = petrel_journal::open_read_only(&location).unwrap();
    let mut reader = recovery.replay_from(1).unwrap();
    let mut out = Vec::new();
    let mut events = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        let (command, _) = petrel_engine::input_record::decode(record.payload).unwrap();
        engine.apply(&command, record.sequence, record.timestamp_ns, &mut events);
        events.clear();
        let best =
            |b: Option<(i64, u64)>| b.map_or(serde_json::Value::Null, |(p, s)| serde_json::json!([p, s]));
        let now = serde_json::json!([
            best(engine.best_bid(InstrumentId(0))),
            best(engine.best_ask(InstrumentId(0)))
        ]);
        out.push((record.sequence, now));
    }
    out
}

/// The last feed sequence number each command's messages got (the feed journal records the
/// input sequence of every message's command).
fn last_feed_message_by_command(config: &Config) -> std::collections::BTreeMap<u64, u64> {
    let location = petrel_engine::market_data::feed_location(config);
    let recovery = petrel_journal::open_read_only(&location).unwrap();
    let mut reader = recovery.replay_from(1).unwrap();
    let mut last = std::collections::BTreeMap::new();
    while let Some(record) = reader.next_record().unwrap() {
        if record.timestamp_ns != 0 {
            last.insert(record.timestamp_ns, record.sequence);
        }
    }
    last
}

#[test]
fn an_independent_itch_decoder_rebuilds_the_engines_book_through_drops_and_retransmission() {
    let dir = tempfile::tempdir().unwrap();
    let request_port = free_udp_port();
    let mut listener = Listener::start(request_port, 0.01, 16);
    // The smallest feed-journal segments, and the sample twice: publishing and retransmission
    // go on across segments.
    let destination =
        format!("destinations = [\"127.0.0.1:{}\"]\njournal_segment_bytes = 73_728", listener.port);
    let config = feed_config_to(dir.path(), &destination, request_port);
    let daemon = Daemon::start(BIN, &config);
    let mut driver = Driver::connect(&daemon, 1, Default::default());
    for event in lobster().iter().chain(lobster().iter()) {
        driver.send(event);
    }
    let recorded = feed_recorded(&config);
    let report = listener.report(recorded);
    daemon.stop();
    let segments = std::fs::read_dir(dir.path().join("journal/market_data"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".seg"))
        .count();
    assert!(segments >= 2, "the feed journal rolled over to a new segment: {segments} files");

    let counts = &report["counts"];
    assert!(counts["dropped"].as_u64().unwrap() > 0, "some packets were dropped: {counts}");
    assert!(counts["retransmitted"].as_u64().unwrap() >= counts["dropped"].as_u64().unwrap(), "{counts}");
    let types = &counts["types"];
    for t in ["S", "R", "H", "A", "E", "D"] {
        assert!(types[t].as_u64().unwrap_or(0) > 0, "the feed carried {t} messages: {types}");
    }
    let (bids, asks) = engine_book(&config);
    assert!(!bids.is_empty() && !asks.is_empty());
    assert_eq!(levels(&report, "bids"), bids, "full depth, bids");
    assert_eq!(levels(&report, "asks"), asks, "full depth, asks");
    // After every command that changed a book, the listener's best bid and ask (after that
    // command's last message) are the engine's.
    let config = Config::load(&config).unwrap();
    let last_message = last_feed_message_by_command(&config);
    let mut compared = 0;
    for (sequence, engine_best) in engine_bbo_by_command(&config) {
        let Some(feed_sequence) = last_message.get(&sequence) else { continue };
        let feed_best = &report["bbo"][feed_sequence.to_string()];
        assert_eq!(
            feed_best, &engine_best,
            "best bid and ask after command {sequence} (feed {feed_sequence})"
        );
        compared += 1;
    }
    assert!(compared > 1_000, "most commands change the book: {compared}");
}

#[test]
fn a_killed_engine_regenerates_what_it_never_recorded_and_numbering_goes_on_without_reuse_or_skip() {
    let dir = tempfile::tempdir().unwrap();
    let request_port = free_udp_port();
    let mut listener = Listener::start(request_port, 0.0, 17);
    let config = feed_config(dir.path(), listener.port, request_port);
    let events = lobster();
    let half = events.len() / 2;
    // Each event the driver sends is one command (input sequence); the first of the second half
    // is durable, then the engine dies before recording any of its messages.
    let (sent_first_half, refs) = {
        let daemon = Daemon::start(BIN, &config);
        let mut driver = Driver::connect(&daemon, 1, Default::default());
        for event in &events[..half] {
            driver.send(event);
        }
        let commands = daemon.last_sequence();
        // SIGKILL mid-stream: no End of Session, nothing flushed that was not written.
        daemon.kill();
        (commands, std::mem::take(&mut driver.refs))
    };
    let recorded_before = feed_recorded(&config);
    let daemon = Daemon::start_with_env(
        BIN,
        &config,
        &[("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE", &(sent_first_half + 1).to_string())],
    );
    let mut driver = Driver::connect(&daemon, half as u32 + 1, refs);
    let first = &events[half];
    assert_eq!(first.kind, 1, "the sample's event {half} adds an order");
    let user_ref = driver.next_ref;
    driver.alice.enter(user_ref, if first.buy { b'B' } else { b'S' }, first.size, "AAPL", first.price, b'0');
    assert!(driver.alice.recv().is_none(), "the engine died before answering");
    let status = daemon.wait_exit();
    assert!(!status.success(), "aborted at the failpoint: {status:?}");
    assert_eq!(feed_recorded(&config), recorded_before, "nothing of the aborted command was recorded");

    let daemon = Daemon::start(BIN, &config);
    let regenerated = feed_recorded(&config);
    assert_eq!(
        regenerated,
        recorded_before + 1,
        "the Add Order of the durable command was regenerated, once"
    );
    let mut refs = std::mem::take(&mut driver.refs);
    refs.insert(first.order_id, user_ref);
    let mut driver = Driver::connect(&daemon, user_ref + 1, refs);
    for event in &events[half + 1..] {
        driver.send(event);
    }
    let recorded = feed_recorded(&config);
    let report = listener.report(recorded);
    daemon.stop();
    // The listener exits with status 3 on a reused number; a skipped one would never fill.
    assert_eq!(report["next"].as_u64().unwrap(), recorded + 1);
    let after = listener.end_of_session();
    assert_eq!(
        after["next"].as_u64().unwrap(),
        recorded + 1,
        "a clean stop ends the session after the last message"
    );
    let (bids, asks) = engine_book(&config);
    assert_eq!(levels(&report, "bids"), bids, "full depth, bids");
    assert_eq!(levels(&report, "asks"), asks, "full depth, asks");
}

/// The value of one sample in the engine's `/metrics` (0 when absent).
fn metric(daemon: &Daemon, sample: &str) -> u64 {
    let text = support::http_get(daemon.admin.unwrap(), "/metrics");
    text.lines()
        .find_map(|l| l.strip_prefix(sample).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0, |v| v.trim().parse::<f64>().unwrap() as u64)
}

fn request(session: &str, sequence: u64, count: u16) -> Vec<u8> {
    let mut r = format!("{session:<10}").into_bytes();
    r.extend_from_slice(&sequence.to_be_bytes());
    r.extend_from_slice(&count.to_be_bytes());
    r
}

#[test]
fn garbage_oversized_out_of_range_and_flooding_requests_are_refused_counted_and_harmless() {
    use petrel_proto::{itch, moldudp64};
    let dir = tempfile::tempdir().unwrap();
    let feed = UdpSocket::bind("127.0.0.1:0").unwrap();
    feed.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let request_port = free_udp_port();
    let config = feed_config(dir.path(), feed.local_addr().unwrap().port(), request_port);
    let daemon = Daemon::start(BIN, &config);
    let server = std::net::SocketAddr::from(([127, 0, 0, 1], request_port));
    let requester = UdpSocket::bind("127.0.0.1:0").unwrap();
    requester.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    let recorded = feed_recorded(&config);
    assert!(recorded > 0, "the start-of-day messages");

    requester.send_to(b"junk!", server).unwrap();
    requester.send_to(&[b'P'; 100], server).unwrap();
    requester.send_to(&request("OTHERSESS", 1, 1), server).unwrap();
    requester.send_to(&request(SESSION, 0, 1), server).unwrap();
    requester.send_to(&request(SESSION, recorded + 1_000, 1), server).unwrap();
    requester.send_to(&request(SESSION, 1, 0), server).unwrap();
    let refused =
        |r: &str| metric(&daemon, &format!("petrel_feed_requests_refused_total{{refusal=\"{r}\"}}"));
    support::wait_for("six refusals", || {
        refused("malformed") + refused("wrong_session") + refused("out_of_range") == 6
    });
    assert_eq!((refused("malformed"), refused("wrong_session"), refused("out_of_range")), (2, 1, 3));

    // A good request is answered with the messages asked for, unicast to the requester.
    requester.send_to(&request(SESSION, 1, 2), server).unwrap();
    let mut buf = [0u8; 2048];
    let n = requester.recv(&mut buf).unwrap();
    let (header, messages) = moldudp64::decode_packet(&buf[..n]).unwrap();
    assert_eq!((header.session.as_str(), header.sequence, header.count), (SESSION, 1, 2));
    let first: Vec<itch::Message> = messages.map(|m| itch::Message::decode(m.unwrap()).unwrap()).collect();
    assert!(matches!(first[0], itch::Message::SystemEvent { event_code: b'O', .. }), "{first:?}");

    // A flood from one requester: most refused, counted; order entry and the live feed go on.
    for _ in 0..2_000 {
        requester.send_to(&request(SESSION, 1, 1), server).unwrap();
    }
    support::wait_for("the flood refused", || refused("rate_limited") > 0);
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    alice.enter(1, b'B', 100, "AAPL", 5_853_300, b'0');
    answer(&mut alice, 1);
    let add = loop {
        let n = feed.recv(&mut buf).unwrap();
        let (header, messages) = moldudp64::decode_packet(&buf[..n]).unwrap();
        let found = messages
            .map(|m| itch::Message::decode(m.unwrap()).unwrap())
            .find(|m| matches!(m, itch::Message::AddOrder(_)));
        if let Some(itch::Message::AddOrder(add)) = found {
            break (header.sequence, add);
        }
    };
    assert_eq!(add.0, recorded + 1, "the first message after the start of day");
    assert_eq!((add.1.side, add.1.shares, add.1.price, add.1.stock.as_str()), (b'B', 100, 5_853_300, "AAPL"));
    assert_eq!(add.1.header.stock_locate, 1, "AAPL is instrument 0: Stock Locate 1");
    assert!(metric(&daemon, "petrel_feed_requests_served_total") >= 1);
    assert!(
        metric(&daemon, "petrel_feed_heartbeats_total") > 0
            || metric(&daemon, "petrel_feed_packets_total") > 0
    );
    daemon.stop();
}

/// `check-config` on the development configuration with `section` appended: exit code and
/// what it printed.
fn check_with(section: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), "epoll");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(section);
    std::fs::write(&path, text).unwrap();
    let out = Command::new(BIN).args(["check-config", "--config"]).arg(&path).output().unwrap();
    let printed = String::from_utf8(out.stdout).unwrap() + &String::from_utf8(out.stderr).unwrap();
    (out.status.code().unwrap(), printed)
}

#[test]
fn check_config_names_the_market_data_key_that_is_wrong() {
    let (code, out) = check_with(
        "\n[market_data]\nsession = \"PETREL01\"\nmulticast_group = \"239.1.1.1:26400\"\n\
         destinations = [\"127.0.0.1:26401\"]\nretransmission_listen = \"127.0.0.1:26402\"\n",
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("market data: ITCH 5.0 session PETREL01 to multicast 239.1.1.1:26400 127.0.0.1:26401, heartbeat 1000 ms, retransmission on 127.0.0.1:26402"),
        "{out}"
    );
    for (section, key, why) in [
        (
            "session = \"TOO-LONG-NAME\"\ndestinations = [\"127.0.0.1:1\"]",
            "market_data.session",
            "1 to 10 letters or digits",
        ),
        ("session = \"P\"", "market_data.destinations", "the feed goes nowhere"),
        (
            "session = \"P\"\nmulticast_group = \"10.0.0.1:1\"",
            "market_data.multicast_group",
            "not an IPv4 multicast address",
        ),
        (
            "session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\nmax_packet_bytes = 40",
            "market_data.max_packet_bytes",
            "must be between 66 and 65507",
        ),
        (
            "session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\nheartbeat_interval_ms = 0",
            "market_data.heartbeat_interval_ms",
            "must be between",
        ),
        (
            "session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\nmax_messages_per_request = 0",
            "market_data.max_messages_per_request",
            "must be between 1 and",
        ),
        (
            "session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\nrequests_per_second_per_requester = 0",
            "market_data.requests_per_second_per_requester",
            "must be between",
        ),
        (
            "session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\njournal_segment_bytes = 1000",
            "market_data.journal_segment_bytes",
            "multiple of 4096",
        ),
        (
            "session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\njournal_segment_bytes = 65536",
            "market_data.journal_segment_bytes",
            "between 73728",
        ),
        ("session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\nsesion = \"typo\"", "sesion", "unknown field"),
        (
            "session = \"P\"\ndestinations = [\"127.0.0.1:1\"]\nattributed_accounts = [\"carol\"]",
            "market_data.attributed_accounts",
            "\"carol\", which is not an account; defined: alice, bob, mm1",
        ),
    ] {
        let (code, out) = check_with(&format!("\n[market_data]\n{section}\n"));
        assert_eq!(code, 2, "{section}: {out}");
        assert!(out.contains(key) && out.contains(why), "{section}: wanted {key}: {why}, got {out}");
    }
}

#[test]
fn the_feed_reaches_a_multicast_group_on_loopback_with_the_attribution_an_account_opted_into() {
    let dir = tempfile::tempdir().unwrap();
    let request_port = free_udp_port();
    let group = format!("239.193.7.{}:{}", request_port % 200 + 1, free_udp_port());
    let mut listener = Listener::start_on(request_port, 0.0, 18, Some(&group), false);
    let destination = format!(
        "multicast_group = \"{group}\"\nmulticast_interface = \"127.0.0.1\"\nattributed_accounts = [\"alice\"]"
    );
    let config = feed_config_to(dir.path(), &destination, request_port);
    let daemon = Daemon::start(BIN, &config);
    let mut driver = Driver::connect(&daemon, 1, Default::default());
    for event in lobster().iter().take(200) {
        driver.send(event);
    }
    let report = listener.report(feed_recorded(&config));
    daemon.stop();
    let (bids, asks) = engine_book(&config);
    assert_eq!((levels(&report, "bids"), levels(&report, "asks")), (bids, asks));
    assert!(report["counts"]["packets"].as_u64().unwrap() > 100, "{}", report["counts"]);
    // Every resting order is ALICE's, whose firm DEV1 is her MPID.
    let types = &report["counts"]["types"];
    assert!(types["F"].as_u64().unwrap_or(0) > 50 && types["A"].is_null(), "{types}");
    assert!(report["mpids"].as_array().unwrap().iter().all(|m| m == "DEV1"), "{}", report["mpids"]);
}

#[test]
fn a_subscriber_joining_half_way_through_the_snapshot_service_ends_with_the_engines_book() {
    let dir = tempfile::tempdir().unwrap();
    let request_port = free_udp_port();
    let snapshot_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let group = format!("239.193.8.{}:{}", request_port % 200 + 1, free_udp_port());
    let mut early = Listener::start_on(request_port, 0.0, 19, Some(&group), false);
    let mut late = Listener::start_on(request_port, 0.01, 20, Some(&group), true);
    let destination = format!(
        "multicast_group = \"{group}\"\nmulticast_interface = \"127.0.0.1\"\nsnapshot_listen = \"127.0.0.1:{snapshot_port}\""
    );
    let config = feed_config_to(dir.path(), &destination, request_port);
    let daemon = Daemon::start(BIN, &config);
    let events = lobster();
    let mut driver = Driver::connect(&daemon, 1, Default::default());
    for event in &events[..events.len() / 2] {
        driver.send(event);
    }
    late.join(snapshot_port);
    for event in &events[events.len() / 2..] {
        driver.send(event);
    }
    let recorded = feed_recorded(&config);
    let early_report = early.report(recorded);
    let late_report = late.report(recorded);
    assert!(metric(&daemon, "petrel_feed_snapshot_sessions_total{result=\"sent\"}") == 1);
    daemon.stop();
    let counts = &late_report["counts"];
    assert!(counts["snapshot_messages"].as_u64().unwrap() > 10, "the snapshot held the book: {counts}");
    assert!(counts["snapshot_next"].as_u64().unwrap() > 100, "it was taken half-way: {counts}");
    let (bids, asks) = engine_book(&config);
    assert_eq!((levels(&early_report, "bids"), levels(&early_report, "asks")), (bids.clone(), asks.clone()));
    assert_eq!((levels(&late_report, "bids"), levels(&late_report, "asks")), (bids, asks), "the late joiner");
}
