//! `sdload compare BASELINE CURRENT`: throughput, latency percentiles per outcome (from the
//! serialized histograms, not the rounded figures) and error and 403 rates, each with a
//! verdict. It must not cry wolf: a percentile that rests on fewer than 100 samples beyond it
//! in either run gets "not enough data"; a latency change under `min_delta` is timer noise; a
//! rate must also differ by a two-proportion z-test (z >= 3), not only by the margin.

use std::collections::BTreeMap;
use std::fmt::Write;

use hdrhistogram::Histogram;

use crate::export::text::thousands;
use crate::outcome::Outcome;
use crate::report::{self, Report};

/// Samples needed beyond a percentile for a verdict on it.
pub const MIN_TAIL_SAMPLES: f64 = 100.0;
/// The percentiles compared.
pub const PERCENTILES: [f64; 3] = [0.50, 0.95, 0.99];
/// A rate's change must be this many standard errors away to count.
pub const RATE_Z: f64 = 3.0;

#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// A share: 0.1 = 10 % worse.
    pub max_regression: f64,
    pub min_delta_ms: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Ok,
    Better,
    Regressed,
    NotEnoughData,
    /// Shown for context, never judged (the overall 403 rate is set by the bad-credential mix).
    Info,
}

impl Verdict {
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Better => "better",
            Verdict::Regressed => "REGRESSED",
            Verdict::NotEnoughData => "not enough data",
            Verdict::Info => "-",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Ms,
    Rps,
    Ratio,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// `throughput_rps`, `token_issued p99`, `error rate`, ...
    pub metric: String,
    pub kind: Kind,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    pub verdict: Verdict,
    /// Why there is no verdict, or what was left out.
    pub note: String,
}

