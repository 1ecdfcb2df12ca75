//! `GET /latency` on the real daemon: its lifetime histograms count every journal commit and
//! every answered order, and two reads subtracted cover exactly the orders sent between them
//! (what `petrel-load bench` relies on to set the durable-write latency beside its round trips).

mod support;

use std::time::{Duration, Instant};

use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use support::*;

const AAPL_585: u64 = 5_853_300;
const ORDERS: u32 = 20;

fn latency(daemon: &Daemon) -> serde_json::Value {
    let body = http_get(daemon.admin.expect("admin address"), "/latency");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("/latency is not JSON ({e}): {body}"))
}

fn histogram(latency: &serde_json::Value, name: &str) -> Histogram<u64> {
    let encoded = latency["histograms"][name]["histogram"].as_str().unwrap_or_else(|| panic!("no {name}"));
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap()
}

fn count(latency: &serde_json::Value, name: &str) -> u64 {
    latency["histograms"][name]["count"].as_u64().unwrap()
}

fn journal_batches(daemon: &Daemon) -> u64 {
    let metrics = http_get(daemon.admin.expect("admin address"), "/metrics");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("petrel_journal_batches_total "))
        .expect("petrel_journal_batches_total in /metrics")
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn latency_histograms_count_every_commit_and_answer_and_subtract_to_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(BIN, &write_config(dir.path(), "auto"));
    let status: serde_json::Value =
        serde_json::from_str(&http_get(daemon.admin.unwrap(), "/status")).unwrap();
    assert_eq!(status["durability"], "fsync", "config/dev.toml journals with fsync");
    let before = latency(&daemon);
    assert_eq!(before["encoding"], "hdrhistogram-v2-deflate-base64");

    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    for user_ref in 1..=ORDERS {
        alice.enter(user_ref, b'B', 100, "AAPL", AAPL_585, b'0');
        match alice.ouch() {
            OwnedOutbound::Accepted { user_ref: r, .. } if r == user_ref => {}
            other => panic!("order {user_ref}: expected Accepted, got {other:?}"),
        }
    }

    // The threads hand their samples over a moment after the answers (the gateway when idle,
    // the journal writer after each commit): wait for every commit counted so far, and every
    // answer, to show.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (after, batches) = loop {
        let batches = journal_batches(&daemon);
        let after = latency(&daemon);
        let answers = count(&after, "wire_to_wire") - count(&before, "wire_to_wire");
        if count(&after, "journal_commit") >= batches && answers >= u64::from(ORDERS) {
            break (after, batches);
        }
        assert!(Instant::now() < deadline, "/latency stayed behind: {after} against {batches} commits");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Every commit once: no more samples than commits either.
    assert_eq!(count(&after, "journal_commit"), batches, "{after}");
    assert_eq!(count(&after, "journal_commit"), histogram(&after, "journal_commit").len());

    let interval = |name: &str| {
        let mut h = histogram(&after, name);
        h.subtract(histogram(&before, name)).unwrap();
        h
    };
    // One wire-to-wire sample per answered order, each waiting for at least one commit.
    assert_eq!(interval("wire_to_wire").len(), u64::from(ORDERS));
    let commits = interval("journal_commit");
    assert!((1..=u64::from(ORDERS)).contains(&commits.len()), "{} commits", commits.len());
    assert!(interval("matcher_service").len() >= u64::from(ORDERS));
    assert!(commits.max() > 0 && interval("wire_to_wire").max() > 0);
}
