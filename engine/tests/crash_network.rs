//! Crash test through the network: two OUCH clients trade through the real daemon while it is
//! SIGKILLed at random moments (24 times, seeded), restarted each time, and the clients
//! reconnect asking for the messages they missed. A kill comes after a seeded number of trades,
//! while an order is on its way, not after a time: a slow machine trades as much per round as a
//! fast one. Required:
//! - every order whose Order Accepted a client received is in the journal;
//! - the state each restart recovers has the hash of a fresh replay of the journal;
//! - a match number never names two different executions (no match number repeats);
//! - each client's sequenced stream has no gap and no duplicate across the restarts.

mod support;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::Duration;
use support::*;

const PRICE: u64 = 5_853_300;
/// Most pairs of orders a round trades before its kill.
const KILL_AFTER_PAIRS_MAX: u64 = 100;

struct Trader {
    user: &'static str,
    password: &'static str,
    account: u32,
    next_ref: u32,
    /// The sequence number of the next sequenced message this client expects.
    next_seq: u64,
    client: Option<Client>,
}

impl Trader {
    /// Connects and logs in asking for everything after what it has seen; false if the daemon
    /// is not there.
    fn connect(&mut self, addr: std::net::SocketAddr) -> bool {
        let Ok(stream) = std::net::TcpStream::connect(addr) else { return false };
        drop(stream);
        let mut client = Client::connect(addr);
        match client.login(self.user, self.password, self.next_seq) {
            Got::LoginAccepted { sequence, .. } => {
                assert_eq!(
                    sequence, self.next_seq,
                    "{}: the stream resumes exactly where the client left it",
                    self.user
                );
                self.client = Some(client);
                true
            }
            other => panic!("{}: login failed: {other:?}", self.user),
        }
    }
}

/// Everything the clients were told, across all runs.
#[derive(Default)]
struct Seen {
    acked: HashSet<(u32, u32)>,
    executions: HashMap<u64, HashSet<(u32, u32, u32, u64)>>,
}

impl Seen {
    /// Reads one message if one is waiting; None when the connection is gone.
    fn take(&mut self, trader: &mut Trader) -> Option<Option<OwnedOutbound>> {
        let client = trader.client.as_mut()?;
        match client.recv() {
            Some(Got::Ouch(message)) => {
                trader.next_seq += 1;
                match &message {
                    OwnedOutbound::Accepted { user_ref, .. } => {
                        self.acked.insert((trader.account, *user_ref));
                    }
                    OwnedOutbound::Executed { user_ref, qty, price, match_number, .. } => {
                        self.executions.entry(*match_number).or_default().insert((
                            trader.account,
                            *user_ref,
                            *qty,
                            *price,
                        ));
                    }
                    _ => {}
                }
                Some(Some(message))
            }
            Some(Got::EndOfSession) | None => {
                trader.client = None;
                None
            }
            Some(other) => panic!("unexpected {other:?}"),
        }
    }
}

