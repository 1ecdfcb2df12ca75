//! Results as people and tools read them: the percentile table, HdrHistogram's percentile
//! distribution text (the format `HistogramLogProcessor` and the online HdrHistogram plotter
//! read), and an SVG percentile plot.

use super::client::FeedLatency;
use super::LoadError;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The quantiles of the printed table.
pub const TABLE_QUANTILES: [(&str, f64); 5] =
    [("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999), ("p99.99", 0.9999)];

/// Latency at each of [`TABLE_QUANTILES`] and the maximum, ns.
pub fn summary_ns(h: &Histogram<u64>) -> [u64; 6] {
    let mut out = [0; 6];
    for (i, (_, q)) in TABLE_QUANTILES.iter().enumerate() {
        out[i] = h.value_at_quantile(*q);
    }
    out[5] = h.max();
    out
}

/// A duration in ns as a short human figure: "850 ns", "42.1 µs", "3.20 ms".
pub fn human_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 100_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000 {
        format!("{:.0} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

/// Width of the table's first column: the longest row name ("durable write", "engine/echo").
const NAME_WIDTH: usize = 14;

/// The percentile table: one row per named histogram, and, when `ratio` names two rows
/// `(a, b)`, a row of row a's figures divided by row b's.
pub fn table(rows: &[(&str, &Histogram<u64>)], ratio: Option<(usize, usize)>) -> String {
    table_with_signed(rows, &[], ratio)
}

/// [`table`] with, after the histograms' rows, one row per signed distribution (the feed's
/// lag behind the OUCH acknowledgement: negative where the feed came first), each figure
/// with its sign.
pub fn table_with_signed(
    rows: &[(&str, &Histogram<u64>)],
    signed: &[(&str, &FeedLatency)],
    ratio: Option<(usize, usize)>,
) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<NAME_WIDTH$}", "");
    for (name, _) in TABLE_QUANTILES {
        let _ = write!(out, "{name:>11}");
    }
    let _ = writeln!(out, "{:>11}{:>11}", "max", "count");
    for (name, h) in rows {
        let _ = write!(out, "{name:<NAME_WIDTH$}");
        for v in summary_ns(h) {
            let _ = write!(out, "{:>11}", human_ns(v));
        }
        let _ = writeln!(out, "{:>11}", h.len());
    }
    for (name, feed) in signed {
        let _ = write!(out, "{name:<NAME_WIDTH$}");
        let quantiles = TABLE_QUANTILES.iter().map(|(_, q)| *q).chain(std::iter::once(1.0));
        for q in quantiles {
            let _ = write!(out, "{:>11}", human_signed_ns(feed.feed_minus_ack_ns_at(q)));
        }
        let _ = writeln!(out, "{:>11}", feed.before_ack_ns.len() + feed.after_ack_ns.len());
    }
    if let Some((a, b)) = ratio {
        let _ = write!(out, "{:<NAME_WIDTH$}", format!("{}/{}", rows[a].0, rows[b].0));
        for (v, base) in summary_ns(rows[a].1).iter().zip(summary_ns(rows[b].1)) {
            let _ = write!(out, "{:>11}", format!("{:.2}x", *v as f64 / base.max(1) as f64));
        }
        let _ = writeln!(out);
    }
    out
}

/// A signed duration in ns as [`human_ns`] writes it, with its sign: "+3.2 µs", "-850 ns".
pub fn human_signed_ns(ns: i64) -> String {
    let sign = if ns < 0 { '-' } else { '+' };
    format!("{sign}{}", human_ns(ns.unsigned_abs()))
}

/// `path` with `-RATE` before its extension (`engine.hgrm` -> `engine-20000.hgrm`): one file
/// per rate when `bench` measures several.
pub fn per_rate_path(path: &Path, rate_per_s: u64) -> PathBuf {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{rate_per_s}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{rate_per_s}"),
    };
    path.with_file_name(name)
}

/// HdrHistogram's percentile distribution, values in µs (as `outputPercentileDistribution`
/// with an output value unit scaling ratio of 1000 writes it for ns recordings), with 5
/// reporting steps per half distance.
pub fn percentile_distribution(h: &Histogram<u64>) -> String {
    const SCALE: f64 = 1_000.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let value = v.value_iterated_to() as f64 / SCALE;
        if q < 1.0 {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10} {:14.2}", 1.0 / (1.0 - q));
        } else {
            let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
        }
    }
    let _ =
        writeln!(out, "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]", h.mean() / SCALE, h.stdev() / SCALE);
    let _ = writeln!(out, "#[Max     = {:12.3}, Total count    = {:12}]", h.max() as f64 / SCALE, h.len());
    let _ = writeln!(out, "#[Buckets = {:12}, SubBuckets     = {:12}]", h.buckets(), sub_bucket_count(h));
    out
}

