//! `mlockall` and `SCHED_FIFO` refused by the kernel fail with a message naming the missing
//! capability and resource limit, never silently. The child is this test binary re-executed
//! under `setpriv` (capabilities dropped from the bounding set, so even root lacks them) and
//! `prlimit` (RLIMIT_RTPRIO 0, RLIMIT_MEMLOCK 64 KiB), both from util-linux.

use std::process::Command;

use petrel_engine::runtime::os;
use petrel_engine::runtime::RuntimeError;

const CHILD_ENV: &str = "PETREL_PIPELINE_OS_CHILD";

#[test]
#[ignore = "child process of refusals_name_the_missing_capability_and_limit"]
fn os_refusal_child() {
    assert!(
        std::env::var_os(CHILD_ENV).is_some(),
        "run only by refusals_name_the_missing_capability_and_limit"
    );
    let error = os::set_realtime_priority("sequencer", 10).unwrap_err();
    assert!(matches!(error, RuntimeError::RealtimePriority { thread: "sequencer", priority: 10, .. }));
    let message = error.to_string();
    for needle in ["runtime.realtime_priority", "CAP_SYS_NICE", "RLIMIT_RTPRIO", "soft limit is 0"] {
        assert!(message.contains(needle), "{needle:?} missing from: {message}");
    }
    let error = os::lock_memory().unwrap_err();
    let message = error.to_string();
    for needle in ["runtime.mlockall", "CAP_IPC_LOCK", "RLIMIT_MEMLOCK", "65536 bytes"] {
        assert!(message.contains(needle), "{needle:?} missing from: {message}");
    }
    println!("CHILD-OK");
}

#[test]
fn refusals_name_the_missing_capability_and_limit() {
    let output = Command::new("setpriv")
        .args(["--bounding-set=-sys_nice,-ipc_lock", "--inh-caps=-sys_nice,-ipc_lock", "--"])
        .args(["prlimit", "--rtprio=0", "--memlock=65536", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--ignored", "--exact", "os_refusal_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .output()
        .expect("setpriv and prlimit (util-linux) run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("CHILD-OK"),
        "child failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_calling_thread_can_be_pinned_to_each_usable_core() {
    let cores = os::usable_cores().unwrap();
    assert!(!cores.is_empty());
    std::thread::spawn(move || {
        for &core in &cores {
            os::pin_current_thread("sequencer", &[core]).unwrap();
            let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).unwrap();
            let pinned: Vec<usize> =
                (0..nix::sched::CpuSet::count()).filter(|&c| set.is_set(c).unwrap()).collect();
            assert_eq!(pinned, [core as usize]);
        }
    })
    .join()
    .unwrap();
}
