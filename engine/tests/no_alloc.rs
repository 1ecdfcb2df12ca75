//! Nothing allocates on the hot path: after `Engine::new`, applying a long mixed stream of
//! commands (adds, replaces, cancels, executions, IOC, rejects, mass cancels) makes no heap
//! allocation at all. A counting global allocator watches every allocation in this process.

use petrel_engine::core::*;
use petrel_testkit::alloc_counter;
use petrel_workload::{add_heavy_mix, bench_config, exchange_core_mix};

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

#[test]
fn applying_commands_never_allocates() {
    let (mut commands, _) = exchange_core_mix(200_000, 1);
    commands.extend(add_heavy_mix(100_000, 20_000, 2));
    // Rejects, mass cancels and kill switches take their own paths.
    for account in 0..10 {
        commands.push(Command::MassCancel { account: AccountId(account), instrument: None });
        commands.push(Command::KillSwitch { account: AccountId(account + 10), engage: true });
        commands.push(Command::Cancel(Cancel {
            account: AccountId(account),
            client_ref: ClientRef(u32::MAX),
            qty_remaining: 0,
        }));
    }
    let mut engine = Engine::new(&bench_config(1 << 17)).unwrap();
    let mut sink = CountingSink::default();
    alloc_counter::count_all_threads();
    for (i, c) in commands.iter().enumerate() {
        engine.apply(c, i as u64 + 1, i as u64 * 100, &mut sink);
    }
    let allocations = alloc_counter::stop_counting();
    assert_eq!(allocations, 0, "allocations while applying {} commands", commands.len());
    assert!(
        sink.executions > 1_000 && sink.rejects > 0,
        "the stream exercised matching and rejects: {sink:?}"
    );
}
