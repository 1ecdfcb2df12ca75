//! The latency goal's decomposition: the engine's round trip set against the echo's (what the
//! host's loopback TCP and wake-ups cost) and against the engine's own durable write (one
//! journal group commit) over the same orders, and the goal's two checks evaluated.
//!
//! The goal (docs/PERFORMANCE.md), by the journal's durability:
//! - fsync: engine p50 - echo p50 <= 1.5 x durable-write p50, and
//!   engine p99 <= echo p99 + 2 x durable-write p99;
//! - none: engine p50 <= echo p50 + 10 µs, and engine p99 <= echo p99 + 50 µs.

use super::report::human_ns;
use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// How the engine's journal makes a commit durable (its `[journal] durability`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// Each group commit is a write and an fdatasync.
    Fsync,
    /// Each group commit is a write only.
    None,
}

impl Durability {
    /// As the engine's `/status` says it.
    pub fn parse(text: &str) -> Option<Durability> {
        match text {
            "fsync" => Some(Durability::Fsync),
            "none" => Some(Durability::None),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Fsync => "fsync",
            Durability::None => "none",
        }
    }
}

/// With fsync, the engine's p50 beyond the echo's may be at most this many durable-write p50s,
/// given as a fraction (3/2 = 1.5) so that the check is exact in integers.
pub const FSYNC_P50_DURABLE_RATIO_MAX: (u64, u64) = (3, 2);
/// With fsync, the engine's p99 may exceed the echo's by at most this many durable-write p99s.
pub const FSYNC_P99_DURABLE_MULTIPLE: u64 = 2;
/// With durability none, the engine's p50 may exceed the echo's by at most this much.
pub const NONE_P50_SLACK_NS: u64 = 10_000;
/// With durability none, the engine's p99 may exceed the echo's by at most this much.
pub const NONE_P99_SLACK_NS: u64 = 50_000;

/// The p50 and p99 of one series, ns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tail {
    pub p50_ns: u64,
    pub p99_ns: u64,
}

impl Tail {
    pub fn of(h: &Histogram<u64>) -> Tail {
        Tail { p50_ns: h.value_at_quantile(0.5), p99_ns: h.value_at_quantile(0.99) }
    }
}

/// One goal check: the line that shows its arithmetic, and whether it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoalCheck {
    pub line: String,
    pub met: bool,
}

/// The goal's two checks for `durability`, from the echo's, the engine's and the durable
/// write's tails over the same interval.
pub fn goal_checks(durability: Durability, echo: Tail, engine: Tail, durable: Tail) -> [GoalCheck; 2] {
    match durability {
        Durability::Fsync => [fsync_p50(echo, engine, durable), fsync_p99(echo, engine, durable)],
        Durability::None => [
            within("p50", engine.p50_ns, echo.p50_ns, NONE_P50_SLACK_NS, &human_ns(NONE_P50_SLACK_NS)),
            within("p99", engine.p99_ns, echo.p99_ns, NONE_P99_SLACK_NS, &human_ns(NONE_P99_SLACK_NS)),
        ],
    }
}

fn fsync_p50(echo: Tail, engine: Tail, durable: Tail) -> GoalCheck {
    let (num, den) = FSYNC_P50_DURABLE_RATIO_MAX;
    let excess_ns = i128::from(engine.p50_ns) - i128::from(echo.p50_ns);
    let met = excess_ns * i128::from(den) <= i128::from(durable.p50_ns) * i128::from(num);
    let ratio = if durable.p50_ns == 0 {
        "an unbounded multiple of the durable-write p50 (0)".to_owned()
    } else {
        format!("{:.2} x durable-write p50", excess_ns as f64 / durable.p50_ns as f64)
    };
    GoalCheck {
        line: format!(
            "engine p50 - echo p50 = {} = {ratio} (goal <= {}): {}",
            signed_human_ns(excess_ns),
            num as f64 / den as f64,
            verdict(met)
        ),
        met,
    }
}

