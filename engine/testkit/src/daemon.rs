//! The real daemon, `petrel-engine run`, on a test's configuration: started, waited for until
//! it logs that it is ready, its log read line by line, and killed when the test lets go of it.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

use crate::http::http_get;

/// How long a daemon may take to become ready: generous, since a loaded machine may take seconds
/// to recover a journal; a ready daemon is seen as soon as it says so.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const READY_LINE: &str = "ready: gateway listening addr=";
/// A standby has no gateway: it is ready once it follows its primary.
const STANDBY_READY_LINE: &str = "ready: standby following the primary";

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub log: mpsc::Receiver<String>,
    /// What it logged up to "ready".
    pub startup: Vec<String>,
}

impl Daemon {
    /// Runs the daemon binary `bin` (a test passes `env!("CARGO_BIN_EXE_petrel-engine")`, or
    /// [`crate::engine_binary::engine_binary`] from another package) on `config`.
    pub fn start(bin: impl AsRef<OsStr>, config: &Path) -> Daemon {
        Daemon::start_with_env(bin, config, &[])
    }

    /// A standby (`replication.role = "standby"`): waits for it to follow its primary. It has
    /// no gateway, so `addr` is its admin address.
    pub fn start_standby(bin: impl AsRef<OsStr>, config: &Path) -> Daemon {
        Daemon::spawn(bin, config, &[], STANDBY_READY_LINE)
    }

    /// [`Daemon::start_standby`] with more environment (e.g. systemd's NOTIFY_SOCKET).
    pub fn start_standby_with_env(bin: impl AsRef<OsStr>, config: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(bin, config, env, STANDBY_READY_LINE)
    }

    pub fn start_with_env(bin: impl AsRef<OsStr>, config: &Path, env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(bin, config, env, READY_LINE)
    }

    fn spawn(bin: impl AsRef<OsStr>, config: &Path, env: &[(&str, &str)], ready: &str) -> Daemon {
        let mut child = Command::new(bin)
            .args(["run", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start petrel-engine run");
        let stderr = child.stderr.take().unwrap();
        // Unbounded, so that the daemon never blocks on a full pipe whatever the test reads.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(strip_ansi(&line)).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut startup = Vec::new();
        loop {
            let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) else {
                panic!(
                    "petrel-engine did not become ready ({:?}); it said:\n{}",
                    child.try_wait(),
                    startup.join("\n")
                )
            };
            if let Some(at) = line.find(ready) {
                let admin: Option<SocketAddr> = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("admin="))
                    .and_then(|a| a.trim_matches('"').parse().ok());
                let addr = if ready == READY_LINE {
                    let rest = &line[at + ready.len()..];
                    rest.split_whitespace().next().unwrap().parse().unwrap()
                } else {
                    admin.expect("the standby logs its admin address")
                };
                startup.push(line);
                return Daemon { child, addr, admin, log: rx, startup };
            }
            startup.push(line);
        }
    }

    pub fn signal(&self, signal: Signal) {
        signal::kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.child.wait().unwrap()
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to end by itself (a crash or a failpoint) and returns how.
    pub fn wait_exit(mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }

    /// Log lines that contain `needle`, waiting up to `timeout` for the first: a line is
    /// written a moment after what it reports (by the daemon's log thread, then this process's
    /// reader). Like [`Daemon::log_lines`], consumes what it reads.
    pub fn wait_log_lines(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut found = self.log_lines(needle);
        while found.is_empty() {
            match self.log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(needle) => found.push(line),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        found.extend(self.log.try_iter().filter(|l| l.contains(needle)));
        found
    }

    /// Log lines so far that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.startup.iter().cloned().chain(self.log.try_iter()).filter(|l| l.contains(needle)).collect()
    }

    /// The engine's last input sequence, from the admin endpoint's `/status`.
    pub fn last_sequence(&self) -> u64 {
        let admin = self.admin.expect("the daemon logged its admin address");
        let status: serde_json::Value = serde_json::from_str(&http_get(admin, "/status")).unwrap();
        status["last_sequence"].as_u64().expect("last_sequence in /status")
    }
}

impl Drop for Daemon {
    /// A failing test must not leave a daemon running: kill it (a no-op after `stop`).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The line without its terminal colour sequences.
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
