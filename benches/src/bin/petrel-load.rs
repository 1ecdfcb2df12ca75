//! petrel-load: open-loop OUCH load generator and wire-to-wire latency benchmark.
//! The logic lives in `petrel_benches::load`; this parses arguments and prints.

use clap::{Args, Parser, Subcommand, ValueEnum};
use petrel_benches::load::admin::{read_durability, EngineLatency};
use petrel_benches::load::client::FeedResult;
use petrel_benches::load::decomposition::{self, Inside, Tail};
use petrel_benches::load::report::{self, human_ns};
use petrel_benches::load::{
    parse_rate, run_load, run_load_marked, EchoServer, LoadError, LoadOptions, LoadResult, Login, Mix,
};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

const LOBSTER_SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../engine/tests/data/lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"
);

#[derive(Parser)]
#[command(
    name = "petrel-load",
    about = "Open-loop OUCH 5.0 load generator: round trip of every order to its acknowledgement, corrected for coordinated omission",
    long_about = "Sends orders at a fixed offered rate over N SoupBinTCP sessions without waiting for answers, and records each order's round trip from its intended send time to its first answer (Accepted, Replaced, Canceled, Rejected, Cancel Reject) in an HdrHistogram.\n\nExit status: 0 when every order was answered and the p99 gate (if any) held; 1 when the gate failed or answers were lost, unmatched or new orders rejected; 2 on errors (connection, login, files, options)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure one target: the engine at --target, or the built-in echo server with --echo.
    Run {
        /// Address of the engine's OUCH gateway.
        #[arg(long, required_unless_present = "echo", conflicts_with = "echo")]
        target: Option<SocketAddr>,
        /// Measure a bare TCP echo server started in this process instead.
        #[arg(long)]
        echo: bool,
        #[command(flatten)]
        load: LoadArgs,
        /// Write the histogram here (HdrHistogram percentile distribution, values in µs).
        #[arg(long)]
        histogram: Option<PathBuf>,
    },
    /// At each rate, measure the echo baseline and then the engine, read the engine's own
    /// durable-write (journal commit) and wire-to-wire latency over the engine run from its
    /// admin endpoint, and print them side by side with the latency goal's checks.
    Bench(BenchArgs),
    /// Serve the echo baseline on its own, for a client on another host.
    EchoServer {
        #[arg(long, default_value = "127.0.0.1:15900")]
        listen: SocketAddr,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// Address of the engine's OUCH gateway.
    #[arg(long)]
    target: SocketAddr,
    /// The engine's admin endpoint (its [admin] listen; config/bench.toml's by default), read
    /// for the journal's durability and the engine's latency histograms over the engine run.
    /// When it cannot be reached the echo and engine figures are still printed.
    #[arg(long, default_value = "127.0.0.1:9190")]
    admin: SocketAddr,
    #[command(flatten)]
    load: LoadArgs,
    /// Write the engine's histogram here (HdrHistogram percentile distribution, µs); with
    /// several rates, one file per rate (engine.hgrm: engine-20000.hgrm, ...).
    #[arg(long)]
    histogram: Option<PathBuf>,
    /// Write the echo baseline's histogram here (per rate as --histogram).
    #[arg(long)]
    echo_histogram: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MixArg {
    /// exchange-core's mix: 9% new, 3% IOC, 6% cancel, 82% replace, generated live per session.
    ExchangeCore,
    /// The LOBSTER sample (AAPL, 2012-06-21) replayed in order, looped.
    Lobster,
}

#[derive(Args)]
struct LoadArgs {
    /// Sessions, logged in as LOAD01, LOAD02, ... with passwords load01, load02, ... (the
    /// users of config/bench-users.toml).
    #[arg(long, default_value_t = 4)]
    sessions: usize,
    /// Log in as USER:PASSWORD instead; repeat once per session.
    #[arg(long = "login", value_name = "USER:PASSWORD")]
    logins: Vec<String>,
    /// Orders per second offered, over all sessions. `bench` takes several and measures each
    /// in turn (--rate 20000,50000, or --rate repeated); `run` takes one.
    #[arg(long, default_value = "10000", value_delimiter = ',', value_parser = parse_rate)]
    rate: Vec<u64>,
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Orders intended in the first seconds are sent but not recorded.
    #[arg(long, default_value_t = 1)]
    warmup_s: u64,
    #[arg(long, value_enum, default_value = "exchange-core")]
    mix: MixArg,
    /// Symbol traded by the exchange-core mix (the LOBSTER mix trades AAPL).
    #[arg(long, default_value = "BENCH")]
    symbol: String,
    /// Mid price of the exchange-core mix, in currency units.
    #[arg(long, default_value = "100.00")]
    mid_price: String,
    /// LOBSTER message file to replay.
    #[arg(long, default_value = LOBSTER_SAMPLE)]
    lobster_file: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Wait this long for the last answers; with the rate, also bounds the orders in flight.
    #[arg(long, default_value_t = 2_000)]
    response_timeout_ms: u64,
    /// Spin (rather than sleep) for the last microseconds before each send: steadier send
    /// times, one core busy.
    #[arg(long, default_value_t = 0)]
    spin_us: u64,
    /// First UserRefNum of each session; must be above any the account used before in the
    /// engine's journal.
    #[arg(long, default_value_t = 1)]
    first_user_ref: u32,
    /// Write a percentile plot (SVG) of the run here (with several rates, one file per rate).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Exit with status 1 when the (engine's) p99 exceeds this many µs.
    #[arg(long)]
    max_p99_us: Option<u64>,
    /// Listen here for the engine's market-data feed (MoldUDP64 sent by unicast to this
    /// address: a `[market_data]` destination, as config/bench.toml's 127.0.0.1:15200) and
    /// report, beside the OUCH round trip, each resting order's latency to its Add Order and
    /// the Add Order's lag behind the order's Accepted. Absent: no feed measurement.
    #[arg(long, value_name = "ADDR")]
    feed_listen: Option<SocketAddr>,
}

impl LoadArgs {
    /// The one rate `run` measures.
    fn single_rate(&self) -> Result<u64, LoadError> {
        match self.rate[..] {
            [rate] => Ok(rate),
            _ => Err(LoadError::Usage(format!(
                "run measures one rate, not {}: use bench to measure several",
                self.rate.len()
            ))),
        }
    }

    fn options(&self, target: SocketAddr, rate_per_s: u64) -> Result<LoadOptions, LoadError> {
        let logins = if self.logins.is_empty() {
            if self.sessions == 0 || self.sessions > 99 {
                return Err(LoadError::Usage(format!("--sessions {} must be 1 to 99", self.sessions)));
            }
            (1..=self.sessions)
                .map(|i| Login { user: format!("LOAD{i:02}"), password: format!("load{i:02}") })
                .collect()
        } else {
            self.logins
                .iter()
                .map(|l| {
                    l.split_once(':')
                        .map(|(user, password)| Login { user: user.into(), password: password.into() })
                        .ok_or_else(|| LoadError::Usage(format!("--login {l:?}: expected USER:PASSWORD")))
                })
                .collect::<Result<_, _>>()?
        };
        let mix = match self.mix {
            MixArg::ExchangeCore => {
                petrel_proto::ouch::Symbol::new("symbol", &self.symbol)
                    .map_err(|e| LoadError::Usage(format!("--symbol {:?}: {e}", self.symbol)))?;
                Mix::ExchangeCore {
                    symbol: self.symbol.clone(),
                    mid_price: parse_price(&self.mid_price)?,
                    tick: 100,
                    resting_target: 1_000,
                }
            }
            MixArg::Lobster => {
                Mix::Lobster { symbol: "AAPL".into(), commands: Arc::new(lobster(&self.lobster_file)?) }
            }
        };
        if rate_per_s == 0 || self.duration_s == 0 {
            return Err(LoadError::Usage("--rate and --duration-s must be at least 1".into()));
        }
        Ok(LoadOptions {
            target,
            logins,
            rate_per_s,
            duration: Duration::from_secs(self.duration_s),
            warmup: Duration::from_secs(self.warmup_s.min(self.duration_s - 1)),
            mix,
            seed: self.seed,
            response_timeout: Duration::from_millis(self.response_timeout_ms.max(1)),
            spin: Duration::from_micros(self.spin_us),
            first_user_ref: self.first_user_ref,
            feed_listen: self.feed_listen,
        })
    }
}

/// "100.00" -> 1_000_000 (OUCH prices carry 4 decimals).
fn parse_price(text: &str) -> Result<u64, LoadError> {
    let bad = || {
        LoadError::Usage(format!("--mid-price {text:?}: expected a decimal like 100.00 (at most 4 decimals)"))
    };
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() || frac.len() > 4 || !whole.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: u64 = whole.parse().map_err(|_| bad())?;
    let frac: u64 = if frac.is_empty() { 0 } else { format!("{frac:0<4}").parse().map_err(|_| bad())? };
    let price = whole.checked_mul(10_000).and_then(|w| w.checked_add(frac)).ok_or_else(bad)?;
    // The mix spreads orders 750 ticks of 0.01 either side of the mid.
    if price <= 750 * 100 || price % 100 != 0 {
        return Err(LoadError::Usage(format!(
            "--mid-price {text}: must be above 7.50 and a multiple of 0.01"
        )));
    }
    Ok(price)
}

/// Reads the LOBSTER message file, checking each line's shape first (the converter trusts it).
fn lobster(path: &Path) -> Result<Vec<petrel_core::Command>, LoadError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| LoadError::Read { path: path.into(), source })?;
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        let ok = f.len() == 6
            && f[1].parse::<u8>().is_ok()
            && f[3].parse::<u32>().is_ok()
            && f[4].parse::<i64>().is_ok()
            && (f[5] == "1" || f[5] == "-1");
        if !ok {
            return Err(LoadError::BadFile {
                path: path.into(),
                message: format!("line {}: expected time,type,order id,size,price,direction", i + 1),
            });
        }
    }
    let (_, commands) = petrel_benches::lobster_commands(&text)
        .map_err(|message| LoadError::BadFile { path: path.into(), message })?;
    if commands.is_empty() {
        return Err(LoadError::BadFile { path: path.into(), message: "no orders to replay".into() });
    }
    Ok(commands)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match execute(cli.command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("petrel-load: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs the command; `Ok(false)` when the run completed but failed its checks.
fn execute(command: Command) -> Result<bool, LoadError> {
    match command {
        Command::EchoServer { listen } => {
            let server = EchoServer::start(listen)
                .map_err(|e| LoadError::Usage(format!("cannot listen on {listen}: {e}")))?;
            eprintln!("petrel-load: echo server listening on {}", server.local_addr());
            server.wait();
            Ok(true)
        }
        Command::Run { target, echo, load, histogram } => {
            let rate = load.single_rate()?;
            let (name, server, target) = if echo {
                let server = start_echo()?;
                let addr = server.local_addr();
                ("echo", Some(server), addr)
            } else {
                ("target", None, target.expect("clap requires --target without --echo"))
            };
            if echo && load.feed_listen.is_some() {
                return Err(LoadError::Usage("--feed-listen: the echo server publishes no feed".into()));
            }
            let options = load.options(target, rate)?;
            let result = run_load(&options)?;
            drop(server);
            print_run(name, &result);
            let mut rows = vec![(name, &result.latency_ns)];
            print!("{}", table_with_feed(&mut rows, &result, None));
            write_outputs(histogram.as_deref(), load.plot.as_deref(), &result, &rows)?;
            Ok(checks(name, &result, load.max_p99_us))
        }
        Command::Bench(bench) => {
            let mut ok = true;
            let mut first_user_ref = bench.load.first_user_ref;
            for &rate in &bench.load.rate {
                let (passed, sent) = bench_rate(&bench, rate, first_user_ref)?;
                ok &= passed;
                // The engine refuses UserRefNums at or below an account's last, and each order
                // takes at most one new one of its session: the next rate starts past them all.
                first_user_ref = u32::try_from(u64::from(first_user_ref) + sent).map_err(|_| {
                    LoadError::Usage("the rates' orders would run out of UserRefNums (2^32)".into())
                })?;
            }
            Ok(ok)
        }
    }
}

/// One rate of `bench`: the echo, then the engine with its own histograms read as the engine
/// run's warm-up ends and after the run; prints the table, the decomposition and the goal.
/// Returns whether both runs passed their checks, and how many orders the engine run sent.
fn bench_rate(b: &BenchArgs, rate: u64, first_user_ref: u32) -> Result<(bool, u64), LoadError> {
    let server = start_echo()?;
    let mut options = b.load.options(server.local_addr(), rate)?;
    options.first_user_ref = first_user_ref;
    // The echo publishes no feed: only the engine run listens.
    let feed_listen = options.feed_listen.take();
    let echo = run_load(&options)?;
    drop(server);
    options.target = b.target;
    options.feed_listen = feed_listen;
    let (engine, before) = run_load_marked(&options, || EngineLatency::read(b.admin))?;
    let inside = before.and_then(|before| {
        let interval = EngineLatency::read(b.admin)?.since(&before)?;
        Ok::<_, petrel_benches::load::admin::AdminError>((interval, read_durability(b.admin)?))
    });
    println!("== {rate} orders/s ==");
    print_run("echo", &echo);
    print_run("engine", &engine);
    let mut rows = vec![("engine", &engine.latency_ns), ("echo", &echo.latency_ns)];
    if let Ok((interval, _)) = &inside {
        rows.push(("durable write", &interval.journal_commit));
        rows.push(("in engine", &interval.wire_to_wire));
    }
    print!("{}", table_with_feed(&mut rows, &engine, Some((0, 1))));
    match &inside {
        Ok((interval, durability)) => {
            let inside = Inside {
                durable_write_ns: &interval.journal_commit,
                wire_to_wire_ns: &interval.wire_to_wire,
                commands: interval.matcher_service.len(),
            };
            let (echo, engine) = (Tail::of(&echo.latency_ns), Tail::of(&engine.latency_ns));
            print!("{}", decomposition::render(*durability, echo, engine, inside));
        }
        Err(e) => println!("durable write and in-engine latency not measured: {e}"),
    }
    let per_rate = |path: &Option<PathBuf>| {
        path.as_ref().map(|p| if b.load.rate.len() > 1 { report::per_rate_path(p, rate) } else { p.clone() })
    };
    if let Some(path) = per_rate(&b.echo_histogram) {
        report::write_file(&path, &report::percentile_distribution(&echo.latency_ns))?;
    }
    write_outputs(per_rate(&b.histogram).as_deref(), per_rate(&b.load.plot).as_deref(), &engine, &rows)?;
    let echo_ok = checks("echo", &echo, None);
    Ok((checks("engine", &engine, b.load.max_p99_us) && echo_ok, engine.sent))
}

/// The table of `rows`, with the feed's rows after them when the run listened to the feed
/// (`feed add` joins `rows`, for the plot too), and the feed's summary and goal below it.
fn table_with_feed<'a>(
    rows: &mut Vec<(&'a str, &'a hdrhistogram::Histogram<u64>)>,
    run: &'a LoadResult,
    ratio: Option<(usize, usize)>,
) -> String {
    let Some(feed) = &run.feed else { return report::table(rows, ratio) };
    rows.push(("feed add", &feed.latency.add_ns));
    let mut out = report::table_with_signed(rows, &[("feed - ack", &feed.latency)], ratio);
    out.push_str(&feed_summary(feed));
    out
}

/// What the feed rows mean, what the listener counted, and the feed's goal.
fn feed_summary(feed: &FeedResult) -> String {
    let p50_ns = feed.latency.feed_minus_ack_ns_at(0.5);
    let verdict = if feed.latency.joined() == 0 {
        "not measured (no Add Order joined)"
    } else if p50_ns <= FEED_GOAL_P50_NS {
        "met"
    } else {
        "not met"
    };
    format!(
        "feed add: intended send time to the order's Add Order received on the feed; feed - ack: Add Order received minus the order's OUCH Accepted received (negative: the feed came first). Only orders that rest on the book get an Add Order.\n\
         feed: {} packets, {} messages, {} Add Orders, {} joined to their Accepted after the warm-up; gaps {} ({} messages missing); malformed {}; Accepted notes dropped {}\n\
         goal, feed: feed - ack p50 = {} (goal <= +10 µs): {verdict}\n",
        feed.packets,
        feed.messages,
        feed.add_orders,
        feed.latency.joined(),
        feed.gaps,
        feed.gap_messages,
        feed.malformed,
        feed.notes_dropped,
        report::human_signed_ns(p50_ns),
    )
}

/// The feed's goal: its Add Order no later than 10 µs after the OUCH acknowledgement, at p50.
const FEED_GOAL_P50_NS: i64 = 10_000;

fn start_echo() -> Result<EchoServer, LoadError> {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
    EchoServer::start(addr).map_err(|e| LoadError::Usage(format!("cannot start the echo server: {e}")))
}

fn print_run(name: &str, r: &LoadResult) {
    let c = &r.counts;
    println!(
        "{name}: {} orders/s offered for {} s over {} sessions, mix {}: sent {}, answered {} (accepted {}, replaced {}, canceled {}, rejected {} new + {} replaces, cancel rejects {}), executions {}, lost {}, unmatched {}",
        r.rate_per_s,
        r.duration.as_secs(),
        r.sessions,
        r.mix,
        r.sent,
        c.acknowledged(),
        c.accepted,
        c.replaced,
        c.canceled,
        c.rejected_new,
        c.rejected_replace,
        c.cancel_rejected,
        c.executions,
        r.lost,
        c.unmatched,
    );
    println!(
        "{name}: sender lateness p50 {}, p99 {}, max {} (included in the round trips)",
        human_ns(r.send_lag_ns.value_at_quantile(0.5)),
        human_ns(r.send_lag_ns.value_at_quantile(0.99)),
        human_ns(r.send_lag_ns.max())
    );
}

/// The first series' histogram file and the plot of every series, where asked for.
fn write_outputs(
    histogram: Option<&Path>,
    plot: Option<&Path>,
    run: &LoadResult,
    series: &[(&str, &hdrhistogram::Histogram<u64>)],
) -> Result<(), LoadError> {
    if let Some(path) = histogram {
        report::write_file(path, &report::percentile_distribution(series[0].1))?;
    }
    if let Some(path) = plot {
        let title = format!(
            "petrel-load: {} orders/s, {} sessions, {} mix, round trip from intended send time",
            run.rate_per_s, run.sessions, run.mix
        );
        report::write_file(path, &report::svg_plot(&title, series))?;
    }
    Ok(())
}

/// Prints why a completed run fails its checks; true when it passes.
fn checks(name: &str, r: &LoadResult, max_p99_us: Option<u64>) -> bool {
    let mut ok = true;
    if r.lost > 0 {
        eprintln!("petrel-load: {name}: {} orders got no answer within the response timeout", r.lost);
        ok = false;
    }
    if r.counts.unmatched > 0 {
        eprintln!("petrel-load: {name}: {} answers named no order in flight", r.counts.unmatched);
        ok = false;
    }
    if r.counts.rejected_new > 0 {
        eprintln!(
            "petrel-load: {name}: {} new orders were rejected (wrong symbol or price for the target's configuration, or UserRefNums not above the account's last: see --first-user-ref)",
            r.counts.rejected_new
        );
        ok = false;
    }
    if let Some(bound_us) = max_p99_us {
        let p99_ns = r.latency_ns.value_at_quantile(0.99);
        if p99_ns > bound_us * 1_000 {
            eprintln!("petrel-load: {name}: p99 {} exceeds the bound of {bound_us} µs", human_ns(p99_ns));
            ok = false;
        } else {
            println!("{name}: p99 {} within the bound of {bound_us} µs", human_ns(p99_ns));
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("petrel-load").chain(args.iter().copied()))
    }

    fn bench_rates(args: &[&str]) -> Vec<u64> {
        let mut all = vec!["bench", "--target", "127.0.0.1:15100"];
        all.extend_from_slice(args);
        match parse(&all).unwrap().command {
            Command::Bench(b) => b.load.rate,
            _ => unreachable!("parsed as bench"),
        }
    }

    #[test]
    fn bench_takes_a_list_of_rates_or_the_flag_repeated() {
        assert_eq!(bench_rates(&["--rate", "20000,50000"]), [20_000, 50_000]);
        assert_eq!(bench_rates(&["--rate", "20_000", "--rate", "5000,7000"]), [20_000, 5_000, 7_000]);
        assert_eq!(bench_rates(&[]), [10_000], "the default");
        assert!(parse(&["bench", "--target", "127.0.0.1:1", "--rate", "20000,0"]).is_err());
        assert!(parse(&["bench", "--target", "127.0.0.1:1", "--rate", "20k"]).is_err());
    }

    #[test]
    fn bench_reads_the_bench_configuration_s_admin_endpoint_unless_told() {
        let admin = |args: &[&str]| match parse(args).unwrap().command {
            Command::Bench(b) => b.admin,
            _ => unreachable!("parsed as bench"),
        };
        assert_eq!(admin(&["bench", "--target", "127.0.0.1:1"]), "127.0.0.1:9190".parse().unwrap());
        let told = admin(&["bench", "--target", "127.0.0.1:1", "--admin", "127.0.0.1:9180"]);
        assert_eq!(told, "127.0.0.1:9180".parse().unwrap());
    }

    #[test]
    fn run_measures_exactly_one_rate() {
        let Command::Run { load, .. } = parse(&["run", "--echo", "--rate", "1,2"]).unwrap().command else {
            unreachable!("parsed as run")
        };
        let e = load.single_rate().unwrap_err();
        assert!(e.to_string().contains("use bench to measure several"), "{e}");
        let Command::Run { load, .. } = parse(&["run", "--echo", "--rate", "300"]).unwrap().command else {
            unreachable!("parsed as run")
        };
        assert_eq!(load.single_rate().unwrap(), 300);
    }
}
