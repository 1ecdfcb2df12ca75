//! `petrel-tuner completions SHELL` prints a completion script that knows the subcommands.

#[test]
fn completion_scripts_name_the_subcommands() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_petrel-tuner"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}: {}", String::from_utf8_lossy(&out.stderr));
        let script = String::from_utf8(out.stdout).unwrap();
        for word in ["facts", "plan", "apply", "verify", "rollback"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
}
