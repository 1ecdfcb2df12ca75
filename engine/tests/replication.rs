//! Hot standby on real processes and loopback sockets: a primary and a standby `petrel-engine`
//! with `[replication]`, a client trading on the primary, the primary killed with SIGKILL, the
//! standby stopped with SIGSTOP, and a replication port fed garbage and wrong proofs.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use petrel_engine::core::Command as CoreCommand;
use petrel_engine::gateway::notes::{EngineNote, ENGINE};
use petrel_engine::input_record;
use petrel_engine::journal::{open_read_only, JournalLocation};
use support::pair::*;
use support::{log_field, wait_for, Client, Daemon, Got, OwnedOutbound, BIN};

fn primary_config(dir: &Path, policy: &str) -> PathBuf {
    let secret = write_secret(dir, "replication.secret", SECRET);
    config_with(
        dir,
        &format!(
            "role = \"primary\"\ncluster_id = \"test-pair\"\nsecret_file = \"{}\"\nlisten = \"127.0.0.1:0\"\npeer = \"127.0.0.1:9\"\n{policy}\n",
            secret.display()
        ),
    )
}

fn standby_config(dir: &Path, primary: SocketAddr, cluster: &str, secret: &str, policy: &str) -> PathBuf {
    let secret = write_secret(dir, "replication.secret", secret);
    config_with(
        dir,
        &format!(
            "role = \"standby\"\ncluster_id = \"{cluster}\"\nsecret_file = \"{}\"\nlisten = \"127.0.0.1:0\"\npeer = \"{primary}\"\n{policy}\n",
            secret.display()
        ),
    )
}

fn replication_addr(primary: &Daemon) -> SocketAddr {
    let lines = primary.log_lines("replication: waiting for the standby");
    let line = lines.first().expect("the primary logs its replication address before it is ready");
    log_field(line, "addr").parse().unwrap()
}

struct Pair {
    primary: Daemon,
    standby: Daemon,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    primary_dir: PathBuf,
    standby_dir: PathBuf,
}

