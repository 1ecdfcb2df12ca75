//! The LOBSTER sample format (see tests/data/lobster/README.md) as engine commands, for the
//! `replay-lobster` command and the benchmarks.

use petrel_core::*;

const TICK: Price = 100;

/// The LOBSTER sample (tests/data/lobster in the engine crate) as commands: adds, reductions,
/// deletes and visible executions (as IOC orders), skipping events on orders older than the
/// sample. Account 0 rests, account 1 takes.
pub fn lobster_commands(message_csv: &str) -> Result<(EngineConfig, Vec<Command>), String> {
    let config = EngineConfig {
        instruments: vec![InstrumentConfig {
            symbol: Symbol::new("AAPL").unwrap(),
            tick_size: TICK,
            lot_size: 1,
            price_band_min: 5_000_000,
            price_band_max: 7_000_000,
            reference_price: None,
        }],
        accounts: vec![
            AccountConfig { firm: 1, stp: StpMode::None, limits: RiskLimits::UNLIMITED },
            AccountConfig { firm: 2, stp: StpMode::None, limits: RiskLimits::UNLIMITED },
        ],
        max_orders: 10_000,
    };
    let mut refs = std::collections::HashMap::new();
    let (mut next_maker, mut next_taker) = (0u32, 0u32);
    let mut commands = Vec::new();
    for line in message_csv.lines() {
        let f: Vec<&str> = line.split(',').collect();
        let (kind, id, size, price) =
            (f[1], f[2], f[3].parse::<Qty>().unwrap(), f[4].parse::<Price>().unwrap());
        let side = if f[5] == "1" { Side::Buy } else { Side::Sell };
        match kind {
            "1" => {
                next_maker += 1;
                refs.insert(id.to_string(), (ClientRef(next_maker), size));
                commands.push(Command::NewOrder(NewOrder {
                    account: AccountId(0),
                    client_ref: ClientRef(next_maker),
                    instrument: InstrumentId(0),
                    side,
                    order_type: OrderType::Limit,
                    tif: TimeInForce::Day,
                    price,
                    qty: size,
                    min_qty: 0,
                    post_only: false,
                }));
            }
            "2" | "3" => {
                if let Some((client_ref, open)) = refs.get_mut(id) {
                    *open = open.saturating_sub(size);
                    commands.push(Command::Cancel(Cancel {
                        account: AccountId(0),
                        client_ref: *client_ref,
                        qty_remaining: *open,
                    }));
                }
            }
            "4" if refs.contains_key(id) => {
                next_taker += 1;
                commands.push(Command::NewOrder(NewOrder {
                    account: AccountId(1),
                    client_ref: ClientRef(next_taker),
                    instrument: InstrumentId(0),
                    side: side.opposite(),
                    order_type: OrderType::Limit,
                    tif: TimeInForce::Ioc,
                    price,
                    qty: size,
                    min_qty: 0,
                    post_only: false,
                }));
                let (_, open) = refs.get_mut(id).unwrap();
                *open = open.saturating_sub(size);
            }
            _ => {}
        }
    }
    Ok((config, commands))
}
