//! Human-readable and JSON renderings of commands, for `journal dump`, logs and audits.
//!
//! Accounts and instruments appear as their numeric ids (what the journal holds); prices as
//! exact decimal strings in currency units.

use petrel_core::{Command, OrderType, Side, TimeInForce};
use serde::Serialize;

use crate::config::format_price;
use crate::gateway::echo;
use crate::input_record::{self, CommandEcho};

fn side(side: Side) -> &'static str {
    match side {
        Side::Buy => "buy",
        Side::Sell => "sell",
    }
}

fn order_type(t: OrderType) -> &'static str {
    match t {
        OrderType::Limit => "limit",
        OrderType::Market => "market",
    }
}

fn tif(t: TimeInForce) -> &'static str {
    match t {
        TimeInForce::Day => "day",
        TimeInForce::Ioc => "ioc",
        TimeInForce::Fok => "fok",
    }
}

/// One line describing a command, e.g.
/// `new-order account=3 ref=17 instrument=0 buy limit day 100 @ 585.3300`.
pub fn describe(command: &Command) -> String {
    match command {
        Command::NewOrder(o) => {
            let mut text = format!(
                "new-order account={} ref={} instrument={} {} {} {} {}",
                o.account.0,
                o.client_ref.0,
                o.instrument.0,
                side(o.side),
                order_type(o.order_type),
                tif(o.tif),
                o.qty
            );
            if o.order_type == OrderType::Limit {
                text.push_str(&format!(" @ {}", format_price(o.price)));
            }
            if o.min_qty > 0 {
                text.push_str(&format!(" min_qty={}", o.min_qty));
            }
            if o.post_only {
                text.push_str(" post-only");
            }
            text
        }
        Command::Cancel(c) => {
            format!("cancel account={} ref={} qty_remaining={}", c.account.0, c.client_ref.0, c.qty_remaining)
        }
        Command::Replace(r) => format!(
            "replace account={} ref={} new_ref={} {} @ {}",
            r.account.0,
            r.client_ref.0,
            r.new_client_ref.0,
            r.qty,
            format_price(r.price)
        ),
        Command::MassCancel { account, instrument } => match instrument {
            Some(i) => format!("mass-cancel account={} instrument={}", account.0, i.0),
            None => format!("mass-cancel account={} instrument=all", account.0),
        },
        Command::Disconnect { account } => format!("disconnect account={}", account.0),
        Command::KillSwitch { account, engage } => {
            format!("kill-switch account={} {}", account.0, if *engage { "engage" } else { "release" })
        }
        Command::SetRiskLimits { account, limits } => format!(
            "set-risk-limits account={} max_order_qty={} max_order_notional={} price_collar_bps={} \
             max_open_orders={} max_position={} max_orders_per_window={} rate_window_ns={}",
            account.0,
            limits.max_order_qty,
            format_price(limits.max_order_notional.min(i64::MAX as u64) as i64),
            limits.price_collar_bps,
            limits.max_open_orders,
            limits.max_position,
            limits.max_orders_per_window,
            limits.rate_window_ns
        ),
        Command::Note { account, note } => {
            format!("note {}", crate::gateway::notes::describe(*account, note))
        }
    }
}

/// The JSON shape of a command: `{"command": "new_order", "account": 3, ...}`. Prices and
/// notional amounts are decimal strings in currency units, so no consumer rounds them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum CommandJson {
    NewOrder {
        account: u32,
        client_ref: u32,
        instrument: u16,
        side: &'static str,
        order_type: &'static str,
        tif: &'static str,
        price: String,
        qty: u32,
        min_qty: u32,
        post_only: bool,
    },
    Cancel {
        account: u32,
        client_ref: u32,
        qty_remaining: u32,
    },
    Replace {
        account: u32,
        client_ref: u32,
        new_client_ref: u32,
        price: String,
        qty: u32,
    },
    MassCancel {
        account: u32,
        /// `null`: all instruments.
        instrument: Option<u16>,
    },
    Disconnect {
        account: u32,
    },
    KillSwitch {
        account: u32,
        engage: bool,
    },
    SetRiskLimits {
        account: u32,
        max_order_qty: u32,
        max_order_notional: String,
        price_collar_bps: u32,
        max_open_orders: u32,
        max_position: u64,
        max_orders_per_window: u32,
        rate_window_ns: u64,
    },
    /// One of the gateway's own answers (`gateway/notes.rs`), described.
    Note {
        account: u32,
        note: String,
    },
}

