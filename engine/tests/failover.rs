//! Automatic failover decided by etcd, on real processes: three etcd members (Debian's
//! etcd-server) and a primary/standby pair on loopback addresses of this test's own. The
//! primary is killed with SIGKILL or stopped with SIGSTOP; clients know both hosts' addresses.
//! Times are printed, not asserted (docs/PERFORMANCE.md has the figures).

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use petrel_engine::core::Side;
use support::pair::*;
use support::{wait_for, Client, Daemon, Got, OwnedOutbound, BIN};

/// Three etcd members on `ip`, each with its own data directory; killed when dropped.
struct Etcd {
    ip: IpAddr,
    members: Vec<Child>,
    endpoints: Vec<String>,
    dir: tempfile::TempDir,
}

impl Etcd {
    fn start(ip: IpAddr) -> Etcd {
        let endpoints: Vec<String> =
            (0..3).map(|i| format!("http://{ip}:{}", 24379 + 10 * (i + 1))).collect();
        let mut etcd = Etcd { ip, members: Vec::new(), endpoints, dir: tempfile::tempdir().unwrap() };
        etcd.spawn();
        etcd
    }

    /// Starts the three members (again: on their data directories, a restart).
    fn spawn(&mut self) {
        let etcd = which("etcd");
        let ip = self.ip;
        let peer = |i: usize| format!("http://{ip}:{}", 24380 + i);
        let cluster: Vec<String> = (0..3).map(|i| format!("m{i}={}", peer(i))).collect();
        self.members = (0..3)
            .map(|i| {
                Command::new(&etcd)
                    .args(["--name", &format!("m{i}")])
                    .arg("--data-dir")
                    .arg(self.dir.path().join(format!("m{i}")))
                    .args([
                        "--listen-client-urls",
                        &self.endpoints[i],
                        "--advertise-client-urls",
                        &self.endpoints[i],
                    ])
                    .args(["--listen-peer-urls", &peer(i), "--initial-advertise-peer-urls", &peer(i)])
                    .args(["--initial-cluster", &cluster.join(","), "--initial-cluster-state", "new"])
                    .args(["--heartbeat-interval", "100", "--election-timeout", "1000"])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start etcd")
            })
            .collect();
        wait_for("the etcd cluster answering", || self.healthy());
    }

    /// Every member killed with SIGKILL.
    fn kill(&mut self) {
        for member in &mut self.members {
            let _ = member.kill();
            let _ = member.wait();
        }
        self.members.clear();
    }

    fn healthy(&self) -> bool {
        self.endpoints.iter().all(|e| {
            let out = Command::new("curl").args(["-s", "-m", "1", &format!("{e}/health")]).output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("\"health\":\"true\""))
        })
    }

    fn section(&self) -> String {
        let endpoints: Vec<String> = self.endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        format!("\n[failover]\nmode = \"etcd\"\nendpoints = [{}]\nlease_ttl_s = 2\n", endpoints.join(", "))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}

fn which(program: &str) -> PathBuf {
    for dir in ["/usr/bin", "/usr/local/bin", "/usr/sbin"] {
        let path = Path::new(dir).join(program);
        if path.exists() {
            return path;
        }
    }
    panic!("{program} is not installed: the failover tests need Debian's etcd-server (cargo xtask ci installs it)")
}

/// The pair: host 0 starts as the primary, host 1 as its standby; each serves clients at
/// `IP:15302` once it is the primary.
struct Pair {
    hosts: [Host; 2],
    gateways: [SocketAddr; 2],
}

fn pair(test: u8, etcd: &Etcd) -> Pair {
    let (a, b) = own_addresses(test);
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "replication.secret", SECRET);
    let hosts = [host_with(a, b, &secret, &etcd.section()), host_with(b, a, &secret, &etcd.section())];
    std::mem::forget(secrets); // the secret must outlive both engines
    Pair { hosts, gateways: [SocketAddr::new(a, 15302), SocketAddr::new(b, 15302)] }
}

