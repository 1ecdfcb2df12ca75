//! The core's output is pinned: fixed streams give recorded digests of their events, their
//! final state hash and their snapshot encoding. A change meant only to make the core faster
//! must leave every digest as it is; a change of behaviour fails here first and must say why
//! it records new values.
//!
//! The streams cover what the benchmarks drive (deep queues, a deep book, the exchange-core mix,
//! the LOBSTER sample) and, on the exchange-core mix reshaped, what they do not: shared firms
//! under every self-trade prevention mode, binding risk limits, market, fill-or-kill,
//! minimum-quantity and post-only orders, partial cancels, mass cancels, disconnects, the kill
//! switch and limit changes.

use petrel_core::*;
use petrel_workload::lobster::{lobster_commands, SAMPLE_MESSAGES};
use petrel_workload::{add_heavy_mix, bench_config, deep_queues_mix, exchange_core_mix, Rng, MID};

/// FNV-1a over bytes: stable across platforms and releases, unlike `DefaultHasher`.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= *b as u64;
        *hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    }
}

/// Digests of one run: (events, state hash, snapshot bytes).
fn digests(config: &EngineConfig, commands: &[Command]) -> (u64, u128, u64) {
    let mut engine = Engine::new(config).unwrap();
    let mut events = Vec::new();
    let mut events_digest = 0xCBF2_9CE4_8422_2325;
    for (i, command) in commands.iter().enumerate() {
        engine.apply(command, i as u64 + 1, (i as u64 + 1) * 1_000, &mut events);
        for event in events.drain(..) {
            fnv(&mut events_digest, format!("{event:?}").as_bytes());
        }
    }
    let mut snapshot = Vec::new();
    engine.encode_state(&mut snapshot);
    let mut snapshot_digest = 0xCBF2_9CE4_8422_2325;
    fnv(&mut snapshot_digest, &snapshot);
    (events_digest, engine.state_hash().0, snapshot_digest)
}

/// The bench configuration with ten accounts to a firm, every self-trade prevention mode in
/// turn, and limits that bind now and then.
fn varied_config() -> EngineConfig {
    let mut config = bench_config(1 << 16);
    let modes = [
        StpMode::None,
        StpMode::CancelNewest,
        StpMode::CancelOldest,
        StpMode::CancelBoth,
        StpMode::DecrementAndCancel,
    ];
    for (i, account) in config.accounts.iter_mut().enumerate() {
        account.firm = i as u32 / 10;
        account.stp = modes[i % modes.len()];
        if i % 3 == 0 {
            account.limits = RiskLimits {
                max_order_qty: 90,
                max_order_notional: 200_000_000,
                price_collar_bps: 10,
                max_open_orders: 12,
                max_position: 400,
                max_orders_per_window: 20,
                rate_window_ns: 5_000_000,
            };
        }
    }
    config
}

/// The exchange-core mix reshaped by a seeded hand: some orders become market, fill-or-kill,
/// minimum-quantity or post-only, some invalid; some cancels partial; and account-wide
/// commands interleave.
fn varied_commands(seed: u64) -> Vec<Command> {
    let (mix, _) = exchange_core_mix(60_000, seed);
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(mix.len() * 11 / 10);
    for mut command in mix {
        let account = AccountId(rng.below(100) as u32);
        match rng.below(200) {
            0 => out.push(Command::MassCancel { account, instrument: Some(InstrumentId(0)) }),
            1 => out.push(Command::MassCancel { account, instrument: None }),
            2 => out.push(Command::Disconnect { account }),
            3 => out.push(Command::KillSwitch { account, engage: true }),
            4..=8 => out.push(Command::KillSwitch { account, engage: false }),
            9 => {
                let limits = RiskLimits { max_open_orders: 3, ..RiskLimits::UNLIMITED };
                out.push(Command::SetRiskLimits { account, limits })
            }
            _ => {}
        }
        match &mut command {
            Command::NewOrder(o) => match rng.below(40) {
                0 | 1 => o.order_type = OrderType::Market,
                2 | 3 => o.tif = TimeInForce::Fok,
                4 | 5 => o.min_qty = o.qty / 2,
                6 | 7 => o.post_only = true,
                8 | 9 => o.tif = TimeInForce::Ioc,
                10 => o.price += 1,
                11 => o.price = 3 * MID,
                12 => o.qty = 0,
                13 => o.client_ref.0 -= 1,
                _ => {}
            },
            Command::Replace(r) => match rng.below(40) {
                0 => r.price += 1,
                1 => r.qty = 0,
                _ => {}
            },
            Command::Cancel(c) => c.qty_remaining = rng.below(4) as Qty,
            _ => {}
        }
        out.push(command);
    }
    out
}

