//! The system test scenarios. Each states a behaviour an operator relies on and fails with what
//! it saw. They run in order inside one container; a later one builds on the state an earlier
//! one left (the tuner installed, then the engine, then upgraded, then purged).

use super::container::Container;
use super::ouch::{Client, Message, Order, Side, Tif, REJECT_INVALID_QUANTITY};
use super::Packages;
use crate::util::{output, Result};
use std::thread::sleep;
use std::time::Duration;

/// The daemon scenarios that need `petrel-engine run`, reported as PENDING until it exists.
pub const ENGINE_SCENARIOS: &[&str] = &[
    "engine reaches active (running) through READY=1 with its STATUS line",
    "journalctl -u petrel-engine shows structured fields",
    "a client logs in and trades through the gateway",
    "systemctl reload applies a changed risk limit in the same process",
    "systemctl reload keeps the client's session and applies the new limit to it",
    "kill -STOP: the watchdog fires, systemd restarts the engine, the journal is recovered",
    "after the watchdog restart every order acknowledged before kill -STOP is still there",
    "systemctl stop exits cleanly; start recovers the same journal",
    "upgrade does not restart the running engine and says a restart is pending",
];

/// An OUCH user of the test users file.
struct User {
    name: &'static str,
    password: &'static str,
    account: &'static str,
    /// The account's id: its position among the packaged engine.toml's [[accounts]].
    account_id: u64,
}

/// One user per account of the packaged configuration, on different firms (so that they trade
/// with each other without self-trade prevention). ALICE's account uses the `agency` risk
/// profile, whose max_order_qty the reload scenarios change.
const ALICE: User = User { name: "ALICE", password: "alice", account: "acme-agency", account_id: 0 };
const BOB: User = User { name: "BOB", password: "bob", account: "mmco-mm1", account_id: 1 };

/// $585.33 in OUCH price units (1/10 000), AAPL's reference price in the packaged configuration.
const AAPL_585_33: u64 = 5_853_300;
/// One cent in OUCH price units: AAPL's tick.
const CENT: u64 = 100;
/// The agency profile's max_order_qty after the client reload scenario; the packaged one is 100 000.
const RELOADED_MAX_ORDER_QTY: u32 = 1_000;

/// Sysctls a container with a private network may change (see system-tests.md).
const NET_PROFILE: &str = r#"name = "systest-net"
description = "net.* only: what a container with its own network namespace may change"

[sysctl]
"net.core.somaxconn" = 8192
"net.ipv4.tcp_slow_start_after_idle" = 0
"#;

const TEXTFILE: &str = "/var/lib/prometheus/node-exporter/petrel-tuner.prom";
/// Bound for waiting on a unit state change driven by systemd timers: the watchdog path is
/// WatchdogSec (10 s) + TimeoutAbortSec (15 s) + RestartSec (2 s) + recovery; 120 s only stops a
/// hung run from hanging forever.
const POLLS: u32 = 480;
const POLL_INTERVAL: Duration = Duration::from_millis(250);

fn show(c: &Container, unit: &str, property: &str) -> Result<String> {
    Ok(c.sh(&format!("systemctl show -P {property} {unit}"))?.trim().to_string())
}