fn fsync_p99(echo: Tail, engine: Tail, durable: Tail) -> GoalCheck {
    let bound_ns = echo.p99_ns.saturating_add(durable.p99_ns.saturating_mul(FSYNC_P99_DURABLE_MULTIPLE));
    let met = engine.p99_ns <= bound_ns;
    GoalCheck {
        line: format!(
            "engine p99 = {} {} echo p99 + {FSYNC_P99_DURABLE_MULTIPLE} x durable-write p99 = {}: {}",
            human_ns(engine.p99_ns),
            if met { "<=" } else { ">" },
            human_ns(bound_ns),
            verdict(met)
        ),
        met,
    }
}

/// `engine <= echo + slack`, for the goal without fsync.
fn within(quantile: &str, engine_ns: u64, echo_ns: u64, slack_ns: u64, slack: &str) -> GoalCheck {
    let bound_ns = echo_ns.saturating_add(slack_ns);
    let met = engine_ns <= bound_ns;
    GoalCheck {
        line: format!(
            "engine {quantile} = {} {} echo {quantile} + {slack} = {}: {}",
            human_ns(engine_ns),
            if met { "<=" } else { ">" },
            human_ns(bound_ns),
            verdict(met)
        ),
        met,
    }
}

fn verdict(met: bool) -> &'static str {
    if met {
        "met"
    } else {
        "not met"
    }
}

/// [`human_ns`] of a difference that may be negative (the engine faster than the echo).
pub fn signed_human_ns(ns: i128) -> String {
    let magnitude = human_ns(u64::try_from(ns.unsigned_abs()).unwrap_or(u64::MAX));
    if ns < 0 {
        format!("-{magnitude}")
    } else {
        magnitude
    }
}

/// What the engine measured itself over the engine run's recorded orders: its durable writes
/// (journal group commits), its wire-to-wire time, and the commands it sequenced meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct Inside<'a> {
    pub durable_write_ns: &'a Histogram<u64>,
    pub wire_to_wire_ns: &'a Histogram<u64>,
    pub commands: u64,
}

