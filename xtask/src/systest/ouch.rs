//! A trading client inside the container: xtask/assets/ouch_client.py (Python standard library
//! only, written from the SoupBinTCP 3.0 / OUCH 5.0 wire formats, independent of the engine's
//! codecs) runs under nsenter and is driven one command line at a time; each answer is parsed
//! into a [`Message`] here. The client bounds every wait with its socket timeout, so a read here
//! always ends: with an answer, "timeout", or end of file when the client dies.

use super::container::Container;
use crate::util::Result;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout};

const SCRIPT: &str = "xtask/assets/ouch_client.py";
/// The packaged default configuration's gateway address.
const GATEWAY: &str = "127.0.0.1:15000";

/// OUCH 5.0 Order Rejected reason (Nasdaq's code, as the engine's gateway maps a quantity over
/// the risk profile's max_order_qty).
pub const REJECT_INVALID_QUANTITY: u16 = 0x13;

/// Side and time in force of an Enter Order, as OUCH codes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Buy,
    Sell,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tif {
    Day,
    Ioc,
}

/// One Enter Order; `price` in OUCH units (1/10 000 of a currency unit).
#[derive(Clone, Copy, Debug)]
pub struct Order<'a> {
    pub user_ref: u32,
    pub side: Side,
    pub qty: u32,
    pub symbol: &'a str,
    pub price: u64,
    pub tif: Tif,
}

/// What the client saw: a SoupBinTCP login answer or a sequenced OUCH message with its
/// SoupBinTCP sequence number (`seq`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    LoginAccepted { session: String, sequence: u64 },
    LoginRejected { reason: String },
    Accepted { seq: u64, user_ref: u32, side: char, qty: u32, symbol: String, price: u64, order_ref: u64 },
    Rejected { seq: u64, user_ref: u32, reason: u16 },
    Executed { seq: u64, user_ref: u32, qty: u32, price: u64, liquidity: char, match_number: u64 },
    Canceled { seq: u64, user_ref: u32, qty: u32, reason: char },
    SystemEvent { seq: u64, code: char },
    EndOfSession,
    Closed,
    Timeout,
}

pub struct Client {
    name: String,
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

/// Copies the client script to /root inside (the container's /tmp is its own tmpfs).
pub fn install(c: &Container) -> Result<String> {
    c.copy_in(Path::new(SCRIPT))
}

impl Client {
    /// Connects a new client to the gateway; `name` only labels errors.
    pub fn connect(c: &Container, script: &str, name: &str) -> Result<Client> {
        Client::connect_to(c, script, name, GATEWAY)
    }

    /// As [`Client::connect`], to the gateway at `gateway` (ADDRESS:PORT).
    pub fn connect_to(c: &Container, script: &str, name: &str, gateway: &str) -> Result<Client> {
        let mut child = c.spawn(&["python3", "-u", script, gateway])?;
        let stdin = child.stdin.take().ok_or("client stdin not piped")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("client stdout not piped")?);
        Ok(Client { name: name.to_string(), child, stdin, stdout })
    }

    fn ask(&mut self, command: &str) -> Result<String> {
        writeln!(self.stdin, "{command}")
            .and_then(|()| self.stdin.flush())
            .map_err(|e| format!("client {}: cannot send {command:?}: {e}", self.name))?;
        let mut line = String::new();
        let n = self
            .stdout
            .read_line(&mut line)
            .map_err(|e| format!("client {}: cannot read the answer to {command:?}: {e}", self.name))?;
        if n == 0 {
            let status = self.child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            return Err(format!("client {} exited ({status}) without answering {command:?}", self.name));
        }
        let line = line.trim_end().to_string();
        if line.starts_with("error ") {
            return Err(format!("client {}: {command:?}: {line}", self.name));
        }
        Ok(line)
    }

    fn ask_message(&mut self, command: &str) -> Result<Message> {
        let line = self.ask(command)?;
        parse(&line).map_err(|e| format!("client {}: answer to {command:?}: {e}: {line:?}", self.name))
    }

    pub fn login(&mut self, user: &str, password: &str, sequence: u64) -> Result<Message> {
        self.ask_message(&format!("login {user} {password} {sequence}"))
    }

