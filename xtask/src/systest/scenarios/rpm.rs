//! The .rpm packages: their metadata, file lists and scriptlets read on the host, then installed
//! with rpm in a fresh container and removed again.

use super::checks::{expect_contains, expect_eq};
use super::fixture::write_users;
use super::query::show;
use crate::systest::container::Container;
use crate::systest::Packages;
use crate::util::{output, Result};

fn rpm_query(args: &[&str]) -> Result<String> {
    let out = output("rpm", args)?;
    if !out.status.success() {
        return Err(format!("rpm {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn rpm_metadata(p: &Packages) -> Result {
    for (rpm, name, files, config, script) in [
        (
            &p.engine_rpm,
            "petrel-engine",
            &[
                "/usr/bin/petrel-engine",
                "/usr/lib/systemd/system/petrel-engine.service",
                "/usr/lib/sysusers.d/petrel-engine.conf",
                "/usr/lib/tmpfiles.d/petrel-engine.conf",
                "/usr/share/man/man1/petrel-engine.1.gz",
            ][..],
            "/etc/petrel/engine.toml",
            "systemd-sysusers petrel-engine.conf",
        ),
        (
            &p.tuner_rpm,
            "petrel-tuner",
            &[
                "/usr/bin/petrel-tuner",
                "/usr/lib/systemd/system/petrel-tuner.service",
                "/usr/lib/systemd/system/petrel-tuner-verify.timer",
                "/usr/share/man/man1/petrel-tuner.1.gz",
            ][..],
            "/etc/petrel/tuner.toml",
            "systemctl enable petrel-tuner.service petrel-tuner-verify.timer",
        ),
    ] {
        let path = rpm.to_str().ok_or("rpm path is not UTF-8")?;
        let info = rpm_query(&["-qip", path])?;
        for field in [
            format!("Name        : {name}"),
            format!("Version     : {}", env!("CARGO_PKG_VERSION")),
            "License     : Apache-2.0".into(),
        ] {
            expect_contains(&format!("rpm -qip {name}"), &info, &field)?;
        }
        let list = rpm_query(&["-qlp", path])?;
        for file in files {
            if !list.lines().any(|l| l == *file) {
                return Err(format!("rpm -qlp {name}: {file} missing from:\n{list}"));
            }
        }
        // %config(noreplace): an upgrade writes .rpmnew instead of replacing an edited file.
        let flags = rpm_query(&["-qp", "--qf", "[%{FILENAMES} %{FILEFLAGS:fflags}\n]", path])?;
        let line = flags.lines().find(|l| l.starts_with(&format!("{config} "))).unwrap_or_default();
        if !line.ends_with(" cn") {
            return Err(format!("{name}: {config} is not %config(noreplace): {line:?}"));
        }
        let scripts = rpm_query(&["-qp", "--scripts", path])?;
        expect_contains(&format!("{name} scriptlets"), &scripts, "postinstall scriptlet")?;
        expect_contains(&format!("{name} scriptlets"), &scripts, "preuninstall scriptlet")?;
        expect_contains(&format!("{name} scriptlets"), &scripts, script)?;
        let requires = rpm_query(&["-qp", "--requires", path])?;
        expect_contains(&format!("{name} requires"), &requires, "systemd")?;
    }
    Ok(())
}

pub fn rpm_install(c: &Container, p: &Packages) -> Result {
    let engine = c.copy_in(&p.engine_rpm)?;
    let tuner = c.copy_in(&p.tuner_rpm)?;
    c.sh("! getent passwd petrel")?;
    // --nodeps: this Debian container's rpm database knows nothing of the dpkg-installed systemd
    // and /bin/sh the packages require; the scriptlets run against them all the same.
    let log = c.sh(&format!("rpm -i --nodeps {engine} {tuner}"))?;
    c.sh("getent passwd petrel | grep -q ':/var/lib/petrel:'")?;
    c.sh("test \"$(stat -c '%U:%G %a' /var/lib/petrel/journal)\" = 'petrel:petrel 750'")?;
    expect_eq("engine enabled", &show(c, "petrel-engine.service", "UnitFileState")?, "enabled")?;
    expect_eq("tuner enabled", &show(c, "petrel-tuner.service", "UnitFileState")?, "enabled")?;
    expect_eq("verify timer started", &show(c, "petrel-tuner-verify.timer", "ActiveState")?, "active")?;
    // The shipped profile's vm.* and cpu knobs are read-only in a container: net only here.
    c.sh("echo 'PETREL_TUNER_ARGS=\"--only net\"' > /etc/default/petrel-tuner && systemctl start petrel-tuner.service")?;
    expect_eq("tuner unit started", &show(c, "petrel-tuner.service", "ActiveState")?, "active")?;
    expect_contains("rpm %post", &log, "users.toml does not exist yet")?;
    write_users(c)?;
    c.sh("systemctl start petrel-engine.service")?;
    expect_eq("engine started", &show(c, "petrel-engine.service", "SubState")?, "running")?;
    let log = c.sh("rpm -e petrel-engine petrel-tuner")?;
    expect_contains("rpm -e says where the journal stays", &log, "/var/lib/petrel (journal, snapshots)")?;
    c.sh("test -d /var/lib/petrel/journal && getent passwd petrel >/dev/null").map(|_| ())
}