/// Reject and cancel reasons the varied streams must reach, so that their digests pin them.
const VARIED_OUTCOMES: &[&str] = &[
    "AccountBlocked",
    "DuplicateClientRef",
    "InvalidOrder",
    "MaxOpenOrders",
    "MaxOrderQty",
    "MaxPosition",
    "PriceCollar",
    "PriceNotOnTick",
    "PriceOutOfBand",
    "RateLimit",
    "WouldTakeLiquidity",
    "ZeroQuantity",
    "CancelWouldNotReduce",
    "Disconnect",
    "FillOrKill",
    "ImmediateOrCancel",
    "KillSwitch",
    "MassCancel",
    "SelfTrade",
    "User",
];

/// The reject and cancel reasons a run produces, by name.
fn outcomes(config: &EngineConfig, commands: &[Command]) -> std::collections::BTreeSet<String> {
    let mut engine = Engine::new(config).unwrap();
    let mut events = Vec::new();
    for (i, command) in commands.iter().enumerate() {
        engine.apply(command, i as u64 + 1, (i as u64 + 1) * 1_000, &mut events);
    }
    events
        .iter()
        .filter_map(|event| match event {
            Event::Rejected(r) => Some(format!("{:?}", r.reason)),
            Event::Cancelled(c) => Some(format!("{:?}", c.reason)),
            _ => None,
        })
        .collect()
}

#[test]
fn deep_queues_digests_are_pinned() {
    let commands = deep_queues_mix(300_000, 3);
    // Room for twice the orders: a table that large takes the order index's layout for tables
    // beyond the caches, and the digests must not notice.
    assert_eq!(
        digests(&bench_config(600_000), &commands),
        (11674119978297213158, 265771711755396269477311271093706568734, 14365535330372704598),
        "deep-queues: events, state or snapshot changed"
    );
}

#[test]
fn add_heavy_digests_are_pinned() {
    let commands = add_heavy_mix(200_000, 20_000, 2);
    assert_eq!(
        digests(&bench_config(1 << 16), &commands),
        (13770666837942445492, 315795590880207016884455226665839886184, 9233252833214500188),
        "add-heavy: events, state or snapshot changed"
    );
}

#[test]
fn exchange_core_digests_are_pinned() {
    let (commands, _) = exchange_core_mix(200_000, 42);
    assert_eq!(
        digests(&bench_config(1 << 16), &commands),
        (2602202816385266808, 172131721070575363261470973677465380498, 17729011374975202290),
        "exchange-core: events, state or snapshot changed"
    );
}

#[test]
fn lobster_digests_are_pinned() {
    let csv = std::fs::read_to_string(SAMPLE_MESSAGES).unwrap();
    let (config, commands) = lobster_commands(&csv).unwrap();
    assert_eq!(
        digests(&config, &commands),
        (17065544372610362071, 307332957331286414869633291448324922731, 12831510443077039789),
        "LOBSTER: events, state or snapshot changed"
    );
}

#[test]
fn varied_digests_are_pinned() {
    let config = varied_config();
    let expected = [
        (9715689970029754607, 192100898964006023306157240130825666589, 6345256977109492044),
        (13370764246649493338, 335839265436661341469296361368889192327, 2139099942333170519),
    ];
    for (seed, expected) in [5, 6].into_iter().zip(expected) {
        let commands = varied_commands(seed);
        let reached = outcomes(&config, &commands);
        for outcome in VARIED_OUTCOMES {
            assert!(reached.contains(*outcome), "varied seed {seed} never reaches {outcome}: {reached:?}");
        }
        assert_eq!(
            digests(&config, &commands),
            expected,
            "varied seed {seed}: events, state or snapshot changed"
        );
    }
}
