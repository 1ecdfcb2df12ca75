//! Running programs: every step is printed with its duration, and every failure names the step.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;

pub type Result<T = ()> = std::result::Result<T, String>;

pub fn run(step: &str, program: &str, args: &[&str], envs: &[(&str, &str)], dir: Option<&Path>) -> Result {
    let started = Instant::now();
    println!("\n==> {step}: {program} {}", args.join(" "));
    let mut command = Command::new(program);
    command.args(args);
    for (k, v) in envs {
        command.env(k, v);
    }
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let status = command.status().map_err(|e| format!("{step}: cannot start {program}: {e}"))?;
    println!("<== {step}: {status} in {:.1}s", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("step '{step}' failed ({status})"))
    }
}

pub fn cargo(step: &str, args: &[&str]) -> Result {
    run(step, "cargo", args, &[], None)
}

/// Runs a program and returns its output whatever its exit status; only a program that cannot
/// be started is an error.
pub fn output(program: &str, args: &[&str]) -> Result<Output> {
    Command::new(program).args(args).output().map_err(|e| format!("cannot start {program}: {e}"))
}

/// Runs a program that must succeed and returns its standard output.
pub fn stdout_of(program: &str, args: &[&str]) -> Result<String> {
    let out = output(program, args)?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

pub fn have_program(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

pub fn debian_package_installed(name: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", name])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}
