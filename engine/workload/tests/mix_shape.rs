//! The generated exchange-core mix has the shape its documentation claims.
use petrel_workload::exchange_core_mix;

#[test]
fn exchange_core_mix_has_the_published_shape() {
    let (commands, s) = exchange_core_mix(200_000, 7);
    assert!(commands.len() > 200_000);
    let pct = |n: u64| n as f64 * 100.0 / s.commands as f64;
    assert!((8.0..11.0).contains(&pct(s.new_limit)), "{s:?}");
    assert!((2.5..3.5).contains(&pct(s.ioc)), "{s:?}");
    assert!((5.0..7.0).contains(&pct(s.cancels)), "{s:?}");
    assert!((79.0..84.0).contains(&pct(s.replaces)), "{s:?}");
    assert!((4.0..8.0).contains(&pct(s.trading_commands)), "{s:?}");
    assert!((850..1_150).contains(&s.open_orders_at_end), "{s:?}");
    assert!((500..900).contains(&s.levels_at_end), "{s:?}");
}

/// Liquibook's workload as documented: adds only, none rejected, about half resting, in at most
/// fourteen levels (buys 1880-1889 and sells 1884-1893 ticks never rest on the same price).
#[test]
fn deep_queues_mix_has_the_published_shape() {
    use petrel_core::{CountingSink, Engine, InstrumentId, Side};
    use petrel_workload::{bench_config, deep_queues_mix};
    const ORDERS: usize = 200_000;
    let commands = deep_queues_mix(ORDERS, 3);
    assert_eq!(commands, deep_queues_mix(ORDERS, 3), "the same stream for the same seed");
    let mut engine = Engine::new(&bench_config(ORDERS as u32)).unwrap();
    let mut sink = CountingSink::default();
    for (i, command) in commands.iter().enumerate() {
        engine.apply(command, i as u64 + 1, i as u64, &mut sink);
    }
    assert_eq!(sink.rejects, 0);
    let resting = engine.open_order_count() as f64 / ORDERS as f64;
    assert!((0.3..0.7).contains(&resting), "{resting:.2} of the orders rest");
    let levels = engine.depth(InstrumentId(0), Side::Buy, 100).len()
        + engine.depth(InstrumentId(0), Side::Sell, 100).len();
    assert!((2..=14).contains(&levels), "{levels} levels");
}
