//! Operating-system settings of the pipeline threads: CPU pinning, `SCHED_FIFO`, `mlockall`.
//! Each refusal names what is missing (the capability or the resource limit) instead of
//! running on silently without the setting the configuration asked for.
//!
//! Pinning uses `sched_setaffinity` (nix) rather than core_affinity: a thread may be given a
//! set of cores (`runtime.<thread>.cores = [2, 3]`), and core_affinity pins to one core only.

use nix::sched::{sched_getaffinity, sched_setaffinity, CpuSet};
use nix::sys::resource::{getrlimit, Resource};
use nix::unistd::Pid;

use crate::config::{Config, ThreadConfig};

use super::error::RuntimeError;

/// CPUs this process may run on (its affinity mask at start), ascending.
pub fn usable_cores() -> Result<Vec<u32>, RuntimeError> {
    let set = sched_getaffinity(Pid::from_raw(0)).map_err(|source| RuntimeError::Affinity {
        thread: "process",
        cores: Vec::new(),
        source,
    })?;
    Ok((0..CpuSet::count()).filter(|&cpu| set.is_set(cpu).unwrap_or(false)).map(|cpu| cpu as u32).collect())
}

/// Checks that every core named in `runtime.*.cores` exists and is allowed for this process,
/// before any thread starts.
pub fn check_cores(config: &Config) -> Result<(), RuntimeError> {
    let usable = usable_cores()?;
    for (thread, thread_config) in config.runtime.threads() {
        if let Some(&core) = thread_config.cores.iter().find(|c| !usable.contains(c)) {
            return Err(RuntimeError::CoreUnavailable { thread, core, usable: format_cores(&usable) });
        }
    }
    Ok(())
}

fn format_cores(cores: &[u32]) -> String {
    cores.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

/// Pins the calling thread to `cores` (nothing when empty).
pub fn pin_current_thread(thread: &'static str, cores: &[u32]) -> Result<(), RuntimeError> {
    if cores.is_empty() {
        return Ok(());
    }
    let mut set = CpuSet::new();
    for &core in cores {
        set.set(core as usize).map_err(|source| RuntimeError::Affinity {
            thread,
            cores: cores.to_vec(),
            source,
        })?;
    }
    sched_setaffinity(Pid::from_raw(0), &set).map_err(|source| RuntimeError::Affinity {
        thread,
        cores: cores.to_vec(),
        source,
    })
}

/// Gives the calling thread `SCHED_FIFO` at `priority` (1..=99).
pub fn set_realtime_priority(thread: &'static str, priority: u8) -> Result<(), RuntimeError> {
    let param = libc::sched_param { sched_priority: i32::from(priority) };
    // SAFETY: pthread_self() is the calling thread, alive for the call; `param` is a valid,
    // initialised sched_param that outlives the call.
    let rc = unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) };
    if rc == 0 {
        return Ok(());
    }
    let errno = nix::errno::Errno::from_raw(rc);
    let detail = if errno == nix::errno::Errno::EPERM {
        let limit = getrlimit(Resource::RLIMIT_RTPRIO)
            .map_or_else(|e| format!("unreadable: {e}"), |(soft, _)| soft.to_string());
        format!(
            "not permitted: the process needs CAP_SYS_NICE, or RLIMIT_RTPRIO of at least {priority} \
             (its soft limit is {limit}); under systemd set AmbientCapabilities=CAP_SYS_NICE or \
             LimitRTPRIO={priority}, or remove runtime.realtime_priority"
        )
    } else {
        errno.desc().to_owned()
    };
    Err(RuntimeError::RealtimePriority { thread, priority, detail })
}

/// Locks all current and future memory of the process (`mlockall(MCL_CURRENT | MCL_FUTURE)`).
pub fn lock_memory() -> Result<(), RuntimeError> {
    use nix::sys::mman::{mlockall, MlockAllFlags};
    mlockall(MlockAllFlags::MCL_CURRENT | MlockAllFlags::MCL_FUTURE).map_err(|errno| {
        let limit = getrlimit(Resource::RLIMIT_MEMLOCK)
            .map_or_else(|e| format!("unreadable: {e}"), |(soft, _)| format!("{soft} bytes"));
        let detail = match errno {
            nix::errno::Errno::EPERM | nix::errno::Errno::ENOMEM => format!(
                "{}: the process needs CAP_IPC_LOCK, or an RLIMIT_MEMLOCK above its whole memory \
                 (its soft limit is {limit}); under systemd set AmbientCapabilities=CAP_IPC_LOCK \
                 or LimitMEMLOCK=infinity, or set runtime.mlockall = false",
                errno.desc()
            ),
            other => other.desc().to_owned(),
        };
        RuntimeError::MlockAll { detail }
    })
}

/// Applies a thread's configuration to the calling thread: its cores and, for data-plane
/// threads, the real-time priority. The gateway thread (started by the gateway, not by the
/// runtime) calls this with `("gateway", &config.runtime.gateway, config.runtime.realtime_priority)`.
pub fn prepare_current_thread(
    thread: &'static str,
    thread_config: &ThreadConfig,
    realtime_priority: Option<u8>,
) -> Result<(), RuntimeError> {
    pin_current_thread(thread, &thread_config.cores)?;
    if let Some(priority) = realtime_priority {
        set_realtime_priority(thread, priority)?;
    }
    Ok(())
}
