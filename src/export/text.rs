//! The terminal report: what a person reads to see at a glance what happened.
//! A pure function of the `Report` (and whether to colour), so a saved report re-renders
//! exactly as the live run printed it.

use std::fmt::Write;

use crate::outcome::Outcome;
use crate::report::{LatencySummary, Report};
use crate::thresholds;

/// Colours are decided once by the caller (terminal, `NO_COLOR`), never here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub(crate) fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    pub(crate) fn bad(&self, t: &str) -> String {
        self.paint("1;31", t)
    }
    pub(crate) fn warn(&self, t: &str) -> String {
        self.paint("33", t)
    }
    pub(crate) fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
}

/// 12,345 (thousands separated: counts are read at a glance).
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn pct(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v > 0.0 && v < 0.001 => "<0.1%".into(),
        Some(v) => format!("{:.1}%", v * 100.0),
    }
}

pub fn ms(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

pub fn render(r: &Report, style: Style) -> String {
    let mut o = String::new();
    let s = style;
    let target = if r.embedded_target {
        format!("{} (embedded mock server)", r.target)
    } else {
        r.target.clone()
    };
    let _ = writeln!(o, "{} {}", s.bold("sdload"), target);
    let addrs = if r.target_addrs.is_empty() {
        "-".to_owned()
    } else {
        r.target_addrs.join(", ")
    };
    let model = match (r.model.as_str(), r.concurrency, r.rate, r.stages.is_empty()) {
        ("open", _, Some(rate), true) => format!("open model, {rate}/s"),
        ("open", _, Some(rate), false) => {
            format!("open model, {} up to {rate}/s", stages(r.stages.len()))
        }
        (_, Some(c), _, true) => format!("closed model, {c} workers"),
        (_, Some(c), _, false) => {
            format!("closed model, {} up to {c} workers", stages(r.stages.len()))
        }
        (m, ..) => m.to_owned(),
    };
    let _ = writeln!(
        o,
        "  resolved to {addrs} · {model} · {:.1}s measured · {} · {} connections",
        r.duration_s,
        s.bold(&format!("{:.1} req/s", r.rates.throughput_rps)),
        thousands(r.connections_opened)
    );
    if r.interrupted {
        let _ = writeln!(
            o,
            "  {}",
            s.warn("interrupted: the figures cover the part that ran")
        );
    }
    if let Some(t) = &r.tls {
        let version = match (&t.version, &t.cipher_suite) {
            (Some(v), Some(c)) => format!("{v} ({c})"),
            (Some(v), None) => v.clone(),
            _ => "no handshake completed".to_owned(),
        };
        let trust = if t.insecure {
            s.warn("certificates NOT verified (--insecure)")
        } else if let Some(ca) = &t.ca_cert {
            format!("certificates verified against {ca}")
        } else {
            "certificates verified".to_owned()
        };
        let client = if t.client_cert {
            " · client certificate"
        } else {
            ""
        };
        let _ = writeln!(o, "  TLS {version} · {trust}{client}");
    }
    if r.connect_ms.count > 0 {
        let mut line = format!(
            "  new connections: connect p50 {} ms, p99 {} ms",
            ms(r.connect_ms.p50),
            ms(r.connect_ms.p99)
        );
        if r.tls_handshake_ms.count > 0 {
            let _ = write!(
                line,
                " · TLS handshake p50 {} ms, p99 {} ms",
                ms(r.tls_handshake_ms.p50),
                ms(r.tls_handshake_ms.p99)
            );
        }
        let _ = writeln!(o, "{line}");
    }

    // Outcomes.
    let _ = writeln!(
        o,
        "\n{}",
        s.bold("Outcomes                       count    share")
    );
    let total = r.counts.total;
    for outcome in Outcome::ALL {
        let n = r.counts.get(outcome);
        if n == 0 && outcome.is_error() {
            continue;
        }
        let line = format!(
            "  {:<22} {:>12} {:>8}",
            outcome.name(),
            thousands(n),
            pct(share(n, total))
        );
        let _ = writeln!(
            o,
            "{}",
            if outcome.is_error() {
                s.bad(&line)
            } else {
                line
            }
        );
    }
    let _ = writeln!(
        o,
        "  {:<22} {:>12} {:>8}",
        "total",
        thousands(total),
        pct(share(total, total))
    );
    let hidden: Vec<&str> = Outcome::ALL
        .iter()
        .filter(|x| x.is_error() && r.counts.get(**x) == 0)
        .map(|x| x.name())
        .collect();
    if !hidden.is_empty() {
        let _ = writeln!(o, "  {}", s.dim(&format!("none: {}", hidden.join(", "))));
    }
    if r.counts.nil_token > 0 {
        let line = format!(
            "  nil_token {} (tokens that are the all-zero GUID)",
            thousands(r.counts.nil_token)
        );
        let _ = writeln!(o, "{}", s.bad(&line));
    }
    if r.counts.not_sent > 0 {
        let _ = writeln!(
            o,
            "  {}",
            s.warn(&format!("not_sent {}", thousands(r.counts.not_sent)))
        );
    }

    // 403 rates.
    let _ = writeln!(
        o,
        "\n{}  overall {}   good credentials {}   bad credentials {}",
        s.bold("403 rate"),
        pct(r.rates.forbidden),
        paint_if(
            s,
            r.rates.forbidden_good.unwrap_or(0.0) > 0.0,
            &pct(r.rates.forbidden_good)
        ),
        pct(r.rates.forbidden_bad),
    );
    let _ = writeln!(
        o,
        "{}",
        s.bold("By credential      requests      403     p50 ms    p99 ms")
    );
    for kind in crate::outcome::CredKind::ALL {
        let name = kind.name();
        let Some(k) = r.by_credential.get(name).filter(|k| k.requests > 0) else {
            continue;
        };
        let _ = writeln!(
            o,
            "  {:<16} {:>10} {:>8} {:>10} {:>9}",
            name,
            thousands(k.requests),
            pct(k.forbidden_rate),
            ms(k.latency_ms.p50),
            ms(k.latency_ms.p99)
        );
    }

    // Latency per outcome.
    let _ = writeln!(
        o,
        "\n{}",
        s.bold(
            "Latency (ms)            count      p50      p90      p95      p99    p99.9      max"
        )
    );
    let mut rows: Vec<(&str, &LatencySummary)> = vec![("all", &r.latency_ms["all"])];
    for outcome in Outcome::ALL {
        if let Some(l) = r.latency_ms.get(outcome.name()).filter(|l| l.count > 0) {
            rows.push((outcome.name(), l));
        }
    }
    for (name, l) in rows {
        let line = latency_row(name, l);
        let problem = Outcome::ALL
            .iter()
            .any(|x| x.name() == name && x.is_error());
        let _ = writeln!(o, "{}", if problem { s.bad(&line) } else { line });
    }

    // Open model: service time and schedule lag, where they differ from latency.
    if let (Some(service), Some(lag)) = (&r.service_time_ms, &r.schedule_lag_ms) {
        let lag_all = &lag["all"];
        if lag_all.p99.unwrap_or(0.0) >= 1.0 {
            let _ = writeln!(
                o,
                "\n{}",
                s.bold("Service time (ms)       count      p50      p90      p95      p99    p99.9      max")
            );
            let mut rows = vec![("all", &service["all"])];
            rows.extend(Outcome::ALL.iter().filter_map(|x| {
                service
                    .get(x.name())
                    .filter(|l| l.count > 0)
                    .map(|l| (x.name(), l))
            }));
            rows.push(("schedule lag", lag_all));
            for (name, l) in rows {
                let _ = writeln!(o, "{}", latency_row(name, l));
            }
            let _ = writeln!(
                o,
                "  {}",
                s.dim("latency runs from each request's scheduled start, service time from its actual start; the lag is time spent waiting for a free connection, plus the generator's own wake-up (tens of microseconds)")
            );
        } else {
            let _ = writeln!(
                o,
                "  {}",
                s.dim(&format!(
                    "schedule lag p99 {} ms: service time is latency",
                    ms(lag_all.p99)
                ))
            );
        }
    }
    if let Some(sched) = &r.schedule {
        let _ = writeln!(
            o,
            "  schedule: {} arrivals, {} scheduled, {} sent, at most {} connections",
            match sched.arrivals {
                crate::engine::timetable::Arrivals::Uniform => "uniform",
                crate::engine::timetable::Arrivals::Poisson => "poisson",
            },
            thousands(sched.scheduled),
            thousands(r.counts.total),
            thousands(sched.max_in_flight)
        );
    }

    // Status codes.
    let codes: Vec<String> = r
        .status_codes
        .iter()
        .map(|(c, n)| format!("{c}: {}", thousands(*n)))
        .collect();
    let _ = writeln!(
        o,
        "\n{} {}",
        s.bold("Status codes"),
        if codes.is_empty() {
            "none (no response)".into()
        } else {
            codes.join("   ")
        }
    );
    if let Some(loc) = &r.redirect_location {
        let _ = writeln!(o, "  redirect to {loc} (not followed)");
    }

    // Latency distribution of all requests.
    if let Some(hist) = r
        .histograms
        .get("all")
        .and_then(|h| crate::report::decode_histogram(h))
    {
        if !hist.is_empty() {
            let _ = writeln!(o, "\n{}", s.bold("Latency distribution (all)"));
            o.push_str(&distribution(&hist));
        }
    }

    // Problems with examples.
    if !r.problems.is_empty() || !r.invalid_tokens.is_empty() {
        let _ = writeln!(o, "\n{}", s.bold("Problems"));
        for (name, p) in &r.problems {
            let _ = writeln!(
                o,
                "  {}",
                s.bad(&format!("{name} ×{}: {}", thousands(p.count), p.example))
            );
        }
        for (reason, p) in &r.invalid_tokens {
            let _ = writeln!(
                o,
                "  {}",
                s.bad(&format!(
                    "invalid_token ({reason}) ×{}: {}",
                    thousands(p.count),
                    p.example
                ))
            );
        }
    }
    if !r.thresholds.is_empty() {
        let failed = r.thresholds.iter().filter(|t| !t.passed).count();
        let verdict = if failed == 0 {
            format!("all {} passed", r.thresholds.len())
        } else {
            s.bad(&format!("{failed} of {} failed", r.thresholds.len()))
        };
        let _ = writeln!(o, "\n{}  {verdict}", s.bold("Thresholds"));
        let labels: Vec<String> = r.thresholds.iter().map(thresholds::label).collect();
        let width = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        for (t, label) in r.thresholds.iter().zip(&labels) {
            let verdict = if t.passed {
                "PASS".to_owned()
            } else {
                s.bad("FAIL")
            };
            let pad = " ".repeat(width - label.chars().count());
            let default = if t.default {
                s.dim("   (default)")
            } else {
                String::new()
            };
            let _ = writeln!(
                o,
                "  {verdict}  {label}{pad}   {}{}",
                thresholds::format_observed(t),
                default
            );
        }
    }
    if !r.warnings.is_empty() {
        let _ = writeln!(o);
        for w in &r.warnings {
            let _ = writeln!(o, "{}", s.warn(&format!("warning: {w}")));
        }
    }
    o
}

/// One row of a latency table: count and percentiles, in the columns of its header.
fn latency_row(name: &str, l: &LatencySummary) -> String {
    format!(
        "  {:<18} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        name,
        thousands(l.count),
        ms(l.p50),
        ms(l.p90),
        ms(l.p95),
        ms(l.p99),
        ms(l.p999),
        ms(l.max)
    )
}

fn stages(n: usize) -> String {
    if n == 1 {
        "a ramp".into()
    } else {
        format!("{n} stages")
    }
}

fn paint_if(s: Style, cond: bool, text: &str) -> String {
    if cond {
        s.bad(text)
    } else {
        text.to_owned()
    }
}

fn share(n: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| n as f64 / total as f64)
}

