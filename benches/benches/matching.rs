//! Criterion benchmarks of the matching core on one core: the exchange-core mix, an add-heavy
//! mix, and the LOBSTER sample in a loop. Each iteration applies a whole pre-generated stream
//! to a fresh engine (built outside the timed part).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use petrel_core::{Command, CountingSink, Engine, EngineConfig};
use petrel_workload::lobster::{lobster_commands, lobster_loop, SAMPLE_MESSAGES};
use petrel_workload::{add_heavy_mix, bench_config, exchange_core_mix};

fn apply_all(config: &EngineConfig, commands: &[Command], c: &mut Criterion, name: &str) {
    let mut group = c.benchmark_group("matching");
    group.throughput(Throughput::Elements(commands.len() as u64));
    group.sample_size(10);
    group.bench_function(name, |b| {
        b.iter_batched_ref(
            || Engine::new(config).unwrap(),
            |engine| {
                let mut sink = CountingSink::default();
                for (i, command) in commands.iter().enumerate() {
                    engine.apply(command, i as u64 + 1, i as u64, &mut sink);
                }
                sink.events
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

fn benches(c: &mut Criterion) {
    let (mix, _) = exchange_core_mix(1_000_000, 1);
    apply_all(&bench_config(1 << 16), &mix, c, "exchange_core_mix");
    let adds = add_heavy_mix(1_000_000, 100_000, 2);
    apply_all(&bench_config(1 << 18), &adds, c, "add_heavy");
    let csv = std::fs::read_to_string(SAMPLE_MESSAGES).unwrap();
    let (config, one_pass) = lobster_commands(&csv).expect("LOBSTER sample parses");
    // The sample is short; repeat it (each pass rests then clears its own orders).
    apply_all(&config, &lobster_loop(&one_pass, 200), c, "lobster_loop");
}

criterion_group!(matching, benches);
criterion_main!(matching);
