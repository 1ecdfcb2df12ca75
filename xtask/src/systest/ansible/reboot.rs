//! A kernel command line change needs a reboot: petrel_tuner applies the rest, petrel-tuner
//! writes the GRUB drop-in, and the role stops with a message instead of rebooting
//! (petrel_tuner_reboot_allowed is false): the host is still on the same boot afterwards.

use super::fleet::{Fleet, HOSTS};
use crate::util::Result;

const DROPIN: &str = "/etc/default/grub.d/60-petrel-tuner.cfg";

pub fn cmdline_change_is_reported_not_rebooted(fleet: &Fleet) -> Result {
    let h = fleet.host(HOSTS[2])?;
    let boot_id = h.c.sh("cat /proc/sys/kernel/random/boot_id")?;
    // A host that boots with GRUB (the container has no boot loader of its own).
    h.c.sh("mkdir -p /etc/default/grub.d && touch /etc/default/grub")?;
    let yaml = format!(
        "all:\n  children:\n    petrel_engines:\n      hosts:\n        {}:\n          petrel_tuner_cmdline_extra: [nosoftlockup]\n          petrel_tuner_only: [net, cmdline]\n",
        h.name
    );
    let extra = fleet.extra_inventory("cmdline.yml", &yaml)?;
    let run = fleet.playbook("site.yml", &["-i", &extra, "--limit", h.name])?;
    run.expect_failure_saying(
        "site.yml with a kernel command line change",
        &format!("{} needs a reboot", h.name),
    )?;
    h.c.sh(&format!("grep -q nosoftlockup {DROPIN}"))
        .map_err(|e| format!("{}: no GRUB drop-in with the new parameter: {e}", h.name))?;
    if h.c.sh("cat /proc/sys/kernel/random/boot_id")? != boot_id {
        return Err(format!("{} rebooted although petrel_tuner_reboot_allowed is false", h.name));
    }
    // Back to the inventory: undo what the tuner recorded, then converge the host again.
    // rollback exits 3: removing the drop-in is itself a command line change for the next boot.
    h.c.sh(&format!(
        "petrel-tuner rollback >/dev/null || [ $? -eq 3 ]; test ! -e {DROPIN}; rm /etc/default/grub"
    ))?;
    let run = fleet.playbook("site.yml", &["--limit", h.name])?;
    run.expect_success("site.yml after undoing the kernel command line change")
}