fn expect_eq(what: &str, got: &str, want: &str) -> Result {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn expect_contains(what: &str, text: &str, needle: &str) -> Result {
    if text.contains(needle) {
        Ok(())
    } else {
        Err(format!("{what}: {needle:?} not found in:\n{}", text.trim_end()))
    }
}

fn wait_for(what: &str, mut check: impl FnMut() -> Result<bool>) -> Result {
    for _ in 0..POLLS {
        if check()? {
            return Ok(());
        }
        sleep(POLL_INTERVAL);
    }
    Err(format!("timed out waiting for {what}"))
}

fn apt_install(c: &Container, debs: &[String]) -> Result<String> {
    // confold: an edited conffile is kept without a question (the operator's edit wins).
    c.sh(&format!(
        "apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {}",
        debs.join(" ")
    ))
}

pub fn tuner_deb_install(c: &Container, p: &Packages) -> Result {
    let before = c.sh("sysctl -n net.core.somaxconn")?;
    let deb = c.copy_in(&p.tuner_deb)?;
    let log = apt_install(c, &[deb])?;
    expect_contains("postinst message", &log, "systemctl start petrel-tuner")?;
    expect_eq("petrel-tuner.service enabled", &show(c, "petrel-tuner.service", "UnitFileState")?, "enabled")?;
    expect_eq("verify timer enabled", &show(c, "petrel-tuner-verify.timer", "UnitFileState")?, "enabled")?;
    expect_eq("verify timer active", &show(c, "petrel-tuner-verify.timer", "ActiveState")?, "active")?;
    expect_eq("tuner not run by the install", &show(c, "petrel-tuner.service", "ActiveState")?, "inactive")?;
    expect_eq("host unchanged by the install", &c.sh("sysctl -n net.core.somaxconn")?, &before)?;
    let conffiles = c.sh("dpkg-query -W -f='${Conffiles}' petrel-tuner")?;
    expect_contains("conffiles", &conffiles, "/etc/petrel/tuner.toml")?;
    expect_contains("conffiles", &conffiles, "/etc/default/petrel-tuner")?;
    c.sh("test -d /var/lib/petrel/tuner && test \"$(stat -c %a /var/lib/petrel/tuner)\" = 700")?;
    c.sh("man -w petrel-tuner >/dev/null 2>&1 || test -e /usr/share/man/man1/petrel-tuner.1.gz")?;
    let before_list = show(c, "petrel-tuner.service", "Before")?;
    expect_contains("petrel-tuner.service Before=", &before_list, "petrel-engine.service")
}

pub fn tuner_service_applies(c: &Container) -> Result {
    c.sh(&format!("cat > /etc/petrel/tuner.toml <<'EOF'\n{NET_PROFILE}EOF"))?;
    c.sh("sysctl -w net.core.somaxconn=128 net.ipv4.tcp_slow_start_after_idle=1 >/dev/null")?;
    c.sh("systemctl start petrel-tuner.service")?;
    expect_eq("tuner active", &show(c, "petrel-tuner.service", "ActiveState")?, "active")?;
    expect_eq("RemainAfterExit", &show(c, "petrel-tuner.service", "SubState")?, "exited")?;
    expect_eq("somaxconn applied", c.sh("sysctl -n net.core.somaxconn")?.trim(), "8192")?;
    expect_eq("slow start applied", c.sh("sysctl -n net.ipv4.tcp_slow_start_after_idle")?.trim(), "0")?;
    // The host's own value is not touched: the container has its own network namespace.
    let host = std::fs::read_to_string("/proc/sys/net/core/somaxconn").map_err(|e| e.to_string())?;
    if host.trim() == "8192" {
        return Err("the host's net.core.somaxconn is 8192: did the tuner leak out of the container?".into());
    }
    c.sh("petrel-tuner rollback")?;
    expect_eq("rollback restores", c.sh("sysctl -n net.core.somaxconn")?.trim(), "128")?;
    // Apply again for the drift scenario (the oneshot is already active: restart runs it again).
    c.sh("systemctl restart petrel-tuner.service")?;
    expect_eq("somaxconn re-applied", c.sh("sysctl -n net.core.somaxconn")?.trim(), "8192")
}

pub fn tuner_verify_detects_drift(c: &Container) -> Result {
    c.sh("systemctl start petrel-tuner-verify.service")?;
    let textfile = c.sh(&format!("cat {TEXTFILE}"))?;
    expect_contains(
        "textfile after a clean verify",
        &textfile,
        "petrel_tuner_drift_items{profile=\"systest-net\"} 0",
    )?;
    c.sh("sysctl -w net.core.somaxconn=256 >/dev/null")?;
    let (code, _) = c.sh_status("systemctl start petrel-tuner-verify.service")?;
    if code == 0 {
        return Err("petrel-tuner-verify.service succeeded on a drifted host".into());
    }
    expect_eq("verify result", &show(c, "petrel-tuner-verify.service", "Result")?, "exit-code")?;
    let textfile = c.sh(&format!("cat {TEXTFILE}"))?;
    expect_contains(
        "textfile after drift",
        &textfile,
        "petrel_tuner_drift_items{profile=\"systest-net\"} 1",
    )?;
    let log = c.sh("journalctl -u petrel-tuner-verify.service --no-pager -o cat")?;
    expect_contains("verify log names the item", &log, "net.core.somaxconn")?;
    let next = show(c, "petrel-tuner-verify.timer", "NextElapseUSecMonotonic")?;
    if next.is_empty() || next == "0" || next == "infinity" {
        return Err(format!("the verify timer has no next run scheduled ({next:?})"));
    }
    c.sh("systemctl reset-failed petrel-tuner-verify.service && petrel-tuner rollback >/dev/null").map(|_| ())
}

pub fn engine_deb_install(c: &Container, p: &Packages, engine_runs: bool) -> Result {
    let deb = c.copy_in(&p.engine_deb)?;
    let log = apt_install(c, &[deb])?;
    expect_contains(
        "postinst names the missing users file",
        &log,
        "/etc/petrel/users.toml does not exist yet",
    )?;
    c.sh("getent passwd petrel | grep -q ':/var/lib/petrel:/usr/sbin/nologin$'")?;
    let owners =
        c.sh("stat -c '%U:%G %a %n' /var/lib/petrel /var/lib/petrel/journal /var/lib/petrel/snapshots")?;
    for line in owners.lines() {
        if !line.starts_with("petrel:petrel 750 ") {
            return Err(format!("state directory ownership/mode: {line}"));
        }
    }
    let conffiles = c.sh("dpkg-query -W -f='${Conffiles}' petrel-engine")?;
    expect_contains("conffiles", &conffiles, "/etc/petrel/engine.toml")?;
    expect_eq("engine enabled", &show(c, "petrel-engine.service", "UnitFileState")?, "enabled")?;
    // The unit's ExecStartPre, as the unit's user: the shipped configuration is valid.
    c.sh("runuser -u petrel -- petrel-engine check-config --config /etc/petrel/engine.toml")?;
    c.sh("test -e /usr/share/man/man1/petrel-engine.1.gz && test -e /usr/share/man/man1/petrel-engine-check-config.1.gz")?;
    c.sh("test -e /usr/share/doc/petrel-engine/examples/production.toml")?;
    if engine_runs {
        write_users(c)?;
        c.sh("systemctl start petrel-engine.service")?;
    }
    Ok(())
}

/// Writes /etc/petrel/users.toml as an operator does (root:petrel 0640, hashes made by the
/// installed `petrel-engine hash-password`). cancel_on_disconnect = false: resting orders
/// outlive a dropped session, which the watchdog scenario relies on.
fn write_users(c: &Container) -> Result {
    let mut script = String::from("umask 077\n");
    for (i, user) in [&ALICE, &BOB].iter().enumerate() {
        script.push_str(&format!("hash{i}=$(echo '{}' | petrel-engine hash-password)\n", user.password));
    }
    script.push_str("cat > /etc/petrel/users.toml.new <<EOF\n");
    for (i, user) in [&ALICE, &BOB].iter().enumerate() {
        script.push_str(&format!(
            "[[users]]\nname = \"{}\"\npassword_hash = \"$hash{i}\"\naccount = \"{}\"\ncancel_on_disconnect = false\n\n",
            user.name, user.account
        ));
    }
    script.push_str(
        "EOF\nchown root:petrel /etc/petrel/users.toml.new && chmod 0640 /etc/petrel/users.toml.new\n\
         mv /etc/petrel/users.toml.new /etc/petrel/users.toml\n",
    );
    c.sh(&script).map(|_| ())
}

pub fn units_verify_and_security(c: &Container) -> Result {
    let units =
        "petrel-engine.service petrel-tuner.service petrel-tuner-verify.service petrel-tuner-verify.timer";
    let (code, text) = c.sh_status(&format!("systemd-analyze verify --man=no {units}"))?;
    if code != 0 || !text.trim().is_empty() {
        return Err(format!("systemd-analyze verify ({code}):\n{text}"));
    }
    // --threshold counts in tenths of the displayed exposure: 20 is 2.0.
    let report = c.sh(
        "systemd-analyze security --offline=yes --threshold=20 /lib/systemd/system/petrel-engine.service",
    )?;
    let overall = report.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_default();
    println!("    {}", overall.trim());
    let exposure: f64 = overall
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no exposure figure in:\n{report}"))?;
    if exposure > 2.0 {
        return Err(format!("petrel-engine.service exposure {exposure} is above 2.0"));
    }
    Ok(())
}

fn main_pid(c: &Container) -> Result<u32> {
    show(c, "petrel-engine.service", "MainPID")?.parse().map_err(|e| format!("MainPID: {e}"))
}

fn journal_last_sequence(c: &Container) -> Result<String> {
    let stats = c.sh(
        "runuser -u petrel -- petrel-engine journal stats --config /etc/petrel/engine.toml --format json",
    )?;
    Ok(stats.trim().to_string())
}

pub fn engine_ready_and_status(c: &Container) -> Result {
    expect_eq("Type", &show(c, "petrel-engine.service", "Type")?, "notify")?;
    wait_for("petrel-engine active (running)", || {
        Ok(show(c, "petrel-engine.service", "SubState")? == "running")
    })?;
    let status = show(c, "petrel-engine.service", "StatusText")?;
    if status.is_empty() {
        return Err("petrel-engine sent READY=1 without a STATUS line".into());
    }
    let shown = c.sh("systemctl status --no-pager petrel-engine.service")?;
    expect_contains("systemctl status", &shown, &format!("Status: \"{status}\""))
}

pub fn engine_journal_fields(c: &Container) -> Result {
    let json = c.sh("journalctl -u petrel-engine.service -o json --no-pager")?;
    for field in
        ["\"_SYSTEMD_UNIT\":\"petrel-engine.service\"", "\"PRIORITY\":", "\"TARGET\":\"petrel_engine"]
    {
        expect_contains("journal fields", &json, field)?;
    }
    Ok(())
}

pub fn engine_reload(c: &Container) -> Result {
    let pid = main_pid(c)?;
    c.sh("sed -i 's/^max_order_qty = 100_000$/max_order_qty = 90_000/' /etc/petrel/engine.toml")?;
    c.sh("systemctl reload petrel-engine.service")?;
    expect_eq("same process after reload", &main_pid(c)?.to_string(), &pid.to_string())?;
    expect_eq("still running", &show(c, "petrel-engine.service", "SubState")?, "running")?;
    // What the reload changed is the engine's to report; here: the same process logged it.
    let log = c.sh(&format!("journalctl _PID={pid} --no-pager -o cat"))?.to_lowercase();
    expect_contains("reload logged by the running process", &log, "reload")
}

/// The two users trade: ALICE rests a bid, BOB sells into it with an IOC; both hear of the one
/// execution, under one match number. Nothing is left resting.
pub fn client_trades(c: &Container, script: &str) -> Result {
    let mut alice = Client::connect(c, script, ALICE.name)?;
    // Sequence 0 asks for new messages only: the account's stream already holds Start of Day.
    let next = alice.login_accepted(ALICE.name, ALICE.password, 0)?;
    expect_eq("ALICE's next sequence number after Start of Day", &next.to_string(), "2")?;
    let mut bob = Client::connect(c, script, BOB.name)?;
    expect_eq("BOB's replay start", &bob.login_accepted(BOB.name, BOB.password, 1)?.to_string(), "1")?;
    expect_message("BOB's first message", bob.next()?, Message::SystemEvent { seq: 1, code: 'S' })?;
    let bid =
        Order { user_ref: 1, side: Side::Buy, qty: 100, symbol: "AAPL", price: AAPL_585_33, tif: Tif::Day };
    alice.enter_accepted(&bid)?;
    let ask = Order {
        user_ref: 1,
        side: Side::Sell,
        qty: 100,
        symbol: "AAPL",
        price: AAPL_585_33 - CENT,
        tif: Tif::Ioc,
    };
    bob.enter_accepted(&ask)?;
    let taker = bob.next()?;
    let Message::Executed { user_ref: 1, qty: 100, price: AAPL_585_33, liquidity: 'R', match_number, .. } =
        taker
    else {
        return Err(format!("BOB's IOC: got {taker:?}, want an execution of 100 at the resting bid's price, removing liquidity"));
    };
    let maker = alice.next()?;
    let Message::Executed {
        user_ref: 1,
        qty: 100,
        price: AAPL_585_33,
        liquidity: 'A',
        match_number: maker_match,
        ..
    } = maker
    else {
        return Err(format!("ALICE's bid: got {maker:?}, want an execution of 100, adding liquidity"));
    };
    expect_eq("one match number for both sides", &maker_match.to_string(), &match_number.to_string())?;
    alice.logout()?;
    bob.logout()
}
/// The client scenario's counterpart of [`engine_reload`]: a session stays logged in across
/// `systemctl reload`, and its next orders meet the new max_order_qty (before the reload an
/// order over the new limit is accepted, so the rejection is the reload's doing).
pub fn reload_keeps_session(c: &Container, script: &str) -> Result {
    let over = RELOADED_MAX_ORDER_QTY * 2;
    let mut alice = Client::connect(c, script, ALICE.name)?;
    alice.login_accepted(ALICE.name, ALICE.password, 0)?;
    // IOC buys with no seller: accepted, then cancelled; nothing rests for later scenarios.
    let ioc = |user_ref, qty| Order {
        user_ref,
        side: Side::Buy,
        qty,
        symbol: "AAPL",
        price: AAPL_585_33 - 500 * CENT,
        tif: Tif::Ioc,
    };
    alice.enter_accepted(&ioc(10, over))?;
    expect_canceled(&mut alice, 10, over)?;

    let pid = main_pid(c)?;
    let reloads_before = reloads_logged(c, pid)?;
    c.sh(&format!(
        "sed -i '/^\\[risk_profiles.agency\\]$/,/^\\[/ s/^max_order_qty = .*$/max_order_qty = {RELOADED_MAX_ORDER_QTY}/' /etc/petrel/engine.toml"
    ))?;
    c.sh(&format!("grep -q '^max_order_qty = {RELOADED_MAX_ORDER_QTY}$' /etc/petrel/engine.toml"))
        .map_err(|_| "the agency profile's max_order_qty was not edited".to_string())?;
    c.sh("systemctl reload petrel-engine.service")?;
    // ExecReload is `kill -HUP`, which returns before the engine has read the file: wait for the
    // new limit in the journal. Once journaled it is sequenced, so every order sent after this
    // meets it.
    wait_for("the new agency limit in the journal", || {
        Ok(journal_records(c)?.iter().any(|r| {
            r["payload"]["command"] == "set_risk_limits"
                && r["payload"]["account"] == ALICE.account_id
                && r["payload"]["max_order_qty"] == RELOADED_MAX_ORDER_QTY
        }))
    })?;
    if reloads_logged(c, pid)? <= reloads_before {
        return Err(format!("process {pid} did not log the reload"));
    }
    expect_eq("same process after reload", &main_pid(c)?.to_string(), &pid.to_string())?;

    alice.enter(&ioc(11, over))?;
    let answer = alice.next()?;
    if !matches!(answer, Message::Rejected { user_ref: 11, reason: REJECT_INVALID_QUANTITY, .. }) {
        return Err(format!(
            "order of {over} after the reload to max_order_qty {RELOADED_MAX_ORDER_QTY}: got {answer:?}, want Order Rejected with reason INVALID_QUANTITY (0x13)"
        ));
    }
    let under = RELOADED_MAX_ORDER_QTY / 2;
    alice.enter_accepted(&ioc(12, under))?;
    expect_canceled(&mut alice, 12, under)?;
    alice.logout()
}

/// Orders ALICE rests (day bids on AAPL, below anything else in the book) before the watchdog
/// stops the engine: (user_ref, qty, price).
const RESTING: [(u32, u32, u64); 3] = [
    (20, 10, AAPL_585_33 - 1_000 * CENT),
    (21, 20, AAPL_585_33 - 1_100 * CENT),
    (22, 30, AAPL_585_33 - 1_200 * CENT),
];

/// ALICE rests [`RESTING`] and stays connected; the main process is stopped with SIGSTOP; the
/// watchdog must fire and systemd restart the engine on the same journal. Returns the
/// acceptances ALICE received, for [`orders_survive_watchdog`].
pub fn engine_watchdog_restart(c: &Container, script: &str) -> Result<Vec<Message>> {
    let mut alice = Client::connect(c, script, ALICE.name)?;
    alice.login_accepted(ALICE.name, ALICE.password, 0)?;
    let mut acked = Vec::with_capacity(RESTING.len());
    for (user_ref, qty, price) in RESTING {
        acked.push(alice.enter_accepted(&Order {
            user_ref,
            side: Side::Buy,
            qty,
            symbol: "AAPL",
            price,
            tif: Tif::Day,
        })?);
    }
    let before = journal_last_sequence(c)?;
    let pid = main_pid(c)?;
    let restarts: u32 =
        show(c, "petrel-engine.service", "NRestarts")?.parse().map_err(|e| format!("NRestarts: {e}"))?;
    c.sh(&format!("kill -STOP {pid}"))?;
    wait_for("the watchdog to restart petrel-engine", || {
        let n: u32 =
            show(c, "petrel-engine.service", "NRestarts")?.parse().map_err(|e| format!("NRestarts: {e}"))?;
        Ok(n > restarts && show(c, "petrel-engine.service", "SubState")? == "running")
    })?;
    let log = c.sh("journalctl -u petrel-engine.service --no-pager -o cat")?;
    expect_contains("watchdog in the journal", &log, "Watchdog timeout")?;
    if main_pid(c)? == pid {
        return Err("MainPID unchanged after the watchdog restart".into());
    }
    // The session ALICE had open died with the process.
    let after = alice.next()?;
    if after != Message::Closed {
        return Err(format!("ALICE's session across the restart: got {after:?}, want it closed"));
    }
    expect_eq("journal recovered", &journal_last_sequence(c)?, &before)?;
    Ok(acked)
}

/// After the watchdog restart: a new login from sequence 1 replays every acceptance exactly as
/// first sent, the journal holds every acknowledged order, and the orders rest in the recovered
/// book (BOB's sell sweeps all three).
pub fn orders_survive_watchdog(c: &Container, script: &str, acked: &[Message]) -> Result {
    let last_seq = acked
        .iter()
        .map(|m| match m {
            Message::Accepted { seq, .. } => Ok(*seq),
            other => Err(format!("not an acceptance: {other:?}")),
        })
        .collect::<Result<Vec<u64>>>()?
        .into_iter()
        .max()
        .ok_or("no orders were acknowledged before the stop")?;
    let mut alice = Client::connect(c, script, ALICE.name)?;
    expect_eq("replay start", &alice.login_accepted(ALICE.name, ALICE.password, 1)?.to_string(), "1")?;
    // Bounded by the sequence number of the last acceptance.
    let mut replayed = Vec::new();
    for _ in 0..last_seq {
        replayed.push(alice.next()?);
    }
    expect_message(
        "message 1 of the replay",
        replayed[0].clone(),
        Message::SystemEvent { seq: 1, code: 'S' },
    )?;
    for m in acked {
        if !replayed.contains(m) {
            return Err(format!(
                "acknowledged before the stop, missing from the replay: {m:?}\nreplayed: {replayed:#?}"
            ));
        }
    }

    let records = journal_records(c)?;
    for (user_ref, qty, price) in RESTING {
        let price = format!("{}.{:04}", price / 10_000, price % 10_000);
        let found = records.iter().any(|r| {
            let p = &r["payload"];
            p["command"] == "new_order"
                && p["account"] == ALICE.account_id
                && p["client_ref"] == user_ref
                && p["qty"] == qty
                && p["side"] == "buy"
                && p["price"] == price.as_str()
        });
        if !found {
            return Err(format!("journal dump: no new_order for ALICE ref={user_ref} buy {qty} @ {price}"));
        }
    }

    let total: u32 = RESTING.iter().map(|(_, qty, _)| qty).sum();
    let lowest = RESTING.iter().map(|(_, _, price)| *price).min().unwrap_or_default();
    let mut bob = Client::connect(c, script, BOB.name)?;
    bob.login_accepted(BOB.name, BOB.password, 0)?;
    bob.enter_accepted(&Order {
        user_ref: 30,
        side: Side::Sell,
        qty: total,
        symbol: "AAPL",
        price: lowest,
        tif: Tif::Ioc,
    })?;
    // Best price first: one execution per resting bid, at the bid's price.
    for (_, qty, price) in RESTING {
        let got = bob.next()?;
        if !matches!(got, Message::Executed { user_ref: 30, qty: q, price: p, .. } if q == qty && p == price)
        {
            return Err(format!(
                "BOB's sweep of the recovered book: got {got:?}, want an execution of {qty} at {price}"
            ));
        }
    }
    alice.logout()?;
    bob.logout()
}

fn expect_message(what: &str, got: Message, want: Message) -> Result {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got:?}, want {want:?}"))
    }
}