/// The decomposition as printed after the table: the engine's own figures, then the goal's
/// checks for the engine's durability (both sets, labelled, when it is not known).
pub fn render(durability: Option<Durability>, echo: Tail, engine: Tail, inside: Inside<'_>) -> String {
    let mut out = String::new();
    let durable = Tail::of(inside.durable_write_ns);
    let commits = inside.durable_write_ns.len();
    let wire = Tail::of(inside.wire_to_wire_ns);
    let _ = writeln!(
        out,
        "durable write (journal group commit, in the engine): p50 {}, p99 {} over {commits} commits ({:.1} commands per commit)",
        human_ns(durable.p50_ns),
        human_ns(durable.p99_ns),
        inside.commands as f64 / commits.max(1) as f64
    );
    let _ = writeln!(
        out,
        "in engine (wire to wire, socket to socket): p50 {}, p99 {}; engine p50 - in-engine p50 = {} (loopback and client; the echo's p50 is {})",
        human_ns(wire.p50_ns),
        human_ns(wire.p99_ns),
        signed_human_ns(i128::from(engine.p50_ns) - i128::from(wire.p50_ns)),
        human_ns(echo.p50_ns)
    );
    let sets: &[(Durability, &str)] = match durability {
        Some(Durability::Fsync) => &[(Durability::Fsync, "fsync")],
        Some(Durability::None) => &[(Durability::None, "none")],
        None => &[
            (Durability::Fsync, "fsync (if the journal fsyncs: the engine did not say)"),
            (Durability::None, "none (if it does not)"),
        ],
    };
    for (set, label) in sets {
        let _ = writeln!(out, "goal, durability {label}:");
        for check in goal_checks(*set, echo, engine, durable) {
            let _ = writeln!(out, "  {}", check.line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const fn tail(p50_us: u64, p99_us: u64) -> Tail {
        Tail { p50_ns: p50_us * 1_000, p99_ns: p99_us * 1_000 }
    }

    #[test]
    fn fsync_goal_weighs_the_engine_against_echo_plus_the_durable_write() {
        // 180 µs over the echo at p50 against a 127 µs durable write: 1.42x, within 1.5x.
        let [p50, p99] = goal_checks(Durability::Fsync, tail(100, 400), tail(280, 1_200), tail(127, 500));
        assert!(p50.met && p99.met, "{p50:?} {p99:?}");
        assert_eq!(p50.line, "engine p50 - echo p50 = 180 µs = 1.42 x durable-write p50 (goal <= 1.5): met");
        assert_eq!(p99.line, "engine p99 = 1.20 ms <= echo p99 + 2 x durable-write p99 = 1.40 ms: met");

        // Exactly 1.5x and exactly the bound still meet the goal; one ns more does not.
        let [p50, p99] = goal_checks(Durability::Fsync, tail(100, 400), tail(250, 1_400), tail(100, 500));
        assert!(p50.met && p99.met);
        let over = Tail { p50_ns: 250_001, p99_ns: 1_400_001 };
        let [p50, p99] = goal_checks(Durability::Fsync, tail(100, 400), over, tail(100, 500));
        assert!(!p50.met && !p99.met);
        assert!(p50.line.ends_with("(goal <= 1.5): not met"), "{}", p50.line);
        assert!(p99.line.contains("1.40 ms > echo p99") && p99.line.ends_with("not met"), "{}", p99.line);
    }

    #[test]
    fn fsync_goal_handles_an_engine_faster_than_the_echo_and_an_empty_durable_write() {
        let [p50, _] = goal_checks(Durability::Fsync, tail(100, 400), tail(90, 400), tail(0, 0));
        assert!(p50.met, "{p50:?}");
        assert!(p50.line.starts_with("engine p50 - echo p50 = -10.0 µs = an unbounded"), "{}", p50.line);
        let [p50, p99] = goal_checks(Durability::Fsync, tail(100, 400), tail(101, 401), tail(0, 0));
        assert!(!p50.met && !p99.met);
    }

    #[test]
    fn the_goal_without_fsync_allows_fixed_slack_over_the_echo() {
        let [p50, p99] = goal_checks(Durability::None, tail(100, 400), tail(110, 450), tail(3, 9));
        assert!(p50.met && p99.met, "{p50:?} {p99:?}");
        assert_eq!(p50.line, "engine p50 = 110 µs <= echo p50 + 10.0 µs = 110 µs: met");
        assert_eq!(p99.line, "engine p99 = 450 µs <= echo p99 + 50.0 µs = 450 µs: met");
        let [p50, p99] = goal_checks(Durability::None, tail(100, 400), tail(111, 451), tail(3, 9));
        assert!(!p50.met && !p99.met);
        assert!(p50.line.contains(" > echo p50 + 10.0 µs"), "{}", p50.line);
    }

    #[test]
    fn render_labels_the_goal_set_and_shows_both_when_durability_is_unknown() {
        let mut durable = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut wire = durable.clone();
        durable.record_n(250_000, 10).unwrap();
        wire.record_n(700_000, 40).unwrap();
        let inside = Inside { durable_write_ns: &durable, wire_to_wire_ns: &wire, commands: 80 };
        let text = render(Some(Durability::Fsync), tail(100, 400), tail(900, 3_000), inside);
        assert!(text.contains("over 10 commits (8.0 commands per commit)"), "{text}");
        assert!(text.contains("goal, durability fsync:\n  engine p50 - echo p50 = 800 µs"), "{text}");
        assert!(!text.contains("durability none"), "{text}");
        let text = render(None, tail(100, 400), tail(900, 3_000), inside);
        assert!(text.contains("the engine did not say") && text.contains("durability none"), "{text}");
        assert_eq!(text.matches("met").count(), 4, "{text}");
    }

    #[test]
    fn durability_reads_as_the_engine_writes_it() {
        for d in [Durability::Fsync, Durability::None] {
            assert_eq!(Durability::parse(d.as_str()), Some(d));
        }
        assert_eq!(Durability::parse("sometimes"), None);
    }
}
