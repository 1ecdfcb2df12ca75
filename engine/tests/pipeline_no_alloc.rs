//! Nothing allocates per command anywhere in the pipeline: after a warm-up, 100k commands go
//! through the gateway port, the sequencer, the journal writer (fsync) and back to the release
//! helper without one heap allocation in any thread of the process. A counting global
//! allocator watches every allocation.

mod support;

use petrel_testkit::alloc_counter;

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

use std::sync::atomic::Ordering;
use std::time::Duration;

use petrel_engine::port::{DurableOutbound, GatewayPort, InboundCommand};
use petrel_engine::recovery::recover;
use petrel_engine::runtime::Runtime;
use petrel_workload::exchange_core_mix;
use support::engine_setup::*;

/// Feeds commands (`conn` = index) and releases events until every command completed; counts
/// only, so this loop itself allocates nothing.
/// Run to completion: runs the port's core in the loop, as the gateway thread does.
fn feed(port: &GatewayPort, commands: &[petrel_engine::core::Command]) -> u64 {
    let mut releaser = DurableOutbound::new();
    let mut core = port.core.take();
    let (mut next, mut completed, mut events) = (0, 0, 0u64);
    let release = |releaser: &mut DurableOutbound, events: &mut u64, completed: &mut usize| {
        let mut progressed = false;
        while let Some(event) = releaser.next(port) {
            *events += 1;
            *completed += usize::from(event.last_of_command);
            progressed = true;
        }
        progressed
    };
    while completed < commands.len() {
        let mut progressed = false;
        while next < commands.len() && port.try_submit(InboundCommand::new(0, commands[next])).is_ok() {
            next += 1;
            progressed = true;
        }
        if let Some(core) = core.as_mut() {
            progressed |= core.run(&mut || {
                release(&mut releaser, &mut events, &mut completed);
            });
        }
        progressed |= release(&mut releaser, &mut events, &mut completed);
        if !progressed {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    if let Some(core) = core {
        port.core.put(core);
    }
    events
}

#[test]
fn the_pipeline_never_allocates_per_command() {
    never_allocates_per_command("pipeline");
}

/// The same with the gateway's thread sequencing, matching and journaling itself.
#[test]
fn running_to_completion_never_allocates_per_command() {
    never_allocates_per_command("run-to-completion");
}

fn never_allocates_per_command(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    // No periodic snapshot in the measured window: writing a file is not a per-command cost.
    // One 64 MiB segment holds the whole run: opening a new segment file (a path, a file) is a
    // per-segment cost, not a per-command one, and is left out of the window.
    let text = bench_config_text("fsync", 1_000_000_000)
        .replace("segment_size_bytes = 1_048_576", "segment_size_bytes = 67_108_864");
    let text = petrel_testkit::config::set_runtime_mode(&text, mode);
    let (_, config) = write_config_text(dir.path(), &text);
    let (commands, _) = exchange_core_mix(130_000, 21);
    let (warm_up, measured) = commands.split_at(30_000);
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let (runtime, port) = Runtime::start(&config, recovered).unwrap();
    feed(&port, warm_up);
    let stats = runtime.stats();
    let batches_before = stats.journal_batches_total.load(Ordering::Relaxed);

    alloc_counter::count_all_threads();
    let events = feed(&port, measured);
    let allocations = alloc_counter::stop_counting();

    let batches = stats.journal_batches_total.load(Ordering::Relaxed) - batches_before;
    let report = runtime.shutdown(false).unwrap();
    assert_eq!(report.last_sequence, commands.len() as u64);
    assert!(events > measured.len() as u64 && stats.executions_total.load(Ordering::Relaxed) > 1_000);
    assert!(batches > 1, "group commits happened in the window");
    assert_eq!(allocations, 0, "allocations while {} commands went through the {mode}", measured.len());
}
