//! `petrel-engine`: the engine's command line. The binary only parses arguments and wires
//! library parts together.

use clap::{Args, Parser, Subcommand, ValueEnum};
use petrel_engine::backup::{self, AdminSource};
use petrel_engine::config::Config;
use petrel_engine::core::{CountingSink, Engine, InstrumentId};
use petrel_engine::journal::{DumpFormat, JournalLocation};
use petrel_engine::journal_tools::{self, FormatVersions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;
use tracing_subscriber::EnvFilter;

/// `--version` and `-V` print the version and, on two more lines, the journal and snapshot
/// formats this build reads and writes (set at run time, from the journal crate's constants).
#[derive(Parser)]
#[command(
    name = "petrel-engine",
    about = "Petrel trading engine: price-time matching with pre-trade risk checks"
)]
struct Cli {
    #[command(subcommand)]
    command: Commands,
}

#[derive(Subcommand)]
enum Commands {
    /// Run the engine: recover the journal, then serve OUCH 5.0 over SoupBinTCP 3.0 until
    /// SIGTERM or SIGINT (drain and exit 0). SIGHUP reloads risk limits and the users file.
    ///
    /// Start-up order: configuration and users file (exit 2 if invalid), journal recovery
    /// (snapshot + tail; exit 1 if the journal is damaged: see `journal verify`), then the
    /// gateway listener; "ready" is logged once every listener is bound.
    Run {
        /// The engine configuration file (TOML), e.g. config/dev.toml.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Hash a password for the users file: reads one line from standard input and prints an
    /// argon2id PHC string for `password_hash`.
    HashPassword,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout; the
    /// packages install them for bash, zsh and fish.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Inspect, check, replay and back up an input journal (read-only: safe on a running
    /// engine's journal and on backups; nothing is locked, repaired or deleted), and restore a
    /// backup onto an empty host.
    #[command(subcommand)]
    Journal(JournalCommand),
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
    /// Promote the standby running on this configuration to primary (`replication.role =
    /// "standby"`): asks it over its admin endpoint (`POST /promote` on admin.listen). It
    /// refuses when its primary last reported that it lacks acknowledged orders; otherwise it
    /// stops following, starts a new epoch from its next sequence, opens the gateway and
    /// reports READY. Exit status: 0 promoting, 1 refused or unreachable, 2 bad configuration.
    Promote {
        /// The standby's configuration file (TOML).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Promote even when the standby cannot tell that it holds every acknowledged order
        /// (its primary crashed under ack = "local" or on_standby_loss = "continue"): orders
        /// acknowledged after its last known state may be lost.
        #[arg(long)]
        force: bool,
        /// The new primary acknowledges on its own durability until a standby has caught up,
        /// whatever on_standby_loss says (otherwise, with "halt", it acknowledges nothing until
        /// a standby follows it).
        #[arg(long)]
        alone: bool,
    },
    /// Make a primary that was replaced by a promoted standby fit to follow it: with the
    /// engine stopped, asks the primary at replication.peer where its epoch began, cuts this
    /// journal's records from there on (never acknowledged to anyone), removes the snapshots
    /// after that point, moves the output journals aside and adopts the new epoch. Then set
    /// replication.role = "standby" and start the engine. Exit status: 0 done, 1 refused.
    Rejoin {
        /// The replaced primary's configuration file (TOML).
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
    let cli = parse_cli();
    // The daemon sets up its own logging from the configuration (journald under systemd);
    // operator commands log warnings to stderr unless RUST_LOG asks for more.
    if !matches!(cli.command, Commands::Run { .. }) {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")))
            .init();
    }
    match cli.command {
        Commands::Completions { shell } => {
            clap_complete::generate(shell, &mut cli_command(), "petrel-engine", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Commands::Run { config } => match petrel_engine::daemon::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("petrel-engine: {e}");
                ExitCode::from(e.exit_code())
            }
        },
        Commands::HashPassword => {
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).is_err()
                || line.trim_end_matches(['\r', '\n']).is_empty()
            {
                eprintln!("petrel-engine: hash-password reads a non-empty password from standard input");
                return ExitCode::from(2);
            }
            println!("{}", petrel_engine::users::hash_password(line.trim_end_matches(['\r', '\n'])));
            ExitCode::SUCCESS
        }
        Commands::ReplayLobster { messages } => replay_lobster(&messages),
        Commands::CheckConfig { config } => check_config(&config),
        Commands::Promote { config, force, alone } => promote(&config, force, alone),
        Commands::Rejoin { config } => rejoin(&config),
        Commands::Journal(command) => journal(command),
    }
}

/// The command line, with the version text that names the formats.
fn parse_cli() -> Cli {
    use clap::FromArgMatches;
    let matches = cli_command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn cli_command() -> clap::Command {
    use clap::CommandFactory;
    // clap keeps borrowed strings; the text is built once per process.
    let version: &'static str = Box::leak(journal_tools::version_text().into_boxed_str());
    Cli::command().version(version).long_version(version)
}

/// Exit status for damage found or an operation that failed.
const EXIT_FAILURE: u8 = 1;
/// Exit status for a bad configuration or bad arguments.
const EXIT_USAGE: u8 = 2;

/// Which journal to read: the one a configuration names, or a directory and prefix (a backup
/// copied elsewhere).
#[derive(Args, Clone)]
struct JournalSource {
    /// The engine configuration; its [journal] section names the journal.
    #[arg(long, value_name = "FILE", required_unless_present = "dir")]
    config: Option<PathBuf>,
    /// A journal directory, e.g. a backup (overrides the configuration's journal.dir).
    #[arg(long, value_name = "DIR", requires = "prefix")]
    dir: Option<PathBuf>,
    /// The segment file prefix in DIR (journal.file_prefix; segments are PREFIX-<seq>.seg).
    #[arg(long, value_name = "PREFIX", requires = "dir")]
    prefix: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputFormat {
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand)]
enum JournalCommand {
    /// Check every record's checksum and sequence. Exit 0: intact (a torn tail from a crash
    /// is reported, and is cut off at the next engine start); 1: damaged (the engine will not
    /// start; the message says where and how to inspect it).
    Verify {
        #[command(flatten)]
        source: JournalSource,
    },
    /// Segments, record counts, sequence and time ranges, sizes, and the newest snapshot.
    Stats {
        #[command(flatten)]
        source: JournalSource,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
    },
    /// Print records with their payloads decoded into commands, or (with --file and
    /// --from-offset) decode and hex-dump the raw bytes at one place of a segment file, as
    /// the engine's "journal is corrupt" message tells you to.
    Dump {
        #[command(flatten)]
        source: JournalSource,
        /// First sequence to print.
        #[arg(long, value_name = "N", default_value_t = 1)]
        from_seq: u64,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputFormat,
        /// A segment file to inspect raw (relative names are looked up in --dir).
        #[arg(long, value_name = "FILE", requires = "from_offset")]
        file: Option<PathBuf>,
        /// Byte offset in --file to decode from (0: the segment header).
        #[arg(long, value_name = "OFFSET", requires = "file")]
        from_offset: Option<u64>,
        /// Bytes to hex-dump with --file.
        #[arg(long, value_name = "N", default_value_t = 256)]
        bytes: usize,
    },
    /// Replay the journal into a fresh engine and print the record count, the last sequence,
    /// the time taken and the state hash. Equal hashes at equal sequences mean equal books,
    /// orders and accounts: compare replicas, or a backup with the live engine.
    Replay {
        /// The engine configuration (instruments and accounts are needed to replay); --dir and
        /// --prefix may point it at another copy of the journal.
        #[command(flatten)]
        source: JournalSource,
        /// Start from the newest snapshot in the configuration's snapshots.dir instead of from
        /// sequence 1 (needed once retention has deleted the oldest segments).
        #[arg(long)]
        from_snapshot: bool,
    },
    /// Print the newest journal and snapshot format versions on disk, as one JSON line
    /// {"journal": N, "snapshot": M} (0: no such file): compare with what `--version` says a
    /// build reads before installing it. Reads file headers only; takes no lock.
    Formats {
        /// The engine configuration: its journal (input and session output journals) and
        /// snapshot directories are read.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Copy a running engine's journal, newest snapshot and session output journals into DIR,
    /// without stopping it and without its lock; verify the copy by replaying it read-only and
    /// write DIR/manifest.json (recovery point `sequence`, `state_hash`, formats, SHA-256 per
    /// file). Prints one JSON line. On failure (exit 1) nothing is left in DIR.
    ///
    /// The copy holds every command durable when it started: the running engine's durable
    /// sequence from its admin endpoint's /status (`sequence_source` "admin"), or, when nothing
    /// answers there (a stopped engine), every complete journal record ("journal").
    Backup {
        /// The running engine's configuration.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The backup directory: new, or empty.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        /// The running engine's admin endpoint (default: the configuration's [admin] listen,
        /// a wildcard address reached on loopback; with port 0 the journal is read instead).
        #[arg(long, value_name = "ADDR")]
        admin: Option<std::net::SocketAddr>,
    },
    /// Restore a backup taken by `journal backup` into the configuration's journal, snapshot
    /// and session directories, which must be empty or absent. Every file's SHA-256 is checked
    /// before anything is written; the restored journal is replayed read-only and must reach
    /// the manifest's state hash. Prints one JSON line. Then start the engine on this
    /// configuration: it recovers to the manifest's `sequence` and `state_hash`.
    Restore {
        /// The configuration of the engine to restore (same instruments and accounts).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The backup directory (holding manifest.json).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
}

fn fail(code: u8, message: impl std::fmt::Display) -> ExitCode {
    eprintln!("petrel-engine: {message}");
    ExitCode::from(code)
}

/// The configuration (if given) and the journal location to read.
fn journal_source(source: &JournalSource) -> Result<(Option<Config>, JournalLocation), ExitCode> {
    let config = match &source.config {
        Some(path) => Some(Config::load(path).map_err(|e| fail(EXIT_USAGE, e))?),
        None => None,
    };
    let location = match (&source.dir, &source.prefix, &config) {
        (Some(dir), Some(prefix), _) => JournalLocation::new(dir, prefix),
        (_, _, Some(config)) => JournalLocation::new(&config.journal.dir, &config.journal.file_prefix),
        _ => unreachable!("clap requires --config or --dir with --prefix"),
    };
    Ok((config, location))
}

fn journal(command: JournalCommand) -> ExitCode {
    match journal_inner(command) {
        Ok(code) | Err(code) => code,
    }
}

fn journal_inner(command: JournalCommand) -> Result<ExitCode, ExitCode> {
    match command {
        JournalCommand::Verify { source } => {
            let (_, location) = journal_source(&source)?;
            let report = petrel_journal::verify(&location).map_err(|e| fail(EXIT_FAILURE, e))?;
            print!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Stats { source, format } => {
            let (config, location) = journal_source(&source)?;
            let report = petrel_journal::verify(&location).map_err(|e| fail(EXIT_FAILURE, e))?;
            let snapshot = match &config {
                Some(config) => petrel_journal::latest_snapshot(&config.snapshots.dir)
                    .map_err(|e| fail(EXIT_FAILURE, e))?
                    .map(|s| (s.sequence, s.path, s.bytes.len())),
                None => None,
            };
            match format {
                OutputFormat::Text => {
                    print!("{report}");
                    match &snapshot {
                        Some((sequence, path, bytes)) => {
                            println!("  snapshot:    {} (sequence {sequence}, {bytes} bytes)", path.display())
                        }
                        None if config.is_some() => println!("  snapshot:    none"),
                        None => {}
                    }
                }
                OutputFormat::Json => {
                    let mut value = serde_json::to_value(&report).expect("VerifyReport serializes");
                    value["snapshot"] = match &snapshot {
                        Some((sequence, path, bytes)) => serde_json::json!({
                            "sequence": sequence, "path": path, "bytes": bytes
                        }),
                        None => serde_json::Value::Null,
                    };
                    println!("{value}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Dump { source, from_seq, format, file, from_offset, bytes } => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            if let (Some(file), Some(offset)) = (file, from_offset) {
                let path = match &source.dir {
                    Some(dir) if file.is_relative() => dir.join(file),
                    _ => file,
                };
                petrel_journal::inspect_at(&path, offset, bytes, &mut out)
                    .map_err(|e| fail(EXIT_FAILURE, e))?;
                return Ok(ExitCode::SUCCESS);
            }
            let (_, location) = journal_source(&source)?;
            let format = match format {
                OutputFormat::Text => DumpFormat::Text,
                OutputFormat::Json => DumpFormat::JsonLines,
            };
            let result = journal_tools::dump(&location, from_seq, format, &mut out);
            out.flush().map_err(|e| fail(EXIT_FAILURE, format!("cannot write output: {e}")))?;
            result.map_err(|e| fail(EXIT_FAILURE, e))?;
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Replay { source, from_snapshot } => {
            let (config, location) = journal_source(&source)?;
            let Some(config) = config else {
                return Err(fail(
                    EXIT_USAGE,
                    "journal replay needs --config (the instruments and accounts to replay into)",
                ));
            };
            let snapshot_dir = from_snapshot.then_some(config.snapshots.dir.as_path());
            let summary = journal_tools::replay(
                &config.engine,
                &location,
                snapshot_dir,
                &mut journal_tools::stderr_progress(),
            )
            .map_err(|e| fail(EXIT_FAILURE, e))?;
            println!("{summary}");
            Ok(ExitCode::SUCCESS)
        }
        JournalCommand::Formats { config } => journal_formats(&config),
        JournalCommand::Backup { config, to, admin } => journal_backup(&config, &to, admin),
        JournalCommand::Restore { config, from } => journal_restore(&config, &from),
    }
}

fn load_config(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| fail(EXIT_USAGE, e))
}

/// `journal formats`: one JSON line.
fn journal_formats(config: &std::path::Path) -> Result<ExitCode, ExitCode> {
    let config = load_config(config)?;
    let formats = FormatVersions::of_config(&config).map_err(|e| fail(EXIT_FAILURE, e))?;
    println!("{formats}");
    Ok(ExitCode::SUCCESS)
}

/// `journal backup`: one JSON line summing up the manifest.
fn journal_backup(
    config: &std::path::Path,
    to: &std::path::Path,
    admin: Option<std::net::SocketAddr>,
) -> Result<ExitCode, ExitCode> {
    let config = load_config(config)?;
    let started = Instant::now();
    let admin = admin.map_or(AdminSource::Config, AdminSource::At);
    let manifest = backup::backup(&config, to, admin, &mut journal_tools::stderr_progress())
        .map_err(|e| fail(EXIT_FAILURE, format!("backup into {} failed: {e}", to.display())))?;
    let line = serde_json::json!({
        "backup": to,
        "sequence": manifest.sequence,
        "sequence_source": manifest.sequence_source,
        "state_hash": manifest.state_hash,
        "snapshot_sequence": manifest.snapshot_sequence,
        "files": manifest.files.len(),
        "bytes": manifest.total_bytes(),
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}

/// `journal restore`: one JSON line.
fn journal_restore(config: &std::path::Path, from: &std::path::Path) -> Result<ExitCode, ExitCode> {
    let config = load_config(config)?;
    let started = Instant::now();
    let restored = backup::restore(&config, from, &mut journal_tools::stderr_progress())
        .map_err(|e| fail(EXIT_FAILURE, format!("restore from {} refused: {e}", from.display())))?;
    let line = serde_json::json!({
        "restored": from,
        "sequence": restored.manifest.sequence,
        "state_hash": restored.manifest.state_hash,
        "files": restored.files,
        "bytes": restored.bytes,
        "elapsed_ms": started.elapsed().as_millis() as u64,
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
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
    let (config, commands) = match petrel_workload::lobster::lobster_commands(&text) {
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

/// `petrel-engine promote`: `POST /promote` to the standby's admin endpoint.
fn promote(path: &std::path::Path, force: bool, alone: bool) -> ExitCode {
    use std::io::{Read, Write};
    let config = match petrel_engine::config::Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("petrel-engine: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if config.replication.is_none() {
        eprintln!(
            "petrel-engine: {}: no [replication] section: there is no standby to promote",
            path.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    let admin = config.admin.listen;
    let answer = (|| -> std::io::Result<String> {
        let mut stream = std::net::TcpStream::connect_timeout(&admin, std::time::Duration::from_secs(5))?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        let query = match (force, alone) {
            (false, false) => "",
            (true, false) => "?force",
            (false, true) => "?alone",
            (true, true) => "?force&alone",
        };
        let request = format!(
            "POST /promote{query} HTTP/1.1\r\nHost: petrel\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes())?;
        let mut text = String::new();
        stream.read_to_string(&mut text)?;
        Ok(text)
    })();
    match answer {
        Ok(text) if text.starts_with("HTTP/1.1 200") => {
            print!("{}", text.split("\r\n\r\n").nth(1).unwrap_or(""));
            ExitCode::SUCCESS
        }
        Ok(text) => {
            eprintln!("petrel-engine: {}", text.split("\r\n\r\n").nth(1).unwrap_or(&text).trim_end());
            ExitCode::from(EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("petrel-engine: cannot reach the standby's admin endpoint at {admin}: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// `petrel-engine rejoin`.
fn rejoin(path: &std::path::Path) -> ExitCode {
    let config = match petrel_engine::config::Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("petrel-engine: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match petrel_engine::replication::peer::rejoin(&config) {
        Ok(report) => {
            print!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("petrel-engine: rejoin refused: {e}");
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
