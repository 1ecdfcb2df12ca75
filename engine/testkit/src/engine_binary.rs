//! The daemon binary for a package other than the engine.
//!
//! The daemon is another package's binary, which Cargo does not build for that package's tests
//! (`CARGO_BIN_EXE_*` covers only the package's own binaries). So such tests build it
//! themselves, once per test binary, with the Cargo that built them, into the same target
//! directory and profile as the test binary (found from the test executable's path:
//! target/<profile>/deps/<test>). Under `cargo test --profile ci` that is target/ci/petrel-engine;
//! when the workspace's tests have built it already, this is a no-op check.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::REPO;

/// Path of the petrel-engine binary built for the running test's profile.
pub fn engine_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        let profile_dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps/<test>");
        let target_dir = profile_dir.parent().expect("target/<profile>");
        let profile =
            match profile_dir.file_name().and_then(|n| n.to_str()).expect("a profile directory name") {
                "debug" => "dev".to_string(),
                other => other.to_string(),
            };
        let status = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "petrel-engine",
                "--bin",
                "petrel-engine",
                "--profile",
                &profile,
            ])
            .arg("--target-dir")
            .arg(target_dir)
            .current_dir(REPO)
            .status()
            .expect("run cargo build for petrel-engine");
        assert!(status.success(), "cargo build -p petrel-engine --profile {profile} failed");
        let binary = profile_dir.join("petrel-engine");
        assert!(binary.exists(), "{} was not built", binary.display());
        binary
    })
}
