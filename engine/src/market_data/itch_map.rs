//! Pure mapping from the core's public book changes to TotalView-ITCH 5.0 messages (testable
//! without sockets or files), and the start-of-day messages of a feed.
//!
//! - Stock Locate is the instrument's index + 1: Nasdaq's locate codes start at 1 and a System
//!   Event, which concerns no stock, carries 0, so index 0 would be ambiguous with it.
//! - Order Reference Number is the core's `OrderId` (unique for the day across instruments);
//!   Match Number is the core's `MatchId`, the number both OUCH Order Executed messages carry.
//! - Timestamps are nanoseconds since midnight (UTC) of the command's sequenced timestamp, as
//!   OUCH's are, so a feed is a function of the input journal.
//! - An order of an account listed in `market_data.attributed_accounts` is added with MPID
//!   Attribution (`F`), the MPID being its firm's name; every other order anonymously (`A`).
//! - A resting order always executes at its own price in a price-time book, so executions are
//!   Order Executed (`E`); Petrel has no non-displayed orders, so it sends no Trade (`P`).
//! - Prices are Price(4), the core's own unit, saturated at u32::MAX ($429,496.7295), the
//!   largest ITCH 5.0 can carry.

use petrel_core::{BookChange, Event, InstrumentId, Side};
use petrel_proto::itch::{event_code, trading_state, AddOrder, Header, Message, StockDirectory};
use petrel_proto::Alpha;

/// Stock Locate of an instrument.
pub fn stock_locate(instrument: InstrumentId) -> u16 {
    instrument.0.saturating_add(1)
}

/// Price(4) of a core price (both count 1/10,000 of the currency unit).
fn price4(price: i64) -> u32 {
    price.clamp(0, i64::from(u32::MAX)) as u32
}

fn side(side: Side) -> u8 {
    match side {
        Side::Buy => b'B',
        Side::Sell => b'S',
    }
}

/// What the mapping needs of the configuration: each instrument's symbol and round lot, and
/// each account's MPID when its orders are attributed.
#[derive(Clone, Debug)]
pub struct FeedInstruments {
    pub symbols: Vec<Alpha<8>>,
    pub round_lots: Vec<u32>,
    pub mpids: Vec<Option<Alpha<4>>>,
}

impl FeedInstruments {
    pub fn from_config(config: &crate::config::Config) -> FeedInstruments {
        let symbols = config
            .engine
            .instruments
            .iter()
            .map(|i| Alpha::from_wire(i.symbol.0).unwrap_or(Alpha::BLANK))
            .collect();
        let round_lots = config.engine.instruments.iter().map(|i| i.lot_size).collect();
        let attributed = config.market_data.as_ref().map_or(&[][..], |md| &md.attributed_accounts[..]);
        let mpids = config
            .accounts
            .iter()
            .map(|a| attributed.contains(&a.name).then(|| Alpha::new("firm", &a.firm).ok()).flatten())
            .collect();
        FeedInstruments { symbols, round_lots, mpids }
    }

    /// The MPID an account's orders are attributed to, if it opted in.
    pub fn mpid(&self, account: petrel_core::AccountId) -> Option<Alpha<4>> {
        self.mpids.get(account.0 as usize).copied().flatten()
    }

    fn symbol(&self, instrument: InstrumentId) -> Alpha<8> {
        self.symbols.get(instrument.0 as usize).copied().unwrap_or(Alpha::BLANK)
    }
}

/// The ITCH message of one released event, if it changes a book. `timestamp_ns` is already
/// nanoseconds since midnight; `attribution`: the MPID of an added order's account, if any.
pub fn book_message(
    event: &Event,
    timestamp_ns: u64,
    instruments: &FeedInstruments,
    attribution: Option<Alpha<4>>,
) -> Option<Message> {
    let Event::Book(change) = event else { return None };
    let header = |instrument: InstrumentId| Header {
        stock_locate: stock_locate(instrument),
        tracking_number: 0,
        timestamp_ns,
    };
    let message = match *change {
        BookChange::Add { instrument, order_id, side: s, price, qty } => Message::AddOrder(AddOrder {
            header: header(instrument),
            order_ref: order_id.0,
            side: side(s),
            shares: qty,
            stock: instruments.symbol(instrument),
            price: price4(price),
            attribution,
        }),
        BookChange::Execute { instrument, order_id, qty, match_id, .. } => Message::OrderExecuted {
            header: header(instrument),
            order_ref: order_id.0,
            executed_shares: qty,
            match_number: match_id.0,
        },
        BookChange::Cancel { instrument, order_id, qty } => {
            Message::OrderCancel { header: header(instrument), order_ref: order_id.0, cancelled_shares: qty }
        }
        BookChange::Delete { instrument, order_id } => {
            Message::OrderDelete { header: header(instrument), order_ref: order_id.0 }
        }
        BookChange::Replace { instrument, old_order_id, new_order_id, price, qty } => Message::OrderReplace {
            header: header(instrument),
            original_order_ref: old_order_id.0,
            new_order_ref: new_order_id.0,
            shares: qty,
            price: price4(price),
        },
    };
    Some(message)
}