/// Enters an order at whichever host acknowledges it, as a client configured with both
/// hosts' addresses does (a host that does not answer within a moment is skipped: a stopped
/// process still completes TCP handshakes); the host. Each attempt takes the next `user_ref`:
/// an order a fenced primary journaled without answering may reach the next primary too.
fn first_acknowledged(gateways: &[SocketAddr; 2], user: &str, user_ref: &mut u32) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no host acknowledged an order of {user} within a minute");
        for (i, addr) in gateways.iter().enumerate() {
            // A host may go (killed) or come (a standby promoted) at any moment.
            let Ok(mut client) = Client::try_connect(*addr, Duration::from_millis(200)) else {
                continue;
            };
            let mut login = format!("{user:<6}{user:<10}{:<10}", "").into_bytes();
            login.extend_from_slice(format!("{:>20}", 0).as_bytes());
            if client.try_send_packet(b'L', &login).is_err()
                || !matches!(client.recv_within(Duration::from_millis(500)), Some(Got::LoginAccepted { .. }))
            {
                continue;
            }
            *user_ref += 1;
            let price = AAPL_585 + 100 * u64::from(*user_ref % 50 + 1);
            if client.try_enter(*user_ref, b'S', 1, "AAPL", price, b'0').is_err() {
                *user_ref -= 1; // never entered: the next attempt may take it
                continue;
            }
            if let Some(Got::Ouch(OwnedOutbound::Accepted { .. })) =
                client.recv_within(Duration::from_secs(2))
            {
                return i;
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_killed_primary_is_replaced_by_its_standby_within_seconds_ten_times_over() {
    let (a, _) = own_addresses(4);
    let etcd = Etcd::start(a);
    let pair = pair(5, &etcd);
    let mut primary = Daemon::start(BIN, &pair.hosts[0].primary_config);
    let mut standby = Daemon::start_standby(BIN, &pair.hosts[1].standby_config);
    caught_up(&primary, &standby);
    // A client that reaches the standby is told at once to try the other host.
    let mut lost = Client::connect(pair.gateways[1]);
    assert_eq!(lost.login("bob", "bob", 0), Got::LoginRejected(b'S'), "the standby turns logins away");
    let mut times = Vec::new();
    let mut user_ref = 0u32;
    for round in 1..=10usize {
        let (old, new) = ((round + 1) % 2, round % 2);
        // Orders acknowledged by the primary: each is on the standby too (ack = "standby").
        for _ in 0..3 {
            assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut user_ref), old, "round {round}");
        }
        let killed = Instant::now();
        primary.kill();
        let at = first_acknowledged(&pair.gateways, "bob", &mut user_ref);
        times.push(killed.elapsed());
        assert_eq!(at, new, "round {round}: the standby took over");
        let s = status(&standby);
        assert_eq!(s["failover"]["leader"], true, "round {round}: {s}");
        assert_eq!(s["replication"]["epoch"], round as u64 + 1, "round {round}: {s}");
        // The old primary, started again as it is configured (a primary), finds the newer epoch
        // in etcd, rejoins by itself (cutting what it journaled after the new epoch began) and
        // follows.
        let rejoined = Daemon::start_standby(BIN, &pair.hosts[old].primary_config);
        primary = std::mem::replace(&mut standby, rejoined);
        caught_up(&primary, &standby);
    }
    times.sort();
    println!(
        "kill to first acknowledgement on the new primary, 10 failovers: p50 {:?}, max {:?} (lease_ttl_s = 2)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    // Every acknowledged order is on the last primary: its journal holds all of Bob's.
    primary.stop();
    assert!(standby.stop().success());
    all_orders_journaled(pair.hosts[new_host(10)].dir.path(), user_ref);
}

fn new_host(round: usize) -> usize {
    round % 2
}

#[test]
fn a_primary_stopped_past_its_lease_acknowledges_nothing_after_it_resumes() {
    // Alice is logged in to the primary before it stops, and keeps sending.
    let (_etcd, pair, primary, standby, mut alice) = trading_pair(6);
    let mut acknowledged: Vec<(usize, Side, u32)> = vec![(0, Side::Buy, 1)];
    primary.signal(Signal::SIGSTOP);
    // Sent while it is stopped: the kernel holds them for it.
    for user_ref in 2..=4 {
        alice.enter(user_ref, b'B', 1, "AAPL", AAPL_585, b'0');
    }
    // The standby takes over once the lease expires.
    let mut bob_ref = 0;
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut bob_ref), 1);
    acknowledged.push((1, Side::Sell, bob_ref));
    primary.signal(Signal::SIGCONT);
    for user_ref in 5..=6 {
        alice.enter(user_ref, b'B', 1, "AAPL", AAPL_585, b'0');
    }
    // The old primary answers none of those sent after SIGCONT (its lease is gone), and stops
    // (`None`: silent for 3 s, or closed). One sent just before the stop took hold could have
    // been acknowledged while its lease held: the checker below finds any such in epoch 1.
    while let Some(answered) = alice.recv_within(Duration::from_secs(3)) {
        if let Got::Ouch(OwnedOutbound::Accepted { user_ref, .. }) = answered {
            assert!(user_ref < 5, "the stopped primary acknowledged after its lease ran out: {answered:?}");
            acknowledged.push((0, Side::Buy, user_ref));
        }
    }
    let lost = primary.wait_log_lines("the leader lease was lost", Duration::from_secs(30));
    assert!(!lost.is_empty(), "the old primary says why it stops");
    assert!(!primary.wait_exit().success());
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut bob_ref), 1);
    acknowledged.push((1, Side::Sell, bob_ref));
    let s = status(&standby);
    assert_eq!(s["failover"]["leader"], true, "{s}");
    assert!(standby.stop().success());
    no_two_primaries_in_one_epoch(&pair, &acknowledged);
}

