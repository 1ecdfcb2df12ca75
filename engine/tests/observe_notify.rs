//! The notify protocol against a real AF_UNIX datagram socket, as systemd listens on it.
//!
//! One test per binary on purpose: it sets NOTIFY_SOCKET and WATCHDOG_* for the whole
//! process, which a second concurrent test would see.

use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use petrel_engine::notify::{Notifier, ThreadProgress, Watchdog};

fn recv(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket.recv(&mut buf).expect("a notification datagram");
    String::from_utf8(buf[..n].to_vec()).expect("notifications are text")
}

fn assert_nothing_pending(socket: &UnixDatagram) {
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("expected no notification, got {other:?}"),
    }
    socket.set_nonblocking(false).unwrap();
}

#[test]
fn lifecycle_messages_reach_the_notify_socket_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    // A lost datagram must fail the test, not hang it.
    socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    std::env::set_var("NOTIFY_SOCKET", &path);
    std::env::set_var("WATCHDOG_USEC", "4000000");
    std::env::set_var("WATCHDOG_PID", std::process::id().to_string());

    let notifier = Notifier::from_env().unwrap();
    assert!(notifier.is_enabled());
    assert_eq!(notifier.watchdog_interval(), Some(Duration::from_secs(2)));

    notifier.status("replaying journal: 3.2M of 10M\nbytes").unwrap();
    assert_eq!(recv(&socket), "STATUS=replaying journal: 3.2M of 10M bytes\n");

    notifier.ready("ready: 0 sessions").unwrap();
    assert_eq!(recv(&socket), "READY=1\nSTATUS=ready: 0 sessions\n");

    // One real pinned-thread stand-in whose heartbeat the watchdog reads.
    let heartbeats = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::new(Barrier::new(2));
    let stuck = Arc::new(Barrier::new(2));
    let worker = {
        let (heartbeats, stop) = (heartbeats.clone(), stop.clone());
        let (stopped, stuck) = (stopped.clone(), stuck.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                heartbeats.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
            stopped.wait();
            // Stuck: no more heartbeats until the test releases it.
            stuck.wait();
        })
    };
    let progress = || [ThreadProgress { heartbeats: heartbeats.load(Ordering::Relaxed), idle_empty: false }];
    let mut watchdog = Watchdog::new(1);
    while heartbeats.load(Ordering::Relaxed) == 0 {
        std::thread::yield_now();
    }
    assert!(watchdog.tick(&progress()));
    notifier.watchdog().unwrap();
    assert_eq!(recv(&socket), "WATCHDOG=1\n");

    stop.store(true, Ordering::Relaxed);
    // Past this barrier the worker has made its last heartbeat.
    stopped.wait();
    // Take the baseline after the last beat, then the stuck thread blocks every later ping.
    if watchdog.tick(&progress()) {
        notifier.watchdog().unwrap();
        assert_eq!(recv(&socket), "WATCHDOG=1\n");
    }
    for _ in 0..3 {
        assert!(!watchdog.tick(&progress()), "a stuck thread must stop the pings");
        assert_eq!(watchdog.stalled(), &[0]);
    }
    assert_nothing_pending(&socket);

    notifier.reloading("reloading risk limits and users").unwrap();
    let reload = recv(&socket);
    let lines: Vec<&str> = reload.lines().collect();
    assert_eq!(lines.len(), 3, "{reload:?}");
    assert_eq!(lines[0], "RELOADING=1");
    let usec: u64 = lines[1]
        .strip_prefix("MONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("MONOTONIC_USEC second: {reload:?}"))
        .parse()
        .expect("MONOTONIC_USEC is a whole number");
    assert!(usec > 0);
    assert_eq!(lines[2], "STATUS=reloading risk limits and users");
    notifier.ready("reload refused: users.toml:3:1: bad hash; running configuration kept").unwrap();
    assert_eq!(
        recv(&socket),
        "READY=1\nSTATUS=reload refused: users.toml:3:1: bad hash; running configuration kept\n"
    );

    notifier.stopping("stopping: draining 2 commands").unwrap();
    assert_eq!(recv(&socket), "STOPPING=1\nSTATUS=stopping: draining 2 commands\n");
    assert_nothing_pending(&socket);

    stuck.wait();
    worker.join().unwrap();

    // A watchdog meant for another process (a child that inherited the environment) is off.
    std::env::set_var("WATCHDOG_PID", (std::process::id() + 1).to_string());
    assert_eq!(Notifier::from_env().unwrap().watchdog_interval(), None);

    // Without NOTIFY_SOCKET nothing is sent and nothing fails.
    std::env::remove_var("NOTIFY_SOCKET");
    let off = Notifier::from_env().unwrap();
    assert!(!off.is_enabled());
    off.ready("x").unwrap();
    off.reloading("x").unwrap();
    off.watchdog().unwrap();
    assert_nothing_pending(&socket);
}
