//! `petrel-engine`: the engine's command line. The binary only parses arguments and wires
//! library parts together.

use clap::{Parser, Subcommand};
use petrel_engine::config::Config;
use petrel_engine::core::{CountingSink, Engine, InstrumentId};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "petrel-engine",
    version,
    about = "Petrel trading engine: price-time matching with pre-trade risk checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Check a configuration file without starting anything.
    ///
    /// Reads the file, checks every key and the references between sections (accounts name
    /// defined firms and risk profiles, pinned cores do not overlap, price bands fit the tick),
    /// and prints a one-line summary. Exit status: 0 valid, 2 invalid (the error is printed as
    /// FILE:LINE:COLUMN: KEY: MESSAGE). Does not touch the journal, snapshots or the network.
    CheckConfig {
        /// The engine configuration file (TOML). Relative paths inside it resolve against its
        /// directory.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Replay a LOBSTER message file through the matching core and print a summary: commands,
    /// executions, the final best bid and ask, the state hash and the rate.
    ReplayLobster {
        /// The LOBSTER `*_message_*.csv` file.
        #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"))]
        messages: PathBuf,
    },
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Commands::ReplayLobster { messages } => replay_lobster(&messages),
        Commands::CheckConfig { config } => check_config(&config),
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    match Config::load(path) {
        Ok(config) => {
            println!("{}: OK: {}", path.display(), config.summary());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

fn replay_lobster(path: &PathBuf) -> ExitCode {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("petrel-engine: cannot read LOBSTER messages {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let (config, commands) = match petrel_engine::lobster::lobster_commands(&text) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("petrel-engine: {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let mut engine = Engine::new(&config).expect("built-in LOBSTER configuration is valid");
    let mut sink = CountingSink::default();
    let started = Instant::now();
    for (i, command) in commands.iter().enumerate() {
        engine.apply(command, i as u64 + 1, i as u64, &mut sink);
    }
    let elapsed = started.elapsed();
    let price = |p: Option<(i64, u64)>| {
        p.map_or("none".to_string(), |(p, q)| format!("{q} @ {}.{:04}", p / 10_000, p % 10_000))
    };
    println!("replayed {} commands from {}", commands.len(), path.display());
    println!("  events      {}", sink.events);
    println!("  executions  {}", sink.executions);
    println!("  rejects     {}", sink.rejects);
    println!("  best bid    {}", price(engine.best_bid(InstrumentId(0))));
    println!("  best ask    {}", price(engine.best_ask(InstrumentId(0))));
    println!("  open orders {}", engine.open_order_count());
    println!("  state hash  {}", engine.state_hash());
    println!(
        "  time        {:.3} ms ({:.1} M commands/s)",
        elapsed.as_secs_f64() * 1e3,
        commands.len() as f64 / elapsed.as_secs_f64() / 1e6
    );
    ExitCode::SUCCESS
}