/// The host's journal (its data directory `dir`) holds at least `acknowledged` new orders:
/// every one a client heard acknowledged, since each attempt took a new UserRefNum.
fn all_orders_journaled(dir: &Path, acknowledged: u32) {
    let orders = records(dir)
        .iter()
        .filter(|(_, _, p)| {
            matches!(
                petrel_engine::input_record::decode(p),
                Ok((petrel_engine::core::Command::NewOrder(_), _))
            )
        })
        .count();
    assert!(orders >= acknowledged as usize, "{orders} orders journaled, {acknowledged} acknowledged");
}

/// The checker over both hosts' journals and the clients' logs: epoch 2 begins at the sequence
/// the new primary's epoch history names; every order a client heard acknowledged by the old
/// primary, host 0, lies before it, in both journals alike, and every one the new primary,
/// host 1, acknowledged lies at or after it. An order is found by its side (Alice buys, Bob
/// sells) and UserRefNum.
fn no_two_primaries_in_one_epoch(pair: &Pair, acknowledged: &[(usize, Side, u32)]) {
    let epochs = std::fs::read_to_string(pair.hosts[1].dir.path().join("journal/input.epochs")).unwrap();
    let second: u64 = epochs
        .lines()
        .find_map(|l| l.strip_prefix("2 "))
        .unwrap_or_else(|| panic!("no epoch 2 in the new primary's epoch history:\n{epochs}"))
        .trim()
        .parse()
        .unwrap();
    let journals = [records(pair.hosts[0].dir.path()), records(pair.hosts[1].dir.path())];
    let sequence_of = |host: usize, side: Side, user_ref: u32| {
        journals[host].iter().find_map(|(sequence, _, payload)| {
            match petrel_engine::input_record::decode(payload) {
                Ok((petrel_engine::core::Command::NewOrder(o), _))
                    if o.side == side && o.client_ref.0 == user_ref =>
                {
                    Some(*sequence)
                }
                _ => None,
            }
        })
    };
    for &(host, side, user_ref) in acknowledged {
        let at = sequence_of(host, side, user_ref).unwrap_or_else(|| {
            panic!("order {side:?} {user_ref} acknowledged by host {host} is not in its journal")
        });
        if host == 0 {
            assert!(
                at < second,
                "the old primary acknowledged {side:?} {user_ref} at {at}, in epoch 2 (from {second})"
            );
            let same = |h: usize| journals[h].iter().find(|(s, _, _)| *s == at).map(|(_, _, p)| p.clone());
            assert_eq!(same(0), same(1), "record {at} differs between the two journals");
        } else {
            assert!(
                at >= second,
                "the new primary acknowledged {side:?} {user_ref} at {at}, before its epoch (from {second})"
            );
        }
    }
}

#[test]
fn a_leader_key_overwritten_by_hand_fences_the_primary_and_is_refused_by_the_standby() {
    let (etcd, _pair, primary, standby) = caught_up_pair(8, pair);
    // Someone writes the leader key by hand, with a value no engine wrote.
    etcd_put(&etcd, "/petrel/test-pair/leader", "{\"epoch\":0}");
    // The primary no longer holds the key it wrote: fenced, it stops rather than guess.
    assert!(!primary.wait_log_lines("no longer this engine's", Duration::from_secs(30)).is_empty());
    assert!(!primary.wait_exit().success());
    // The standby refuses the key (counted), and does not take over on its word.
    wait_for("the hand-written key refused", || {
        status(&standby)["failover"]["refused_total"].as_u64().unwrap_or(0) > 0
    });
    let s = status(&standby);
    assert_eq!(s["failover"]["leader"], false, "{s}");
    assert_eq!(s["replication"]["role"], "standby", "{s}");
    drop(standby);
}

