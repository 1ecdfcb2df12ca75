//! `petrel-tuner`: argument parsing and wiring; the logic lives in the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use petrel_tuner::error::{exit, Error, Result};
use petrel_tuner::host::Host;
use petrel_tuner::plan::{self, Category, Selection};
use petrel_tuner::profile::{self, Profile};
use petrel_tuner::state::{StateStore, DEFAULT_STATE_DIR};
use petrel_tuner::{apply, facts, report, require_root};

const AFTER_HELP: &str = "\
Exit codes:
  0  ok: the host matches the profile, or the command did what it was asked
  1  verify: the host differs from the profile (drift report on stdout)
  2  usage error, bad profile, or a profile this host cannot satisfy; nothing changed
  3  reboot needed: the kernel command line differs from the profile (apply wrote, or
     rollback removed, the GRUB drop-in)
  4  apply failed; everything it had changed was restored (the failed item is named)
  5  apply or rollback failed and could not restore everything; the state file keeps the
     original values: fix the cause and run `petrel-tuner rollback`
  6  the command changes the host and needs root
  7  another petrel-tuner run holds the lock
  8  reading the host or the state file failed

Built-in profiles: latency-performance, trading-16core. --only categories: net, sysctl,
irq, cpu, mm, block, workqueue, cmdline (sysctl includes net).";

/// Make a host fit for petrel-engine, prove it, and undo it.
///
/// One profile per host role (TOML, /etc/petrel/tuner.toml): CPU isolation, sysctls, IRQ
/// affinity, THP, KSM, governor, C-states, NVMe scheduler, workqueues and the kernel command
/// line. `apply` records every value it changes in a state file before changing anything, so
/// `rollback` returns the host to what it was, even after a crash mid-apply.
#[derive(Debug, Parser)]
#[command(name = "petrel-tuner", version, after_help = AFTER_HELP)]
struct Cli {
    /// Profile: a built-in name or a TOML file [default: ROOT/etc/petrel/tuner.toml].
    #[arg(long, global = true, value_name = "NAME|PATH")]
    profile: Option<String>,
    /// Only these categories, comma-separated (e.g. `net` for a network namespace).
    #[arg(long, global = true, value_name = "CATEGORIES")]
    only: Option<String>,
    /// Output format.
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Root of the host's /proc, /sys and /etc; another path tunes a fake tree (tests).
    #[arg(long, global = true, default_value = "/", value_name = "DIR")]
    root: PathBuf,
    /// Where the undo state and the lock live [default: ROOT/var/lib/petrel/tuner].
    #[arg(long, global = true, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show what the host is: CPUs, NUMA, isolation, NICs and NVMe with their IRQs, and the
    /// current value of every knob the profile names.
    Facts,
    /// For each profile item: key, current value, wanted value and action. Changes nothing.
    Plan,
    /// Record current values in the state file, then change the host to match the profile.
    Apply,
    /// Exit 0 if the host matches the profile, else 1 with a per-item drift report.
    Verify {
        /// Also write a node_exporter textfile (e.g.
        /// /var/lib/prometheus/node-exporter/petrel-tuner.prom), replaced atomically.
        #[arg(long, value_name = "PATH")]
        textfile: Option<PathBuf>,
        /// Also check the engine's thread pinning (`[runtime.*] cores` in its configuration,
        /// e.g. /etc/petrel/engine.toml) against the profile's isolated and housekeeping CPUs.
        #[arg(long, value_name = "PATH")]
        engine_config: Option<PathBuf>,
    },
    /// Restore the values recorded by apply and remove the state file.
    Rollback,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) to stdout; the
    /// packages install them for bash, zsh and fish.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("petrel-tuner: error: {e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