fn start_pair(policy: &str) -> Pair {
    let (p, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary = Daemon::start(BIN, &primary_config(p.path(), policy));
    let standby = Daemon::start_standby(
        BIN,
        &standby_config(s.path(), replication_addr(&primary), "test-pair", SECRET, policy),
    );
    wait_for("the standby connecting", || status(&primary)["replication"]["connected"] == true);
    let (primary_dir, standby_dir) = (p.path().to_owned(), s.path().to_owned());
    Pair { primary, standby, _dirs: (p, s), primary_dir, standby_dir }
}

/// Under systemd a promotion happens while the unit is active, under its watchdog: the standby
/// pings it as it starts promoting and while it recovers, before it is ready again as the
/// primary. (Once the new primary waited a whole ping interval for its first ping, overran
/// WatchdogSec, and systemd killed it.)
#[test]
fn a_promoted_standby_pings_the_watchdog_before_it_is_ready_as_the_primary() {
    let (p, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let primary =
        Daemon::start(BIN, &primary_config(p.path(), "ack = \"standby\"\non_standby_loss = \"halt\""));
    let socket_path = s.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    // An interval of 10 s (WATCHDOG_USEC 20 s): no ping of the ordinary schedule falls in the
    // promotion, only those it sends itself.
    let standby = Daemon::start_standby_with_env(
        BIN,
        &standby_config(
            s.path(),
            replication_addr(&primary),
            "test-pair",
            SECRET,
            "ack = \"standby\"\non_standby_loss = \"halt\"",
        ),
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "20000000")],
    );
    wait_for("the standby connecting", || status(&primary)["replication"]["connected"] == true);
    let mut buf = [0u8; 4096];
    let mut next = || {
        let n = socket.recv(&mut buf).expect("a notify message within 30 s");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    while !next().contains("READY=1") {} // the standby's own
    primary.kill();
    let (code, body) = post(standby.admin.unwrap(), "/promote?alone");
    assert_eq!(code, 200, "{body}");
    let mut said = Vec::new();
    while !said.last().is_some_and(|m: &String| m.contains("READY=1")) {
        said.push(next());
    }
    let promoting = said.iter().position(|m| m.contains("STATUS=promoting")).expect("STATUS=promoting");
    assert!(
        said[promoting..].iter().any(|m| m.contains("WATCHDOG=1")),
        "no ping during the promotion: {said:?}"
    );
    drop(standby);
}

fn new_orders(records: &[(u64, u64, Vec<u8>)]) -> usize {
    records
        .iter()
        .filter(|(_, _, payload)| matches!(input_record::decode(payload), Ok((CoreCommand::NewOrder(_), _))))
        .count()
}

#[test]
fn every_order_acknowledged_before_the_primary_is_killed_is_on_the_standby() {
    let pair = start_pair("ack = \"standby\"\non_standby_loss = \"halt\"");
    let mut bob = login(pair.primary.addr);
    // One order at a time; the primary is killed with the 40th in flight.
    let mut acknowledged = 0u32;
    for user_ref in 1..=40u32 {
        bob.enter(user_ref, b'S', 1, "AAPL", AAPL_585 + u64::from(user_ref) * 100, b'0');
        if user_ref == 40 {
            break;
        }
        match bob.ouch() {
            OwnedOutbound::Accepted { user_ref: r, .. } if r == user_ref => acknowledged = user_ref,
            other => panic!("expected Accepted {user_ref}, got {other:?}"),
        }
    }
    // Every 10 commands the standby compared its state hash with the primary's.
    let checks = status(&pair.standby)["replication"]["hash_checks_total"].as_u64().unwrap();
    assert!(checks >= 3, "{checks} state hash checks after {acknowledged} orders");
    assert_eq!(status(&pair.standby)["replication"]["diverged"], false);
    let standby_metrics = metrics(&pair.standby);
    assert!(standby_metrics.contains("petrel_replication_epoch 1\n"), "{standby_metrics}");
    assert!(standby_metrics.contains("petrel_replication_lag_seconds "), "{standby_metrics}");
    pair.primary.kill();
    assert!(pair.standby.stop().success(), "the standby stops cleanly");

    let standby = records(&pair.standby_dir);
    let primary = records(&pair.primary_dir);
    assert!(
        new_orders(&standby) >= acknowledged as usize,
        "the standby holds {} orders, {acknowledged} were acknowledged",
        new_orders(&standby)
    );
    // The same records, byte for byte: sequence, timestamp and payload.
    assert!(standby.len() <= primary.len(), "the standby never has what the primary did not journal");
    assert_eq!(standby[..], primary[..standby.len()]);
}

#[test]
fn with_halt_nothing_is_acknowledged_while_the_standby_is_stopped() {
    let pair = start_pair("ack = \"standby\"\non_standby_loss = \"halt\"");
    let mut bob = login(pair.primary.addr);
    bob.enter(1, b'S', 1, "AAPL", AAPL_585 + 100, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));

    pair.standby.signal(Signal::SIGSTOP);
    let before = status(&pair.primary)["last_sequence"].as_u64().unwrap();
    bob.enter(2, b'S', 1, "AAPL", AAPL_585 + 200, b'0');
    // Sequenced and durable on the primary's own disk...
    wait_for("order 2 durable on the primary", || {
        let s = status(&pair.primary);
        s["last_sequence"].as_u64().unwrap() > before
            && s["replication"]["primary_durable_sequence"].as_u64().unwrap() > before
    });
    // ... and still not acknowledged: the standby does not have it (heartbeats aside).
    let answered = bob.recv_within(Duration::from_millis(300));
    assert_eq!(answered, None, "the primary answered an order its standby does not have");

    pair.standby.signal(Signal::SIGCONT);
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 2, .. }));
    let s = status(&pair.primary);
    assert!(s["replication"]["standby_durable_sequence"].as_u64().unwrap() > before);
}

