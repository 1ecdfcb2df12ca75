//! `systemctl reload`: the same process reads the changed configuration, and a logged-in
//! session meets the new risk limit without reconnecting.

use super::checks::{expect_contains, expect_eq, wait_for};
use super::fixture::{AAPL_585_33, ALICE, CENT};
use super::query::{journal_records, main_pid, show};
use crate::systest::container::Container;
use crate::systest::ouch::{Client, Message, Order, Side, Tif, REJECT_INVALID_QUANTITY};
use crate::util::Result;

/// The agency profile's max_order_qty after the client reload scenario; the packaged one is 100 000.
const RELOADED_MAX_ORDER_QTY: u32 = 1_000;

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