fn expect_canceled(client: &mut Client, user_ref: u32, qty: u32) -> Result {
    match client.next()? {
        Message::Canceled { user_ref: r, qty: q, .. } if r == user_ref && q == qty => Ok(()),
        other => Err(format!("IOC {user_ref} with nothing to match: got {other:?}, want it canceled")),
    }
}

fn reloads_logged(c: &Container, pid: u32) -> Result<usize> {
    let log = c.sh(&format!("journalctl _PID={pid} --no-pager -o cat"))?;
    Ok(log.matches("reloaded configuration and users").count())
}

/// Every record of the engine's journal, read as the unit's user with the operator's tool (safe
/// on a running engine's journal).
fn journal_records(c: &Container) -> Result<Vec<serde_json::Value>> {
    let dump = c.sh(
        "runuser -u petrel -- petrel-engine journal dump --config /etc/petrel/engine.toml --format json",
    )?;
    dump.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).map_err(|e| format!("journal dump line {l:?}: {e}")))
        .collect()
}

pub fn engine_stop_start(c: &Container) -> Result {
    c.sh("systemctl stop petrel-engine.service")?;
    expect_eq("clean stop", &show(c, "petrel-engine.service", "Result")?, "success")?;
    expect_eq("exit status", &show(c, "petrel-engine.service", "ExecMainStatus")?, "0")?;
    let after_stop = journal_last_sequence(c)?;
    c.sh("systemctl start petrel-engine.service")?;
    expect_eq("running again", &show(c, "petrel-engine.service", "SubState")?, "running")?;
    expect_eq("recovered journal", &journal_last_sequence(c)?, &after_stop)
}