/// As HdrHistogram defines it: the power of two that resolves 2 x 10^sigfig single units.
fn sub_bucket_count(h: &Histogram<u64>) -> u64 {
    (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two()
}

/// One row of a percentile distribution: value (µs), quantile, cumulative count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DistributionRow {
    pub value_us: f64,
    pub quantile: f64,
    pub total_count: u64,
}

/// Reads a percentile distribution written by [`percentile_distribution`] (or by
/// HdrHistogram's Java or C implementations). Errors name the line.
pub fn parse_percentile_distribution(text: &str, path: &Path) -> Result<Vec<DistributionRow>, LoadError> {
    let bad = |line: usize, message: String| LoadError::BadFile {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with("Value") {
            continue;
        }
        let fields: Vec<&str> = trimmed.split_whitespace().collect();
        if !(3..=4).contains(&fields.len()) {
            return Err(bad(line_no, format!("expected 3 or 4 columns, found {}", fields.len())));
        }
        let value_us = fields[0].parse().map_err(|e| bad(line_no, format!("value {:?}: {e}", fields[0])))?;
        let quantile: f64 =
            fields[1].parse().map_err(|e| bad(line_no, format!("percentile {:?}: {e}", fields[1])))?;
        let total_count =
            fields[2].parse().map_err(|e| bad(line_no, format!("total count {:?}: {e}", fields[2])))?;
        if !(0.0..=1.0).contains(&quantile) {
            return Err(bad(line_no, format!("percentile {quantile} is outside 0..1")));
        }
        if let Some(prev) = rows.last().copied() {
            let prev: DistributionRow = prev;
            if quantile < prev.quantile || total_count < prev.total_count {
                return Err(bad(line_no, "percentiles and counts must not decrease".into()));
            }
        }
        rows.push(DistributionRow { value_us, quantile, total_count });
    }
    if rows.is_empty() {
        return Err(LoadError::BadFile { path: path.to_path_buf(), message: "no percentile rows".into() });
    }
    Ok(rows)
}

