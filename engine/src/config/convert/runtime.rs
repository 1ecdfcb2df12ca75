//! `[runtime]`: SCHED_FIFO priority, and each data-plane thread's core pinning and idle
//! strategy. Checked here, applied by `runtime` (and by the gateway thread for its own section).

use crate::config::locate::Locator;
use crate::config::locate::Seg::Key as K;
use crate::config::raw::RawRuntime;
use crate::config::{ConfigFileError, DataPath, IdleStrategy, RuntimeConfig, ThreadConfig};

/// Largest CPU id a thread may be pinned to (`CPU_SETSIZE` is 1024 on Linux).
pub const MAX_CPU_ID: u32 = 1023;
/// Longest sleep the `park` idle strategy may back off to, µs. Longer sleeps make a quiet engine
/// answer its first order late and are almost certainly a unit mistake.
pub const MAX_PARK_US: u32 = 1_000_000;
/// Most spins before a yield in the `spin-yield` idle strategy.
pub const MAX_SPINS: u32 = 1_000_000;

pub(super) fn runtime(raw: RawRuntime, loc: &Locator) -> Result<RuntimeConfig, ConfigFileError> {
    let realtime_priority = match raw.realtime_priority {
        None => None,
        Some(p @ 1..=99) => Some(p as u8),
        Some(p) => {
            return Err(loc.error(
                &[K("runtime"), K("realtime_priority")],
                format!("realtime_priority = {p} must be a SCHED_FIFO priority, 1 to 99"),
            ))
        }
    };
    let runtime = RuntimeConfig {
        mode: raw.mode,
        mlockall: raw.mlockall,
        realtime_priority,
        gateway: raw.gateway,
        sequencer: raw.sequencer,
        journal: raw.journal,
        housekeeping: raw.housekeeping,
    };
    let threads = runtime.threads();
    for (t, &(name, thread)) in threads.iter().enumerate() {
        pinning(&threads, t, loc)?;
        idle(name, thread, loc)?;
    }
    unused_threads(&runtime, loc)?;
    Ok(runtime)
}

/// Thread `t`'s cores: real CPU ids, each listed once, and none shared with an earlier thread.
fn pinning(
    threads: &[(&'static str, &ThreadConfig)],
    t: usize,
    loc: &Locator,
) -> Result<(), ConfigFileError> {
    let (name, thread) = threads[t];
    let cores_at = [K("runtime"), K(name), K("cores")];
    for (c, &core) in thread.cores.iter().enumerate() {
        if core > MAX_CPU_ID {
            return Err(
                loc.error(&cores_at, format!("core {core} is beyond the largest CPU id, {MAX_CPU_ID}"))
            );
        }
        if thread.cores[..c].contains(&core) {
            return Err(loc.error(&cores_at, format!("core {core} is listed twice")));
        }
        if let Some((other, _)) = threads[..t].iter().find(|(_, o)| o.cores.contains(&core)) {
            return Err(loc.error(
                &cores_at,
                format!("core {core} is also pinned to runtime.{other}: pinned threads need cores of their own, or they stall each other"),
            ));
        }
    }
    Ok(())
}

fn idle(name: &str, thread: &ThreadConfig, loc: &Locator) -> Result<(), ConfigFileError> {
    let idle_at = [K("runtime"), K(name), K("idle")];
    match thread.idle {
        IdleStrategy::BusySpin if thread.cores.is_empty() => Err(loc.error(
            &idle_at,
            format!("runtime.{name}: busy-spin needs a dedicated core (set runtime.{name}.cores); unpinned, it takes a core from every other thread"),
        )),
        IdleStrategy::SpinYield { spins } if spins == 0 || spins > MAX_SPINS => {
            Err(loc.error(&idle_at, format!("spin-yield spins = {spins} must be between 1 and {MAX_SPINS}")))
        }
        IdleStrategy::Park { min_us, max_us } if min_us == 0 || min_us > max_us || max_us > MAX_PARK_US => {
            Err(loc.error(
                &idle_at,
                format!("park needs 1 <= min_us <= max_us <= {MAX_PARK_US}, got min_us = {min_us}, max_us = {max_us}"),
            ))
        }
        _ => Ok(()),
    }
}

/// Run to completion has no sequencer or journal thread: pinning one is a mistake worth
/// stopping for (the operator means the pipeline, or means to pin the gateway). Their idle
/// strategies are simply unused, so that one file can switch modes with one key.
fn unused_threads(runtime: &RuntimeConfig, loc: &Locator) -> Result<(), ConfigFileError> {
    if runtime.mode != DataPath::RunToCompletion {
        return Ok(());
    }
    for (name, thread) in [("sequencer", &runtime.sequencer), ("journal", &runtime.journal)] {
        if !thread.cores.is_empty() {
            return Err(loc.error(
                &[K("runtime"), K(name), K("cores")],
                format!("runtime.mode = \"run-to-completion\" runs no {name} thread (the gateway's thread sequences, matches and journals): pin runtime.gateway instead, or set runtime.mode = \"pipeline\""),
            ));
        }
    }
    Ok(())
}
