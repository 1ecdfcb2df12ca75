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