/// Writes `value` at `key` by hand, as an operator with etcdctl would (no lease).
fn etcd_put(etcd: &Etcd, key: &str, value: &str) {
    let put = Command::new(which("etcdctl"))
        .args(["--endpoints", &etcd.endpoints.join(","), "put", key, value])
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
}

#[test]
fn a_leader_key_of_an_older_epoch_written_by_hand_is_refused_at_start_naming_it() {
    let (etcd, pair, primary, standby) = caught_up_pair(22, pair);
    let etcd = &etcd;
    // A failover: host 1 is the primary of epoch 2; stopped cleanly, it hands the key back.
    primary.kill();
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut 0), 1);
    assert!(standby.stop().success());
    assert_eq!(etcd_value(etcd, "/petrel/test-pair/leader"), None);
    // Someone puts back a key of epoch 1, well formed, naming the old primary.
    let old = format!(r#"{{"epoch":1,"node":"{}"}}"#, SocketAddr::new(own_addresses(23).0, 15300));
    etcd_put(etcd, "/petrel/test-pair/leader", &old);
    // Host 1 refuses to follow it or serve beside it: it does not start, and says why.
    let (ok, said) = run_cli(&["run"], &pair.hosts[1].primary_config);
    assert!(!ok, "{said}");
    assert!(
        said.contains("/petrel/test-pair/leader names") && said.contains("an epoch older than this engine's"),
        "{said}"
    );
    assert_eq!(etcd_value(etcd, "/petrel/test-pair/leader"), Some(old), "the key is left for the operator");
}

#[test]
fn with_etcd_down_nobody_is_promoted_the_primary_stops_acknowledging_and_one_serves_again() {
    let (mut etcd, pair, primary, standby, mut alice) = trading_pair(10);

    etcd.kill();
    // Fenced once its lease is no longer certainly valid: the standby has the order, but the
    // primary cannot know it still leads, so it answers nothing.
    wait_for("the primary fenced", || status(&primary)["failover"]["fenced"] == true);
    alice.enter(2, b'B', 1, "AAPL", AAPL_585, b'0');
    let answered = alice.recv_within(Duration::from_secs(3));
    assert!(answered.is_none(), "a fenced primary answered: {answered:?}");
    let s = status(&standby);
    assert_eq!(s["replication"]["role"], "standby", "nobody is promoted without etcd: {s}");

    // etcd back: exactly one engine serves (the primary, its lease restored, or the standby,
    // if it expired first), and Alice's order is answered by it.
    etcd.spawn();
    let serving = first_acknowledged(&pair.gateways, "bob", &mut 0);
    let other = status(if serving == 0 { &standby } else { &primary });
    assert_ne!(other["failover"]["leader"], true, "two leaders: {other}");
}

/// `wait_caught_up`, saying what both engines logged when it does not happen.
fn caught_up(primary: &Daemon, standby: &Daemon) {
    for _ in 0..3_000 {
        let s = status(primary);
        if s["replication"]["connected"] == true
            && s["replication"]["lag_records"] == 0
            && s["replication"]["halted"] == false
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "the standby did not catch up within a minute: {}\nprimary said:\n{}\nstandby said:\n{}",
        status(primary),
        primary.log_lines("").join("\n"),
        standby.log_lines("").join("\n")
    );
}

/// etcd on this test's address `test` and a pair made by `make` on `test + 1`, its primary and
/// standby started and caught up.
fn caught_up_pair(test: u8, make: fn(u8, &Etcd) -> Pair) -> (Etcd, Pair, Daemon, Daemon) {
    let (a, _) = own_addresses(test);
    let etcd = Etcd::start(a);
    let pair = make(test + 1, &etcd);
    let primary = Daemon::start(BIN, &pair.hosts[0].primary_config);
    let standby = Daemon::start_standby(BIN, &pair.hosts[1].standby_config);
    caught_up(&primary, &standby);
    (etcd, pair, primary, standby)
}

