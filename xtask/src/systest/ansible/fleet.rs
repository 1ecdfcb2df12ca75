//! Three booted Debian 12 hosts for the playbooks: systemd-nspawn containers with the local apt
//! repository bind-mounted read-only, reached by Ansible with the community.docker.nsenter
//! connection through each one's PID 1 (written into a generated inventory file beside the
//! committed test inventory, ansible/tests/inventory), and the runs of ansible-playbook.

use super::lint::environment;
use super::repo::Repo;
use crate::systest::container::Container;
use crate::systest::ouch;
use crate::util::Result;
use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

const DIR: &str = "target/ansible-systest";
pub const HOSTS: [&str; 3] = ["petrel-1", "petrel-2", "petrel-3"];
/// Where the repository is mounted inside (ansible/tests/inventory names it).
const REPO_MOUNT: &str = "/srv/petrel-repo";

pub struct Host {
    pub name: &'static str,
    pub c: Container,
    /// The OUCH client script inside the container.
    pub client: String,
}

pub struct Fleet {
    pub hosts: Vec<Host>,
    bin: PathBuf,
    dir: PathBuf,
    runs: Cell<u32>,
    /// The committed inventory (under ansible/) and the generated hosts file beside it.
    inventory: &'static str,
    hosts_file: &'static str,
}

/// How a fleet's hosts are networked.
pub enum Network<'a> {
    /// Each host on a private network of its own.
    Private,
    /// Every host a port of `bridge` in the network namespace `netns`.
    Bridge { netns: &'a str, bridge: &'a str },
}

/// One host's line of the PLAY RECAP.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recap {
    pub ok: u32,
    pub changed: u32,
    pub unreachable: u32,
    pub failed: u32,
    pub rescued: u32,
}

/// What one ansible-playbook run did.
pub struct Run {
    pub succeeded: bool,
    pub output: String,
    pub recap: Vec<(String, Recap)>,
    pub log: PathBuf,
}

impl Run {
    pub fn recap_of(&self, host: &str) -> Result<&Recap> {
        self.recap
            .iter()
            .find(|(h, _)| h == host)
            .map(|(_, r)| r)
            .ok_or_else(|| format!("no PLAY RECAP line for {host} (log {})", self.log.display()))
    }

    /// Fails unless the run succeeded.
    pub fn expect_success(&self, what: &str) -> Result {
        if self.succeeded {
            return Ok(());
        }
        Err(format!(
            "{what}: ansible-playbook failed (log {}):\n{}",
            self.log.display(),
            tail(&self.output, 60)
        ))
    }

