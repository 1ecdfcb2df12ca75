//! `cargo xtask dist`: release binaries, man pages, shell completions, and the petrel-engine and petrel-tuner
//! packages as .deb (cargo-deb) and .rpm (cargo-generate-rpm) in target/dist/, each checked
//! with lintian or rpmlint (errors fail the build; the accepted warnings are listed with their
//! reasons in packaging/README.md).
//!
//! Man pages come from the built binaries' own `--help` (clap) through help2man, one page per
//! command and subcommand: the binaries' argument definitions live in their `main.rs`, which a
//! separate crate cannot reach, so the help text is the single source.

use crate::ci::ensure_packaging_tools;
use crate::util::{cargo, have_program, output, run, stdout_of, Result};
use std::fs;
use std::path::{Path, PathBuf};

pub const DIST_DIR: &str = "target/dist";
/// Man pages, per package, referenced by the packages' asset lists in Cargo.toml.
const GENERATED_DIR: &str = "target/dist/generated";
/// Stripped copies of the release binaries for cargo-generate-rpm (`--target-dir`), which
/// packs what it is given; cargo-deb strips its own copy.
const RPM_BUILD_DIR: &str = "target/dist/rpm-build";

/// One package: its Cargo package name, its crate directory and its binary.
pub struct Package {
    pub name: &'static str,
    pub dir: &'static str,
}

pub const PACKAGES: &[Package] =
    &[Package { name: "petrel-engine", dir: "engine" }, Package { name: "petrel-tuner", dir: "tuner" }];

/// The built packages.
#[derive(Debug)]
pub struct Artifacts {
    pub debs: Vec<PathBuf>,
    pub rpms: Vec<PathBuf>,
}

pub fn dist() -> Result<Artifacts> {
    check_tools()?;
    ensure_packaging_tools()?;
    cargo("release build", &["build", "--release", "--locked", "-p", "petrel-engine", "-p", "petrel-tuner"])?;
    let out = Path::new(DIST_DIR);
    if out.exists() {
        fs::remove_dir_all(out).map_err(|e| format!("cannot empty {}: {e}", out.display()))?;
    }
    fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    for package in PACKAGES {
        man_pages(package.name)?;
        completions(package.name)?;
    }
    strip_for_rpm()?;
    for package in PACKAGES {
        build_deb(package, None, out)?;
        run(
            &format!("{} .rpm", package.name),
            "cargo",
            &["generate-rpm", "-p", package.dir, "--target-dir", RPM_BUILD_DIR, "-o", DIST_DIR],
            &[],
            None,
        )?;
    }
    let artifacts = list_artifacts(out)?;
    lint(&artifacts)?;
    println!("\nxtask dist: packages in {DIST_DIR}/:");
    for path in artifacts.debs.iter().chain(&artifacts.rpms) {
        println!("  {}", path.display());
    }
    Ok(artifacts)
}

/// Builds the .deb of `package` into `out`; `revision` overrides the Debian revision (the
/// system tests build a newer revision of the same version to test upgrades).
pub fn build_deb(package: &Package, revision: Option<&str>, out: &Path) -> Result {
    let out = out.to_str().ok_or("output directory is not UTF-8")?;
    let mut args = vec!["deb", "-p", package.name, "--no-build", "--strip", "-o", out];
    if let Some(revision) = revision {
        args.extend(["--deb-revision", revision]);
    }
    cargo(&format!("{} .deb", package.name), &args)
}