#[test]
fn with_continue_the_primary_goes_on_alone_and_a_cut_off_standby_is_promoted_only_when_forced() {
    let pair = start_pair("ack = \"standby\"\non_standby_loss = \"continue\"");
    let mut bob = login(pair.primary.addr);
    bob.enter(1, b'S', 1, "AAPL", AAPL_585 + 100, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    wait_for("the standby promotable", || status(&pair.primary)["replication"]["standby_promotable"] == true);

    pair.standby.signal(Signal::SIGSTOP);
    bob.enter(2, b'S', 1, "AAPL", AAPL_585 + 200, b'0');
    // Acknowledged once the primary gives up on its silent standby.
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 2, .. }));
    let s = status(&pair.primary);
    assert_eq!(s["replication"]["standby_promotable"], false, "{s}");
    assert_eq!(s["replication"]["halted"], false, "{s}");
    // The line is written a moment after the acknowledgement (the daemon's log thread).
    let lost = pair.primary.wait_log_lines("continuing alone", Duration::from_secs(10));
    assert_eq!(lost.len(), 1, "the loss is logged once: {lost:?}");
    assert!(metrics(&pair.primary).contains("petrel_replication_standby_promotable 0"));

    pair.standby.signal(Signal::SIGCONT);
    wait_for("the standby caught up again", || {
        let s = status(&pair.primary);
        s["replication"]["standby_promotable"] == true && s["replication"]["connected"] == true
    });

    // The primary dies. Cut off, a standby whose primary may acknowledge alone cannot tell
    // what it missed: promoting it is refused with the reason, unless forced.
    pair.primary.kill();
    let standby_admin = pair.standby.admin.unwrap();
    wait_for("the standby noticing", || status(&pair.standby)["replication"]["connected"] == false);
    let (code, body) = post(standby_admin, "/promote");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("refused") && body.contains("--force"), "{body}");
    let (code, body) = post(standby_admin, "/promote?force&alone");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("forced"), "{body}");
    pair.standby.wait_log_lines("ready: gateway listening addr=", Duration::from_secs(60));

    // The primary's journal says when it went on alone, and when the standby was back.
    let notes = engine_notes(&records(&pair.primary_dir));
    let alone = notes.iter().position(|n| *n == EngineNote::Replication { promotable: false, halted: false });
    let back = notes.iter().rposition(|n| *n == EngineNote::Replication { promotable: true, halted: false });
    assert!(alone.is_some() && back > alone, "{notes:?}");
}

/// The engine notes (`gateway/notes.rs`) among `records`, in order.
fn engine_notes(records: &[(u64, u64, Vec<u8>)]) -> Vec<EngineNote> {
    records
        .iter()
        .filter_map(|(_, _, payload)| match input_record::decode(payload) {
            Ok((CoreCommand::Note { account, note }, _)) if account == ENGINE => {
                Some(EngineNote::decode(&note).unwrap())
            }
            _ => None,
        })
        .collect()
}

/// A POST with an empty body; the status code and the body.
fn post(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    stream.read_to_string(&mut text).unwrap();
    let code = text[9..12].parse().unwrap();
    (code, text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned())
}

/// Sends `bytes` to the replication port after reading its challenge; true when the primary
/// then closes the connection.
fn closed_after(addr: SocketAddr, bytes: &[u8]) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut challenge = [0u8; 4 + 1 + 26 + 4];
    stream.read_exact(&mut challenge).unwrap();
    assert_eq!(&challenge[5..13], b"PTRLREPL", "a replication port greets with its magic");
    stream.write_all(bytes).unwrap();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    true
}

