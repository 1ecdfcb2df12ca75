//! A primary/standby pair for the replication and failover tests: configurations with a
//! shared secret, own loopback addresses, and what the tests read of each engine.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use petrel_engine::journal::{open_read_only, JournalLocation};
use petrel_testkit::{http_get, write_config, Client, Daemon, Got};

use super::{wait_for, BIN};

pub const AAPL_585: u64 = 5_853_300;

/// A 32-byte secret in a 0600 file.
pub fn write_secret(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

pub const SECRET: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a0";

/// The development configuration in `dir` with `section` as its `[replication]`, and a
/// snapshot (so a state hash compared with the standby) every 10 commands.
pub fn config_with(dir: &Path, section: &str) -> PathBuf {
    let path = write_config(dir, "epoll");
    let mut text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("every_commands = 100_000"), "config/dev.toml's snapshot interval moved");
    text = text.replace("every_commands = 100_000", "every_commands = 10");
    text.push_str("\n[replication]\n");
    text.push_str(section);
    std::fs::write(&path, text).unwrap();
    path
}

pub fn status(daemon: &Daemon) -> serde_json::Value {
    serde_json::from_str(&http_get(daemon.admin.expect("admin address"), "/status")).unwrap()
}

pub fn metrics(daemon: &Daemon) -> String {
    http_get(daemon.admin.expect("admin address"), "/metrics")
}

pub fn login(addr: SocketAddr) -> Client {
    let mut bob = Client::connect(addr);
    assert!(matches!(bob.login("bob", "bob", 0), Got::LoginAccepted { .. }));
    bob
}

/// Every record of the journal in `dir`, in order.
pub fn records(dir: &Path) -> Vec<(u64, u64, Vec<u8>)> {
    let recovery = open_read_only(&JournalLocation::new(dir.join("journal"), "input")).unwrap();
    let mut reader = recovery.replay_from(recovery.first_sequence.unwrap_or(1)).unwrap();
    let mut out = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        out.push((r.sequence, r.timestamp_ns, r.payload.to_vec()));
    }
    out
}

/// Two loopback addresses of this test's own (127.x.y.1 and .2), so that each engine's
/// replication and admin ports are known before it starts and no other test shares them.
pub fn own_addresses(test: u8) -> (std::net::IpAddr, std::net::IpAddr) {
    let x = 20 + (std::process::id() % 200) as u8;
    (std::net::IpAddr::from([127, x, test, 1]), std::net::IpAddr::from([127, x, test, 2]))
}

/// One host of a pair in the failover test: its directory, its configurations (it starts as
/// the primary once; afterwards always as a standby) and its admin address.
pub struct Host {
    pub dir: tempfile::TempDir,
    pub primary_config: PathBuf,
    pub standby_config: PathBuf,
}

pub fn host(me: std::net::IpAddr, peer: std::net::IpAddr, secret: &Path) -> Host {
    host_with(me, peer, secret, "")
}

/// [`host`] with `extra` sections appended, and its gateway at `me:15302` (clients know both
/// hosts' addresses).
pub fn host_with(me: std::net::IpAddr, peer: std::net::IpAddr, secret: &Path, extra: &str) -> Host {
    let dir = tempfile::tempdir().unwrap();
    // With the market-data feed on (sent to the discard port): both hosts journal it.
    let section = |role: &str| {
        format!(
            "role = \"{role}\"\ncluster_id = \"test-pair\"\nsecret_file = \"{}\"\nlisten = \"{me}:15300\"\npeer = \"{peer}:15300\"\nack = \"standby\"\non_standby_loss = \"halt\"\n\n[market_data]\nsession = \"PETRELHA\"\ndestinations = [\"127.0.0.1:9\"]\n{extra}",
            secret.display()
        )
    };
    let write = |name: &str, role: &str| {
        let sub = dir.path().join(name);
        std::fs::create_dir_all(&sub).unwrap();
        let path = config_with(&sub, &section(role));
        // Both files of a host share its journal, snapshots and a known admin address.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(&sub.display().to_string(), &dir.path().display().to_string());
        let path = dir.path().join(format!("{name}.toml"));
        let text = set_listen(&text, "[admin]", &format!("{me}:15301"));
        std::fs::write(&path, set_listen(&text, "[gateway]", &format!("{me}:15302"))).unwrap();
        path
    };
    let primary_config = write("as-primary", "primary");
    let standby_config = write("as-standby", "standby");
    Host { dir, primary_config, standby_config }
}

pub fn run_cli(args: &[&str], config: &Path) -> (bool, String) {
    let out = Command::new(BIN).args(args).arg("--config").arg(config).output().unwrap();
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

/// Waits until `primary` has a standby that holds everything it acknowledged.
pub fn wait_caught_up(primary: &Daemon) {
    wait_for("the standby caught up", || {
        let s = status(primary);
        s["replication"]["connected"] == true
            && s["replication"]["lag_records"] == 0
            && s["replication"]["halted"] == false
    });
}

/// `text` with `listen = addr` in `section` (e.g. `[admin]`).
pub fn set_listen(text: &str, section: &str, addr: &str) -> String {
    let mut out = String::new();
    let mut in_section = false;
    for line in text.lines() {
        if line.starts_with('[') {
            in_section = line.trim() == section;
        }
        if in_section && line.starts_with("listen") {
            out.push_str(&format!("listen = \"{addr}\"\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}