    /// Logs in and fails unless the gateway accepts; returns the next sequence number.
    pub fn login_accepted(&mut self, user: &str, password: &str, sequence: u64) -> Result<u64> {
        match self.login(user, password, sequence)? {
            Message::LoginAccepted { sequence, .. } => Ok(sequence),
            other => Err(format!("{user} login: got {other:?}, want LoginAccepted")),
        }
    }

    pub fn enter(&mut self, order: &Order) -> Result {
        let side = match order.side {
            Side::Buy => 'B',
            Side::Sell => 'S',
        };
        let tif = match order.tif {
            Tif::Day => '0',
            Tif::Ioc => '3',
        };
        let Order { user_ref, qty, symbol, price, .. } = order;
        self.ask(&format!("enter {user_ref} {side} {qty} {symbol} {price} {tif}")).map(|_| ())
    }

    /// The next sequenced message (server heartbeats skipped).
    pub fn next(&mut self) -> Result<Message> {
        self.ask_message("next")
    }

    /// Enters an order and fails unless the next message accepts it; returns the acceptance.
    pub fn enter_accepted(&mut self, order: &Order) -> Result<Message> {
        self.enter(order)?;
        match self.next()? {
            m @ Message::Accepted { user_ref, qty, price, .. }
                if user_ref == order.user_ref && qty == order.qty && price == order.price =>
            {
                Ok(m)
            }
            other => {
                Err(format!("client {}: order {order:?}: got {other:?}, want its Order Accepted", self.name))
            }
        }
    }

    /// Logs out and waits for the server to close the connection.
    pub fn logout(mut self) -> Result {
        match self.ask("logout")?.as_str() {
            "closed" => Ok(()),
            other => Err(format!("client {}: logout: got {other:?}, want the server to close", self.name)),
        }
    }
}

/// $585.33 and one cent, in OUCH price units: where the system tests trade AAPL.
pub const AAPL_585_33: u64 = 5_853_300;
pub const CENT: u64 = 100;

/// One trade between two logged-in clients: `maker` rests a bid of 100 AAPL at 585.33, `taker`
/// sells into it with an IOC one cent lower; both hear of the one execution, at the bid's price
/// and under one match number. Both orders use `user_ref`. Returns the bid's order reference.
pub fn cross(maker: &mut Client, taker: &mut Client, user_ref: u32) -> Result<u64> {
    let bid =
        Order { user_ref, side: Side::Buy, qty: 100, symbol: "AAPL", price: AAPL_585_33, tif: Tif::Day };
    let Message::Accepted { order_ref, .. } = maker.enter_accepted(&bid)? else {
        unreachable!("enter_accepted returns an acceptance")
    };
    let ask = Order {
        user_ref,
        side: Side::Sell,
        qty: 100,
        symbol: "AAPL",
        price: AAPL_585_33 - CENT,
        tif: Tif::Ioc,
    };
    taker.enter_accepted(&ask)?;
    let taken = taker.next()?;
    let Message::Executed { user_ref: t, qty: 100, price: AAPL_585_33, liquidity: 'R', match_number, .. } =
        taken
    else {
        return Err(format!(
            "{}'s IOC: got {taken:?}, want an execution of 100 at the resting bid's price, removing liquidity",
            taker.name
        ));
    };
    let made = maker.next()?;
    let Message::Executed {
        user_ref: m,
        qty: 100,
        price: AAPL_585_33,
        liquidity: 'A',
        match_number: made_match,
        ..
    } = made
    else {
        return Err(format!(
            "{}'s bid: got {made:?}, want an execution of 100, adding liquidity",
            maker.name
        ));
    };
    if (t, m) != (user_ref, user_ref) || made_match != match_number {
        return Err(format!(
            "one execution: {}'s order {t} and {}'s order {m} matched as {match_number} and {made_match}, \
             want both {user_ref} under one match number",
            taker.name, maker.name
        ));
    }
    Ok(order_ref)
}

