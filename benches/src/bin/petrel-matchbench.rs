//! petrel-matchbench: throughput and per-command latency of the matching core on one core.
//!
//!     cargo run --release -p petrel-benches --bin petrel-matchbench -- [exchange-core|add-heavy|deep-queues|lobster] [COMMANDS]
//!
//! Throughput: the whole pre-generated stream applied to a fresh engine, timed as one span,
//! best and median of 5 runs. Latency: every command timed on its own with `Instant` into an
//! HdrHistogram (ns); the timer's own cost is measured and printed alongside.

use hdrhistogram::Histogram;
use petrel_core::{Command, CountingSink, Engine, EngineConfig};
use petrel_workload::lobster::{lobster_commands, lobster_loop, SAMPLE_MESSAGES};
use petrel_workload::{add_heavy_mix, bench_config, deep_queues_mix, exchange_core_mix};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mix = args.first().map(String::as_str).unwrap_or("exchange-core");
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(3_000_000);
    let (config, commands): (EngineConfig, Vec<Command>) = match mix {
        "exchange-core" => {
            let (commands, stats) = exchange_core_mix(n, 1);
            let pct = |x: u64| x as f64 * 100.0 / stats.commands as f64;
            println!(
                "mix: {} commands after {} to build the book: new limit {:.1}%, IOC {:.1}%, cancel {:.1}%, replace {:.1}%; {:.1}% trade; {} orders over {} levels at the end",
                stats.commands,
                commands.len() as u64 - stats.commands,
                pct(stats.new_limit),
                pct(stats.ioc),
                pct(stats.cancels),
                pct(stats.replaces),
                pct(stats.trading_commands),
                stats.open_orders_at_end,
                stats.levels_at_end
            );
            (bench_config(1 << 16), commands)
        }
        "add-heavy" => (bench_config(1 << 18), add_heavy_mix(n, 100_000, 2)),
        "deep-queues" => (bench_config(n as u32), deep_queues_mix(n, 3)),
        "lobster" => {
            let csv = std::fs::read_to_string(SAMPLE_MESSAGES).expect("LOBSTER sample");
            let (config, pass) = lobster_commands(&csv).expect("LOBSTER sample parses");
            (config, lobster_loop(&pass, n.div_ceil(pass.len())))
        }
        other => {
            eprintln!("unknown mix {other:?}: use exchange-core, add-heavy, deep-queues or lobster");
            std::process::exit(2);
        }
    };
    let mut rates = Vec::new();
    let mut events = 0;
    for _ in 0..5 {
        let mut engine = Engine::new(&config).unwrap();
        let mut sink = CountingSink::default();
        let started = Instant::now();
        for (i, c) in commands.iter().enumerate() {
            engine.apply(c, i as u64 + 1, i as u64, &mut sink);
        }
        let seconds = started.elapsed().as_secs_f64();
        rates.push(commands.len() as f64 / seconds);
        events = sink.events;
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "throughput: {} commands, {} events: best {:.2} M commands/s, median {:.2} M commands/s",
        commands.len(),
        events,
        rates[4] / 1e6,
        rates[2] / 1e6
    );
    // Timer overhead: two back-to-back Instant reads.
    let mut overhead = Histogram::<u64>::new(3).unwrap();
    for _ in 0..1_000_000 {
        let t = Instant::now();
        overhead.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    let mut latency = Histogram::<u64>::new(3).unwrap();
    let mut engine = Engine::new(&config).unwrap();
    let mut sink = CountingSink::default();
    for (i, c) in commands.iter().enumerate() {
        let t = Instant::now();
        engine.apply(c, i as u64 + 1, i as u64, &mut sink);
        latency.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    println!("per-command latency (ns, includes timer cost of p50 {} ns):", overhead.value_at_quantile(0.5));
    for q in [0.5, 0.9, 0.99, 0.999, 0.9999] {
        println!("  p{:<7} {:>8}", q * 100.0, latency.value_at_quantile(q));
    }
    println!("  max      {:>8}", latency.max());
}
