//! `apt-get purge`: the package's files go, the journal and the user stay.

use super::checks::expect_contains;
use crate::systest::container::Container;
use crate::util::Result;

pub fn engine_purge_keeps_journal(c: &Container) -> Result {
    let log = c.sh("apt-get purge -y -q petrel-engine")?;
    expect_contains("purge says where the journal stays", &log, "/var/lib/petrel (journal, snapshots)")?;
    c.sh("test \"$(cat /var/lib/petrel/journal/systest-marker)\" = audit")
        .map_err(|_| "purge deleted the journal".to_string())?;
    c.sh("test ! -e /etc/petrel/engine.toml && test ! -e /lib/systemd/system/petrel-engine.service")?;
    c.sh("getent passwd petrel >/dev/null")?;
    let (code, _) = c.sh_status("systemctl is-active --quiet petrel-engine.service")?;
    if code == 0 {
        return Err("petrel-engine still active after purge".into());
    }
    Ok(())
}