impl From<&Command> for CommandJson {
    fn from(command: &Command) -> CommandJson {
        match *command {
            Command::NewOrder(o) => CommandJson::NewOrder {
                account: o.account.0,
                client_ref: o.client_ref.0,
                instrument: o.instrument.0,
                side: side(o.side),
                order_type: order_type(o.order_type),
                tif: tif(o.tif),
                price: format_price(o.price),
                qty: o.qty,
                min_qty: o.min_qty,
                post_only: o.post_only,
            },
            Command::Cancel(c) => CommandJson::Cancel {
                account: c.account.0,
                client_ref: c.client_ref.0,
                qty_remaining: c.qty_remaining,
            },
            Command::Replace(r) => CommandJson::Replace {
                account: r.account.0,
                client_ref: r.client_ref.0,
                new_client_ref: r.new_client_ref.0,
                price: format_price(r.price),
                qty: r.qty,
            },
            Command::MassCancel { account, instrument } => {
                CommandJson::MassCancel { account: account.0, instrument: instrument.map(|i| i.0) }
            }
            Command::Disconnect { account } => CommandJson::Disconnect { account: account.0 },
            Command::KillSwitch { account, engage } => CommandJson::KillSwitch { account: account.0, engage },
            Command::SetRiskLimits { account, limits } => CommandJson::SetRiskLimits {
                account: account.0,
                max_order_qty: limits.max_order_qty,
                // u64::MAX ("unlimited") does not fit a price; saturate for display only.
                max_order_notional: format_price(limits.max_order_notional.min(i64::MAX as u64) as i64),
                price_collar_bps: limits.price_collar_bps,
                max_open_orders: limits.max_open_orders,
                max_position: limits.max_position,
                max_orders_per_window: limits.max_orders_per_window,
                rate_window_ns: limits.rate_window_ns,
            },
            Command::Note { account, note } => CommandJson::Note {
                account: account.0,
                note: crate::gateway::notes::describe(account, &note),
            },
        }
    }
}

/// A journal payload as text: the command and its echo (`echo: ...`, when it carries one), or
/// why it does not decode and its bytes in hex.
pub fn describe_payload(payload: &[u8]) -> String {
    match input_record::decode(payload) {
        Ok((command, echo)) if echo.is_empty() => describe(&command),
        Ok((command, echo)) => format!("{} echo: {}", describe(&command), echo::describe(&echo)),
        Err(e) => format!("UNDECODABLE ({e}) {}", petrel_journal::hex_payload(payload)),
    }
}

/// A journal payload as JSON: the [`CommandJson`] (with `"echo"`, the echo as text, when it
/// carries one), or `{"undecodable": reason, "hex": bytes}`.
pub fn payload_json(payload: &[u8]) -> serde_json::Value {
    match input_record::decode(payload) {
        Ok((command, echo)) => command_json(&command, &echo),
        Err(e) => serde_json::json!({
            "undecodable": e.to_string(),
            "hex": petrel_journal::hex_payload(payload),
        }),
    }
}

fn command_json(command: &Command, echo: &CommandEcho) -> serde_json::Value {
    let mut json = serde_json::to_value(CommandJson::from(command)).expect("CommandJson serializes");
    if let (false, Some(object)) = (echo.is_empty(), json.as_object_mut()) {
        object.insert("echo".into(), echo::describe(echo).into());
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_core::*;

    #[test]
    fn describes_orders_with_exact_prices() {
        let order = Command::NewOrder(NewOrder {
            account: AccountId(3),
            client_ref: ClientRef(17),
            instrument: InstrumentId(0),
            side: Side::Buy,
            order_type: OrderType::Limit,
            tif: TimeInForce::Day,
            price: 5_853_300,
            qty: 100,
            min_qty: 0,
            post_only: true,
        });
        assert_eq!(
            describe(&order),
            "new-order account=3 ref=17 instrument=0 buy limit day 100 @ 585.3300 post-only"
        );
        let json = serde_json::to_value(CommandJson::from(&order)).unwrap();
        assert_eq!(json["command"], "new_order");
        assert_eq!(json["price"], "585.3300");
        assert_eq!(json["side"], "buy");
    }

    #[test]
    fn undecodable_payloads_say_why_and_keep_the_bytes() {
        assert_eq!(describe_payload(&[0xee, 1]), "UNDECODABLE (unknown command tag 0xee) ee01");
        let json = payload_json(&[0xee, 1]);
        assert_eq!(json["hex"], "ee01");
        assert!(json["undecodable"].as_str().unwrap().contains("0xee"));
    }
}