    /// Fails unless the run failed and its output says `needle`.
    pub fn expect_failure_saying(&self, what: &str, needle: &str) -> Result {
        if self.succeeded {
            return Err(format!(
                "{what}: ansible-playbook succeeded, want a failure (log {})",
                self.log.display()
            ));
        }
        if !self.output.contains(needle) {
            return Err(format!(
                "{what}: the failure does not say {needle:?} (log {}):\n{}",
                self.log.display(),
                tail(&self.output, 40)
            ));
        }
        Ok(())
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Fleet {
    /// The three hosts of ansible/tests/inventory.
    pub fn boot(tarball: &Path, repo: &Repo, bin: PathBuf) -> Result<Fleet> {
        let logs = Path::new(DIR).join("logs");
        if logs.exists() {
            fs::remove_dir_all(&logs).map_err(|e| format!("cannot empty {}: {e}", logs.display()))?;
        }
        Fleet::boot_hosts(tarball, repo, bin, &HOSTS, Network::Private, ("tests/inventory", "hosts.yml"))
    }

    /// `names`, booted on `network`; `inventory` is the committed inventory directory and the
    /// name of the generated hosts file that goes with it.
    pub fn boot_hosts(
        tarball: &Path,
        repo: &Repo,
        bin: PathBuf,
        names: &[&'static str],
        network: Network,
        inventory: (&'static str, &'static str),
    ) -> Result<Fleet> {
        let dir = Path::new(DIR);
        fs::create_dir_all(dir.join("logs")).map_err(|e| format!("cannot create {DIR}/logs: {e}"))?;
        let bind = format!("--bind-ro={}:{REPO_MOUNT}", repo.dir.display());
        let mut hosts = Vec::with_capacity(names.len());
        for &name in names {
            let args = std::slice::from_ref(&bind);
            let c = match network {
                Network::Private => Container::boot_with(&format!("ans-{name}"), tarball, args)?,
                Network::Bridge { netns, bridge } => {
                    Container::boot_on_bridge(&format!("ans-{name}"), tarball, args, netns, bridge)?
                }
            };
            let client = ouch::install(&c)?;
            hosts.push(Host { name, c, client });
        }
        let dir = fs::canonicalize(dir).map_err(|e| format!("{DIR}: {e}"))?;
        let (inventory, hosts_file) = inventory;
        let fleet = Fleet { hosts, bin, dir, runs: Cell::new(0), inventory, hosts_file };
        fleet.write_inventory(&repo.engine, &repo.tuner)?;
        Ok(fleet)
    }

    pub fn host(&self, name: &str) -> Result<&Host> {
        self.hosts.iter().find(|h| h.name == name).ok_or_else(|| format!("no host {name}"))
    }

    /// The generated part of the inventory: each container's PID 1, and the package versions
    /// the fleet should run (as an operator edits them after a rollout). Host variables here
    /// override the committed group_vars.
    pub fn write_inventory(&self, engine: &str, tuner: &str) -> Result {
        let mut text = String::from(
            "# Generated by cargo xtask (system tests): each container's PID 1 for the nsenter\n\
             # connection, and the versions the fleet runs.\nall:\n  children:\n    petrel_engines:\n      hosts:\n",
        );
        for h in &self.hosts {
            text.push_str(&format!(
                "        {}:\n          ansible_nsenter_pid: {}\n          petrel_engine_version: \"{engine}\"\n          petrel_tuner_version: \"{tuner}\"\n",
                h.name,
                h.c.pid1()
            ));
        }
        let path = self.dir.join(self.hosts_file);
        fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Writes an extra inventory file (host variables that override the committed ones).
    pub fn extra_inventory(&self, name: &str, yaml: &str) -> Result<String> {
        let path = self.dir.join(name);
        fs::write(&path, yaml).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok(path.display().to_string())
    }

    /// Runs ansible/playbooks/PLAYBOOK against the fleet; its output goes to a log file under
    /// target/ansible-systest/logs and is returned whether it succeeded or not.
    pub fn playbook(&self, playbook: &str, args: &[&str]) -> Result<Run> {
        let n = self.runs.get() + 1;
        self.runs.set(n);
        let log = self.dir.join("logs").join(format!(
            "{}{n:02}-{}.log",
            self.hosts_file.trim_end_matches("hosts.yml"),
            playbook.trim_end_matches(".yml")
        ));
        let hosts = self.dir.join(self.hosts_file);
        let mut argv: Vec<String> =
            vec!["-i".into(), self.inventory.into(), "-i".into(), hosts.display().to_string()];
        argv.push(format!("playbooks/{playbook}"));
        argv.extend(args.iter().map(|a| a.to_string()));
        println!("\n==> ansible-playbook {} (log {})", argv.join(" "), log.display());
        let started = Instant::now();
        let file = fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = file.try_clone().map_err(|e| format!("{}: {e}", log.display()))?;
        let status = Command::new(self.bin.join("ansible-playbook"))
            .args(&argv)
            .envs(environment(&self.bin)?)
            .current_dir("ansible")
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .status()
            .map_err(|e| format!("cannot run ansible-playbook: {e}"))?;
        let output = fs::read_to_string(&log).map_err(|e| format!("cannot read {}: {e}", log.display()))?;
        let recap = parse_recap(&output);
        println!("<== {status} in {:.1}s", started.elapsed().as_secs_f64());
        for (host, r) in &recap {
            println!(
                "    {host}: ok={} changed={} unreachable={} failed={} rescued={}",
                r.ok, r.changed, r.unreachable, r.failed, r.rescued
            );
        }
        Ok(Run { succeeded: status.success(), output, recap, log })
    }
}

/// The PLAY RECAP lines: `HOST : ok=N changed=N unreachable=N failed=N skipped=N rescued=N ...`.
fn parse_recap(output: &str) -> Vec<(String, Recap)> {
    let Some(start) = output.rfind("PLAY RECAP") else { return Vec::new() };
    let mut recap = Vec::new();
    for line in output[start..].lines().skip(1) {
        let Some((host, counts)) = line.split_once(" : ") else { continue };
        let get = |key: &str| -> u32 {
            counts
                .split_whitespace()
                .find_map(|w| w.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        let r = Recap {
            ok: get("ok"),
            changed: get("changed"),
            unreachable: get("unreachable"),
            failed: get("failed"),
            rescued: get("rescued"),
        };
        recap.push((host.trim().to_string(), r));
    }
    recap
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_play_recap() {
        let out = "TASK [x]\nok: [petrel-1]\n\nPLAY RECAP *****\n\
                   petrel-1                   : ok=120  changed=6    unreachable=0    failed=1    skipped=5    rescued=1    ignored=0   \n\
                   petrel-2                   : ok=46   changed=0    unreachable=0    failed=0    skipped=1    rescued=0    ignored=0   \n";
        let recap = parse_recap(out);
        assert_eq!(recap.len(), 2);
        assert_eq!(
            recap[0],
            ("petrel-1".into(), Recap { ok: 120, changed: 6, unreachable: 0, failed: 1, rescued: 1 })
        );
        assert_eq!(recap[1].1.changed, 0);
    }
}
