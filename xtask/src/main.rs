//! Project automation: `cargo xtask <task>`.
//!
//! `cargo xtask ci` is the whole test suite, exactly as CI runs it on a fresh Debian 12 machine:
//! it installs what the tests need (Debian packages, cargo tools), then runs formatting, lints,
//! every test (including the slow system tests), bounded fuzzing, and the packages in a booted
//! systemd (`systest`, which runs `dist` first). It stops at the first failure with the step's
//! name.

mod ci;
mod dist;
mod systest;
mod util;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask <task>

tasks:
  ci          install test dependencies, then fmt, clippy, all tests, VM and fuzz tests,
              then dist and systest --require-engine (root)
  deps        only install the Debian packages and cargo tools the tests need (root)
  quick       fmt, clippy and the fast tests (no VM, no fuzzing)
  fuzz SECS   run every fuzz target for SECS seconds each (default 30)
  dist        release build, man pages, .deb and .rpm of petrel-engine and petrel-tuner in
              target/dist/, checked with lintian and rpmlint
  systest [--require-engine]
              dist, then the packages in Debian 12 booted with systemd-nspawn (root), and the
              Ansible playbooks on three such hosts;
              --require-engine fails a build whose petrel-engine lacks `run` (otherwise
              nothing runs and one PENDING line says why)
  ansible [--pair]
              ansible-lint and syntax checks of ansible/, then dist and the playbooks on three
              hosts booted with systemd-nspawn (root), then on a hot-standby pair with three
              etcd members; --pair: the pair only; the venv is target/ansible-venv

environment:
  PETREL_FUZZ_SECONDS    seconds per fuzz target in `ci` (default 20)
  PETREL_DEBIAN_MIRROR   mirror for the system tests' rootfs (default: this host's apt mirror)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    std::env::set_current_dir(&root).expect("cd to the workspace root");
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(),
        Some("deps") => ci::deps(),
        Some("quick") => ci::quick(),
        Some("fuzz") => ci::fuzz(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30)),
        Some("dist") => dist::dist().map(|_| ()),
        Some("systest") => match args.get(1).map(String::as_str) {
            None => systest::systest(false),
            Some("--require-engine") => systest::systest(true),
            Some(other) => Err(format!("systest: unknown argument {other:?}\n{USAGE}")),
        },
        Some("ansible") => match args.get(1).map(String::as_str) {
            None => systest::ansible_only(true),
            Some("--pair") => systest::ansible_only(false),
            Some(other) => Err(format!("ansible: unknown argument {other:?}\n{USAGE}")),
        },
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