fn refused(primary: &Daemon, refusal: &str) -> u64 {
    let metrics = metrics(primary);
    let line = format!("petrel_replication_refused_total{{refusal=\"{refusal}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&line))
        .unwrap_or_else(|| panic!("no {line} in {metrics}"))
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn garbage_a_wrong_cluster_and_a_wrong_secret_on_the_replication_port_are_refused_and_counted() {
    let p = tempfile::tempdir().unwrap();
    let primary = Daemon::start(BIN, &primary_config(p.path(), "ack = \"local\""));
    let addr = replication_addr(&primary);

    assert!(closed_after(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    wait_for("the garbage counted", || refused(&primary, "protocol") >= 1);

    let wrong_secret = tempfile::tempdir().unwrap();
    let standby = Daemon::start_standby(
        BIN,
        &standby_config(
            wrong_secret.path(),
            addr,
            "test-pair",
            "a-different-secret-of-32-bytes!!",
            "ack = \"local\"",
        ),
    );
    let said = standby.wait_log_lines("refused this standby", Duration::from_secs(60));
    assert!(said.iter().any(|l| l.contains("shared secret")), "{said:?}");
    wait_for("the wrong secret counted", || refused(&primary, "secret") >= 1);
    drop(standby);

    let wrong_cluster = tempfile::tempdir().unwrap();
    let standby = Daemon::start_standby(
        BIN,
        &standby_config(wrong_cluster.path(), addr, "another-pair", SECRET, "ack = \"local\""),
    );
    let said = standby.wait_log_lines("refused this standby", Duration::from_secs(60));
    assert!(said.iter().any(|l| l.contains("another-pair")), "{said:?}");
    wait_for("the wrong cluster counted", || refused(&primary, "cluster") >= 1);
    drop(standby);

    // Nothing of it reached the journal, and the primary trades on.
    let mut bob = login(primary.addr);
    bob.enter(1, b'S', 1, "AAPL", AAPL_585 + 100, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    assert_eq!(status(&primary)["replication"]["connected"], false);
    let logged = primary.log_lines("refused a standby");
    assert!(logged.len() >= 3 && logged.iter().all(|l| l.contains("peer=127.0.0.1:")), "{logged:?}");
}

#[test]
fn a_secret_file_others_can_read_is_refused_by_check_config() {
    let dir = tempfile::tempdir().unwrap();
    let config = primary_config(dir.path(), "ack = \"standby\"");
    std::fs::set_permissions(dir.path().join("replication.secret"), std::fs::Permissions::from_mode(0o644))
        .unwrap();
    let out = Command::new(BIN).args(["check-config", "--config"]).arg(&config).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("replication.secret_file") && stderr.contains("chmod 600"), "{stderr}");

    std::fs::set_permissions(dir.path().join("replication.secret"), std::fs::Permissions::from_mode(0o600))
        .unwrap();
    let out = Command::new(BIN).args(["check-config", "--config"]).arg(&config).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("replication: primary of cluster test-pair"), "{stdout}");
}

#[test]
fn ten_failovers_lose_no_acknowledged_order_and_each_replaced_primary_rejoins() {
    let (a, b) = own_addresses(1);
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "replication.secret", SECRET);
    let hosts = [host(a, b, &secret), host(b, a, &secret)];
    let mut primary = Daemon::start(BIN, &hosts[0].primary_config);
    let mut standby = Daemon::start_standby(BIN, &hosts[1].standby_config);
    wait_caught_up(&primary);
    let mut gateway = primary.addr;
    let (mut bob, mut alice) = (Resuming::new("bob"), Resuming::new("alice"));
    for round in 1..=10u32 {
        let (old, new) = (((round + 1) % 2) as usize, (round % 2) as usize);
        // Bob's orders, each acknowledged, so each on both hosts. He resumes his stream where
        // he left it, on whichever host is the primary now.
        let mut client = bob.log_in(gateway, round);
        for k in 1..=5u32 {
            let user_ref = round * 100 + k;
            client.enter(user_ref, b'S', 1, "AAPL", AAPL_585 + u64::from(k) * 100, b'0');
            // What he missed comes first (Alice's executions of his orders, on the new host).
            while !matches!(client.ouch(), OwnedOutbound::Accepted { user_ref: r, .. } if r == user_ref) {}
        }
        bob.keep(&client);
        // Killed with Bob connected: a logout would cancel his orders (cancel on disconnect).
        primary.kill();
        drop(client);

        let (ok, said) = run_cli(&["promote", "--alone"], &hosts[new].standby_config);
        assert!(ok && said.contains("promoting"), "round {round}: {said}");
        let ready = standby.wait_log_lines("ready: gateway listening addr=", Duration::from_secs(60));
        gateway = log_field(
            ready.first().unwrap_or_else(|| panic!("round {round}: the promoted standby serves")),
            "addr",
        )
        .parse()
        .unwrap();
        let promoted = status(&standby);
        assert_eq!(promoted["replication"]["epoch"], u64::from(round) + 1, "round {round}: {promoted}");
        assert!(metrics(&standby).contains(&format!("petrel_replication_epoch {}\n", round + 1)));

        // Every acknowledged order of the round is on the new primary: Alice buys them all.
        let mut client = alice.log_in(gateway, round);
        // An Account Query first: the gateway's own answer, sequenced as a note, is in her
        // stream on every host too.
        client.send_packet(b'U', b"Q");
        client.enter(round, b'B', 8, "AAPL", AAPL_585 + 1_000, b'3');
        let mut executed = 0;
        let mut answered = false;
        loop {
            match client.ouch() {
                OwnedOutbound::AccountQueryResponse { .. } => answered = true,
                OwnedOutbound::Executed { qty, user_ref, .. } if user_ref == round => executed += qty,
                OwnedOutbound::Canceled { user_ref, .. } if user_ref == round => break,
                _ => {} // her earlier rounds' messages, resumed
            }
        }
        alice.keep(&client);

        assert!(answered, "round {round}: the Account Query was answered before her order's messages");
        assert_eq!(executed, 5, "round {round}: every acknowledged order traded on the new primary");

        // The replaced primary refuses to serve, rejoins, and follows the new one.
        let first_config = if round == 1 { &hosts[old].primary_config } else { &hosts[old].standby_config };
        if round == 1 {
            let (ok, said) = run_cli(&["run"], first_config);
            assert!(!ok && said.contains("stale primary"), "round {round}: {said}");
        }
        let (ok, said) = run_cli(&["rejoin"], &hosts[old].standby_config);
        assert!(ok && said.contains("rejoined epoch"), "round {round}: {said}");
        primary = std::mem::replace(&mut standby, Daemon::start_standby(BIN, &hosts[old].standby_config));
        wait_caught_up(&primary);
    }
    // Each client's whole stream, read again from its first message on the last primary, is
    // what it received across the ten hosts it traded on, byte for byte.
    for client in [&bob, &alice] {
        client.replayed_whole_by(gateway);
    }
    let (last_primary, last_standby) = (new_index(10), 1 - new_index(10));
    primary.stop();
    assert!(standby.stop().success());
    // Both journals hold the same records, byte for byte, and so do the streams.
    let (p, s) = (records(hosts[last_primary].dir.path()), records(hosts[last_standby].dir.path()));
    assert_eq!(p, s);
    assert!(new_orders(&p) >= 50);
    // Each promotion began its epoch with a note saying so.
    let epochs: Vec<EngineNote> =
        engine_notes(&p).into_iter().filter(|n| matches!(n, EngineNote::Epoch { .. })).collect();
    assert_eq!(epochs, (2..=11).map(|number| EngineNote::Epoch { number }).collect::<Vec<_>>());
    for account in 0..2 {
        let (p, s) = (
            stream(hosts[last_primary].dir.path(), account),
            stream(hosts[last_standby].dir.path(), account),
        );
        assert!(p.len() > 10, "account {account}'s stream: {} messages", p.len());
        assert_eq!(p, s, "account {account}'s stream is the same on both hosts");
    }
    // So is the market-data feed: one numbering across the ten promotions, the same bytes.
    let feed = |host: usize| journal(&hosts[host].dir.path().join("journal").join("market_data"), "feed");
    let (p, s) = (feed(last_primary), feed(last_standby));
    assert!(p.len() > 50, "the feed journal holds {} messages", p.len());
    assert_eq!(p, s, "the feed is the same on both hosts");
}

/// A client that resumes its stream wherever the primary is: it logs in asking for the next
/// message it has not seen, and keeps every message it got, byte for byte.
struct Resuming {
    user: &'static str,
    next: u64,
    seen: Vec<Vec<u8>>,
}

impl Resuming {
    fn new(user: &'static str) -> Resuming {
        Resuming { user, next: 1, seen: Vec::new() }
    }

    /// The server must start exactly at the next message this client lacks: none skipped, none
    /// repeated.
    fn log_in(&self, addr: SocketAddr, round: u32) -> Client {
        let mut client = Client::connect(addr);
        match client.login(self.user, self.user, self.next) {
            Got::LoginAccepted { sequence, .. } => {
                assert_eq!(
                    sequence, self.next,
                    "round {round}: {}'s stream resumes where it stopped",
                    self.user
                )
            }
            other => panic!("round {round}: {} logging in: {other:?}", self.user),
        }
        client
    }

    /// Keeps what `client` received, which continued the stream from `next`.
    fn keep(&mut self, client: &Client) {
        self.next += client.sequenced.len() as u64;
        self.seen.extend(client.sequenced.iter().cloned());
    }

    fn replayed_whole_by(&self, addr: SocketAddr) {
        let mut client = Client::connect(addr);
        assert!(matches!(client.login(self.user, self.user, 1), Got::LoginAccepted { sequence: 1, .. }));
        while client.sequenced.len() < self.seen.len() {
            client.recv().expect("the stream replayed");
        }
        assert_eq!(&client.sequenced[..self.seen.len()], &self.seen[..], "{}'s stream", self.user);
    }
}

/// Every message of one account's stream (its output journal) in `dir`: source and packet.
fn stream(dir: &Path, account: usize) -> Vec<(u64, Vec<u8>)> {
    journal(&dir.join("journal").join("sessions"), &format!("account_{account}"))
}

/// Every record of the journal `prefix` in `dir`: its second header field (an output
/// journal's source sequence) and payload.
fn journal(dir: &Path, prefix: &str) -> Vec<(u64, Vec<u8>)> {
    let recovery = open_read_only(&JournalLocation::new(dir, prefix)).unwrap();
    let mut reader = recovery.replay_from(recovery.first_sequence.unwrap_or(1)).unwrap();
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        out.push((r.timestamp_ns, r.payload.to_vec()));
    }
    out
}

fn new_index(round: u32) -> usize {
    (round % 2) as usize
}

#[test]
fn a_standby_whose_state_diverges_is_detected_and_never_promoted() {
    let (p, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let policy = "ack = \"standby\"\non_standby_loss = \"halt\"";
    let primary = Daemon::start(BIN, &primary_config(p.path(), policy));
    // The standby's risk limits differ: an order the primary accepts, it rejects.
    let standby_config = standby_config(s.path(), replication_addr(&primary), "test-pair", SECRET, policy);
    let text = std::fs::read_to_string(&standby_config).unwrap();
    assert!(text.contains("max_order_qty = 10_000"), "config/dev.toml's standard profile moved");
    std::fs::write(&standby_config, text.replace("max_order_qty = 10_000", "max_order_qty = 50")).unwrap();
    let standby = Daemon::start_standby(BIN, &standby_config);
    wait_for("the standby connecting", || status(&primary)["replication"]["connected"] == true);

    let mut bob = login(primary.addr);
    for user_ref in 1..=12u32 {
        bob.enter(user_ref, b'S', 100, "AAPL", AAPL_585 + u64::from(user_ref) * 100, b'0');
        assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: r, .. } if r == user_ref));
    }
    wait_for("the divergence detected", || status(&standby)["replication"]["diverged"] == true);
    assert!(metrics(&standby).contains("petrel_replication_divergences_total 1"));
    assert_eq!(standby.wait_log_lines("DIVERGENCE", Duration::from_secs(10)).len(), 1, "logged once");
    let (code, body) = post(standby.admin.unwrap(), "/promote?force");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("diverged"), "{body}");
}