impl Drop for Client {
    /// Closing stdin ends the client; kill it in case it is stuck (a no-op once it exited).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Parses one answer line of ouch_client.py: a word and `key=value` fields, optionally after a
/// `seq=N` prefix.
fn parse(line: &str) -> Result<Message> {
    let mut words = line.split_whitespace();
    let mut first = words.next().ok_or("empty answer")?;
    let mut seq = None;
    if let Some(n) = first.strip_prefix("seq=") {
        seq = Some(n.parse::<u64>().map_err(|e| format!("seq: {e}"))?);
        first = words.next().ok_or("nothing after seq=")?;
    }
    let fields: Vec<(&str, &str)> = words.filter_map(|w| w.split_once('=')).collect();
    let get = |key: &str| -> Result<&str> {
        fields.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).ok_or_else(|| format!("no {key}="))
    };
    let num = |key: &str| -> Result<u64> { get(key)?.parse().map_err(|e| format!("{key}: {e}")) };
    let small = |key: &str| -> Result<u32> { get(key)?.parse().map_err(|e| format!("{key}: {e}")) };
    let code = |key: &str| -> Result<char> {
        let value = get(key)?;
        let mut chars = value.chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Ok(c),
            _ => Err(format!("{key}: want one character, got {value:?}")),
        }
    };
    let seq = || seq.ok_or_else(|| format!("{first} without seq="));
    Ok(match first {
        "login-accepted" => {
            Message::LoginAccepted { session: get("session")?.to_string(), sequence: num("sequence")? }
        }
        "login-rejected" => Message::LoginRejected { reason: get("reason")?.to_string() },
        "accepted" => Message::Accepted {
            seq: seq()?,
            user_ref: small("ref")?,
            side: code("side")?,
            qty: small("qty")?,
            symbol: get("symbol")?.to_string(),
            price: num("price")?,
            order_ref: num("order_ref")?,
        },
        "rejected" => Message::Rejected {
            seq: seq()?,
            user_ref: small("ref")?,
            reason: get("reason")?.parse().map_err(|e| format!("reason: {e}"))?,
        },
        "executed" => Message::Executed {
            seq: seq()?,
            user_ref: small("ref")?,
            qty: small("qty")?,
            price: num("price")?,
            liquidity: code("liquidity")?,
            match_number: num("match")?,
        },
        "canceled" => Message::Canceled {
            seq: seq()?,
            user_ref: small("ref")?,
            qty: small("qty")?,
            reason: code("reason")?,
        },
        "system-event" => Message::SystemEvent { seq: seq()?, code: code("code")? },
        "end-of-session" => Message::EndOfSession,
        "closed" => Message::Closed,
        "timeout" => Message::Timeout,
        other => return Err(format!("unknown answer {other:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_answer_the_client_prints() {
        assert_eq!(
            parse("login-accepted session=PETREL sequence=2"),
            Ok(Message::LoginAccepted { session: "PETREL".into(), sequence: 2 })
        );
        assert_eq!(
            parse("seq=3 accepted ref=1 side=B qty=100 symbol=AAPL price=5853300 order_ref=7"),
            Ok(Message::Accepted {
                seq: 3,
                user_ref: 1,
                side: 'B',
                qty: 100,
                symbol: "AAPL".into(),
                price: 5_853_300,
                order_ref: 7
            })
        );
        assert_eq!(
            parse("seq=4 rejected ref=2 reason=19"),
            Ok(Message::Rejected { seq: 4, user_ref: 2, reason: REJECT_INVALID_QUANTITY })
        );
        assert_eq!(
            parse("seq=5 executed ref=1 qty=40 price=5853300 liquidity=A match=3"),
            Ok(Message::Executed {
                seq: 5,
                user_ref: 1,
                qty: 40,
                price: 5_853_300,
                liquidity: 'A',
                match_number: 3
            })
        );
        assert_eq!(parse("seq=1 system-event code=S"), Ok(Message::SystemEvent { seq: 1, code: 'S' }));
        assert_eq!(parse("closed"), Ok(Message::Closed));
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        assert!(parse("accepted ref=1").unwrap_err().contains("without seq="));
        assert!(parse("seq=x accepted").unwrap_err().contains("seq"));
        assert!(parse("seq=1 executed ref=1 qty=1 price=1 liquidity=AB match=1")
            .unwrap_err()
            .contains("one character"));
        assert!(parse("bogus").unwrap_err().contains("unknown answer"));
    }
}
