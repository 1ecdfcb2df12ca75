//! The watchdog: a stopped engine is killed and restarted by systemd, and every order it
//! acknowledged before is recovered from the journal.

use super::checks::{expect_contains, expect_eq, expect_message, wait_for};
use super::fixture::{AAPL_585_33, ALICE, BOB, CENT};
use super::query::{journal_last_sequence, journal_records, main_pid, show};
use crate::systest::container::Container;
use crate::systest::ouch::{Client, Message, Order, Side, Tif};
use crate::util::Result;

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

    journal_holds_resting(c)?;

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

/// The engine's journal holds a new_order for each of ALICE's [`RESTING`] bids.
fn journal_holds_resting(c: &Container) -> Result {
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
    Ok(())
}