#[test]
fn an_empty_standby_catches_up_while_the_primary_trades() {
    let p = tempfile::tempdir().unwrap();
    let policy = "ack = \"local\"";
    let primary = Daemon::start(BIN, &primary_config(p.path(), policy));
    // A journal the standby will have to catch up with.
    let mut bob = login(primary.addr);
    let mut user_ref = 0u32;
    let mut trade = |bob: &mut Client, n: u32| {
        for _ in 0..n {
            user_ref += 1;
            bob.enter(user_ref, b'S', 1, "AAPL", AAPL_585 + u64::from(user_ref % 50 + 1) * 100, b'0');
            assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { .. }));
            bob.cancel(user_ref, 0);
            assert!(matches!(bob.ouch(), OwnedOutbound::Canceled { .. }));
        }
    };
    trade(&mut bob, 300);
    let s = tempfile::tempdir().unwrap();
    let standby = Daemon::start_standby(
        BIN,
        &standby_config(s.path(), replication_addr(&primary), "test-pair", SECRET, policy),
    );
    // Trading goes on while it catches up, and it reaches the live stream.
    trade(&mut bob, 300);
    wait_for("the standby caught up", || {
        let st = status(&primary);
        st["replication"]["connected"] == true
            && st["replication"]["lag_records"] == 0
            && st["replication"]["standby_durable_sequence"] == st["durable_sequence"]
    });
    let checks = status(&standby)["replication"]["hash_checks_total"].as_u64().unwrap();
    assert!(checks >= 10, "the caught-up standby compared its state at the newest checkpoints: {checks}");
    assert_eq!(status(&standby)["replication"]["diverged"], false);
    drop(bob);
    primary.stop();
    assert!(standby.stop().success());
    assert_eq!(
        records(s.path()),
        records(p.path()),
        "the standby's journal is the primary's, record for record"
    );
}

