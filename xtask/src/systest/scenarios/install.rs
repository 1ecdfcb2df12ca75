//! petrel-engine from its .deb, as an operator installs it: the user, directories, conffile and
//! enabled unit the package creates, then the users file written and the engine started.

use super::checks::{expect_contains, expect_eq};
use super::fixture::write_users;
use super::query::show;
use crate::systest::container::Container;
use crate::systest::Packages;
use crate::util::Result;

pub(super) fn apt_install(c: &Container, debs: &[String]) -> Result<String> {
    // confold: an edited conffile is kept without a question (the operator's edit wins).
    c.sh(&format!(
        "apt-get install -y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold {}",
        debs.join(" ")
    ))
}

pub fn engine_deb_install(c: &Container, p: &Packages) -> Result {
    let deb = c.copy_in(&p.engine_deb)?;
    let log = apt_install(c, &[deb])?;
    expect_contains(
        "postinst names the missing users file",
        &log,
        "/etc/petrel/users.toml does not exist yet",
    )?;
    c.sh("getent passwd petrel | grep -q ':/var/lib/petrel:/usr/sbin/nologin$'")?;
    let owners =
        c.sh("stat -c '%U:%G %a %n' /var/lib/petrel /var/lib/petrel/journal /var/lib/petrel/snapshots")?;
    for line in owners.lines() {
        if !line.starts_with("petrel:petrel 750 ") {
            return Err(format!("state directory ownership/mode: {line}"));
        }
    }
    let conffiles = c.sh("dpkg-query -W -f='${Conffiles}' petrel-engine")?;
    expect_contains("conffiles", &conffiles, "/etc/petrel/engine.toml")?;
    expect_eq("engine enabled", &show(c, "petrel-engine.service", "UnitFileState")?, "enabled")?;
    // The unit's ExecStartPre, as the unit's user: the shipped configuration is valid.
    c.sh("runuser -u petrel -- petrel-engine check-config --config /etc/petrel/engine.toml")?;
    c.sh("test -e /usr/share/man/man1/petrel-engine.1.gz && test -e /usr/share/man/man1/petrel-engine-check-config.1.gz")?;
    c.sh("test -e /usr/share/doc/petrel-engine/examples/production.toml")?;
    write_users(c)?;
    c.sh("systemctl start petrel-engine.service").map(|_| ())
}