/// etcd on this test's address `test`, a caught-up pair on `test + 1`, and Alice logged in to
/// the primary with one order acknowledged.
fn trading_pair(test: u8) -> (Etcd, Pair, Daemon, Daemon, Client) {
    let (a, _) = own_addresses(test);
    let etcd = Etcd::start(a);
    let pair = pair(test + 1, &etcd);
    let primary = Daemon::start(BIN, &pair.hosts[0].primary_config);
    let standby = Daemon::start_standby(BIN, &pair.hosts[1].standby_config);
    wait_caught_up(&primary);
    let mut alice = Client::connect(pair.gateways[0]);
    assert!(matches!(alice.login("alice", "alice", 0), Got::LoginAccepted { .. }));
    alice.enter(1, b'B', 1, "AAPL", AAPL_585, b'0');
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    (etcd, pair, primary, standby, alice)
}

/// TCP proxies in front of the etcd members, on the primary's own address, that the test can
/// cut: the primary's only way to etcd, while its clients and its standby still reach it.
struct EtcdProxy {
    endpoints: Vec<String>,
    cut: Arc<AtomicBool>,
}

impl EtcdProxy {
    fn start(ip: IpAddr, members: &[String]) -> EtcdProxy {
        let cut = Arc::new(AtomicBool::new(false));
        let mut endpoints = Vec::new();
        for (i, member) in members.iter().enumerate() {
            let listener = TcpListener::bind((ip, 24500 + i as u16)).unwrap();
            endpoints.push(format!("http://{}", listener.local_addr().unwrap()));
            let target: SocketAddr = member.trim_start_matches("http://").parse().unwrap();
            let cut = Arc::clone(&cut);
            std::thread::spawn(move || {
                for client in listener.incoming().map_while(Result::ok) {
                    match TcpStream::connect(target) {
                        Ok(server) if !cut.load(Ordering::Acquire) => relay(client, server, &cut),
                        _ => drop(client),
                    }
                }
            });
        }
        EtcdProxy { endpoints, cut }
    }

    fn section(&self) -> String {
        let endpoints: Vec<String> = self.endpoints.iter().map(|e| format!("\"{e}\"")).collect();
        format!("\n[failover]\nmode = \"etcd\"\nendpoints = [{}]\nlease_ttl_s = 2\n", endpoints.join(", "))
    }

    /// From now on every connection through the proxies is closed, new ones at once.
    fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Release);
    }
}

/// Copies both ways until either side closes or the proxy is cut.
fn relay(client: TcpStream, server: TcpStream, cut: &Arc<AtomicBool>) {
    for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
        let cut = Arc::clone(cut);
        std::thread::spawn(move || {
            from.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
            let mut buf = [0u8; 16 * 1024];
            while !cut.load(Ordering::Acquire) {
                match from.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) => {}
                    Err(_) => break,
                }
            }
            let _ = from.shutdown(std::net::Shutdown::Both);
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    }
}

#[test]
fn a_primary_cut_off_from_etcd_but_not_from_clients_fences_itself_and_the_standby_takes_over() {
    let (a, _) = own_addresses(12);
    let etcd = Etcd::start(a);
    let (pa, pb) = own_addresses(13);
    let proxy = EtcdProxy::start(pa, &etcd.endpoints);
    let secrets = tempfile::tempdir().unwrap();
    let secret = write_secret(secrets.path(), "replication.secret", SECRET);
    let hosts = [host_with(pa, pb, &secret, &proxy.section()), host_with(pb, pa, &secret, &etcd.section())];
    let gateways = [SocketAddr::new(pa, 15302), SocketAddr::new(pb, 15302)];
    let primary = Daemon::start(BIN, &hosts[0].primary_config);
    let standby = Daemon::start_standby(BIN, &hosts[1].standby_config);
    wait_caught_up(&primary);
    let mut alice = Client::connect(gateways[0]);
    assert!(matches!(alice.login("alice", "alice", 0), Got::LoginAccepted { .. }));
    alice.enter(1, b'B', 1, "AAPL", AAPL_585, b'0');
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));

    // The primary loses etcd, not its clients: fenced, it acknowledges nothing, and once its
    // lease has expired in etcd the standby takes over.
    proxy.cut(true);
    wait_for("the primary fenced", || status(&primary)["failover"]["fenced"] == true);
    alice.enter(2, b'B', 1, "AAPL", AAPL_585, b'0');
    let mut bob_ref = 0;
    assert_eq!(first_acknowledged(&gateways, "bob", &mut bob_ref), 1, "the standby took over");
    let answered = alice.recv_within(Duration::from_secs(1));
    assert!(
        !matches!(answered, Some(Got::Ouch(OwnedOutbound::Accepted { .. }))),
        "the fenced primary acknowledged: {answered:?}"
    );
    // etcd reachable again, it learns its lease is gone, and stops (to rejoin at its next start).
    proxy.cut(false);
    assert!(!primary.wait_log_lines("the leader lease was lost", Duration::from_secs(30)).is_empty());
    assert!(!primary.wait_exit().success());
    assert_eq!(status(&standby)["failover"]["leader"], true);
    assert!(standby.stop().success());
    let pair = Pair { hosts, gateways };
    let acknowledged = [(0, Side::Buy, 1), (1, Side::Sell, bob_ref)];
    no_two_primaries_in_one_epoch(&pair, &acknowledged);
}