#[test]
fn a_standby_writes_snapshots_of_checked_states_and_restarts_from_them() {
    let policy = "ack = \"standby\"\non_standby_loss = \"halt\"";
    let pair = start_pair(policy);
    let mut bob = login(pair.primary.addr);
    for user_ref in 1..=30u32 {
        bob.enter(user_ref, b'S', 1, "AAPL", AAPL_585 + u64::from(user_ref) * 100, b'0');
        assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { .. }));
    }
    wait_for("a checked state", || {
        status(&pair.standby)["replication"]["hash_checks_total"].as_u64().unwrap() >= 2
    });
    let durable = status(&pair.standby)["durable_sequence"].as_u64().unwrap();
    let Pair { primary, standby, _dirs, standby_dir, .. } = pair;
    assert!(standby.stop().success());
    let snapshots: Vec<_> = std::fs::read_dir(standby_dir.join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".snap"))
        .collect();
    assert!(!snapshots.is_empty(), "the standby wrote snapshots of the states it checked");

    // Restarted, it recovers from its newest snapshot and follows again.
    let config = standby_dir.join("engine.toml");
    let standby = Daemon::start_standby(BIN, &config);
    let recovered = standby.log_lines("recovered engine state");
    assert!(recovered.iter().any(|l| l.contains("snapshot=Some(")), "{recovered:?}");
    bob.enter(31, b'S', 1, "AAPL", AAPL_585 + 3_100, b'0');
    assert!(
        matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 31, .. }),
        "acknowledged: the standby follows again"
    );
    assert!(status(&standby)["durable_sequence"].as_u64().unwrap() > durable);
    drop(primary);
}

