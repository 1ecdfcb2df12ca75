//! Project automation: `cargo xtask <task>`.
//!
//! `cargo xtask ci` is the whole test suite, exactly as CI runs it on a fresh Debian 12 machine:
//! it installs what the tests need (Debian packages, cargo tools), then runs formatting, lints,
//! every test (including the slow system tests), and bounded fuzzing. It stops at the first
//! failure with the step's name.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci          install test dependencies, then fmt, clippy, all tests, VM and fuzz tests
  deps        only install the Debian packages and cargo tools the tests need (root)
  quick       fmt, clippy and the fast tests (no VM, no fuzzing)
  fuzz SECS   run every fuzz target for SECS seconds each (default 30)

environment:
  PETREL_FUZZ_SECONDS   seconds per fuzz target in `ci` (default 20)
";

/// Debian packages the test suite uses, and what for.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("debootstrap", "root filesystems for the tuner's QEMU test"),
    ("qemu-system-x86", "the tuner's QEMU test boots a real kernel"),
    ("e2fsprogs", "disk image for the QEMU test"),
    ("python3-venv", "the independent OUCH/SoupBinTCP client runs in a venv"),
    ("iproute2", "network namespaces for the tuner's netns test"),
    ("util-linux", "unshare and setpriv for the tuner's tests"),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).expect("cd to the workspace root");
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("deps") => deps(),
        Some("quick") => quick(),
        Some("fuzz") => fuzz(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30)),
        Some("-h" | "--help" | "help") => {
            print!("{USAGE}");
            Ok(())
        }
        _ => {
            eprint!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().expect("xtask lives one level below the workspace root").to_path_buf()
}

type Result = std::result::Result<(), String>;

fn run(step: &str, program: &str, args: &[&str], envs: &[(&str, &str)], dir: Option<&Path>) -> Result {
    let started = Instant::now();
    println!("\n==> {step}: {program} {}", args.join(" "));
    let mut command = Command::new(program);
    command.args(args);
    for (k, v) in envs {
        command.env(k, v);
    }
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let status = command.status().map_err(|e| format!("{step}: cannot start {program}: {e}"))?;
    println!("<== {step}: {status} in {:.1}s", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("step '{step}' failed ({status})"))
    }
}

fn cargo(step: &str, args: &[&str]) -> Result {
    run(step, "cargo", args, &[], None)
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn deps() -> Result {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| {
            !Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", name])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect();
    if !missing.is_empty() {
        if !is_root() {
            let why: Vec<String> = DEBIAN_PACKAGES
                .iter()
                .filter(|(n, _)| missing.contains(n))
                .map(|(n, w)| format!("  {n}: {w}"))
                .collect();
            return Err(format!(
                "the test suite needs Debian packages that are not installed, and installing them needs root:\n{}\n\
                 run `sudo apt-get install {}` or run this as root",
                why.join("\n"),
                missing.join(" ")
            ));
        }
        run("apt-get update", "apt-get", &["update", "-q"], &[], None)?;
        let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
        args.extend(&missing);
        run("install Debian packages", "apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")], None)?;
    }
    let have_fuzz =
        Command::new("cargo").args(["fuzz", "--version"]).output().is_ok_and(|o| o.status.success());
    if !have_fuzz {
        cargo("install cargo-fuzz", &["install", "--locked", "cargo-fuzz", "--version", "0.13.2"])?;
    }
    Ok(())
}

fn quick() -> Result {
    cargo("format check", &["fmt", "--all", "--check"])?;
    cargo("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    cargo("tests", &["test", "--workspace", "--profile", "ci"])
}

fn fuzz(seconds: u32) -> Result {
    let dir = Path::new("engine/proto");
    let limit = format!("-max_total_time={seconds}");
    for target in ["soupbin_server", "soupbin_client", "ouch_inbound", "ouch_outbound"] {
        run(
            &format!("fuzz {target} for {seconds}s"),
            "cargo",
            &["fuzz", "run", target, "--", &limit],
            // cargo-fuzz needs unstable flags; the stable toolchain accepts them with this.
            &[("RUSTC_BOOTSTRAP", "1")],
            Some(dir),
        )?;
    }
    Ok(())
}

fn ci() -> Result {
    let started = Instant::now();
    deps()?;
    quick()?;
    if !is_root() {
        return Err(
            "the system tests (QEMU VM, network namespaces) need root; run `cargo xtask ci` as root".into()
        );
    }
    cargo(
        "tuner QEMU VM test",
        &["test", "--profile", "ci", "-p", "petrel-tuner", "--test", "vm", "--", "--ignored"],
    )?;
    let seconds: u32 = std::env::var("PETREL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    fuzz(seconds)?;
    println!("\nxtask ci: all steps passed in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}
