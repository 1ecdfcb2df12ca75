//! What the scenarios assume of the packaged configuration, and the users file they add to it as
//! an operator does.

use crate::systest::container::Container;
use crate::util::Result;

/// An OUCH user of the test users file.
pub(super) struct User {
    pub(super) name: &'static str,
    pub(super) password: &'static str,
    pub(super) account: &'static str,
    /// The account's id: its position among the packaged engine.toml's [[accounts]].
    pub(super) account_id: u64,
}

/// One user per account of the packaged configuration, on different firms (so that they trade
/// with each other without self-trade prevention). ALICE's account uses the `agency` risk
/// profile, whose max_order_qty the reload scenarios change.
pub(super) const ALICE: User =
    User { name: "ALICE", password: "alice", account: "acme-agency", account_id: 0 };
pub(super) const BOB: User = User { name: "BOB", password: "bob", account: "mmco-mm1", account_id: 1 };

/// AAPL's reference price in the packaged configuration and its tick, in OUCH price units.
pub(super) use crate::systest::ouch::{AAPL_585_33, CENT};

/// Writes /etc/petrel/users.toml as an operator does (root:petrel 0640, hashes made by the
/// installed `petrel-engine hash-password`). cancel_on_disconnect = false: resting orders
/// outlive a dropped session, which the watchdog scenario relies on.
pub(super) fn write_users(c: &Container) -> Result {
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