impl Row {
    /// The change, for people: `+12.3%` for latency and throughput, `+0.30 pp` for rates.
    pub fn delta(&self) -> String {
        match (self.baseline, self.current) {
            (Some(b), Some(c)) if self.kind == Kind::Ratio => {
                format!("{:+.2} pp", (c - b) * 100.0)
            }
            (Some(b), Some(c)) if b > 0.0 => format!("{:+.1}%", (c - b) / b * 100.0),
            (Some(b), Some(c)) if b == c => "+0.0%".into(),
            _ => "-".into(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Comparison {
    pub rows: Vec<Row>,
    /// Differences between the runs' setups, outcomes seen in one run only.
    pub notes: Vec<String>,
    pub options: Options,
}

impl Comparison {
    pub fn regressions(&self) -> impl Iterator<Item = &Row> {
        self.rows.iter().filter(|r| r.verdict == Verdict::Regressed)
    }
    pub fn exit_code(&self) -> u8 {
        if self.regressions().next().is_some() {
            crate::exit::THRESHOLD_FAILED
        } else {
            crate::exit::OK
        }
    }
}

fn decode_all(r: &Report) -> Result<BTreeMap<String, Histogram<u64>>, String> {
    r.histograms
        .iter()
        .map(|(k, v)| {
            report::decode_histogram(v)
                .map(|h| (k.clone(), h))
                .ok_or_else(|| format!("histograms.{k} is not an HdrHistogram (V2, base64)"))
        })
        .collect()
}

/// The histogram keys to compare, in the report's order: `all`, the outcomes, then the rest
/// (open-model service time), leaving out the tool's own schedule lag.
fn ordered_keys<'a>(
    base: &'a BTreeMap<String, Histogram<u64>>,
    cur: &'a BTreeMap<String, Histogram<u64>>,
) -> Vec<&'a str> {
    let mut keys: Vec<&str> = std::iter::once("all")
        .chain(Outcome::ALL.iter().map(|o| o.name()))
        .filter(|k| base.contains_key(*k) && cur.contains_key(*k))
        .collect();
    for k in base.keys() {
        if !keys.contains(&k.as_str()) && cur.contains_key(k) && !k.starts_with("schedule_lag") {
            keys.push(k);
        }
    }
    keys
}

/// Relative change in the bad direction: `worse` is (current − baseline) when higher is worse.
fn judge(worse: f64, base: f64, margin: f64) -> (bool, bool) {
    let rel = if base.abs() > 0.0 {
        worse / base.abs()
    } else if worse > 0.0 {
        f64::INFINITY
    } else if worse < 0.0 {
        f64::NEG_INFINITY
    } else {
        0.0
    };
    (rel > margin, rel < -margin)
}

pub fn compare(base: &Report, cur: &Report, opts: &Options) -> Result<Comparison, String> {
    let hb = decode_all(base).map_err(|e| format!("baseline: {e}"))?;
    let hc = decode_all(cur).map_err(|e| format!("current: {e}"))?;
    let mut rows = Vec::new();
    let mut notes = Vec::new();

    // Throughput: lower is worse.
    let enough = base.counts.total >= 100 && cur.counts.total >= 100 && base.duration_s > 0.0;
    let (b, c) = (base.rates.throughput_rps, cur.rates.throughput_rps);
    let (verdict, note) = if !enough {
        (
            Verdict::NotEnoughData,
            format!(
                "fewer than 100 requests ({} / {})",
                thousands(base.counts.total),
                thousands(cur.counts.total)
            ),
        )
    } else {
        match judge(b - c, b, opts.max_regression) {
            (true, _) => (Verdict::Regressed, String::new()),
            (_, true) => (Verdict::Better, String::new()),
            _ => (Verdict::Ok, String::new()),
        }
    };
    rows.push(Row {
        metric: "throughput_rps".into(),
        kind: Kind::Rps,
        baseline: Some(b),
        current: Some(c),
        verdict,
        note,
    });

    // Latency percentiles, from the histograms: higher is worse.
    for key in ordered_keys(&hb, &hc) {
        let (h1, h2) = (&hb[key], &hc[key]);
        for q in PERCENTILES {
            let need = (MIN_TAIL_SAMPLES / (1.0 - q)).round() as u64;
            let name = format!("p{}", q * 100.0);
            let (b, c) = (report::percentile(h1, q), report::percentile(h2, q));
            let fewest = h1.len().min(h2.len());
            let (verdict, note) = match (b, c) {
                _ if fewest < need => (
                    Verdict::NotEnoughData,
                    format!(
                        "{name} needs {} samples, has {}",
                        thousands(need),
                        thousands(fewest)
                    ),
                ),
                (Some(b), Some(c)) => {
                    let (worse, better) = judge(c - b, b, opts.max_regression);
                    let big = (c - b).abs() > opts.min_delta_ms;
                    if worse && big {
                        (Verdict::Regressed, String::new())
                    } else if better && big {
                        (Verdict::Better, String::new())
                    } else {
                        (Verdict::Ok, String::new())
                    }
                }
                _ => (Verdict::NotEnoughData, "no samples".into()),
            };
            rows.push(Row {
                metric: format!("{key} {name}"),
                kind: Kind::Ms,
                baseline: b,
                current: c,
                verdict,
                note,
            });
        }
    }
    for (side, these, others, r) in [("baseline", &hb, &hc, base), ("current", &hc, &hb, cur)] {
        let only: Vec<String> = these
            .iter()
            .filter(|(k, h)| !others.contains_key(*k) && !h.is_empty())
            .filter(|(k, _)| !k.starts_with("schedule_lag"))
            .map(|(k, h)| format!("{k} ({})", thousands(h.len())))
            .collect();
        if !only.is_empty() {
            notes.push(format!(
                "latency only in the {side} run: {}",
                only.join(", ")
            ));
        }
        if r.interrupted {
            notes.push(format!("the {side} run was interrupted"));
        }
    }

    // Rates, judged by margin and significance.
    let rates = [
        ("error rate", Some(true)),
        ("403 rate, good credentials", Some(true)),
        ("403 rate, bad credentials", Some(false)),
        ("403 rate, overall", None),
    ];
    for (metric, higher_is_worse) in rates {
        let ((b, n1), (c, n2)) = (rate(base, metric), rate(cur, metric));
        let (verdict, note) = match (b, c, higher_is_worse) {
            (_, _, None) => (Verdict::Info, "set by the bad-credential mix".into()),
            (Some(p1), Some(p2), Some(higher)) if n1 >= 100 && n2 >= 100 => {
                // A share where lower is worse is judged by its complement (100 % → 94 % of
                // bad credentials refused is 0 % → 6 % let through), so the margin is relative
                // to the bad side.
                let (q1, q2) = if higher {
                    (p1, p2)
                } else {
                    (1.0 - p1, 1.0 - p2)
                };
                let z = two_proportion_z(q1, n1, q2, n2);
                let (worse, better) = judge(q2 - q1, q1, opts.max_regression);
                if worse && z >= RATE_Z {
                    (Verdict::Regressed, format!("z = {z:.1}"))
                } else if better && z <= -RATE_Z {
                    (Verdict::Better, format!("z = {:.1}", -z))
                } else {
                    (Verdict::Ok, String::new())
                }
            }
            _ => (
                Verdict::NotEnoughData,
                format!(
                    "fewer than 100 requests ({} / {})",
                    thousands(n1),
                    thousands(n2)
                ),
            ),
        };
        rows.push(Row {
            metric: metric.into(),
            kind: Kind::Ratio,
            baseline: b,
            current: c,
            verdict,
            note,
        });
    }

    // Setups that differ make throughput (and more) incomparable: say so.
    let setup = |r: &Report| {
        [
            // The embedded mock server listens on a new port each run.
            (
                "target",
                if r.embedded_target {
                    "the embedded mock server".to_owned()
                } else {
                    r.target.clone()
                },
            ),
            ("model", r.model.clone()),
            (
                "concurrency",
                r.concurrency.map_or("-".into(), |c| c.to_string()),
            ),
            ("rate", r.rate.map_or("-".into(), |c| c.to_string())),
            ("bad_ratio", r.settings.bad_ratio.to_string()),
        ]
    };
    let differ: Vec<String> = setup(base)
        .into_iter()
        .zip(setup(cur))
        .filter(|((_, a), (_, b))| a != b)
        .map(|((k, a), (_, b))| format!("{k} {a} → {b}"))
        .collect();
    if !differ.is_empty() {
        notes.insert(0, format!("the runs differ: {}", differ.join(", ")));
    }
    Ok(Comparison {
        rows,
        notes,
        options: *opts,
    })
}

/// A rate that `compare` shows, and the number of requests it is a share of.
fn rate(r: &Report, metric: &str) -> (Option<f64>, u64) {
    match metric {
        "error rate" => (r.rates.error, r.counts.total),
        "403 rate, good credentials" => (r.rates.forbidden_good, r.counts.good_credentials),
        "403 rate, bad credentials" => (r.rates.forbidden_bad, r.counts.bad_credentials),
        _ => (r.rates.forbidden, r.counts.total),
    }
}

/// (p2 − p1) in standard errors of the pooled proportion; 0 when both are 0 % or 100 %.
fn two_proportion_z(p1: f64, n1: u64, p2: f64, n2: u64) -> f64 {
    let (x1, x2) = ((p1 * n1 as f64).round(), (p2 * n2 as f64).round());
    let (n1, n2) = (n1 as f64, n2 as f64);
    let p = (x1 + x2) / (n1 + n2);
    let se = (p * (1.0 - p) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se > 0.0 {
        (x2 / n2 - x1 / n1) / se
    } else {
        0.0
    }
}

fn value(kind: Kind, v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) => match kind {
            Kind::Ms => format!("{} ms", crate::export::text::ms(Some(v))),
            Kind::Rps => format!("{v:.1}/s"),
            Kind::Ratio => format!("{:.2}%", v * 100.0),
        },
    }
}

/// The table, notes and the verdict line.
pub fn render(c: &Comparison, baseline: &str, current: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "sdload compare: {baseline} (baseline) → {current}");
    let _ = writeln!(
        o,
        "  a regression is more than {}% worse; latency changes under {} ms are ignored; rates also need z >= {RATE_Z}",
        c.options.max_regression * 100.0,
        c.options.min_delta_ms
    );
    for n in &c.notes {
        let _ = writeln!(o, "  note: {n}");
    }
    let _ = writeln!(
        o,
        "\n{:<30} {:>12} {:>12} {:>10}  verdict",
        "metric", "baseline", "current", "delta"
    );
    for r in &c.rows {
        let note = if r.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", r.note)
        };
        let _ = writeln!(
            o,
            "{:<30} {:>12} {:>12} {:>10}  {}{note}",
            r.metric,
            value(r.kind, r.baseline),
            value(r.kind, r.current),
            r.delta(),
            r.verdict.word()
        );
    }
    let regressed: Vec<String> = c
        .regressions()
        .map(|r| {
            format!(
                "{} {} ({} → {})",
                r.metric,
                r.delta(),
                value(r.kind, r.baseline),
                value(r.kind, r.current)
            )
        })
        .collect();
    let short = c
        .rows
        .iter()
        .filter(|r| r.verdict == Verdict::NotEnoughData)
        .count();
    if regressed.is_empty() {
        let _ = writeln!(
            o,
            "\nno regression beyond {}%{}",
            c.options.max_regression * 100.0,
            if short > 0 {
                format!(" ({short} figures without enough data to judge)")
            } else {
                String::new()
            }
        );
    } else {
        let _ = writeln!(o, "\nREGRESSED: {}", regressed.join("; "));
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thresholds::fixtures::healthy;

    const OPTS: Options = Options {
        max_regression: 0.1,
        min_delta_ms: 1.0,
    };

    fn row<'a>(c: &'a Comparison, metric: &str) -> &'a Row {
        c.rows
            .iter()
            .find(|r| r.metric == metric)
            .unwrap_or_else(|| panic!("no row {metric}"))
    }

    #[test]
    fn the_same_report_passes() {
        let r = healthy(16_000, 2_000, 4_000, 1_000);
        let c = compare(&r, &r, &OPTS).unwrap();
        assert_eq!(c.exit_code(), 0);
        assert!(c.regressions().next().is_none(), "{c:?}");
        // 4,000 refusals: too few for their p99.
        assert_eq!(row(&c, "expected_403 p99").verdict, Verdict::NotEnoughData);
        assert_eq!(row(&c, "all p99").delta(), "+0.0%");
    }

    #[test]
    fn slower_latency_regresses_from_the_histograms() {
        let base = healthy(16_000, 2_000, 4_000, 1_000);
        let cur = healthy(16_000, 20_000, 4_000, 1_000);
        let c = compare(&base, &cur, &OPTS).unwrap();
        assert_eq!(c.exit_code(), 1);
        let r = row(&c, "token_issued p99");
        // 20 ms at 3 significant digits: HdrHistogram's highest equivalent value, 20.015 ms.
        assert_eq!(
            (r.baseline, r.current, r.verdict),
            (Some(2.0), Some(20.015), Verdict::Regressed)
        );
        assert_eq!(r.delta(), "+900.8%");
        // The refusals did not change.
        assert_eq!(row(&c, "expected_403 p50").verdict, Verdict::Ok);
        // Faster is better, and never fails.
        let c = compare(&cur, &base, &OPTS).unwrap();
        assert_eq!(c.exit_code(), 0);
        assert_eq!(row(&c, "token_issued p99").verdict, Verdict::Better);
        let text = render(&compare(&base, &cur, &OPTS).unwrap(), "a.json", "b.json");
        assert!(text.contains("REGRESSED: "), "{text}");
        assert!(
            text.contains("token_issued p99 +900.8% (2.00 ms → 20.0 ms)"),
            "{text}"
        );
    }

    #[test]
    fn small_changes_and_timer_noise_do_not_regress() {
        let base = healthy(16_000, 2_000, 4_000, 1_000);
        // +5 %: within the margin.
        let c = compare(&base, &healthy(16_000, 2_100, 4_000, 1_000), &OPTS).unwrap();
        assert_eq!(c.exit_code(), 0);
        // +50 % but 0.5 ms: under min_delta.
        let fast = healthy(16_000, 1_000, 4_000, 100);
        let c = compare(&fast, &healthy(16_000, 1_500, 4_000, 150), &OPTS).unwrap();
        assert_eq!(c.exit_code(), 0, "{c:?}");
    }

    #[test]
    fn percentiles_on_too_few_samples_get_no_verdict() {
        // 1,000 samples: p50 is judged (needs 200), p95 (2,000) and p99 (10,000) are not.
        let base = healthy(1_000, 2_000, 0, 0);
        let cur = healthy(1_000, 20_000, 0, 0);
        let c = compare(&base, &cur, &OPTS).unwrap();
        assert_eq!(row(&c, "all p50").verdict, Verdict::Regressed);
        assert_eq!(row(&c, "all p95").verdict, Verdict::NotEnoughData);
        let r = row(&c, "all p99");
        assert_eq!(r.verdict, Verdict::NotEnoughData);
        assert_eq!(r.note, "p99 needs 10,000 samples, has 1,000");
        // 50 samples: nothing about latency can be told.
        let c = compare(&healthy(50, 2_000, 0, 0), &healthy(50, 20_000, 0, 0), &OPTS).unwrap();
        assert_eq!(c.exit_code(), 0);
        assert!(c
            .rows
            .iter()
            .filter(|r| r.kind == Kind::Ms)
            .all(|r| r.verdict == Verdict::NotEnoughData));
    }

    #[test]
    fn rates_need_both_the_margin_and_significance() {
        use crate::outcome::CredKind;
        let base = healthy(3_000, 1_000, 1_000, 1_000);
        // 3 errors in 4,000: noise (z < 3).
        let mut reqs = vec![(CredKind::Good, Some(200), 1_000u64); 2_997];
        reqs.extend(vec![(CredKind::Good, Some(500), 1_000); 3]);
        reqs.extend(vec![(CredKind::UnknownUser, Some(403), 1_000); 1_000]);
        let c = compare(&base, &crate::thresholds::fixtures::report(&reqs), &OPTS).unwrap();
        assert_eq!(row(&c, "error rate").verdict, Verdict::Ok, "{c:?}");
        // 60 errors and 60 bad credentials let in: real.
        let mut reqs = vec![(CredKind::Good, Some(200), 1_000u64); 2_940];
        reqs.extend(vec![(CredKind::Good, Some(500), 1_000); 60]);
        reqs.extend(vec![(CredKind::UnknownUser, Some(403), 1_000); 940]);
        reqs.extend(vec![(CredKind::UnknownUser, Some(200), 1_000); 60]);
        let c = compare(&base, &crate::thresholds::fixtures::report(&reqs), &OPTS).unwrap();
        assert_eq!(row(&c, "error rate").verdict, Verdict::Regressed);
        assert_eq!(
            row(&c, "403 rate, bad credentials").verdict,
            Verdict::Regressed
        );
        assert_eq!(row(&c, "403 rate, bad credentials").delta(), "-6.00 pp");
        assert_eq!(row(&c, "403 rate, overall").verdict, Verdict::Info);
    }

    #[test]
    fn a_damaged_histogram_is_an_error() {
        let mut r = healthy(10, 1_000, 0, 0);
        r.histograms
            .insert("all".into(), "bm90IGEgaGlzdG9ncmFt".into());
        let err = compare(&r, &healthy(10, 1_000, 0, 0), &OPTS).unwrap_err();
        assert_eq!(
            err,
            "baseline: histograms.all is not an HdrHistogram (V2, base64)"
        );
    }
}
