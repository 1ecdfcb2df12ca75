//! Upgrade to a newer build of the .deb: edited conffiles and the journal kept, and the running
//! engine left running, with a restart left to the operator.

use super::checks::{expect_contains, expect_eq};
use super::install::apt_install;
use super::query::main_pid;
use crate::systest::container::Container;
use crate::systest::Packages;
use crate::util::Result;

pub fn engine_upgrade(c: &Container, p: &Packages) -> Result {
    c.sh("sed -i 's/^keep = 5$/keep = 7/' /etc/petrel/engine.toml && grep -q '^keep = 7$' /etc/petrel/engine.toml")?;
    c.sh("printf 'audit' > /var/lib/petrel/journal/systest-marker && chown petrel:petrel /var/lib/petrel/journal/systest-marker")?;
    let pid = main_pid(c)?;
    let deb = c.copy_in(&p.engine_deb_upgrade)?;
    let log = apt_install(c, &[deb])?;
    let version = c.sh("dpkg-query -W -f='${Version}' petrel-engine")?;
    if !version.ends_with("-2") {
        return Err(format!("after the upgrade petrel-engine is at {version}, want revision 2"));
    }
    c.sh("grep -q '^keep = 7$' /etc/petrel/engine.toml")
        .map_err(|_| "the upgrade overwrote the edited /etc/petrel/engine.toml".to_string())?;
    c.sh("test \"$(cat /var/lib/petrel/journal/systest-marker)\" = audit")?;
    expect_contains("postinst says a restart is pending", &log, "RESTART PENDING")?;
    expect_eq("engine not restarted by the upgrade", &main_pid(c)?.to_string(), &pid.to_string())
}
