//! The daemon tells systemd the truth: the real notify protocol on a Unix datagram socket
//! (NOTIFY_SOCKET), watchdog pings while every thread progresses, RELOADING/READY around a
//! SIGHUP that changes a risk limit without dropping the session, STOPPING on SIGTERM; and the
//! admin endpoint serves metrics that promtool accepts.

mod support;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::*;

/// Reads the notify socket on a thread of its own, as systemd does: the daemon's `send` blocks
/// once 10 datagrams (net.unix.max_dgram_qlen) wait unread, and a watchdog ping every 100 ms
/// fills that in a second while the test looks elsewhere.
fn listen(socket: UnixDatagram) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match socket.recv(&mut buf) {
                Ok(n) => {
                    if tx.send(String::from_utf8_lossy(&buf[..n]).to_string()).is_err() {
                        return; // the test is over
                    }
                }
                Err(e) => panic!("notify socket: {e}"),
            }
        }
    });
    rx
}

fn messages(socket: &mpsc::Receiver<String>, until: impl Fn(&[String]) -> bool, what: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while !until(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        match socket.recv_timeout(left) {
            Ok(message) => got.push(message),
            Err(_) => panic!("waiting for {what}; got {got:?}"),
        }
    }
    got
}

#[test]
fn notify_protocol_watchdog_reload_and_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    let socket_path = dir.path().join("notify.sock");
    let socket = listen(UnixDatagram::bind(&socket_path).unwrap());
    // WATCHDOG_USEC without WATCHDOG_PID: meant for us; pings every 100 ms.
    let daemon = Daemon::start_with_env(
        BIN,
        &config,
        &[("NOTIFY_SOCKET", socket_path.to_str().unwrap()), ("WATCHDOG_USEC", "200000")],
    );
    let got = messages(&socket, |m| m.iter().any(|x| x.contains("READY=1")), "READY=1");
    let ready_at = got.iter().position(|m| m.contains("READY=1")).unwrap();
    assert!(
        got[..ready_at].iter().any(|m| m.contains("STATUS=recovering") || m.contains("STATUS=replaying")),
        "{got:?}"
    );
    assert!(got[ready_at].contains("STATUS=serving"), "READY carries the serving status: {got:?}");
    let got =
        messages(&socket, |m| m.iter().filter(|x| x.contains("WATCHDOG=1")).count() >= 3, "watchdog pings");
    assert!(got.iter().any(|m| m.contains("WATCHDOG=1")));

    // Metrics: promtool accepts them, and they say ready.
    let admin = daemon.admin.expect("the ready line names the admin address");
    let metrics = http_get(admin, "/metrics"); // asserts status 200
    assert!(metrics.contains("petrel_ready 1"), "{metrics}");
    promtool_check_metrics(&metrics);
    http_get(admin, "/ready"); // panics unless 200

    // A session trades; SIGHUP with a lower max_order_qty applies it without dropping it.
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    alice.enter(1, b'B', 500, "AAPL", 5_853_300, b'0');
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, text.replace("max_order_qty = 10_000", "max_order_qty = 100")).unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let got = messages(&socket, |m| m.iter().any(|x| x.contains("READY=1")), "READY=1 after reload");
    let reloading = got.iter().position(|m| m.contains("RELOADING=1")).expect("RELOADING=1 first");
    assert!(got[reloading].contains("MONOTONIC_USEC="), "{got:?}");
    alice.enter(2, b'B', 500, "AAPL", 5_853_300, b'0');
    assert_eq!(alice.ouch(), OwnedOutbound::Rejected { user_ref: 2, reason: OuchReject::INVALID_QUANTITY.0 });
    // An invalid file is refused and said so; the running limits stay.
    std::fs::write(&config, "this is = not [valid").unwrap();
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let got =
        messages(&socket, |m| m.iter().any(|x| x.contains("READY=1")), "READY=1 after a refused reload");
    assert!(got.iter().any(|m| m.contains("reload refused")), "{got:?}");
    alice.enter(3, b'B', 50, "AAPL", 5_853_300, b'0');
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 3, .. }));

    // SIGTERM: STOPPING=1, End of Session, exit 0.
    let pid = daemon.pid();
    let status = daemon.stop();
    assert!(status.success(), "exit {status:?} for pid {pid}");
    let got = messages(&socket, |m| m.iter().any(|x| x.contains("STOPPING=1")), "STOPPING=1");
    assert!(got.iter().any(|m| m.contains("STOPPING=1")));
    assert_eq!(alice.recv(), Some(Got::EndOfSession));
}