/// [`pair`] with `on_standby_loss = "continue"` on both hosts: the primary goes on alone after
/// losing its standby, and tells etcd (`<prefix>/standby`) first.
fn continue_pair(test: u8, etcd: &Etcd) -> Pair {
    let pair = pair(test, etcd);
    for host in &pair.hosts {
        for config in [&host.primary_config, &host.standby_config] {
            let text = std::fs::read_to_string(config).unwrap();
            assert!(text.contains("on_standby_loss = \"halt\""), "support/pair.rs's policy moved");
            let text = text.replace("on_standby_loss = \"halt\"", "on_standby_loss = \"continue\"");
            std::fs::write(config, text).unwrap();
        }
    }
    pair
}

/// The value of `key` in etcd, as `etcdctl` reads it (`None`: absent).
fn etcd_value(etcd: &Etcd, key: &str) -> Option<String> {
    let out = Command::new(which("etcdctl"))
        .args(["--endpoints", &etcd.endpoints.join(","), "get", key, "--print-value-only"])
        .env("ETCDCTL_API", "3")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    (!text.is_empty()).then_some(text)
}

#[test]
fn with_continue_a_killed_primary_whose_standby_was_in_sync_is_replaced_by_it_losing_nothing() {
    let (a, _) = own_addresses(14);
    let etcd = Etcd::start(a);
    let pair = continue_pair(15, &etcd);
    let primary = Daemon::start(BIN, &pair.hosts[0].primary_config);
    // Without a standby from its start, the primary acknowledges alone: before it is ready it
    // has said in etcd that a standby is not promotable (one that followed it before a restart
    // would otherwise still read true).
    let mark =
        |epoch: u64, promotable: bool| Some(format!(r#"{{"epoch":{epoch},"promotable":{promotable}}}"#));
    assert_eq!(etcd_value(&etcd, "/petrel/test-pair/standby"), mark(1, false));
    let mut user_ref = 0u32;
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut user_ref), 0, "acknowledged alone");
    let standby = Daemon::start_standby(BIN, &pair.hosts[1].standby_config);
    caught_up(&primary, &standby);
    wait_for("the standby promotable", || status(&primary)["replication"]["standby_promotable"] == true);
    // Once the standby has caught up, etcd says so.
    wait_for("etcd to say the standby is promotable", || {
        etcd_value(&etcd, "/petrel/test-pair/standby") == mark(1, true)
    });
    for _ in 0..3 {
        assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut user_ref), 0);
    }
    primary.kill();
    // Cut off, the standby cannot tell by itself whether its primary went on alone; etcd says
    // it did not, so it takes over, and acknowledges alone in its own epoch (said first).
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut user_ref), 1, "the standby took over");
    assert_eq!(etcd_value(&etcd, "/petrel/test-pair/standby"), mark(2, false));
    let s = status(&standby);
    assert_eq!(s["failover"]["leader"], true, "{s}");
    assert_eq!(s["replication"]["epoch"], 2, "{s}");
    // Every acknowledged order is on the new primary: its journal holds all of Bob's.
    assert!(standby.stop().success());
    all_orders_journaled(pair.hosts[1].dir.path(), user_ref);
}

