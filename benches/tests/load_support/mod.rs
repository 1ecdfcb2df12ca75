//! Shared by the petrel-load tests: the real `petrel-engine` daemon on a private copy of
//! config/bench.toml.
//!
//! The daemon is another package's binary, which Cargo does not build for this package's
//! tests (`CARGO_BIN_EXE_*` covers only the package's own binaries). So the tests build it
//! themselves, once per test binary, with the Cargo that runs them, into the same target
//! directory and profile as the test binary (found from the test executable's path:
//! target/<profile>/deps/<test>). Under `cargo test --profile ci` that is target/ci/petrel-engine;
//! when the lead's CI has built it already, this is a no-op check.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Path of the petrel-engine binary built for this test's profile.
pub fn engine_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let profile =
            match profile_dir.file_name().and_then(|n| n.to_str()).expect("a profile directory name") {
                "debug" => "dev".to_string(),
                other => other.to_string(),
            };
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "petrel-engine",
                "--bin",
                "petrel-engine",
                "--profile",
                &profile,
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(REPO)
            .status()
            .expect("run cargo build for petrel-engine");
        assert!(status.success(), "cargo build -p petrel-engine --profile {profile} failed");
        let binary = profile_dir.join("petrel-engine");
        assert!(binary.exists(), "{} was not built", binary.display());
        binary
    })
}

/// config/bench.toml with a private journal and snapshots under `dir`, an ephemeral port and
/// no admin endpoint clash.
pub fn bench_config(dir: &Path) -> PathBuf {
    let bench = std::fs::read_to_string(format!("{REPO}/config/bench.toml")).unwrap();
    let users = std::fs::canonicalize(format!("{REPO}/config/bench-users.toml")).unwrap();
    let replaced = |text: String, from: &str, to: &str| {
        assert!(text.contains(from), "config/bench.toml no longer contains {from:?}");
        text.replace(from, to)
    };
    let text = replaced(
        bench,
        "dir = \"../var/bench/journal\"",
        &format!("dir = \"{}\"", dir.join("journal").display()),
    );
    let text = replaced(
        text,
        "dir = \"../var/bench/snapshots\"",
        &format!("dir = \"{}\"", dir.join("snapshots").display()),
    );
    let text = replaced(text, "listen = \"127.0.0.1:15100\"", "listen = \"127.0.0.1:0\"");
    let text = replaced(text, "listen = \"127.0.0.1:9190\"", "listen = \"127.0.0.1:0\"");
    let text =
        replaced(text, "users_file = \"bench-users.toml\"", &format!("users_file = \"{}\"", users.display()));
    let path = dir.join("bench.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// The daemon, killed when dropped so that a failing test leaves nothing running.
pub struct Daemon {
    child: Child,
    pub addr: SocketAddr,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        let mut child = Command::new(engine_binary())
            .args(["run", "--config"])
            .arg(config)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start petrel-engine run");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                panic!(
                    "petrel-engine did not become ready ({:?}); it said:\n{}",
                    child.try_wait(),
                    seen.join("\n")
                )
            };
            let clean = strip_ansi(&line);
            if let Some(at) = clean.find("ready: gateway listening addr=") {
                let rest = &clean[at + "ready: gateway listening addr=".len()..];
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                // Keep draining the log so the daemon never blocks on a full pipe.
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return Daemon { child, addr };
            }
            seen.push(clean);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c2 in chars.by_ref() {
                if c2.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