/// The messages a new feed begins with: Start of Messages, Start of System Hours, a Stock
/// Directory and a Stock Trading Action (trading) per instrument, Start of Market Hours.
/// Petrel trades continuously while it runs, so the market opens at once.
pub fn start_of_day(timestamp_ns: u64, instruments: &FeedInstruments) -> Vec<Message> {
    let system = |code| Message::SystemEvent {
        header: Header { stock_locate: 0, tracking_number: 0, timestamp_ns },
        event_code: code,
    };
    let mut out = vec![system(event_code::START_OF_MESSAGES), system(event_code::START_OF_SYSTEM_HOURS)];
    for (index, stock) in instruments.symbols.iter().enumerate() {
        let header = Header {
            stock_locate: stock_locate(InstrumentId(index as u16)),
            tracking_number: 0,
            timestamp_ns,
        };
        out.push(Message::StockDirectory(StockDirectory {
            header,
            stock: *stock,
            // Not a Nasdaq listing: market category and financial status "not available".
            market_category: b' ',
            financial_status: b' ',
            round_lot_size: instruments.round_lots[index],
            round_lots_only: b'N',
            issue_classification: b' ',
            issue_sub_type: *b"  ",
            authenticity: b'P',
            short_sale_threshold: b' ',
            ipo_flag: b' ',
            luld_reference_price_tier: b' ',
            etp_flag: b' ',
            etp_leverage_factor: 0,
            inverse_indicator: b' ',
        }));
        out.push(Message::StockTradingAction {
            header,
            stock: *stock,
            trading_state: trading_state::TRADING,
            reason: Alpha::BLANK,
        });
    }
    out.push(system(event_code::START_OF_MARKET_HOURS));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_core::{MatchId, OrderId};

    fn instruments() -> FeedInstruments {
        FeedInstruments {
            symbols: vec![Alpha::new("s", "AAPL").unwrap(), Alpha::new("s", "MSFT").unwrap()],
            round_lots: vec![100, 1],
            mpids: vec![None],
        }
    }

    #[test]
    fn book_changes_become_their_itch_messages_on_the_instruments_locate() {
        let i = instruments();
        let add = Event::Book(BookChange::Add {
            instrument: InstrumentId(1),
            order_id: OrderId(7),
            side: Side::Sell,
            price: 5_853_300,
            qty: 100,
        });
        let Some(Message::AddOrder(a)) = book_message(&add, 42, &i, None) else { panic!("an Add Order") };
        assert_eq!((a.header.stock_locate, a.header.timestamp_ns), (2, 42));
        assert_eq!(
            (a.order_ref, a.side, a.shares, a.price, a.stock.as_str()),
            (7, b'S', 100, 5_853_300, "MSFT")
        );
        let exec = Event::Book(BookChange::Execute {
            instrument: InstrumentId(0),
            order_id: OrderId(7),
            qty: 40,
            price: 1,
            match_id: MatchId(9),
        });
        assert_eq!(
            book_message(&exec, 1, &i, None),
            Some(Message::OrderExecuted {
                header: Header { stock_locate: 1, tracking_number: 0, timestamp_ns: 1 },
                order_ref: 7,
                executed_shares: 40,
                match_number: 9
            })
        );
        let replace = Event::Book(BookChange::Replace {
            instrument: InstrumentId(0),
            old_order_id: OrderId(7),
            new_order_id: OrderId(8),
            price: -5,
            qty: 3,
        });
        let Some(Message::OrderReplace {
            original_order_ref: 7, new_order_ref: 8, shares: 3, price: 0, ..
        }) = book_message(&replace, 1, &i, None)
        else {
            panic!("an Order Replace with a negative price saturated at 0")
        };
        let cancel =
            Event::Book(BookChange::Cancel { instrument: InstrumentId(0), order_id: OrderId(7), qty: 5 });
        assert!(matches!(
            book_message(&cancel, 1, &i, None),
            Some(Message::OrderCancel { cancelled_shares: 5, .. })
        ));
        let delete = Event::Book(BookChange::Delete { instrument: InstrumentId(0), order_id: OrderId(7) });
        assert!(matches!(
            book_message(&delete, 1, &i, None),
            Some(Message::OrderDelete { order_ref: 7, .. })
        ));
        let mpid = Alpha::new("m", "DEV1").unwrap();
        let Some(f) = book_message(&add, 42, &i, Some(mpid)) else { panic!("an Add Order") };
        assert_eq!(f.type_and_len(), (b'F', 40), "Add Order with MPID Attribution");
        let killed = Event::KillSwitch { account: petrel_core::AccountId(0), engaged: true };
        assert_eq!(book_message(&killed, 1, &i, None), None, "only book changes are public");
    }

    #[test]
    fn a_day_starts_with_system_events_and_each_instruments_directory() {
        let messages = start_of_day(5, &instruments());
        let types: Vec<u8> = messages.iter().map(|m| m.type_and_len().0).collect();
        assert_eq!(types, b"SSRHRHS");
        let Message::StockDirectory(d) = messages[4] else { panic!() };
        assert_eq!((d.header.stock_locate, d.stock.as_str(), d.round_lot_size), (2, "MSFT", 1));
    }
}
