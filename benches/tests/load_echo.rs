//! petrel-load against its echo baseline over real loopback sockets: every order answered
//! and recorded, the output files readable by HdrHistogram tooling, the p99 gate's exit status.

use petrel_benches::load::report::parse_percentile_distribution;
use petrel_benches::load::{run_load, EchoServer, LoadError, LoadOptions, Login, Mix};
use petrel_workload::lobster;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

fn echo() -> EchoServer {
    EchoServer::start("127.0.0.1:0".parse().unwrap()).unwrap()
}

fn options(server: &EchoServer, sessions: usize, rate_per_s: u64, mix: Mix) -> LoadOptions {
    LoadOptions {
        target: server.local_addr(),
        logins: (1..=sessions).map(|i| Login { user: format!("T{i}"), password: "x".into() }).collect(),
        rate_per_s,
        duration: Duration::from_secs(2),
        warmup: Duration::ZERO,
        mix,
        seed: 3,
        response_timeout: Duration::from_secs(10),
        spin: Duration::ZERO,
        first_user_ref: 1,
        feed_listen: None,
    }
}

fn exchange_core() -> Mix {
    Mix::ExchangeCore { symbol: "BENCH".into(), mid_price: 1_000_000, tick: 100, resting_target: 1_000 }
}

#[test]
fn every_order_sent_to_the_echo_server_is_answered_and_recorded_once() {
    let server = echo();
    let result = run_load(&options(&server, 3, 2_000, exchange_core())).unwrap();
    assert_eq!(result.sent, 4_000, "rate x duration orders, all sent");
    assert_eq!(result.counts.acknowledged(), result.sent, "{:?}", result.counts);
    assert_eq!(result.latency_ns.len(), result.sent, "each answer recorded exactly once");
    assert_eq!(result.lost, 0);
    assert_eq!(result.counts.unmatched, 0);
    let c = &result.counts;
    assert_eq!(c.rejected_new + c.rejected_replace + c.cancel_rejected + c.executions, 0, "{c:?}");
    // The echo answers what the mix sends: new orders to build each session's book, then
    // replaces and cancels. (How many of each depends on how fast answers come back, since the
    // client's view of its book grows only from them; mix_shape.rs checks the proportions.)
    assert!(c.replaced > 0 && c.canceled > 0 && c.accepted > 0, "{c:?}");
    assert!(result.latency_ns.min() > 0);
}

#[test]
fn the_lobster_replay_is_answered_in_full() {
    let server = echo();
    let text = std::fs::read_to_string(lobster::SAMPLE_MESSAGES).unwrap();
    let (_, commands) = lobster::lobster_commands(&text).unwrap();
    let mix = Mix::Lobster { symbol: "AAPL".into(), commands: Arc::new(commands) };
    // 3,000 messages loop the ~1,000-line sample about three times.
    let result = run_load(&options(&server, 2, 1_500, mix)).unwrap();
    assert_eq!(result.counts.acknowledged(), result.sent, "{:?}", result.counts);
    assert!(result.sent > 2_500, "only a few reductions of unknown orders are skipped: {}", result.sent);
    assert!(result.counts.canceled > 0 && result.counts.accepted > 0, "{:?}", result.counts);
    assert_eq!((result.lost, result.counts.unmatched), (0, 0));
}

#[test]
fn a_refused_connection_is_a_typed_error_naming_the_address() {
    let (_held, addr) = refusing_port();
    let server = echo();
    let mut o = options(&server, 1, 100, exchange_core());
    o.target = addr;
    let e = run_load(&o).unwrap_err();
    assert!(matches!(e, LoadError::Connect { addr: a, .. } if a == addr), "{e}");
    assert!(e.to_string().contains(&addr.to_string()));
}

fn petrel_load(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_petrel-load")).args(args).output().expect("run petrel-load")
}

#[test]
fn cli_writes_a_readable_histogram_and_plot_and_passes_a_generous_gate() {
    let dir = tempfile::tempdir().unwrap();
    let histogram = dir.path().join("echo.hgrm");
    let plot = dir.path().join("echo.svg");
    let out = petrel_load(&[
        "run",
        "--echo",
        "--rate",
        "1000",
        "--duration-s",
        "2",
        "--warmup-s",
        "0",
        "--sessions",
        "2",
        "--histogram",
        histogram.to_str().unwrap(),
        "--plot",
        plot.to_str().unwrap(),
        "--max-p99-us",
        "600000000",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for column in ["p50", "p90", "p99", "p99.9", "p99.99", "max"] {
        assert!(stdout.contains(column), "table lacks {column}: {stdout}");
    }
    assert!(stdout.contains("sent 2000, answered 2000"), "{stdout}");
    assert!(stdout.contains("within the bound"), "{stdout}");

    let rows =
        parse_percentile_distribution(&std::fs::read_to_string(&histogram).unwrap(), &histogram).unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last.quantile, 1.0);
    assert_eq!(last.total_count, 2_000, "every order recorded once");
    assert!(rows.first().unwrap().value_us > 0.0);
    assert!(rows.windows(2).all(|w| w[0].value_us <= w[1].value_us), "values never decrease");

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""), "{svg}");
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 1, "one series: the echo");
    assert!(svg.contains("99.99%"));
}

#[test]
fn cli_p99_gate_fails_with_status_1_when_the_bound_is_exceeded() {
    // No round trip takes 0 µs, so the gate must fail; the run itself completes.
    let out = petrel_load(&[
        "run",
        "--echo",
        "--rate",
        "500",
        "--duration-s",
        "1",
        "--warmup-s",
        "0",
        "--sessions",
        "1",
        "--max-p99-us",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("exceeds the bound of 0 µs"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("sent 500, answered 500"));
}

#[test]
fn cli_errors_exit_2_and_say_what_is_wrong() {
    let (_held, addr) = refusing_port();
    let addr = addr.to_string();
    let out = petrel_load(&["run", "--target", &addr, "--duration-s", "1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!("cannot connect to {addr}")));

    let out = petrel_load(&["run", "--echo", "--login", "nocolon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected USER:PASSWORD"));

    let out = petrel_load(&["run", "--echo", "--mid-price", "100.005"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mid-price"));

    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "34200.1,1,16113575,18,5853300,1\nnot,a,lobster,line\n").unwrap();
    let out = petrel_load(&["run", "--echo", "--mix", "lobster", "--lobster-file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.csv") && stderr.contains("line 2"), "{stderr}");
}

#[test]
fn a_damaged_histogram_file_is_refused_with_its_line() {
    let path = Path::new("damaged.hgrm");
    let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n      18.9 0.0 1 1.00\n      12.0 0.5 0 2.00\n";
    let e = parse_percentile_distribution(text, path).unwrap_err();
    assert!(e.to_string().contains("damaged.hgrm: line 4"), "{e}");
    let e = parse_percentile_distribution("1.0 x 3\n", path).unwrap_err();
    assert!(e.to_string().contains("line 1: percentile"), "{e}");
    assert!(parse_percentile_distribution("# nothing\n", path).is_err());
}

/// A loopback port that refuses connections for as long as the returned socket lives: bound
/// but not listening, so no other test's listener can take it meanwhile.
fn refusing_port() -> (std::os::fd::OwnedFd, std::net::SocketAddr) {
    use nix::sys::socket::{bind, getsockname, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::new(127, 0, 0, 1, 0)).unwrap();
    let bound: SockaddrIn = getsockname(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
    (fd, std::net::SocketAddr::V4(bound.into()))
}