/// A small text histogram: up to 10 bins, geometric between min and max when the spread is
/// wide (latency is skewed), linear otherwise.
fn distribution(h: &hdrhistogram::Histogram<u64>) -> String {
    let (lo, hi) = (h.min().max(1) as f64, h.max().max(1) as f64);
    let bins = 10usize;
    let geometric = hi / lo > 4.0;
    let edge = |i: usize| -> f64 {
        let f = i as f64 / bins as f64;
        if geometric {
            lo * (hi / lo).powf(f)
        } else {
            lo + (hi - lo) * f
        }
    };
    let mut counts = vec![0u64; bins];
    for v in h.iter_recorded() {
        let x = v.value_iterated_to() as f64;
        let mut i = 0;
        while i + 1 < bins && x > edge(i + 1) {
            i += 1;
        }
        counts[i] += v.count_at_value();
    }
    let most = counts.iter().copied().max().unwrap_or(1).max(1);
    let total = h.len().max(1);
    let mut out = String::new();
    for (i, &n) in counts.iter().enumerate() {
        if hi == lo && i > 0 {
            break;
        }
        let width = ((n as f64 / most as f64) * 40.0).round() as usize;
        let bar = if n > 0 && width == 0 {
            "▏".to_owned()
        } else {
            "█".repeat(width)
        };
        let _ = writeln!(
            out,
            "  ≤ {:>9} ms │{:<40} {:>6.1}%",
            ms(Some(edge(i + 1) / 1000.0)),
            bar,
            n as f64 * 100.0 / total as f64
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(pct(Some(0.25)), "25.0%");
        assert_eq!(pct(None), "-");
        assert_eq!(ms(Some(1.234)), "1.23");
        assert_eq!(ms(Some(250.4)), "250");
    }
}
