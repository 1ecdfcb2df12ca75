//! plan, apply, failure mid-apply, crash mid-apply, verify drift, rollback and idempotence,
//! run through the real binary against a fake /proc + /sys + /etc tree (`--root`).

mod common;

use common::{code, stderr, stdout, text, without_choice_files, FakeHost};

const NOT_CMDLINE: &str = "net,sysctl,irq,cpu,mm,block,workqueue";

#[test]
fn plan_shows_current_wanted_and_action_and_changes_nothing() {
    let host = FakeHost::new();
    let before = host.plan(&[]);
    let out = host.run(&["plan"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let table = stdout(&out);
    for line in [
        "set          sysctl:kernel.nmi_watchdog",
        "already set  sysctl:kernel.io_uring_disabled",
        "set          irq:40:eth0",
        "set          governor:cpu1",
        "set          cpuidle:cpu3:state2:C6",
        "set          nvme:nvme0n1:scheduler",
        "needs reboot cmdline:nohz_full",
        "set          grub:dropin",
    ] {
        assert!(table.contains(line), "missing `{line}` in\n{table}");
    }
    // Multi-value sysctls are compared after whitespace normalisation, and shown so.
    assert!(table.contains("4096 131072 6291456"), "{table}");
    // CPU 0 is housekeeping: its governor and C-states are left alone.
    assert!(!table.contains("governor:cpu0"), "{table}");
    assert!(!table.contains("cpuidle:cpu1:state0"), "{table}");
    // The NVMe IRQ is managed: reported, never changed.
    assert!(table.contains("irq:50:nvme0n1"), "{table}");
    assert!(table.contains("managed IRQ"), "{table}");
    assert_eq!(host.plan(&[]), before);
    assert_eq!(host.read("proc/sys/kernel/nmi_watchdog"), "1\n");
    assert!(!host.state_file().exists());
}

#[test]
fn apply_sets_every_knob_reports_reboot_and_second_apply_changes_nothing() {
    let host = FakeHost::new();
    let out = host.run(&["apply"]);
    assert_eq!(code(&out), 3, "reboot needed for the command line: {}", text(&out));
    assert!(stdout(&out).contains("reboot needed"), "{}", text(&out));

    assert_eq!(host.read("proc/sys/kernel/nmi_watchdog"), "0\n");
    assert_eq!(host.read("proc/sys/net/ipv4/tcp_rmem"), "4096 1048576 16777216\n");
    assert_eq!(host.read("proc/sys/kernel/io_uring_disabled"), "0\n");
    assert_eq!(host.read("proc/irq/default_smp_affinity"), "1\n");
    assert_eq!(host.read("proc/irq/40/smp_affinity_list"), "0\n");
    assert_eq!(host.read("proc/irq/50/smp_affinity_list"), "2\n", "managed IRQs are not moved");
    assert_eq!(host.read("sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"), "powersave\n");
    assert_eq!(host.read("sys/devices/system/cpu/cpu2/cpufreq/scaling_governor"), "performance\n");
    assert_eq!(host.read("sys/devices/system/cpu/cpu2/cpuidle/state0/disable"), "0\n");
    assert_eq!(host.read("sys/devices/system/cpu/cpu2/cpuidle/state1/disable"), "1\n");
    assert_eq!(host.read("sys/devices/system/cpu/cpu2/cpuidle/state2/disable"), "1\n");
    assert_eq!(host.read("sys/kernel/mm/transparent_hugepage/enabled"), "never\n");
    assert_eq!(host.read("sys/kernel/mm/ksm/run"), "0\n");
    assert_eq!(host.read("sys/block/nvme0n1/queue/scheduler"), "none\n");
    assert_eq!(host.read("sys/block/vda/queue/scheduler"), "[mq-deadline] none\n");
    assert_eq!(host.read("sys/devices/virtual/workqueue/cpumask"), "1\n");
    assert_eq!(
        host.read("etc/default/irqbalance"),
        "#IRQBALANCE_ONESHOT=\nENABLED=1\n# Set by petrel-tuner: keep IRQs off the engine's isolated CPUs.\nIRQBALANCE_BANNED_CPULIST=\"1-3\"\n"
    );
    let dropin = host.read("etc/default/grub.d/60-petrel-tuner.cfg");
    assert!(
        dropin.contains("GRUB_CMDLINE_LINUX=\"${GRUB_CMDLINE_LINUX} isolcpus=managed_irq,domain,1-3 nohz_full=1-3 rcu_nocbs=1-3 irqaffinity=0 skew_tick=1 nosoftlockup\""),
        "{dropin}"
    );

    let state_after_first = std::fs::read(host.state_file()).expect("state file");
    let again = host.run(&["apply"]);
    assert_eq!(code(&again), 3, "the reboot is still pending: {}", text(&again));
    assert!(stdout(&again).contains("changed 0,"), "{}", text(&again));
    assert_eq!(
        std::fs::read(host.state_file()).expect("state file"),
        state_after_first,
        "a second apply must keep the originals of the first"
    );
}

#[test]
fn verify_passes_after_apply_and_reports_drift_per_item() {
    let host = FakeHost::new();
    let before = host.run(&["verify"]);
    assert_eq!(code(&before), 1, "{}", text(&before));
    assert_eq!(code(&host.run(&["apply", "--only", NOT_CMDLINE])), 0);
    let clean = host.run(&["verify", "--only", NOT_CMDLINE]);
    assert_eq!(code(&clean), 0, "{}", text(&clean));
    assert!(stdout(&clean).starts_with("OK: host matches profile test-4core"), "{}", text(&clean));

    // Someone turns swapping back on and a reboot brings THP back.
    host.write("proc/sys/vm/swappiness", "60\n");
    host.write("sys/kernel/mm/transparent_hugepage/enabled", "[always] madvise never\n");
    let textfile = host.path("metrics/petrel-tuner.prom");
    let drift =
        host.run(&["verify", "--only", NOT_CMDLINE, "--textfile", textfile.to_str().expect("utf-8 path")]);
    assert_eq!(code(&drift), 1, "{}", text(&drift));
    let report = stdout(&drift);
    assert!(report.starts_with("DRIFT: 2 of "), "{report}");
    assert!(report.contains("  sysctl:vm.swappiness: current 60, wanted 0\n"), "{report}");
    assert!(report.contains("  thp: current always, wanted never\n"), "{report}");

    let metrics = std::fs::read_to_string(&textfile).expect("textfile written");
    assert!(
        metrics.contains("petrel_tuner_drift{profile=\"test-4core\",key=\"sysctl:vm.swappiness\"} 1\n"),
        "{metrics}"
    );
    assert!(metrics.contains("petrel_tuner_drift{profile=\"test-4core\",key=\"ksm\"} 0\n"), "{metrics}");
    assert!(metrics.contains("petrel_tuner_drift_items{profile=\"test-4core\"} 2\n"), "{metrics}");

    let json_out = host.run(&["verify", "--only", NOT_CMDLINE, "--format", "json"]);
    assert_eq!(code(&json_out), 1);
    let json: serde_json::Value = serde_json::from_slice(&json_out.stdout).expect("JSON");
    assert_eq!(json["ok"], false);
    let keys: Vec<&str> =
        json["drift"].as_array().expect("drift").iter().map(|i| i["key"].as_str().expect("key")).collect();
    assert_eq!(keys, ["sysctl:vm.swappiness", "thp"]);
}

#[test]
fn verify_passes_once_the_host_booted_with_the_dropin_command_line() {
    let host = FakeHost::new();
    assert_eq!(code(&host.run(&["apply"])), 3);
    let pending = host.run(&["verify"]);
    assert_eq!(code(&pending), 1);
    assert!(
        stdout(&pending).contains(
            "cmdline:nohz_full: current (absent), wanted nohz_full=1-3 (kernel command line: reboot needed)"
        ),
        "{}",
        text(&pending)
    );
    // What GRUB would boot with the drop-in, flags in another order.
    host.write(
        "proc/cmdline",
        "BOOT_IMAGE=/vmlinuz ro quiet isolcpus=domain,managed_irq,1-3 nohz_full=1-3 rcu_nocbs=1,2,3 irqaffinity=0 skew_tick=1 nosoftlockup\n",
    );
    let booted = host.run(&["verify"]);
    assert_eq!(code(&booted), 0, "{}", text(&booted));
    let again = host.run(&["apply"]);
    assert_eq!(code(&again), 0, "nothing left to do: {}", text(&again));
}

#[test]
fn rollback_restores_every_original_value_and_removes_the_state() {
    let host = FakeHost::new();
    let before = host.plan(&[]);
    assert_eq!(code(&host.run(&["apply"])), 3);
    assert_ne!(host.plan(&[]), before);
    let out = host.run(&["rollback"]);
    assert_eq!(code(&out), 3, "the removed drop-in needs a reboot: {}", text(&out));
    assert!(stdout(&out).contains("restored 22 values"), "{}", text(&out));
    assert_eq!(host.plan_outside_choice_files(), without_choice_files(before));
    assert_eq!(host.read("sys/block/nvme0n1/queue/scheduler"), "mq-deadline\n");
    assert_eq!(host.read("etc/default/irqbalance"), "#IRQBALANCE_ONESHOT=\nENABLED=1\n");
    assert!(!host.path("etc/default/grub.d/60-petrel-tuner.cfg").exists());
    assert!(!host.state_file().exists());
    let nothing = host.run(&["rollback"]);
    assert_eq!(code(&nothing), 0);
    assert!(stdout(&nothing).contains("nothing to roll back"), "{}", text(&nothing));
}

#[test]
fn failure_mid_apply_restores_what_was_changed_and_names_the_item() {
    let host = FakeHost::new();
    // The kernel refuses writes to a read-only sysctl even from root: a real refusal, and a
    // harmless one, in the middle of the sysctls (sorted: kernel.*, net.*, vm.*).
    let knob = host.path("proc/sys/net/ipv4/tcp_rmem");
    std::fs::remove_file(&knob).expect("remove fake knob");
    std::os::unix::fs::symlink("/proc/sys/kernel/osrelease", &knob).expect("symlink");
    let before = host.plan(&[]);
    let out = host.run(&["apply"]);
    assert_eq!(code(&out), 4, "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("apply failed at sysctl:net.ipv4.tcp_rmem"), "{err}");
    assert!(
        err.contains(
            "restored the 2 item(s) changed before it: sysctl:kernel.nmi_watchdog, sysctl:net.core.busy_poll"
        ),
        "{err}"
    );
    assert_eq!(host.plan(&[]), before);
    assert_eq!(host.read("proc/sys/kernel/nmi_watchdog"), "1\n");
    assert!(!host.state_file().exists(), "a restored failure leaves no state behind");
}

#[test]
fn rollback_after_a_crash_mid_apply_restores_the_original_values() {
    let host = FakeHost::new();
    let before = host.plan(&[]);
    // A knob that is a FIFO holds apply inside its write (after the journal and the earlier
    // knobs were written) until the test kills it: a real crash at a known point.
    let fifo = host.path("proc/sys/vm/zz_hold");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    host.write(
        "etc/petrel/tuner.toml",
        &common::PROFILE.replace("\"vm.swappiness\" = 0", "\"vm.swappiness\" = 0\n\"vm.zz_hold\" = 1"),
    );
    let mut child = host.command(&["apply"]).spawn().expect("spawn apply");
    // Feed the planner's read of the FIFO its current value.
    std::fs::write(&fifo, "0\n").expect("write FIFO");
    let mut waited = 0;
    while host.read("proc/sys/vm/swappiness") != "0\n" {
        assert!(child.try_wait().expect("try_wait").is_none(), "apply ended early");
        waited += 1;
        assert!(waited < 6000, "apply never reached the FIFO");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.kill().expect("kill apply");
    child.wait().expect("reap apply");
    assert!(host.state_file().exists(), "the journal was written before the first change");
    assert_eq!(host.read("proc/sys/kernel/nmi_watchdog"), "0\n", "apply got this far");
    assert_eq!(host.read("sys/kernel/mm/ksm/run"), "1\n", "and no further");

    // After the crash (a reboot would bring the knob back as a plain file).
    std::fs::remove_file(&fifo).expect("remove FIFO");
    host.write("proc/sys/vm/zz_hold", "0\n");
    let rollback = host.run(&["rollback"]);
    assert_eq!(code(&rollback), 0, "{}", text(&rollback));
    host.write("etc/petrel/tuner.toml", common::PROFILE);
    std::fs::remove_file(host.path("proc/sys/vm/zz_hold")).expect("remove");
    assert_eq!(host.plan_outside_choice_files(), without_choice_files(before));
    assert_eq!(host.read("sys/block/nvme0n1/queue/scheduler"), "mq-deadline\n");
    assert!(!host.state_file().exists());
}

#[test]
fn a_second_run_is_refused_while_the_lock_is_held() {
    let host = FakeHost::new();
    let store = petrel_tuner::state::StateStore::new(host.path("var/lib/petrel/tuner"));
    let held = store.lock().expect("lock");
    let out = host.run(&["apply"]);
    assert_eq!(code(&out), 7, "{}", text(&out));
    assert!(
        stderr(&out).contains(&format!("holds the lock {}", store.lock_path().display())),
        "{}",
        text(&out)
    );
    assert_eq!(host.read("proc/sys/kernel/nmi_watchdog"), "1\n");
    drop(held);
    assert_eq!(code(&host.run(&["apply"])), 3);
}

#[test]
fn profile_errors_say_where_and_change_nothing() {
    let host = FakeHost::new();
    host.write("etc/petrel/tuner.toml", &common::PROFILE.replace("ksm = false", "ksm = false\nzram = true"));
    let out = host.run(&["apply"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(stderr(&out).contains("line 23, column 1"), "{}", text(&out));
    assert!(stderr(&out).contains("unknown field `zram`"), "{}", text(&out));

    let out = host.run(&["plan", "--profile", "trading-16core"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        stderr(&out).contains("cores.isolated: cpus 4-15 not online: host has cpus 0-3"),
        "{}",
        text(&out)
    );
    assert_eq!(host.read("proc/sys/kernel/nmi_watchdog"), "1\n");
}

#[test]
fn profile_accepts_builtin_names_and_shipped_files() {
    let host = FakeHost::new();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/profiles/latency-performance.toml");
    let by_name = host.run(&["plan", "--profile", "latency-performance"]);
    let by_path = host.run(&["plan", "--profile", shipped]);
    assert_eq!(code(&by_name), 0, "{}", text(&by_name));
    assert_eq!(stdout(&by_name), stdout(&by_path));
    let out = host.run(&["plan", "--profile", "no-such-profile"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("latency-performance, trading-16core"), "{}", text(&out));
}

#[test]
fn changing_the_live_host_without_root_is_refused_with_a_clear_message() {
    // As root, drop to nobody for this one run; as a normal user, run as that user.
    let mut command = if nix::unistd::geteuid().is_root() {
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", common::BIN]);
        c
    } else {
        std::process::Command::new(common::BIN)
    };
    let out = command
        .args(["apply", "--profile", "latency-performance"])
        .output()
        .expect("run setpriv (util-linux)");
    assert_eq!(code(&out), 6, "{}", text(&out));
    assert!(stderr(&out).contains("needs root"), "{}", text(&out));
}

#[test]
fn facts_describe_the_host_and_the_profile_knobs() {
    let host = FakeHost::new();
    let out = host.run(&["facts", "--format", "json"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let facts: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(facts["cpus_online"], "0-3");
    assert_eq!(facts["nics"][0]["name"], "eth0");
    assert_eq!(facts["nics"][0]["rx_queues"], 1);
    assert_eq!(facts["nics"][0]["irqs"][1]["irq"], 41);
    assert_eq!(facts["nvme"][0]["scheduler"], "[mq-deadline] none");
    assert_eq!(facts["nvme"][0]["irqs"][0]["effective_affinity"], "2");
    assert_eq!(facts["governors"][0][0], "powersave");
    let swappiness = facts["knobs"]
        .as_array()
        .expect("knobs")
        .iter()
        .find(|k| k["key"] == "sysctl:vm.swappiness")
        .expect("profile knob listed");
    assert_eq!(swappiness["current"], "60");
}
