//! The LOBSTER sample format (see engine/tests/data/lobster/README.md) as engine commands, for
//! the engine's `replay-lobster` command, the benchmarks and the load generator.

use petrel_core::*;

const TICK: Price = 100;

/// The sample's message file: AAPL on 2012-06-21, ten levels.
pub const SAMPLE_MESSAGES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../tests/data/lobster/AAPL_2012-06-21_34200000_57600000_message_10.csv"
);

/// The LOBSTER sample ([`SAMPLE_MESSAGES`]) as commands: adds, reductions,
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

/// `passes` repetitions of one pass of [`lobster_commands`], renumbered so that client
/// references still increase per account: the sample is short, and each pass rests and then
/// clears its own orders.
pub fn lobster_loop(one_pass: &[Command], passes: usize) -> Vec<Command> {
    renumber_client_refs((0..passes).flat_map(|_| one_pass.iter().copied()).collect())
}

/// Renumbers client references so that a stream repeated several times still has strictly
/// increasing references per account (each pass's references are offset past the last pass).
pub fn renumber_client_refs(commands: Vec<Command>) -> Vec<Command> {
    let mut offset: std::collections::HashMap<u32, u32> = Default::default();
    let mut max_seen: std::collections::HashMap<u32, u32> = Default::default();
    let mut last: std::collections::HashMap<u32, u32> = Default::default();
    commands
        .into_iter()
        .map(|command| {
            let account = command.account().0;
            let bump = |r: ClientRef, offset: &mut std::collections::HashMap<u32, u32>| {
                ClientRef(r.0 + offset.get(&account).copied().unwrap_or(0))
            };
            match command {
                Command::NewOrder(mut o) => {
                    // A reference at or below the previous new one starts a new pass.
                    if last.get(&account).is_some_and(|&l| o.client_ref.0 <= l) {
                        offset.insert(account, *max_seen.get(&account).unwrap_or(&0));
                    }
                    last.insert(account, o.client_ref.0);
                    o.client_ref = bump(o.client_ref, &mut offset);
                    let m = max_seen.entry(account).or_default();
                    *m = (*m).max(o.client_ref.0);
                    Command::NewOrder(o)
                }
                Command::Cancel(mut c) => {
                    c.client_ref = bump(c.client_ref, &mut offset);
                    Command::Cancel(c)
                }
                Command::Replace(mut r) => {
                    r.client_ref = bump(r.client_ref, &mut offset);
                    r.new_client_ref = bump(r.new_client_ref, &mut offset);
                    let m = max_seen.entry(account).or_default();
                    *m = (*m).max(r.new_client_ref.0);
                    Command::Replace(r)
                }
                other => other,
            }
        })
        .collect()
}