#[test]
fn with_continue_a_standby_its_primary_went_on_without_does_not_take_the_leader_key() {
    let (etcd, pair, primary, standby) = caught_up_pair(16, continue_pair);
    wait_for("the standby promotable", || status(&primary)["replication"]["standby_promotable"] == true);
    let mut bob = login(pair.gateways[0]);
    bob.enter(1, b'S', 1, "AAPL", AAPL_585 + 100, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    let epoch = status(&primary)["replication"]["epoch"].as_u64().unwrap();

    // The standby stops answering: the primary tells etcd it is not promotable, then
    // acknowledges alone.
    standby.signal(Signal::SIGSTOP);
    bob.enter(2, b'S', 1, "AAPL", AAPL_585 + 200, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 2, .. }));
    let mark = etcd_value(&etcd, "/petrel/test-pair/standby").expect("the standby key written");
    let mark: serde_json::Value = serde_json::from_str(&mark).unwrap();
    assert_eq!(mark, serde_json::json!({ "epoch": epoch, "promotable": false }));
    assert!(metrics(&primary).contains("petrel_failover_standby_promotable 0"));
    assert_eq!(status(&primary)["failover"]["standby_promotable"], false);

    // The primary dies; the standby resumes. It lacks order 2, so it must not take over.
    primary.kill();
    standby.signal(Signal::SIGCONT);
    let refused = standby.wait_log_lines("acknowledged without this standby", Duration::from_secs(60));
    assert!(!refused.is_empty(), "the standby says why it does not take over: {:?}", standby.log_lines(""));
    assert_eq!(etcd_value(&etcd, "/petrel/test-pair/leader"), None, "nobody took the leader key");
    let s = status(&standby);
    assert_eq!(s["replication"]["role"], "standby", "{s}");
    assert_eq!(s["failover"]["leader"], false, "{s}");
    assert_eq!(s["failover"]["promotions_total"], 0, "{s}");

    // An operator who accepts the loss still promotes it by hand.
    // It takes the leader key first, as the watcher would have: the old primary, restarted,
    // finds the newer epoch there instead of a free key.
    let (ok, said) = run_cli(&["promote", "--force", "--alone"], &pair.hosts[1].standby_config);
    assert!(ok && said.contains("forced") && said.contains("took the leader key for epoch"), "{said}");
    assert!(!standby.wait_log_lines("ready: gateway listening", Duration::from_secs(60)).is_empty());
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut 10), 1, "the promoted standby serves");
    let leader =
        etcd_value(&etcd, "/petrel/test-pair/leader").expect("the promoted standby holds the leader key");
    let leader: serde_json::Value = serde_json::from_str(&leader).unwrap();
    assert_eq!(leader["epoch"], epoch + 1, "{leader}");
    assert_eq!(status(&standby)["failover"]["leader"], true);
    drop(standby);
}

#[test]
fn a_promotion_by_hand_is_refused_while_the_leader_key_is_held() {
    let (_etcd, pair, primary, standby) = caught_up_pair(20, pair);
    // The primary serves and holds the key: a promotion by hand would make a second primary
    // that nobody fences. Refused, even forced, naming the key.
    let (ok, said) = run_cli(&["promote", "--force", "--alone"], &pair.hosts[1].standby_config);
    assert!(!ok && said.contains("/petrel/test-pair/leader is held"), "{said}");
    assert_eq!(status(&standby)["role"], "standby");
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut 0), 0, "the primary still serves");
    drop(primary);
}

#[test]
fn with_continue_a_standby_that_caught_up_again_after_its_primary_went_on_alone_takes_over() {
    let (etcd, pair, primary, standby) = caught_up_pair(18, continue_pair);
    let mut bob = login(pair.gateways[0]);
    standby.signal(Signal::SIGSTOP);
    bob.enter(1, b'S', 1, "AAPL", AAPL_585 + 100, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }), "acknowledged alone");
    let promotable = || {
        let mark = etcd_value(&etcd, "/petrel/test-pair/standby").expect("the standby key written");
        serde_json::from_str::<serde_json::Value>(&mark).unwrap()["promotable"].clone()
    };
    assert_eq!(promotable(), false);

    // Back, the standby catches up, and the primary says so in etcd.
    standby.signal(Signal::SIGCONT);
    wait_for("etcd told the standby is promotable again", || promotable() == true);
    assert!(metrics(&primary).contains("petrel_failover_standby_promotable 1"));
    let mut user_ref = 1u32;
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut user_ref), 0);

    // So when the primary dies, the standby takes over by itself, with every order.
    primary.kill();
    assert_eq!(first_acknowledged(&pair.gateways, "bob", &mut user_ref), 1, "the standby took over");
    assert_eq!(status(&standby)["failover"]["promotions_total"], 1);
    assert!(standby.stop().success());
    all_orders_journaled(pair.hosts[1].dir.path(), user_ref);
}
