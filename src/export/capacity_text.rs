//! `sdload capacity` in the terminal: the answer first, then every step, then a small chart of
//! the SLO's latency against the rate. Pure functions of the `CapacityReport`.

use std::fmt::Write;

use crate::capacity::report::{CapacityReport, SearchSettings, Step, StepVerdict};
use crate::capacity::search::End;
use crate::export::text::{ms, pct, thousands, Style};
use crate::outcome::Outcome;
use crate::report::Report;

/// `206`, `1,010`, `0.75`, `12.5`.
pub fn rate(r: f64) -> String {
    if r.fract() == 0.0 && r >= 0.0 {
        return thousands(r as u64);
    }
    let s = format!("{r:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn errors(r: &Report) -> u64 {
    Outcome::ALL
        .iter()
        .filter(|o| o.is_error())
        .map(|&o| r.counts.get(o))
        .sum()
}

/// `5%`, `2.5%`.
fn share(v: f64) -> String {
    format!("{}%", rate((v * 1000.0).round() / 10.0))
}

/// `0 errors`, `12 errors (0.3%)`.
fn errors_text(r: &Report) -> String {
    match errors(r) {
        0 => "0 errors".to_owned(),
        1 => format!("1 error ({})", pct(r.rates.error)),
        n => format!("{} errors ({})", thousands(n), pct(r.rates.error)),
    }
}

/// `token_issued p99 41.2 ms, 0 errors`.
fn headline(r: &Report) -> String {
    let p99 = r.latency_ms.get("token_issued").and_then(|s| s.p99);
    format!("token_issued p99 {} ms, {}", ms(p99), errors_text(r))
}

/// The line printed (on stderr) before the search starts.
pub fn intro(target: &str, s: &SearchSettings) -> String {
    format!(
        "capacity search against {target}\n  SLO: {}\n  {}",
        s.slo.join(" · "),
        plan_line(s)
    )
}

fn plan_line(s: &SearchSettings) -> String {
    format!(
        "steps of {} after {} of warm-up; ×{} from {}/s to at most {}/s, then bisection to {}",
        crate::duration::format(std::time::Duration::from_secs_f64(s.step_duration_s)),
        crate::duration::format(std::time::Duration::from_secs_f64(s.step_warmup_s)),
        s.factor,
        rate(s.start_rate),
        rate(s.max_rate),
        share(s.precision)
    )
}

/// A step as it ends (stderr): `step 3 climb   225/s  FAIL  achieved 201.4/s, p99 375 ms, 0 errors: ...`.
pub fn step_line(s: &Step) -> String {
    let r = &s.report;
    let verdict = match s.verdict {
        StepVerdict::Pass => "pass",
        StepVerdict::Fail => "FAIL",
        StepVerdict::Interrupted => "interrupted",
    };
    let mut line = format!(
        "step {:>2} {:<6} {:>8}/s  {verdict}  achieved {}/s, p99 {} ms, {}",
        s.index,
        s.phase.name(),
        rate(s.target_rate),
        rate((s.achieved_rate * 10.0).round() / 10.0),
        ms(r.latency_ms.get("all").and_then(|l| l.p99)),
        errors_text(r)
    );
    if !s.reasons.is_empty() {
        let _ = write!(line, ": {}", s.reasons.join("; "));
    }
    line
}

/// The answer in a few lines (also kept in the JSON report's `result.summary`).
pub fn summary(c: &CapacityReport) -> Vec<String> {
    let res = &c.result;
    let pass = c.step_at(res.sustained_rate);
    let fail = c.step_at(res.first_failing_rate);
    let sustains = |prefix: &str| match pass {
        Some(s) => format!(
            "{prefix}{} logins/s: {}",
            rate(s.target_rate),
            headline(&s.report)
        ),
        None => String::new(),
    };
    let fails = |how: &str| match fail {
        Some(s) => format!(
            "fails at {} logins/s{how}: {}",
            rate(s.target_rate),
            s.reasons.join("; ")
        ),
        None => String::new(),
    };
    let mut out = match res.end {
        End::Converged => vec![sustains("sustains "), fails("")],
        End::BelowStart => vec![
            format!(
                "below the start rate: the first step, at {} logins/s, already failed",
                rate(c.search.start_rate)
            ),
            fails(""),
        ],
        End::AtLeastMax => vec![
            sustains("sustains at least "),
            format!(
                "no step failed up to the max rate ({}/s): the capacity is above it (raise --max-rate to find it)",
                rate(c.search.max_rate)
            ),
        ],
        End::Guard => vec![
            sustains("sustains "),
            fails(" by a wide margin"),
            format!(
                "the search stopped there (the guard): the capacity lies between {} and {} logins/s",
                rate(res.sustained_rate.unwrap_or_default()),
                rate(res.first_failing_rate.unwrap_or_default())
            ),
        ],
        End::Interrupted => {
            let mut v = vec![match pass {
                Some(_) => sustains("interrupted: sustains at least "),
                None => "interrupted before any step passed".to_owned(),
            }];
            if fail.is_some() {
                v.push(fails(""));
            }
            v
        }
        End::Unreachable => vec![format!(
            "the target could not be reached: no answer at {} logins/s",
            rate(c.steps.last().map_or(0.0, |s| s.target_rate))
        )],
    };
    out.retain(|l| !l.is_empty());
    if let (Some(n), Some(met)) = (c.search.require_rate, res.require_rate_met) {
        out.push(format!(
            "required {} logins/s: {}",
            rate(n),
            if met { "met" } else { "NOT met" }
        ));
    }
    out
}

/// The whole terminal output.
pub fn render(c: &CapacityReport, style: Style) -> String {
    let s = style;
    let mut o = String::new();
    let target = if c.embedded_target {
        format!("{} (embedded mock server)", c.target)
    } else {
        c.target.clone()
    };
    let _ = writeln!(o, "{} {target}", s.bold("sdload capacity"));
    let _ = writeln!(o, "  SLO: {}", c.search.slo.join(" · "));
    let _ = writeln!(o, "  {}", plan_line(&c.search));
    let _ = writeln!(o);

    let _ = writeln!(o, "{}", s.bold("Result"));
    let bad = c.exit_code() != crate::exit::OK;
    for (i, line) in c.result.summary.iter().enumerate() {
        let line = if i == 0 && bad {
            s.bad(line)
        } else if i == 0 {
            s.bold(line)
        } else {
            line.clone()
        };
        let _ = writeln!(o, "  {line}");
    }
    let _ = writeln!(o);

    let _ = writeln!(
        o,
        "{}",
        s.bold("Steps            target/s  achieved/s   p50 ms   p99 ms  svc p50  svc p99     403  false 403   errors  verdict")
    );
    for st in &c.steps {
        let r = &st.report;
        let lat = r.latency_ms.get("all");
        let svc = r.service_time_ms.as_ref().and_then(|m| m.get("all"));
        let verdict = match st.verdict {
            StepVerdict::Pass => "pass".to_owned(),
            StepVerdict::Interrupted => s.warn("interrupted"),
            StepVerdict::Fail => {
                let mut why: Vec<String> = r
                    .thresholds
                    .iter()
                    .filter(|t| !t.passed)
                    .map(crate::thresholds::label)
                    .collect();
                if r.counts.not_sent > 0 {
                    why.push("fell behind".into());
                }
                if st.guard {
                    why.push("guard".into());
                }
                format!("{} {}", s.bad("FAIL"), why.join(", "))
            }
        };
        let _ = writeln!(
            o,
            "  {:>2} {:<7} {:>10} {:>11} {:>8} {:>8} {:>8} {:>8} {:>7} {:>10} {:>8}  {verdict}",
            st.index,
            st.phase.name(),
            rate(st.target_rate),
            format!("{:.1}", st.achieved_rate),
            ms(lat.and_then(|l| l.p50)),
            ms(lat.and_then(|l| l.p99)),
            ms(svc.and_then(|l| l.p50)),
            ms(svc.and_then(|l| l.p99)),
            pct(r.rates.forbidden),
            pct(r.rates.forbidden_good),
            thousands(errors(r)),
        );
    }
    let _ = writeln!(
        o,
        "{}",
        s.dim("  latency from each login's scheduled start; svc: service time, from its actual start; 403: all requests; false 403: good credentials refused")
    );
    let chart = chart(c, s);
    if !chart.is_empty() {
        let _ = writeln!(o);
        o.push_str(&chart);
    }
    o
}

const CHART_WIDTH: usize = 40;

/// The SLO's first latency metric (else p99 of all requests) against the rate, log scale,
/// with the limit marked.
fn chart(c: &CapacityReport, s: Style) -> String {
    let mut steps: Vec<&Step> = c
        .steps
        .iter()
        .filter(|st| st.verdict != StepVerdict::Interrupted)
        .collect();
    if steps.is_empty() {
        return String::new();
    }
    steps.sort_by(|a, b| a.target_rate.total_cmp(&b.target_rate));
    let first_ms = |st: &Step| st.report.thresholds.iter().position(|t| t.unit == "ms");
    let slot = first_ms(steps[0]);
    let (label, limit) = match slot {
        Some(i) => (
            steps[0].report.thresholds[i].metric.clone(),
            steps[0].report.thresholds[i].limit,
        ),
        None => ("p99".to_owned(), None),
    };
    let value = |st: &Step| match slot {
        Some(i) => st.report.thresholds.get(i).and_then(|t| t.observed),
        None => st.report.latency_ms.get("all").and_then(|l| l.p99),
    };
    let values: Vec<Option<f64>> = steps.iter().map(|st| value(st)).collect();
    let known = values
        .iter()
        .flatten()
        .chain(limit.iter())
        .copied()
        .filter(|v| *v > 0.0);
    let (lo, hi) = known.fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if hi <= 0.0 || !hi.is_finite() {
        return String::new();
    }
    let lo = (lo / 2.0).min(hi / 10.0);
    let column =
        |v: f64| (((v.max(lo) / lo).ln() / (hi / lo).ln()) * CHART_WIDTH as f64).round() as usize;
    let mark = limit.map(column);
    let mut o = String::new();
    let title = match limit {
        Some(l) => format!(
            "{label} by rate (ms, log scale; │ marks the SLO's {} ms)",
            ms(Some(l))
        ),
        None => format!("{label} by rate (ms, log scale)"),
    };
    let _ = writeln!(o, "{}", s.bold(&title));
    for (st, v) in steps.iter().zip(&values) {
        let len = v.map_or(0, |v| column(v).max(1));
        let bar: String = (0..=CHART_WIDTH.max(mark.unwrap_or(0)))
            .map(|i| {
                if Some(i) == mark {
                    '│'
                } else if i < len {
                    '█'
                } else {
                    ' '
                }
            })
            .collect();
        let verdict = match st.verdict {
            StepVerdict::Pass => "pass".to_owned(),
            _ => s.bad("FAIL"),
        };
        let _ = writeln!(
            o,
            "  {:>8}/s {} {:>8}  {verdict}",
            rate(st.target_rate),
            bar,
            ms(*v)
        );
    }
    o
}