pub fn engine_upgrade(c: &Container, p: &Packages, engine_runs: bool) -> Result {
    c.sh("sed -i 's/^keep = 5$/keep = 7/' /etc/petrel/engine.toml && grep -q '^keep = 7$' /etc/petrel/engine.toml")?;
    c.sh("printf 'audit' > /var/lib/petrel/journal/systest-marker && chown petrel:petrel /var/lib/petrel/journal/systest-marker")?;
    let pid = if engine_runs { Some(main_pid(c)?) } else { None };
    let deb = c.copy_in(&p.engine_deb_upgrade)?;
    let log = apt_install(c, &[deb])?;
    let version = c.sh("dpkg-query -W -f='${Version}' petrel-engine")?;
    if !version.ends_with("-2") {
        return Err(format!("after the upgrade petrel-engine is at {version}, want revision 2"));
    }
    c.sh("grep -q '^keep = 7$' /etc/petrel/engine.toml")
        .map_err(|_| "the upgrade overwrote the edited /etc/petrel/engine.toml".to_string())?;
    c.sh("test \"$(cat /var/lib/petrel/journal/systest-marker)\" = audit")?;
    if let Some(pid) = pid {
        expect_contains("postinst says a restart is pending", &log, "RESTART PENDING")?;
        expect_eq("engine not restarted by the upgrade", &main_pid(c)?.to_string(), &pid.to_string())?;
    } else {
        expect_contains("postinst on a stopped engine", &log, "is not running")?;
    }
    Ok(())
}

