//! What the scenarios read on a host, independently of the playbooks: its package versions,
//! its engine's process, the bytes of its configuration and journal, /ready, and a trade
//! between two OUCH clients.

use super::fleet::Host;
use crate::systest::ouch::{cross, Client, Message};
use crate::util::Result;

/// The gateway of the fleet's hosts (the role's default listen address).
const GATEWAY: &str = "127.0.0.1:15000";

/// A host's state as far as "was it touched" goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub engine_version: String,
    pub main_pid: String,
    pub n_restarts: String,
    /// sha256 over the files of /etc/petrel.
    pub config: String,
    /// sha256 over the files of the engine's journal (with the sessions' output journals) and
    /// snapshots.
    pub journal: String,
}

pub fn fingerprint(h: &Host) -> Result<Fingerprint> {
    let out = h.c.sh(
        "dpkg-query --show --showformat='${Version}\\n' petrel-engine; \
         systemctl show --property=MainPID --value petrel-engine.service; \
         systemctl show --property=NRestarts --value petrel-engine.service; \
         find /etc/petrel -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum; \
         find /var/lib/petrel/journal /var/lib/petrel/snapshots -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum",
    )?;
    let lines: Vec<&str> = out.lines().collect();
    let [version, pid, restarts, config, journal] = lines[..] else {
        return Err(format!("{}: unexpected state output:\n{out}", h.name));
    };
    Ok(Fingerprint {
        engine_version: version.into(),
        main_pid: pid.into(),
        n_restarts: restarts.into(),
        config: config.into(),
        journal: journal.into(),
    })
}

pub fn engine_version(h: &Host) -> Result<String> {
    Ok(h.c.sh("dpkg-query --show --showformat='${Version}' petrel-engine")?.trim().to_string())
}

pub fn tuner_version(h: &Host) -> Result<String> {
    Ok(h.c.sh("dpkg-query --show --showformat='${Version}' petrel-tuner")?.trim().to_string())
}

/// The admin endpoint's /ready status code (python3 in the container: it has no curl).
pub fn ready_status(h: &Host) -> Result<String> {
    let script = "python3 -c \"import urllib.request, urllib.error\n\
                  try:\n    print(urllib.request.urlopen('http://127.0.0.1:9180/ready', timeout=10).status)\n\
                  except urllib.error.HTTPError as e:\n    print(e.code)\n\
                  except OSError as e:\n    print('unreachable', e)\"";
    Ok(h.c.sh(script)?.trim().to_string())
}

pub fn expect_ready(h: &Host) -> Result {
    match ready_status(h)?.as_str() {
        "200" => Ok(()),
        other => Err(format!("{}: /ready answered {other}, want 200", h.name)),
    }
}

/// ALICE rests a bid, BOB sells into it with an IOC; both hear of the one execution. `round`
/// makes the orders' user reference numbers new for each trade on a host. Returns ALICE's
/// acknowledged order reference.
pub fn trade(h: &Host, round: u32) -> Result<u64> {
    trade_at(h, GATEWAY, round)
}

/// As [`trade`], at the gateway listening at `gateway`.
pub fn trade_at(h: &Host, gateway: &str, round: u32) -> Result<u64> {
    let mut alice = Client::connect_to(&h.c, &h.client, "ALICE", gateway)?;
    alice.login_accepted("ALICE", "alice", 0)?;
    let mut bob = Client::connect_to(&h.c, &h.client, "BOB", gateway)?;
    bob.login_accepted("BOB", "bob", 0)?;
    let order_ref = cross(&mut alice, &mut bob, round).map_err(|e| format!("{}: {e}", h.name))?;
    alice.logout()?;
    bob.logout()?;
    Ok(order_ref)
}

/// Every order ALICE's stream acknowledged, replayed from its first message (a login at
/// sequence 1 replays the whole stream; the client's read timeout ends it).
pub fn alice_acknowledged(h: &Host) -> Result<Vec<u64>> {
    alice_acknowledged_at(h, GATEWAY)
}

/// As [`alice_acknowledged`], at the gateway listening at `gateway`.
pub fn alice_acknowledged_at(h: &Host, gateway: &str) -> Result<Vec<u64>> {
    let mut alice = Client::connect_to(&h.c, &h.client, "ALICE", gateway)?;
    alice.login_accepted("ALICE", "alice", 1)?;
    let mut refs = Vec::new();
    // Bounded: a replay longer than this is not what these scenarios make.
    for _ in 0..10_000 {
        match alice.next()? {
            Message::Accepted { order_ref, .. } => refs.push(order_ref),
            Message::Timeout => return Ok(refs),
            Message::Closed | Message::EndOfSession => {
                return Err(format!("{}: ALICE's replay ended early", h.name))
            }
            _ => {}
        }
    }
    Err(format!("{}: ALICE's replay did not end", h.name))
}