fn replay_hash(config: &std::path::Path) -> String {
    let out = Command::new(BIN).args(["journal", "replay", "--config"]).arg(config).output().unwrap();
    assert!(out.status.success(), "journal replay: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    text.lines()
        .find_map(|l| l.strip_prefix("state hash"))
        .map(|h| h.trim().to_string())
        .expect("state hash line")
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_order() {
    let kills: u32 = std::env::var("PETREL_CRASH_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(24);
    let mut rng: u64 =
        std::env::var("PETREL_CRASH_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_cafe);
    let mut next_random = move |below: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % below
    };
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    let mut alice =
        Trader { user: "ALICE", password: "alice", account: 0, next_ref: 1, next_seq: 1, client: None };
    let mut bob = Trader { user: "BOB", password: "bob", account: 1, next_ref: 1, next_seq: 1, client: None };
    let mut seen = Seen::default();
    for round in 0..=kills {
        if round > 0 {
            // The journal as the killed process left it must replay to what the restart recovers.
            let expected = replay_hash(&config);
            let daemon = Daemon::start(BIN, &config);
            let recovered: Vec<String> = daemon.log_lines("journal recovered");
            let line = recovered.last().expect("recovery is logged");
            assert!(
                line.contains(&format!("state_hash={expected}")),
                "round {round}: recovered {line}, replay gives {expected}"
            );
            run_round(daemon, round, kills, &mut alice, &mut bob, &mut seen, &mut next_random);
        } else {
            let daemon = Daemon::start(BIN, &config);
            run_round(daemon, round, kills, &mut alice, &mut bob, &mut seen, &mut next_random);
        }
    }
    // Every acknowledged order is in the journal.
    let out = Command::new(BIN)
        .args(["journal", "dump", "--format", "json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut journaled = HashSet::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        if record["payload"]["command"] == "new_order" {
            journaled.insert((
                record["payload"]["account"].as_u64().unwrap() as u32,
                record["payload"]["client_ref"].as_u64().unwrap() as u32,
            ));
        }
    }
    let missing: Vec<_> = seen.acked.difference(&journaled).collect();
    assert!(missing.is_empty(), "acknowledged orders missing from the journal: {missing:?}");
    assert!(seen.acked.len() > 100, "the load acknowledged enough orders: {}", seen.acked.len());
    // No match number names two different executions; each has its two sides.
    assert!(!seen.executions.is_empty());
    for (number, sides) in &seen.executions {
        let accounts: HashSet<u32> = sides.iter().map(|s| s.0).collect();
        assert!(sides.len() <= 2 && accounts.len() == sides.len(), "match {number} repeats: {sides:?}");
    }
}

fn run_round(
    daemon: Daemon,
    round: u32,
    kills: u32,
    alice: &mut Trader,
    bob: &mut Trader,
    seen: &mut Seen,
    next_random: &mut impl FnMut(u64) -> u64,
) {
    assert!(alice.connect(daemon.addr) && bob.connect(daemon.addr));
    let last = round == kills;
    let kill_after_pairs = (!last).then(|| next_random(KILL_AFTER_PAIRS_MAX));
    // Trade until the daemon dies (or, in the last round, for a fixed number of pairs).
    let mut pairs = 0;
    'trade: loop {
        if last && pairs == 50 {
            break;
        }
        let (a_ref, b_ref) = (alice.next_ref, bob.next_ref);
        alice.next_ref += 1;
        bob.next_ref += 1;
        let Some(client) = alice.client.as_mut() else { break };
        client.enter(a_ref, b'B', 10, "AAPL", PRICE, b'0');
        if kill_after_pairs == Some(pairs) {
            daemon.signal(nix::sys::signal::Signal::SIGKILL);
        }
        loop {
            match seen.take(alice) {
                None => break 'trade,
                Some(Some(OwnedOutbound::Accepted { user_ref, .. })) if user_ref == a_ref => break,
                Some(_) => {}
            }
        }
        let Some(client) = bob.client.as_mut() else { break };
        client.enter(b_ref, b'S', 10, "AAPL", PRICE, b'3');
        loop {
            match seen.take(bob) {
                None => break 'trade,
                Some(Some(OwnedOutbound::Executed { user_ref, .. })) if user_ref == b_ref => break,
                Some(Some(OwnedOutbound::Canceled { user_ref, .. })) if user_ref == b_ref => break,
                Some(_) => {}
            }
        }
        pairs += 1;
    }
    if kill_after_pairs.is_some() {
        // Drain what the clients can still read, then forget the connections.
        while seen.take(alice).is_some() {}
        while seen.take(bob).is_some() {}
        alice.client = None;
        bob.client = None;
        drop(daemon);
    } else {
        // Catch up with Alice's fills before the final stop.
        alice.client.as_mut().unwrap().stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        assert!(daemon.stop().success());
        while seen.take(alice).is_some() {}
        while seen.take(bob).is_some() {}
    }
}