/// Bob rests a sell and cancels it, `n` times: two commands each, every answer awaited.
fn trade(bob: &mut Client, user_ref: &mut u32, n: u32) {
    for _ in 0..n {
        *user_ref += 1;
        bob.enter(*user_ref, b'S', 1, "AAPL", AAPL_585 + u64::from(*user_ref % 50 + 1) * 100, b'0');
        assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { .. }));
        bob.cancel(*user_ref, 0);
        assert!(matches!(bob.ouch(), OwnedOutbound::Canceled { .. }));
    }
}

/// `config` with the smallest journal segments and retention that keeps one segment behind the
/// snapshot it needs: a journal that soon no longer begins at sequence 1. Snapshots every 200
/// commands, far apart from the release mark's lag here, as 100 000 are in production.
fn with_short_retention(config: PathBuf) -> PathBuf {
    let mut text = std::fs::read_to_string(&config).unwrap();
    for (from, to) in [
        ("every_commands = 10 ", "every_commands = 200 "),
        ("segment_size_bytes = 67_108_864", "segment_size_bytes = 73_728"),
        ("retention = \"keep_all\"", "retention = { keep_segments = 1 }"),
        ("write_buffer_bytes = 1_048_576", "write_buffer_bytes = 65_536"),
    ] {
        assert!(text.contains(from), "config/dev.toml no longer says {from}");
        text = text.replace(from, to);
    }
    // And the market-data feed, journaled by both (sent to the discard port).
    text.push_str("\n[market_data]\nsession = \"PETRELRB\"\ndestinations = [\"127.0.0.1:9\"]\n");
    std::fs::write(&config, text).unwrap();
    config
}

/// The first sequence of the journal in `dir` (its oldest segment's).
fn journal_first_sequence(dir: &Path) -> u64 {
    open_read_only(&JournalLocation::new(dir.join("journal"), "input")).unwrap().first_sequence.unwrap_or(1)
}

