//! The admin endpoint over real loopback sockets, and its /metrics through promtool.

mod support;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use petrel_engine::admin::{self, AdminHandler, AdminLimits};
use petrel_engine::latency_export;
use petrel_engine::metrics::{LatencySummary, CATALOGUE};

struct Handler {
    ready: AtomicBool,
}

impl AdminHandler for Handler {
    fn metrics(&self, out: &mut String) {
        support::metrics_sample::render_full_sample(out);
    }
    fn ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
    fn status_json(&self) -> String {
        serde_json::json!({ "sessions": 2, "last_sequence": 1234 }).to_string()
    }
    fn latency_json(&self) -> String {
        let mut summary = LatencySummary::new();
        summary.record_ns(250_000);
        latency_export::latency_json(&[(latency_export::JOURNAL_COMMIT, &summary)])
    }
}

fn handler() -> Arc<Handler> {
    Arc::new(Handler { ready: AtomicBool::new(false) })
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

struct Response {
    status: u16,
    headers: String,
    body: String,
}

fn exchange(addr: SocketAddr, request: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    // Generous: a lost response must fail the test rather than hang it.
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    stream.write_all(request).unwrap();
    read_response(&mut stream)
}

fn read_response(stream: &mut TcpStream) -> Response {
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no head end: {raw:?}"));
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    if !head.starts_with("HTTP/1.1 200") || !body.is_empty() {
        assert_eq!(length, body.len(), "Content-Length matches the body");
    }
    Response { status, headers: head.to_owned(), body: body.to_owned() }
}

fn get(addr: SocketAddr, path: &str) -> Response {
    exchange(addr, format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
}

#[test]
fn routes_answer_what_operators_and_prometheus_expect() {
    let h = handler();
    let server = admin::serve(loopback(), h.clone()).unwrap();
    let addr = server.local_addr();
    assert!(addr.ip().is_loopback());

    let health = get(addr, "/health");
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));

    assert_eq!(get(addr, "/ready").status, 503, "not ready until the engine says so");
    h.ready.store(true, Ordering::SeqCst);
    let ready = get(addr, "/ready");
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready\n"));

    let status = get(addr, "/status?pretty=1");
    assert_eq!(status.status, 200);
    assert!(status.headers.contains("Content-Type: application/json"));
    let json: serde_json::Value = serde_json::from_str(&status.body).unwrap();
    assert_eq!(json["last_sequence"], 1234);

    let latency = get(addr, "/latency");
    assert_eq!(latency.status, 200);
    assert!(latency.headers.contains("Content-Type: application/json"));
    let json: serde_json::Value = serde_json::from_str(&latency.body).unwrap();
    assert_eq!(json["histograms"]["journal_commit"]["count"], 1);

    let metrics = get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.headers.contains("Content-Type: text/plain; version=0.0.4; charset=utf-8"));
    for def in CATALOGUE {
        assert!(metrics.body.contains(&format!("# TYPE {} ", def.name)), "{} missing", def.name);
    }
    support::promtool_check_metrics(&metrics.body);

    let head = exchange(addr, b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty() && head.headers.contains("Content-Length: 3"));

    let missing = get(addr, "/admin/kill");
    assert_eq!(missing.status, 404);
    assert!(
        missing.body.contains("/metrics") && missing.body.contains("/latency"),
        "the 404 says what exists"
    );

    let post = exchange(addr, b"POST /ready HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(post.status, 405);
    assert!(post.headers.contains("Allow: GET, HEAD"));

    assert_eq!(exchange(addr, b"NOT HTTP AT ALL\r\n\r\n").status, 400);
    server.shutdown();
}

#[test]
fn oversized_and_slow_requests_are_refused() {
    // A deadline no complete request outlasts, however loaded the machine.
    let limits = AdminLimits {
        request_head_max_bytes: 1024,
        request_deadline: Duration::from_secs(60),
        ..AdminLimits::default()
    };
    let server = admin::serve_with(loopback(), handler(), limits).unwrap();
    let big = format!("GET /health HTTP/1.1\r\nX-Filler: {}\r\n\r\n", "a".repeat(2048));
    assert_eq!(exchange(server.local_addr(), big.as_bytes()).status, 431);
    server.shutdown();

    // Half a request and then silence: the server answers 408 once the deadline passes,
    // instead of holding the connection forever.
    let limits = AdminLimits { request_deadline: Duration::from_millis(300), ..AdminLimits::default() };
    let server = admin::serve_with(loopback(), handler(), limits).unwrap();
    let addr = server.local_addr();
    let slow = exchange(addr, b"GET /health HTTP/1.1\r\nHost:");
    assert_eq!(slow.status, 408);

    // The server is still healthy afterwards. A machine that stalls past the short deadline
    // gets a 408 for a complete request too: that one is asked again, anything else is final.
    let healthy = (0..100).map(|_| get(addr, "/health").status).find(|&status| status != 408);
    assert_eq!(healthy, Some(200));
}

#[test]
fn connections_beyond_the_limit_get_503_and_capacity_returns() {
    let limits = AdminLimits {
        max_connections: 2,
        request_deadline: Duration::from_secs(60),
        ..AdminLimits::default()
    };
    let server = admin::serve_with(loopback(), handler(), limits).unwrap();
    let addr = server.local_addr();

    // Two idle connections occupy both slots (accept order is connect order).
    let idle: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let refused = get(addr, "/health");
    assert_eq!(refused.status, 503);
    assert!(refused.body.contains("too many"));

    // The idle clients leave; their slots come back once the server sees them go.
    for s in &idle {
        s.shutdown(Shutdown::Both).unwrap();
    }
    drop(idle);
    // Waited for with a generous deadline, not a count of tries: how soon the server's thread
    // sees them go depends on the machine.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut answered = None;
    while Instant::now() < deadline {
        let r = get(addr, "/health");
        if r.status == 200 {
            answered = Some(r);
            break;
        }
        assert_eq!(r.status, 503);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(answered.is_some(), "slots never freed after the idle clients left");
}

#[test]
fn shutdown_closes_the_listener() {
    let server = admin::serve(loopback(), handler()).unwrap();
    let addr = server.local_addr();
    assert_eq!(get(addr, "/health").status, 200);
    server.shutdown();
    let err = TcpStream::connect(addr).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_taken_address_is_a_clear_error() {
    let server = admin::serve(loopback(), handler()).unwrap();
    let err = admin::serve(server.local_addr(), handler()).err().expect("address in use");
    let text = err.to_string();
    assert!(text.contains(&server.local_addr().to_string()) && text.contains("[admin] listen"), "{text}");
}
