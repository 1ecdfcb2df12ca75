//! `petrel-engine check-config` through the real binary: valid files pass with a summary, and
//! each kind of mistake exits 2 with `file:line:column: key: message`.

mod support;

use std::path::Path;
use std::process::Command;

const DEV: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/dev.toml");
const PRODUCTION: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/production.toml");

fn check(path: &Path) -> (i32, String, String) {
    let out = Command::new(support::BIN).args(["check-config", "--config"]).arg(path).output().unwrap();
    (
        out.status.code().expect("exited, not killed"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// dev.toml with `from` replaced by `to` (which must occur exactly once), checked; returns the
/// one-line error.
fn error_after_edit(from: &str, to: &str) -> String {
    let text = std::fs::read_to_string(DEV).unwrap();
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once in dev.toml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("edited.toml");
    std::fs::write(&path, text.replace(from, to)).unwrap();
    let (code, stdout, stderr) = check(&path);
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    let rest =
        stderr.strip_prefix(path.to_str().unwrap()).unwrap_or_else(|| panic!("names the file: {stderr}"));
    rest.trim_end().to_owned()
}

/// The line and column where `needle` starts in dev.toml after the edit.
fn position(from: &str, to: &str, needle: &str) -> String {
    let text = std::fs::read_to_string(DEV).unwrap().replace(from, to);
    let at = text.find(needle).unwrap();
    let line = text[..at].matches('\n').count() + 1;
    let column = at - text[..at].rfind('\n').map_or(0, |i| i + 1) + 1;
    format!(":{line}:{column}: ")
}

#[test]
fn the_shipped_configurations_pass() {
    for file in [DEV, PRODUCTION] {
        let (code, stdout, stderr) = check(Path::new(file));
        assert_eq!(code, 0, "{file}: {stderr}");
        assert_eq!(stdout.lines().count(), 1, "{stdout}");
        assert!(stdout.contains(": OK: "), "{stdout}");
    }
    let (_, dev, _) = check(Path::new(DEV));
    assert!(dev.contains("2 instruments, 3 accounts in 2 firms"), "{dev}");
    assert!(dev.contains("no core pinning"), "{dev}");
    let (_, production, _) = check(Path::new(PRODUCTION));
    assert!(production.contains("/var/lib/petrel/journal (fsync)"), "{production}");
}

#[test]
fn an_unknown_key_is_reported_at_its_line_and_column() {
    let from = "lot_size = 1                    # quantities";
    let to = "lot_sz = 1                    # quantities";
    let err = error_after_edit(from, to);
    assert!(err.starts_with(&position(from, to, "lot_sz")), "{err}");
    assert!(err.contains("instruments[0]"), "{err}");
    assert!(err.contains("unknown field `lot_sz`, expected one of"), "{err}");
    assert!(err.contains("`lot_size`"), "{err}");
}

#[test]
fn prices_with_more_than_four_decimals_or_as_floats_are_refused() {
    let from = "reference_price = \"585.33\"";
    let err = error_after_edit(from, "reference_price = \"585.33001\"");
    assert!(err.starts_with(&position(from, "reference_price = \"585.33001\"", "\"585.33001\"")), "{err}");
    assert!(err.contains("instruments[0].reference_price"), "{err}");
    assert!(err.contains("has 5 decimals"), "{err}");

    let err = error_after_edit(from, "reference_price = 585.33");
    assert!(err.contains("decimal strings"), "{err}");
}

#[test]
fn a_price_band_off_the_tick_names_the_band_key() {
    let from = "price_band_max = \"1000.00\"";
    let err = error_after_edit(from, "price_band_max = \"1000.005\"");
    assert!(
        err.starts_with(&position(from, "price_band_max = \"1000.005\"", "price_band_max = \"1000.005")),
        "{err}"
    );
    assert!(err.contains("instruments[1].price_band_max"), "{err}");
    assert!(err.contains("multiples of the tick"), "{err}");
}

#[test]
fn overlapping_core_pinning_is_refused() {
    let from = "[runtime.sequencer]\n";
    let to = "[runtime.sequencer]\ncores = [1]\n";
    let text = std::fs::read_to_string(DEV).unwrap();
    let text = text.replace("[runtime.gateway]\n", "[runtime.gateway]\ncores = [0, 1]\n");
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.toml");
    std::fs::write(&base, text.replace(from, to)).unwrap();
    let (code, _, err) = check(&base);
    assert_eq!(code, 2);
    assert!(err.contains("runtime.sequencer.cores: core 1 is also pinned to runtime.gateway"), "{err}");
}

#[test]
fn a_bad_idle_strategy_is_refused() {
    let from = "[runtime.gateway]\nidle = { park = { min_us = 50, max_us = 1_000 } }";
    let err = error_after_edit(from, "[runtime.gateway]\nidle = { nap = { min_us = 50 } }");
    assert!(err.contains("runtime.gateway.idle"), "{err}");
    assert!(
        err.contains("unknown variant `nap`, expected one of `busy-spin`, `spin-yield`, `park`"),
        "{err}"
    );

    let err = error_after_edit(from, "[runtime.gateway]\nidle = { park = { min_us = 500, max_us = 100 } }");
    assert!(err.contains("runtime.gateway.idle: park needs 1 <= min_us <= max_us"), "{err}");

    // Spinning without a core of its own would starve the other threads.
    let err = error_after_edit(from, "[runtime.gateway]\nidle = \"busy-spin\"");
    assert!(err.contains("busy-spin needs a dedicated core"), "{err}");
}

#[test]
fn gateway_limits_and_the_session_name_are_checked() {
    let from = "max_sessions = 64 ";
    let err = error_after_edit(from, "max_sessions = 0 ");
    assert!(err.ends_with("gateway.max_sessions: max_sessions = 0 must be between 1 and 4096"), "{err}");
    let err = error_after_edit(from, "max_sessions = 100000 ");
    assert!(err.contains("gateway.max_sessions: max_sessions = 100000 must be between"), "{err}");

    let from = "session_name = \"PETREL\"";
    let err = error_after_edit(from, "session_name = \"NOT-VALID\"");
    assert!(
        err.contains("gateway.session_name: session_name = \"NOT-VALID\" must be 1 to 10 letters or digits"),
        "{err}"
    );
    let err = error_after_edit(from, "session_name = \"ELEVENCHARS\"");
    assert!(err.contains("gateway.session_name"), "{err}");

    let from = "max_send_backlog_bytes = 8_388_608";
    let err = error_after_edit(from, "max_send_backlog_bytes = 100");
    assert!(
        err.contains("gateway.max_send_backlog_bytes: max_send_backlog_bytes = 100 must be between 4096 and"),
        "{err}"
    );
}

#[test]
fn references_to_undefined_firms_and_profiles_are_refused() {
    let err = error_after_edit("name = \"bob\"\nfirm = \"DEV2\"", "name = \"bob\"\nfirm = \"DEV9\"");
    assert!(err.contains("accounts[1].firm: firm \"DEV9\" is not defined"), "{err}");
    assert!(err.contains("defined: DEV1, DEV2"), "{err}");
    let err = error_after_edit("risk_profile = \"market_maker\"", "risk_profile = \"mm\"");
    assert!(err.contains("accounts[2].risk_profile: risk profile \"mm\" is not defined"), "{err}");
}

#[test]
fn journal_settings_are_checked_by_the_journal_rules() {
    let err = error_after_edit("segment_size_bytes = 67_108_864", "segment_size_bytes = 1000");
    assert!(err.contains("journal.segment_size_bytes"), "{err}");
    assert!(err.contains("multiple of 4096"), "{err}");
    let err = error_after_edit("durability = \"fsync\"", "durability = \"sometimes\"");
    assert!(err.contains("journal.durability: unknown variant `sometimes`"), "{err}");
}

#[test]
fn syntax_errors_and_missing_files_are_reported() {
    let err = error_after_edit("[engine]", "[engine");
    assert!(err.starts_with(":16:"), "{err}");
    let (code, _, stderr) = check(Path::new("/nonexistent/petrel.toml"));
    assert_eq!(code, 2);
    assert!(stderr.contains("/nonexistent/petrel.toml: cannot read the configuration file"), "{stderr}");
}

/// What the configuration preallocates before the first order is in the summary, and an
/// output-journal segment that cannot hold its write buffer is refused at its key.
#[test]
fn the_disk_reserved_at_start_is_summarised_and_output_segments_are_bounded() {
    let (_, dev, _) = check(Path::new(DEV));
    assert!(
        dev.contains(
            "disk reserved at start: 67.0 MiB (input journal segment 64.0 MiB + 3 accounts x output journal segment 1.0 MiB)"
        ),
        "{dev}"
    );
    // With a feed, its journal's first segment too.
    let bench = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/bench.toml");
    let (_, bench, _) = check(Path::new(bench));
    assert!(bench.contains("x output journal segment 1.0 MiB + feed journal segment 16.0 MiB)"), "{bench}");
    let from = "# output_journal_segment_bytes = 1_048_576";
    let to = "output_journal_segment_bytes = 65_536";
    let err = error_after_edit(from, to);
    assert!(err.starts_with(&position(from, to, to)), "{err}");
    assert!(err.contains("gateway.output_journal_segment_bytes"), "{err}");
    assert!(err.contains("must be a multiple of 4096 between 131072 and 1073741824"), "{err}");
}

/// `runtime.mode` picks the data path, the summary says which, and pinning a thread that the
/// chosen path does not run is refused at its key instead of being silently ignored.
#[test]
fn the_data_path_is_one_key_and_a_pinned_thread_it_does_not_run_is_refused() {
    let (_, dev, _) = check(Path::new(DEV));
    assert!(dev.contains("data path run-to-completion"), "{dev}");
    let (_, production, _) = check(Path::new(PRODUCTION));
    assert!(production.contains("data path pipeline"), "{production}");

    let from = "mode = \"run-to-completion\"";
    let text = std::fs::read_to_string(DEV).unwrap();
    let pinned = text.replace("[runtime.journal]\n", "[runtime.journal]\ncores = [1]\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pinned.toml");
    std::fs::write(&path, &pinned).unwrap();
    let (code, _, err) = check(&path);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("runtime.journal.cores: runtime.mode = \"run-to-completion\" runs no journal thread"),
        "{err}"
    );
    std::fs::write(&path, pinned.replace(from, "mode = \"pipeline\"")).unwrap();
    let (code, out, err) = check(&path);
    assert_eq!(code, 0, "the pipeline runs a journal thread: {err}");
    assert!(out.contains("data path pipeline") && out.contains("journal=[1]"), "{out}");

    let err = error_after_edit(from, "mode = \"inline\"");
    assert!(err.contains("runtime.mode"), "{err}");
    assert!(err.contains("unknown variant `inline`, expected `run-to-completion` or `pipeline`"), "{err}");
}