#[test]
fn a_standby_needing_records_retention_deleted_is_rebuilt_from_the_primarys_backup() {
    let p = tempfile::tempdir().unwrap();
    let policy = "ack = \"local\"";
    let primary = Daemon::start(BIN, &with_short_retention(primary_config(p.path(), policy)));
    let mut bob = login(primary.addr);
    let mut user_ref = 0u32;
    trade(&mut bob, &mut user_ref, 1_000);
    wait_for("retention deleted the journal's first segment", || journal_first_sequence(p.path()) > 1);

    // An empty standby needs sequence 1, which the primary no longer has: it is sent a backup,
    // restores it, and follows from there while Bob trades on.
    let s = tempfile::tempdir().unwrap();
    let standby = Daemon::start_standby(
        BIN,
        &with_short_retention(standby_config(
            s.path(),
            replication_addr(&primary),
            "test-pair",
            SECRET,
            policy,
        )),
    );
    trade(&mut bob, &mut user_ref, 200);
    wait_for("the rebuilt standby caught up", || {
        let st = status(&primary);
        st["replication"]["connected"] == true
            && st["replication"]["lag_records"] == 0
            && st["replication"]["standby_durable_sequence"] == st["durable_sequence"]
            && status(&standby)["replication"]["hash_checks_total"].as_u64().unwrap() > 0
    });
    // Caught up, it has said all it says of the rebuild.
    let said = standby.log_lines("").join("\n");
    assert!(said.contains("rebuilt from the primary's backup"), "{said}");
    // Once, or again if trading outran retention while the first backup was restored.
    for daemon in [&primary, &standby] {
        let m = metrics(daemon);
        let rebuilds = m.lines().find_map(|l| l.strip_prefix("petrel_replication_rebuilds_total ")).unwrap();
        assert!(rebuilds.trim().parse::<u64>().unwrap() >= 1, "{rebuilds}");
    }
    assert_eq!(status(&standby)["replication"]["diverged"], false, "its state is the primary's");
    drop(bob);
    primary.stop();
    assert!(standby.stop().success());

    // Where both journals have records they are the same, and so are Bob's streams.
    let (ours, theirs) = (records(s.path()), records(p.path()));
    let first = ours[0].0.max(theirs[0].0);
    let from =
        |r: &[(u64, u64, Vec<u8>)]| r.iter().filter(|(seq, _, _)| *seq >= first).cloned().collect::<Vec<_>>();
    assert_eq!(from(&ours), from(&theirs));
    assert_eq!(ours.last(), theirs.last(), "the standby has every record");
    let (ours, theirs) = (stream(s.path(), 1), stream(p.path(), 1));
    let differ = ours.iter().zip(&theirs).position(|(a, b)| a != b);
    assert!(
        ours.len() == theirs.len() && differ.is_none(),
        "Bob's stream on the standby ({} messages) differs from the primary's ({}) at message {differ:?}: {:?} / {:?}",
        ours.len(),
        theirs.len(),
                differ.map(|i| &ours[i]),
        differ.map(|i| &theirs[i]),
    );
    let feed = |dir: &Path| journal(&dir.join("journal").join("market_data"), "feed");
    let (ours, theirs) = (feed(s.path()), feed(p.path()));
    assert!(ours.len() > 1_000 && ours == theirs, "the feed: {} / {} messages", ours.len(), theirs.len());
}

#[test]
fn a_replaced_primary_with_rejoin_auto_rejoins_at_start_and_follows_the_new_one() {
    let (a, b) = own_addresses(3);
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "replication.secret", SECRET);
    let hosts = [host(a, b, &secret), host(b, a, &secret)];
    let text = std::fs::read_to_string(&hosts[0].primary_config).unwrap();
    let auto =
        text.replace("on_standby_loss = \"halt\"\n", "on_standby_loss = \"halt\"\nrejoin = \"auto\"\n");
    assert_ne!(auto, text);
    std::fs::write(&hosts[0].primary_config, auto).unwrap();
    let (ok, said) = run_cli(&["check-config"], &hosts[0].primary_config);
    assert!(ok && said.contains("rejoins as a standby by itself"), "{said}");

    let primary = Daemon::start(BIN, &hosts[0].primary_config);
    let standby = Daemon::start_standby(BIN, &hosts[1].standby_config);
    wait_caught_up(&primary);
    let mut bob = login(primary.addr);
    bob.enter(1, b'S', 1, "AAPL", AAPL_585 + 100, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    primary.kill();
    drop(bob);
    let (ok, said) = run_cli(&["promote", "--alone"], &hosts[1].standby_config);
    assert!(ok, "{said}");
    standby.wait_log_lines("ready: gateway listening addr=", Duration::from_secs(60));

    // Started again as configured (a primary), it finds the newer primary at its peer, rejoins
    // by itself, and follows it.
    let rejoined = Daemon::start_standby(BIN, &hosts[0].primary_config);
    assert!(!rejoined.log_lines("rejoining by itself").is_empty());
    wait_caught_up(&standby);
    let s = status(&rejoined);
    assert_eq!(s["replication"]["role"], "standby", "{s}");
    assert_eq!(s["replication"]["epoch"], 2, "{s}");
    assert!(rejoined.stop().success());
    assert!(standby.stop().success());
}
