//! Two OUCH clients trade through the installed engine's gateway.

use super::checks::{expect_eq, expect_message};
use super::fixture::{AAPL_585_33, ALICE, BOB, CENT};
use crate::systest::container::Container;
use crate::systest::ouch::{Client, Message, Order, Side, Tif};
use crate::util::Result;

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