fn run(cli: &Cli) -> Result<i32> {
    let host = Host::new(&cli.root);
    let store = StateStore::new(cli.state_dir.clone().unwrap_or_else(|| host.path(DEFAULT_STATE_DIR)));
    let selection = match &cli.only {
        Some(list) => Selection::only(Category::parse_list(list)?),
        None => Selection::all(),
    };
    let json = cli.format == Format::Json;
    match &cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(*shell, &mut Cli::command(), "petrel-tuner", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Facts => {
            let mut facts = facts::gather(&host)?;
            // Facts stand on their own; the knob values need a profile, if there is one.
            if let Some(profile) = load_profile(cli, &host, false)? {
                facts.knobs = plan::plan(&profile, &host, &selection)?.knob_values();
            }
            print!("{}", if json { report::to_json(&facts) } else { facts::render_text(&facts) });
            Ok(exit::OK)
        }
        Command::Plan => {
            let plan = plan_for(cli, &host, &selection)?;
            print!("{}", if json { report::to_json(&plan) } else { report::plan_text(&plan) });
            Ok(exit::OK)
        }
        Command::Apply => {
            require_root(&host, "apply")?;
            let _lock = store.lock()?;
            let plan = plan_for(cli, &host, &selection)?;
            let outcome = apply::apply(&host, &store, &plan)?;
            if json {
                print!("{}", report::to_json(&outcome));
            } else {
                println!(
                    "profile {}: changed {}, {} already set, {} skipped",
                    plan.profile,
                    outcome.changed.len(),
                    outcome.already_set,
                    outcome.skipped.len()
                );
                for key in &outcome.changed {
                    println!("  set {key}");
                }
                for (key, reason) in &outcome.skipped {
                    println!("  skip {key}: {reason}");
                }
                for note in &outcome.notes {
                    println!("note: {note}");
                }
                if outcome.reboot_needed {
                    println!("reboot needed: the kernel command line differs from the profile");
                }
            }
            Ok(if outcome.reboot_needed { exit::REBOOT_NEEDED } else { exit::OK })
        }
        Command::Verify { textfile, engine_config } => {
            let plan = plan_for(cli, &host, &selection)?;
            print!("{}", if json { report::verify_json(&plan) } else { report::verify_text(&plan) });
            let mut pinning_drift = false;
            if let Some(path) = engine_config {
                let profile = load_profile(cli, &host, true)?.expect("required");
                match &profile.cores {
                    None => {
                        println!("engine pinning: profile {} names no cores: nothing to check", profile.name)
                    }
                    Some(cores) => {
                        let findings = petrel_tuner::engine_pinning::check(path, cores)?;
                        if findings.is_empty() {
                            println!("engine pinning: {} fits the profile's cores", path.display());
                        }
                        for f in &findings {
                            println!("engine pinning: {} thread {}", f.thread, f.problem);
                        }
                        pinning_drift = !findings.is_empty();
                    }
                }
            }
            if let Some(path) = textfile {
                let now_s = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                report::write_textfile(path, &plan, now_s)?;
            }
            Ok(if plan.drift().next().is_some() || pinning_drift { exit::DRIFT } else { exit::OK })
        }
        Command::Rollback => {
            require_root(&host, "rollback")?;
            let _lock = store.lock()?;
            let outcome = apply::rollback(&host, &store)?;
            if json {
                print!("{}", report::to_json(&outcome));
            } else if outcome.restored.is_empty() && outcome.gone.is_empty() {
                println!("nothing to roll back ({} has no state)", store.dir().display());
            } else {
                println!("restored {} values", outcome.restored.len());
                for key in &outcome.restored {
                    println!("  restored {key}");
                }
                for key in &outcome.gone {
                    println!("  gone {key} (no longer on this host)");
                }
                for note in &outcome.notes {
                    println!("note: {note}");
                }
                if outcome.reboot_needed {
                    println!("reboot needed: the GRUB drop-in was removed");
                }
            }
            Ok(if outcome.reboot_needed { exit::REBOOT_NEEDED } else { exit::OK })
        }
    }
}

fn plan_for(cli: &Cli, host: &Host, selection: &Selection) -> Result<plan::Plan> {
    let profile = load_profile(cli, host, true)?.expect("a required profile is loaded or fails");
    plan::plan(&profile, host, selection)
}

fn load_profile(cli: &Cli, host: &Host, required: bool) -> Result<Option<Profile>> {
    if let Some(spec) = &cli.profile {
        return Profile::load(spec).map(Some);
    }
    let default = host.path(profile::DEFAULT_PROFILE_PATH);
    if default.exists() {
        return Profile::load(&default.to_string_lossy()).map(Some);
    }
    if !required {
        return Ok(None);
    }
    Err(Error::Usage(format!(
        "no profile at {}: pass --profile with a file or a built-in name ({})",
        default.display(),
        profile::builtin_names()
    )))
}
