//! A hot-standby pair under Ansible: two booted Debian 12 hosts on one bridge in a network
//! namespace this test makes, three real etcd members on the bridge's address outside both
//! (etcd decides which engine is the primary), and the playbooks an operator runs on a pair:
//! site.yml, switchover.yml, rollout.yml (ansible/tests/pair is the inventory).
//!
//! What each scenario checks is read on the hosts themselves: each engine's /status role, the
//! etcd leader key, the packages, and ALICE's OUCH stream replayed from message 1 (every order
//! acknowledged before a switchover is still acknowledged after it).

use super::converge::no_secret_in;
use super::fleet::{Fleet, Host, Network};
use super::host::{alice_acknowledged_at, engine_version, trade_at};
use super::repo::Repo;
use crate::systest::Tally;
use crate::util::{output, run, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::Duration;

const NETNS: &str = "petrel-pair";
const BRIDGE: &str = "br0";
/// The bridge's own address: the etcd members listen there.
const BRIDGE_ADDRESS: &str = "10.77.0.1";
/// The pair, as ansible/tests/pair/hosts.yml names it; host n has address 10.77.0.1n.
const PAIR: [&str; 2] = ["pair-1", "pair-2"];
const ETCD_DIR: &str = "target/ansible-systest/etcd";
const LEADER_KEY: &str = "/petrel/systest-pair/leader";
/// Bounds on waiting for etcd and for a role to settle; they only stop a hung run.
const POLL: Duration = Duration::from_millis(250);
const POLLS: u32 = 240;

/// The network namespace and its bridge; deleted on drop (after the containers on it).
struct Netns;

impl Netns {
    fn create() -> Result<Netns> {
        let _ = output("ip", &["netns", "del", NETNS]);
        run("network namespace for the pair", "ip", &["netns", "add", NETNS], &[], None)?;
        let netns = Netns;
        for args in [
            vec!["link", "set", "lo", "up"],
            vec!["link", "add", BRIDGE, "type", "bridge"],
            vec!["addr", "add", &format!("{BRIDGE_ADDRESS}/24"), "dev", BRIDGE],
            vec!["link", "set", BRIDGE, "up"],
        ] {
            let mut argv = vec!["netns", "exec", NETNS, "ip"];
            argv.extend(args);
            run("bridge for the pair", "ip", &argv, &[], None)?;
        }
        Ok(netns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = output("ip", &["netns", "del", NETNS]);
    }
}

/// Three etcd members on the bridge's address; killed on drop.
struct Etcd {
    members: Vec<Child>,
}

impl Etcd {
    fn endpoints() -> String {
        (1..=3).map(|n| format!("http://{BRIDGE_ADDRESS}:2379{n}")).collect::<Vec<_>>().join(",")
    }

    fn start() -> Result<Etcd> {
        let dir = Path::new(ETCD_DIR);
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {ETCD_DIR}: {e}"))?;
        }
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {ETCD_DIR}: {e}"))?;
        let peer = |n: u32| format!("http://{BRIDGE_ADDRESS}:2380{n}");
        let cluster = (1..=3).map(|n| format!("m{n}={}", peer(n))).collect::<Vec<_>>().join(",");
        let mut etcd = Etcd { members: Vec::new() };
        for n in 1..=3u32 {
            let client = format!("http://{BRIDGE_ADDRESS}:2379{n}");
            let data = dir.join(format!("m{n}"));
            let log = fs::File::create(dir.join(format!("m{n}.log")))
                .map_err(|e| format!("cannot create etcd's log: {e}"))?;
            let err = log.try_clone().map_err(|e| e.to_string())?;
            let child = Command::new("nsenter")
                .arg(format!("--net=/run/netns/{NETNS}"))
                .args(["etcd", "--name", &format!("m{n}"), "--data-dir", &path(&data)?])
                .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
                .args(["--listen-peer-urls", &peer(n), "--initial-advertise-peer-urls", &peer(n)])
                .args(["--initial-cluster", &cluster, "--initial-cluster-state", "new"])
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(err)
                .spawn()
                .map_err(|e| format!("cannot start etcd: {e}"))?;
            etcd.members.push(child);
        }
        for _ in 0..POLLS {
            if etcdctl(&["endpoint", "health"]).is_ok() {
                println!("<== three etcd members healthy at {}", Etcd::endpoints());
                return Ok(etcd);
            }
            sleep(POLL);
        }
        Err(format!("the three etcd members did not become healthy (logs in {ETCD_DIR})"))
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for member in &mut self.members {
            let _ = member.kill();
            let _ = member.wait();
        }
    }
}

fn path(p: &Path) -> Result<String> {
    p.to_str().map(str::to_string).ok_or_else(|| format!("path is not UTF-8: {}", p.display()))
}

/// etcdctl (v3) against the three members, from inside the namespace; its standard output.
fn etcdctl(args: &[&str]) -> Result<String> {
    let endpoints = format!("--endpoints={}", Etcd::endpoints());
    let mut argv = vec!["--net=/run/netns/petrel-pair", "env", "ETCDCTL_API=3", "etcdctl", &endpoints];
    argv.extend(args);
    let out = output("nsenter", &argv)?;
    if !out.status.success() {
        return Err(format!("etcdctl {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn address(host: usize) -> String {
    format!("10.77.0.1{}", host + 1)
}

fn gateway(host: usize) -> String {
    format!("{}:15000", address(host))
}

/// The engine's role on a host, from its /status ("primary", "standby"), or what was wrong.
fn role(h: &Host) -> Result<String> {
    let script = "python3 -c \"import json, urllib.request\n\
                  print(json.load(urllib.request.urlopen('http://127.0.0.1:9180/status', timeout=10))['role'])\"";
    Ok(h.c.sh(script)?.trim().to_string())
}

/// Which host is the primary and which the standby, once both say so (a role changes while a
/// standby promotes or an old primary rejoins).
fn roles(fleet: &Fleet) -> Result<(usize, usize)> {
    let mut last = Vec::new();
    for _ in 0..POLLS {
        last = fleet.hosts.iter().map(|h| role(h).unwrap_or_else(|e| e)).collect();
        match (last[0].as_str(), last[1].as_str()) {
            ("primary", "standby") => return Ok((0, 1)),
            ("standby", "primary") => return Ok((1, 0)),
            _ => sleep(POLL),
        }
    }
    Err(format!("the pair never settled into one primary and one standby: roles {last:?}"))
}

/// The etcd leader key names the primary's replication address.
fn expect_leader(primary: usize) -> Result {
    let value = etcdctl(&["get", LEADER_KEY, "--print-value-only"])?;
    let want = format!("\"node\":\"{}:15300\"", address(primary));
    if !value.contains(&want) {
        return Err(format!("etcd's {LEADER_KEY} is {value:?}: want it to name {}", address(primary)));
    }
    Ok(())
}

/// "no order was answered for N ms" from a switchover's or rollout's report.
fn window_ms(output: &str) -> Result<f64> {
    let at = output.rfind("no order was answered for").ok_or("the run reports no time without answers")?;
    let rest = output[at..].trim_start_matches("no order was answered for").trim_start();
    let number: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
    number
        .parse()
        .map_err(|_| format!("cannot read the time without answers in {:?}", &rest[..rest.len().min(40)]))
}

pub fn session(repo: &Repo, tarball: &Path, bin: PathBuf, tally: &mut Tally) -> Result {
    let netns = Netns::create()?;
    let etcd = Etcd::start()?;
    let network = Network::Bridge { netns: NETNS, bridge: BRIDGE };
    let fleet = Fleet::boot_hosts(tarball, repo, bin, &PAIR, network, ("tests/pair", "pair-hosts.yml"))?;
    for (i, h) in fleet.hosts.iter().enumerate() {
        h.c.sh(&format!("ip addr add {}/24 dev host0 && ip link set host0 up", address(i)))?;
    }
    let result = scenarios(&fleet, repo, tally);
    drop(fleet);
    drop(etcd);
    drop(netns);
    result
}

fn scenarios(fleet: &Fleet, repo: &Repo, tally: &mut Tally) -> Result {
    tally.run(
        "ansible pair: a pair whose peers do not match stops site.yml before any host changes",
        || mismatched_pair_is_refused(fleet),
    )?;
    let mut acknowledged = Vec::new();
    tally.run(
        "ansible pair: site.yml brings up a primary and a standby following it (etcd decides), both through the gate",
        || {
            acknowledged = site_brings_up_the_pair(fleet, &repo.engine)?;
            Ok(())
        },
    )?;
    tally.run(
        "ansible pair: a second site.yml run on the pair changes nothing and restarts neither engine",
        || super::converge::second_run_changes_nothing(fleet),
    )?;
    tally.run(
        "ansible pair: switchover.yml moves the primary role, no acknowledged order lost, and reports the time without answers",
        || switchover_moves_the_primary(fleet, &mut acknowledged, 2),
    )?;
    tally.run(
        "ansible pair: rollout.yml upgrades the standby, switches over, then upgrades the old primary; no acknowledged order lost",
        || rollout_upgrades_the_pair(fleet, &repo.newer, &mut acknowledged, 3),
    )
}

fn mismatched_pair_is_refused(fleet: &Fleet) -> Result {
    // Extra variables outrank host_vars: both hosts get this, and neither's peer is the other.
    let bad = r#"{"petrel_engine_replication": {"role": "primary", "cluster_id": "systest-pair", "ack": "standby", "on_standby_loss": "halt", "rejoin": "auto", "listen": "10.77.0.12:15300", "peer": "10.77.0.99:15300"}}"#;
    let run = fleet.playbook("site.yml", &["-e", bad])?;
    run.expect_failure_saying(
        "site.yml with a mismatched pair",
        "petrel_engine_replication.peer is \"10.77.0.99:15300\"",
    )?;
    for h in &fleet.hosts {
        if h.c.sh_status("dpkg-query --show petrel-engine")?.0 == 0 {
            return Err(format!("{}: petrel-engine was installed by a refused run", h.name));
        }
    }
    Ok(())
}

/// Returns ALICE's acknowledged orders after a trade on the primary.
fn site_brings_up_the_pair(fleet: &Fleet, engine: &str) -> Result<Vec<u64>> {
    let run = fleet.playbook("site.yml", &[])?;
    run.expect_success("site.yml on a fresh pair")?;
    no_secret_in(&run)?;
    for h in &fleet.hosts {
        if engine_version(h)? != engine {
            return Err(format!("{}: not at petrel-engine {engine}", h.name));
        }
        h.c.sh("stat -c '%U:%G %a' /etc/petrel/replication.secret | grep -qx 'petrel:petrel 600'")
            .map_err(|e| format!("{}: the replication secret's owner and mode: {e}", h.name))?;
        let secret = h.c.sh("cat /etc/petrel/replication.secret")?;
        if secret.trim().len() < 16 || run.output.contains(secret.trim()) {
            return Err(format!("{}: the replication secret is short or shown in the output", h.name));
        }
    }
    let (primary, _) = roles(fleet)?;
    expect_leader(primary)?;
    trade_at(&fleet.hosts[primary], &gateway(primary), 1)?;
    alice_acknowledged_at(&fleet.hosts[primary], &gateway(primary))
}

/// After a change of primary: the roles swapped, etcd names the new one, ALICE's stream there
/// holds every order acknowledged before, and the new primary trades.
fn expect_moved(fleet: &Fleet, before: (usize, usize), acknowledged: &mut Vec<u64>, round: u32) -> Result {
    let (primary, standby) = roles(fleet)?;
    if (primary, standby) != (before.1, before.0) {
        return Err(format!(
            "the primary is still {} (want {})",
            fleet.hosts[primary].name, fleet.hosts[before.1].name
        ));
    }
    expect_leader(primary)?;
    let new = &fleet.hosts[primary];
    let now = alice_acknowledged_at(new, &gateway(primary))?;
    if !now.starts_with(acknowledged) {
        return Err(format!(
            "{}: ALICE's stream acknowledges {now:?}; before the change it acknowledged {acknowledged:?}",
            new.name
        ));
    }
    trade_at(new, &gateway(primary), round)?;
    *acknowledged = alice_acknowledged_at(new, &gateway(primary))?;
    Ok(())
}

fn switchover_moves_the_primary(fleet: &Fleet, acknowledged: &mut Vec<u64>, round: u32) -> Result {
    let before = roles(fleet)?;
    let run = fleet.playbook("switchover.yml", &[])?;
    run.expect_success("switchover.yml")?;
    no_secret_in(&run)?;
    println!("    switchover: no order was answered for {} ms", window_ms(&run.output)?);
    expect_moved(fleet, before, acknowledged, round)
}

fn rollout_upgrades_the_pair(fleet: &Fleet, newer: &str, acknowledged: &mut Vec<u64>, round: u32) -> Result {
    let before = roles(fleet)?;
    let (primary, standby) = (fleet.hosts[before.0].name, fleet.hosts[before.1].name);
    let run = fleet.playbook("rollout.yml", &["-e", &format!("petrel_rollout_version={newer}")])?;
    run.expect_success(&format!("rollout.yml to {newer} on the pair"))?;
    no_secret_in(&run)?;
    let passed = |host: &str| {
        run.output.find(&format!("{host}: petrel-engine {newer} passed the health gate")).ok_or_else(|| {
            format!("{host} did not pass the health gate on {newer} (log {})", run.log.display())
        })
    };
    if passed(standby)? > passed(primary)? {
        return Err(format!("the primary {primary} was upgraded before its standby {standby}"));
    }
    for h in &fleet.hosts {
        if engine_version(h)? != newer {
            return Err(format!("{}: on {}, want {newer}", h.name, engine_version(h)?));
        }
    }
    println!("    rollout: no order was answered for {} ms", window_ms(&run.output)?);
    expect_moved(fleet, before, acknowledged, round)?;
    fleet.write_inventory(newer, &super::host::tuner_version(&fleet.hosts[0])?)
}
