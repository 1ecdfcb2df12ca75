//! `petrel-engine completions SHELL` prints a completion script that knows the subcommands;
//! the packages install its output for bash, zsh and fish.

#[test]
fn completion_scripts_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_petrel-engine"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["check-config", "journal", "hash-password", "run"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_petrel-engine"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "an unknown shell is a usage error");
}
