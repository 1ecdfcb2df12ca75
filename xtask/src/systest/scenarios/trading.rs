//! Two OUCH clients trade through the installed engine's gateway.

use super::checks::{expect_eq, expect_message};
use super::fixture::{ALICE, BOB};
use crate::systest::container::Container;
use crate::systest::ouch::{cross, Client, Message};
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
    cross(&mut alice, &mut bob, 1)?;
    alice.logout()?;
    bob.logout()
}