pub fn engine_purge_keeps_journal(c: &Container) -> Result {
    let log = c.sh("apt-get purge -y -q petrel-engine")?;
    expect_contains("purge says where the journal stays", &log, "/var/lib/petrel (journal, snapshots)")?;
    c.sh("test \"$(cat /var/lib/petrel/journal/systest-marker)\" = audit")
        .map_err(|_| "purge deleted the journal".to_string())?;
    c.sh("test ! -e /etc/petrel/engine.toml && test ! -e /lib/systemd/system/petrel-engine.service")?;
    c.sh("getent passwd petrel >/dev/null")?;
    let (code, _) = c.sh_status("systemctl is-active --quiet petrel-engine.service")?;
    if code == 0 {
        return Err("petrel-engine still active after purge".into());
    }
    Ok(())
}

fn rpm_query(args: &[&str]) -> Result<String> {
    let out = output("rpm", args)?;
    if !out.status.success() {
        return Err(format!("rpm {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn rpm_metadata(p: &Packages) -> Result {
    for (rpm, name, files, config, script) in [
        (
            &p.engine_rpm,
            "petrel-engine",
            &[
                "/usr/bin/petrel-engine",
                "/usr/lib/systemd/system/petrel-engine.service",
                "/usr/lib/sysusers.d/petrel-engine.conf",
                "/usr/lib/tmpfiles.d/petrel-engine.conf",
                "/usr/share/man/man1/petrel-engine.1.gz",
            ][..],
            "/etc/petrel/engine.toml",
            "systemd-sysusers petrel-engine.conf",
        ),
        (
            &p.tuner_rpm,
            "petrel-tuner",
            &[
                "/usr/bin/petrel-tuner",
                "/usr/lib/systemd/system/petrel-tuner.service",
                "/usr/lib/systemd/system/petrel-tuner-verify.timer",
                "/usr/share/man/man1/petrel-tuner.1.gz",
            ][..],
            "/etc/petrel/tuner.toml",
            "systemctl enable petrel-tuner.service petrel-tuner-verify.timer",
        ),
    ] {
        let path = rpm.to_str().ok_or("rpm path is not UTF-8")?;
        let info = rpm_query(&["-qip", path])?;
        for field in [
            format!("Name        : {name}"),
            format!("Version     : {}", env!("CARGO_PKG_VERSION")),
            "License     : Apache-2.0".into(),
        ] {
            expect_contains(&format!("rpm -qip {name}"), &info, &field)?;
        }
        let list = rpm_query(&["-qlp", path])?;
        for file in files {
            if !list.lines().any(|l| l == *file) {
                return Err(format!("rpm -qlp {name}: {file} missing from:\n{list}"));
            }
        }
        // %config(noreplace): an upgrade writes .rpmnew instead of replacing an edited file.
        let flags = rpm_query(&["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", path])?;
        let line = flags.lines().find(|l| l.starts_with(&format!("{config} "))).unwrap_or_default();
        if !line.ends_with(" cn") {
            return Err(format!("{name}: {config} is not %config(noreplace): {line:?}"));
        }
        let scripts = rpm_query(&["-qp", "--scripts", path])?;
        expect_contains(&format!("{name} scriptlets"), &scripts, "postinstall scriptlet")?;
        expect_contains(&format!("{name} scriptlets"), &scripts, "preuninstall scriptlet")?;
        expect_contains(&format!("{name} scriptlets"), &scripts, script)?;
        let requires = rpm_query(&["-qp", "--requires", path])?;
        expect_contains(&format!("{name} requires"), &requires, "systemd")?;
    }
    Ok(())
}

pub fn rpm_install(c: &Container, p: &Packages, engine_runs: bool) -> Result {
    let engine = c.copy_in(&p.engine_rpm)?;
    let tuner = c.copy_in(&p.tuner_rpm)?;
    c.sh("! getent passwd petrel")?;
    // --nodeps: this Debian container's rpm database knows nothing of the dpkg-installed systemd
    // and /bin/sh the packages require; the scriptlets run against them all the same.
    let log = c.sh(&format!("rpm -i --nodeps {engine} {tuner}"))?;
    c.sh("getent passwd petrel | grep -q ':/var/lib/petrel:'")?;
    c.sh("test \"$(stat -c '%U:%G %a' /var/lib/petrel/journal)\" = 'petrel:petrel 750'")?;
    expect_eq("engine enabled", &show(c, "petrel-engine.service", "UnitFileState")?, "enabled")?;
    expect_eq("tuner enabled", &show(c, "petrel-tuner.service", "UnitFileState")?, "enabled")?;
    expect_eq("verify timer started", &show(c, "petrel-tuner-verify.timer", "ActiveState")?, "active")?;
    // The shipped profile's vm.* and cpu knobs are read-only in a container: net only here.
    c.sh("echo 'PETREL_TUNER_ARGS=\"--only net\"' > /etc/default/petrel-tuner && systemctl start petrel-tuner.service")?;
    expect_eq("tuner unit started", &show(c, "petrel-tuner.service", "ActiveState")?, "active")?;
    if engine_runs {
        expect_contains("rpm %post", &log, "users.toml does not exist yet")?;
        write_users(c)?;
        c.sh("systemctl start petrel-engine.service")?;
        expect_eq("engine started", &show(c, "petrel-engine.service", "SubState")?, "running")?;
    }
    let log = c.sh("rpm -e petrel-engine petrel-tuner")?;
    expect_contains("rpm -e says where the journal stays", &log, "/var/lib/petrel (journal, snapshots)")?;
    c.sh("test -d /var/lib/petrel/journal && getent passwd petrel >/dev/null").map(|_| ())
}