/// A log-log percentile plot (latency against 1/(1-percentile), HdrHistogram's usual view)
/// of several histograms, as a self-contained SVG document.
pub fn svg_plot(title: &str, series: &[(&str, &Histogram<u64>)]) -> String {
    const W: f64 = 800.0;
    const H: f64 = 480.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 20.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 60.0;
    const COLORS: [&str; 4] = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd"];
    // x: log10(1/(1-q)) from 0 (p0) to 6 (p99.9999); y: log10(µs) over whole decades.
    let x_max = 6.0;
    let points: Vec<Vec<(f64, f64)>> = series
        .iter()
        .map(|(_, h)| {
            h.iter_quantiles(5)
                .filter(|v| v.quantile_iterated_to() < 1.0)
                .map(|v| {
                    let q = v.quantile_iterated_to();
                    (
                        (1.0 / (1.0 - q)).log10().min(x_max),
                        (v.value_iterated_to().max(1) as f64 / 1e3).max(0.001),
                    )
                })
                .collect()
        })
        .collect();
    let all_y = points.iter().flatten().map(|p| p.1);
    let y_lo = all_y.clone().fold(f64::INFINITY, f64::min).min(1.0).log10().floor();
    let y_hi = all_y.fold(1.0f64, f64::max).log10().ceil().max(y_lo + 1.0);
    let px = |x: f64| LEFT + x / x_max * (W - LEFT - RIGHT);
    let py = |y_us: f64| TOP + (y_hi - y_us.log10()) / (y_hi - y_lo) * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15">{}</text>"#,
        W / 2.0,
        xml_escape(title)
    );
    for d in 0..=6 {
        let x = px(d as f64);
        let label = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"][d];
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/>"##,
            H - BOTTOM
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"#,
            H - BOTTOM + 18.0
        );
    }
    let mut d = y_lo as i32;
    while d as f64 <= y_hi {
        let v = 10f64.powi(d);
        let y = py(v);
        let label = if v >= 1000.0 { format!("{} ms", v / 1000.0) } else { format!("{v} µs") };
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
            W - RIGHT
        );
        let _ =
            writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{label}</text>"#, LEFT - 6.0, y + 4.0);
        d += 1;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 16.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">round trip (log scale)</text>"#,
        (TOP + H - BOTTOM) / 2.0,
        (TOP + H - BOTTOM) / 2.0
    );
    for (i, ((name, h), pts)) in series.iter().zip(&points).enumerate() {
        let color = COLORS[i % COLORS.len()];
        let path: Vec<String> = pts.iter().map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y))).collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
            path.join(" ")
        );
        let ly = TOP + 16.0 + 18.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{ly:.1}" fill="{color}">{} (p99 {}, max {})</text>"#,
            LEFT + 12.0,
            xml_escape(name),
            human_ns(h.value_at_quantile(0.99)),
            human_ns(h.max())
        );
    }
    let _ = writeln!(s, "</svg>");
    s
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Writes `text` to `path`, naming the file on failure.
pub fn write_file(path: &Path, text: &str) -> Result<(), LoadError> {
    std::fs::write(path, text).map_err(|source| LoadError::Write { path: PathBuf::from(path), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_divides_exactly_the_named_pair_of_rows() {
        let mut engine = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let (mut echo, mut durable) = (engine.clone(), engine.clone());
        engine.record_n(400_000, 10).unwrap();
        echo.record_n(100_000, 10).unwrap();
        durable.record_n(250_000, 3).unwrap();
        let text = table(&[("engine", &engine), ("echo", &echo), ("durable write", &durable)], Some((0, 1)));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "a header, three rows, one ratio row: {text}");
        assert!(lines[3].starts_with("durable write ") && lines[3].ends_with(" 3"), "{text}");
        assert!(lines[4].starts_with("engine/echo") && lines[4].contains("4.00x"), "{text}");
    }

    #[test]
    fn signed_rows_follow_the_histograms_with_their_sign_and_count() {
        let new = || Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut engine = new();
        engine.record_n(400_000, 10).unwrap();
        // Three Add Orders 2 µs ahead of their Accepted, one 5 µs behind.
        let mut feed = FeedLatency { add_ns: new(), after_ack_ns: new(), before_ack_ns: new() };
        feed.before_ack_ns.record_n(2_000, 3).unwrap();
        feed.after_ack_ns.record(5_000).unwrap();
        let text = table_with_signed(&[("engine", &engine)], &[("feed - ack", &feed)], None);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        let cells: Vec<&str> = lines[2].split("  ").map(str::trim).filter(|c| !c.is_empty()).collect();
        assert_eq!(cells.first(), Some(&"feed - ack"), "{text}");
        assert_eq!(cells.get(1), Some(&"-2.0 µs"), "p50: {text}");
        assert_eq!(cells.get(6), Some(&"+5.0 µs"), "max: {text}");
        assert_eq!(cells.last(), Some(&"4"), "count: {text}");
    }

    #[test]
    fn per_rate_files_keep_their_folder_and_extension() {
        assert_eq!(per_rate_path(Path::new("engine.hgrm"), 20_000), PathBuf::from("engine-20000.hgrm"));
        assert_eq!(per_rate_path(Path::new("/tmp/out/wire.svg"), 5), PathBuf::from("/tmp/out/wire-5.svg"));
        assert_eq!(per_rate_path(Path::new("plain"), 7), PathBuf::from("plain-7"));
    }
}