fn check_tools() -> Result {
    let missing: Vec<&str> =
        ["help2man", "lintian", "rpmlint", "rpm", "strip"].into_iter().filter(|p| !have_program(p)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(format!(
        "`cargo xtask dist` needs {}: run `cargo xtask deps` as root (Debian packages help2man, lintian, rpmlint, rpm, binutils)",
        missing.join(", ")
    ))
}

fn binary_path(name: &str) -> PathBuf {
    Path::new("target/release").join(name)
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// Writes the bash, zsh and fish completion scripts the binary prints for `completions SHELL`
/// into target/dist/generated/NAME/completions/.
fn completions(name: &str) -> Result {
    let binary =
        fs::canonicalize(binary_path(name)).map_err(|e| format!("{name}: no release binary: {e}"))?;
    let dir = Path::new(GENERATED_DIR).join(name).join("completions");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (shell, file) in
        [("bash", format!("{name}.bash")), ("zsh", format!("_{name}")), ("fish", format!("{name}.fish"))]
    {
        let out = std::process::Command::new(&binary)
            .args(["completions", shell])
            .output()
            .map_err(|e| format!("{name} completions {shell}: {e}"))?;
        if !out.status.success() || out.stdout.is_empty() {
            return Err(format!(
                "{name} completions {shell} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        fs::write(dir.join(&file), &out.stdout).map_err(|e| format!("cannot write {file}: {e}"))?;
    }
    Ok(())
}

/// Writes one gzipped man page per command path (`petrel-engine`, `petrel-engine-journal`,
/// `petrel-engine-journal-verify`, ...) into target/dist/generated/NAME/man/.
fn man_pages(name: &str) -> Result {
    let binary =
        fs::canonicalize(binary_path(name)).map_err(|e| format!("{name}: no release binary: {e}"))?;
    let man_dir = Path::new(GENERATED_DIR).join(name).join("man");
    let wrappers = Path::new(GENERATED_DIR).join(name).join("wrappers");
    for dir in [&man_dir, &wrappers] {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut pending: Vec<(Vec<String>, String)> = vec![(Vec::new(), String::new())];
    // Bounded by the command tree: each command is visited once.
    while let Some((path, about)) = pending.pop() {
        let mut help_args: Vec<&str> = path.iter().map(String::as_str).collect();
        help_args.push("--help");
        let help = stdout_of(binary.to_str().ok_or("binary path is not UTF-8")?, &help_args)?;
        for (sub, sub_about) in subcommands(&help) {
            let mut sub_path = path.clone();
            sub_path.push(sub);
            pending.push((sub_path, sub_about));
        }
        let page_name =
            std::iter::once(name.to_string()).chain(path.iter().cloned()).collect::<Vec<_>>().join("-");
        // help2man runs the program it documents: a wrapper per subcommand gives it a program
        // whose --help is that subcommand's help and whose name is the page's name.
        let wrapper = wrappers.join(&page_name);
        let script = format!("#!/bin/sh\nexec '{}' {} \"$@\"\n", binary.display(), path.join(" "));
        fs::write(&wrapper, script).map_err(|e| format!("cannot write {}: {e}", wrapper.display()))?;
        run_quiet("chmod", &["755", path_str(&wrapper)?])?;
        let description = if about.is_empty() { first_line(&help) } else { about };
        let page = man_dir.join(format!("{page_name}.1"));
        let out = output(
            "help2man",
            &[
                "--no-info",
                "--no-discard-stderr",
                &format!("--version-string={}", version()),
                &format!("--name={description}"),
                "--section=1",
                "--source=Petrel",
                "--manual=Petrel manual",
                "--output",
                path_str(&page)?,
                path_str(&wrapper)?,
            ],
        )?;
        if !out.status.success() {
            return Err(format!(
                "help2man {page_name}: {} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        // -n: no timestamp or name in the gzip header, so equal pages give equal packages.
        run_quiet("gzip", &["-9nf", path_str(&page)?])?;
    }
    Ok(())
}

/// The `Commands:` section of clap's help: (name, one-line description), without `help`.
fn subcommands(help: &str) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut in_commands = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            in_commands = true;
            continue;
        }
        if !in_commands {
            continue;
        }
        if !line.starts_with("  ") {
            break;
        }
        let mut parts = line.trim().splitn(2, char::is_whitespace);
        let command = parts.next().unwrap_or_default();
        let about = parts.next().unwrap_or_default().trim();
        if command.is_empty() || command == "help" || command.starts_with('-') {
            continue;
        }
        found.push((command.to_string(), about.trim_end_matches('.').to_string()));
    }
    found
}

fn first_line(help: &str) -> String {
    help.lines().next().unwrap_or_default().trim().trim_end_matches('.').to_string()
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| format!("path is not UTF-8: {}", path.display()))
}

fn run_quiet(program: &str, args: &[&str]) -> Result {
    stdout_of(program, args).map(|_| ())
}

fn strip_for_rpm() -> Result {
    let dir = Path::new(RPM_BUILD_DIR).join("release");
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for package in PACKAGES {
        let copy = dir.join(package.name);
        fs::copy(binary_path(package.name), &copy)
            .map_err(|e| format!("cannot copy {}: {e}", package.name))?;
        run_quiet("strip", &["--strip-unneeded", path_str(&copy)?])?;
    }
    Ok(())
}

fn list_artifacts(out: &Path) -> Result<Artifacts> {
    let mut debs = Vec::new();
    let mut rpms = Vec::new();
    for entry in fs::read_dir(out).map_err(|e| format!("cannot list {}: {e}", out.display()))? {
        let path = entry.map_err(|e| format!("cannot list {}: {e}", out.display()))?.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("deb") => debs.push(path),
            Some("rpm") => rpms.push(path),
            _ => {}
        }
    }
    debs.sort();
    rpms.sort();
    if debs.len() != PACKAGES.len() || rpms.len() != PACKAGES.len() {
        return Err(format!(
            "expected {} .deb and .rpm files in {}, found {debs:?} {rpms:?}",
            PACKAGES.len(),
            out.display()
        ));
    }
    Ok(Artifacts { debs, rpms })
}

/// lintian and rpmlint: errors fail; warnings are printed (the accepted ones are listed with
/// their reasons in packaging/README.md).
fn lint(artifacts: &Artifacts) -> Result {
    let mut args = vec!["--fail-on", "error", "--info"];
    let debs: Vec<&str> = artifacts.debs.iter().map(|p| path_str(p)).collect::<Result<_>>()?;
    args.extend(&debs);
    run("lintian", "lintian", &args, &[], None)?;
    // packaging/rpmlint.toml: RHEL conventions, and the header tags cargo-generate-rpm cannot
    // write (each filter has its reason there).
    let mut args = vec!["--info", "-c", "packaging/rpmlint.toml"];
    let rpms: Vec<&str> = artifacts.rpms.iter().map(|p| path_str(p)).collect::<Result<_>>()?;
    args.extend(&rpms);
    run("rpmlint", "rpmlint", &args, &[], None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcommands_are_read_from_clap_help() {
        let help = "Petrel trading engine\n\nUsage: petrel-engine <COMMAND>\n\nCommands:\n  journal        Inspect, check and replay an input journal (read-only: safe.\n  check-config   Check a configuration file without starting anything.\n  help           Print this message\n\nOptions:\n  -h, --help     Print help\n";
        assert_eq!(
            subcommands(help),
            vec![
                (
                    "journal".to_string(),
                    "Inspect, check and replay an input journal (read-only: safe".to_string()
                ),
                (
                    "check-config".to_string(),
                    "Check a configuration file without starting anything".to_string()
                ),
            ]
        );
        assert!(subcommands("Usage: x\n\nOptions:\n  -h  help\n").is_empty());
    }
}
