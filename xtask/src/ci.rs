//! `ci`, `deps`, `quick` and `fuzz`: the test suite as CI runs it on a fresh Debian 12 machine
//! (`ci` ends with `systest`, which builds the packages with `dist` first).

use crate::util::{cargo, debian_package_installed, is_root, run, Result};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// Debian packages the test suite uses, and what for.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("debootstrap", "root filesystems for the tuner's QEMU test and the systemd system tests"),
    ("qemu-system-x86", "the tuner's QEMU test boots a real kernel"),
    ("e2fsprogs", "disk image for the QEMU test"),
    ("python3-venv", "the independent OUCH/SoupBinTCP client runs in a venv"),
    ("iproute2", "network namespaces for the tuner's netns test"),
    ("util-linux", "unshare, setpriv and nsenter for the tuner's tests and the system tests"),
    ("systemd-container", "systemd-nspawn boots Debian 12 with systemd for `cargo xtask systest`"),
    ("help2man", "man pages generated from the binaries' --help in `cargo xtask dist`"),
    ("lintian", "checks the .deb packages in `cargo xtask dist`"),
    ("rpmlint", "checks the .rpm packages in `cargo xtask dist`"),
    ("rpm", "reads, checks and installs the .rpm packages in `cargo xtask systest`"),
    ("prometheus", "promtool checks the metrics exposition and the alert rules"),
    ("dpkg-dev", "dpkg-scanpackages indexes the local apt repository of the Ansible system tests"),
    ("etcd-server", "three real etcd members decide the primary in the automatic failover tests"),
];

/// Cargo tools: (command checked with `cargo <sub> --version`, crate, pinned version).
const CARGO_TOOLS: &[(&str, &str, &str)] = &[
    ("fuzz", "cargo-fuzz", "0.13.2"),
    ("deb", "cargo-deb", "3.8.0"),
    ("generate-rpm", "cargo-generate-rpm", "0.21.1"),
];

pub fn deps() -> Result {
    let missing: Vec<&str> = DEBIAN_PACKAGES
        .iter()
        .map(|(name, _)| *name)
        .filter(|name| !debian_package_installed(name))
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
    for (sub, krate, version) in CARGO_TOOLS {
        ensure_cargo_tool(sub, krate, version)?;
    }
    Ok(())
}

/// Installs a cargo tool at its pinned version unless `cargo SUB --version` already works.
pub fn ensure_cargo_tool(sub: &str, krate: &str, version: &str) -> Result {
    let present = Command::new("cargo").args([sub, "--version"]).output().is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    cargo(&format!("install {krate}"), &["install", "--locked", krate, "--version", version])
}

/// Installs the cargo tools the packaging needs (`cargo xtask dist`).
pub fn ensure_packaging_tools() -> Result {
    for (sub, krate, version) in CARGO_TOOLS.iter().filter(|(sub, _, _)| *sub != "fuzz") {
        ensure_cargo_tool(sub, krate, version)?;
    }
    Ok(())
}

pub fn quick() -> Result {
    cargo("format check", &["fmt", "--all", "--check"])?;
    cargo("clippy", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    cargo("tests", &["test", "--workspace", "--profile", "ci"])?;
    other_data_path()
}

/// The suites whose guarantees must hold on both data paths, each run once more on the path
/// its configuration does not choose: the daemon suites run on config/dev.toml
/// (run-to-completion), so again on the pipeline; the runtime's crash suite on the generated
/// configuration (pipeline), so again running to completion. (pipeline_no_alloc and
/// pipeline_e2e name their path in each test.)
const BOTH_DATA_PATHS: [(&str, &str); 9] = [
    ("gateway", "pipeline"),
    ("market_data", "pipeline"),
    ("gateway_no_alloc", "pipeline"),
    ("crash", "pipeline"),
    ("crash_network", "pipeline"),
    ("output_regeneration", "pipeline"),
    ("reasons_metrics", "pipeline"),
    ("journal_failure", "pipeline"),
    ("pipeline_crash", "run-to-completion"),
];

fn other_data_path() -> Result {
    for mode in ["pipeline", "run-to-completion"] {
        let mut args = vec!["test", "--profile", "ci", "-p", "petrel-engine"];
        for (suite, _) in BOTH_DATA_PATHS.iter().filter(|(_, m)| *m == mode) {
            args.extend(["--test", suite]);
        }
        run(
            &format!("the same suites on the {mode} data path"),
            "cargo",
            &args,
            &[("PETREL_TEST_RUNTIME_MODE", mode)],
            None,
        )?;
    }
    Ok(())
}

pub fn fuzz(seconds: u32) -> Result {
    let dir = Path::new("engine/proto");
    let limit = format!("-max_total_time={seconds}");
    for target in [
        "soupbin_server",
        "soupbin_client",
        "ouch_inbound",
        "ouch_outbound",
        "itch_message",
        "moldudp64_packet",
    ] {
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

pub fn ci() -> Result {
    let started = Instant::now();
    deps()?;
    quick()?;
    if !is_root() {
        return Err(
            "the system tests (QEMU VM, network namespaces) need root; run `cargo xtask ci` as root".into()
        );
    }
    // The playbooks' static checks (ansible-lint, syntax); they run on the hosts in systest.
    crate::systest::ansible::lint()?;
    cargo(
        "tuner QEMU VM test",
        &["test", "--profile", "ci", "-p", "petrel-tuner", "--test", "vm", "--", "--ignored"],
    )?;
    let seconds: u32 = std::env::var("PETREL_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    fuzz(seconds)?;
    // The packages, then the packages in a booted Debian 12 with systemd; every engine scenario
    // must run (a PENDING one fails CI).
    crate::systest::systest(true)?;
    println!("\nxtask ci: all steps passed in {:.0}s", started.elapsed().as_secs_f64());
    Ok(())
}
