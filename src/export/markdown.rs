//! The Markdown summary: compact, for a CI job summary or a pull-request comment. A pure
//! function of the `Report`, like the terminal text.

use std::fmt::Write;

use crate::exit;
use crate::export::text::{ms, pct, thousands};
use crate::outcome::{CredKind, Outcome};
use crate::report::Report;
use crate::thresholds;

/// Backslash-escapes the characters that Markdown (or a GFM table) would read as markup, in
/// text that comes from outside (targets, names, warnings). Newlines become spaces.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#' | '!' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// PASS, FAIL, UNREACHABLE or INTERRUPTED: what the exit code says.
pub fn verdict(r: &Report) -> &'static str {
    match exit::of_report(r) {
        exit::OK => "PASS",
        exit::THRESHOLD_FAILED => "FAIL",
        exit::UNREACHABLE => "UNREACHABLE",
        _ => "INTERRUPTED",
    }
}

pub fn render(r: &Report) -> String {
    let mut o = String::new();
    let target = if r.embedded_target {
        format!("{} (embedded mock server)", escape(&r.target))
    } else {
        escape(&r.target)
    };
    let _ = writeln!(o, "## sdload: {} · {target}\n", verdict(r));
    let model = match (r.model.as_str(), r.concurrency, r.rate) {
        ("open", _, Some(rate)) => format!("open model, {rate}/s"),
        (_, Some(c), _) => format!("closed model, {c} workers"),
        (m, _, _) => escape(m),
    };
    let _ = writeln!(
        o,
        "{model} · {:.1} s measured · **{:.1} req/s** · {} requests · started {}\n",
        r.duration_s,
        r.rates.throughput_rps,
        thousands(r.counts.total),
        escape(&r.started_at)
    );
    if r.interrupted {
        let _ = writeln!(o, "> interrupted: the figures cover the part that ran\n");
    }

    let _ = writeln!(o, "| outcome | count | share |\n| --- | ---: | ---: |");
    let total = r.counts.total;
    for outcome in Outcome::ALL {
        let n = r.counts.get(outcome);
        if n == 0 && outcome.is_error() {
            continue;
        }
        let name = if outcome.is_error() {
            format!("**{}**", outcome.name())
        } else {
            outcome.name().to_owned()
        };
        let _ = writeln!(
            o,
            "| {name} | {} | {} |",
            thousands(n),
            pct(share(n, total))
        );
    }
    let _ = writeln!(
        o,
        "| total | {} | {} |",
        thousands(total),
        pct(share(total, total))
    );
    let mut beside = Vec::new();
    if r.counts.nil_token > 0 {
        beside.push(format!(
            "**nil_token** {} (all-zero GUID tokens)",
            thousands(r.counts.nil_token)
        ));
    }
    if r.counts.not_sent > 0 {
        beside.push(format!("not_sent {}", thousands(r.counts.not_sent)));
    }
    if !beside.is_empty() {
        let _ = writeln!(o, "\n{}", beside.join(" · "));
    }

    let _ = writeln!(
        o,
        "\n**403 rate**: overall {} · good credentials {} · bad credentials {}\n",
        pct(r.rates.forbidden),
        pct(r.rates.forbidden_good),
        pct(r.rates.forbidden_bad)
    );
    let _ = writeln!(
        o,
        "| credential | requests | 403 | p50 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: |"
    );
    for kind in CredKind::ALL {
        let Some(k) = r.by_credential.get(kind.name()).filter(|k| k.requests > 0) else {
            continue;
        };
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} |",
            kind.name(),
            thousands(k.requests),
            pct(k.forbidden_rate),
            ms(k.latency_ms.p50),
            ms(k.latency_ms.p99)
        );
    }

    let _ = writeln!(
        o,
        "\n| latency (ms) | count | p50 | p90 | p95 | p99 | p99.9 | max |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let names = std::iter::once("all").chain(Outcome::ALL.iter().map(|o| o.name()));
    for name in names {
        let Some(l) = r
            .latency_ms
            .get(name)
            .filter(|l| l.count > 0 || name == "all")
        else {
            continue;
        };
        let _ = writeln!(
            o,
            "| {name} | {} | {} | {} | {} | {} | {} | {} |",
            thousands(l.count),
            ms(l.p50),
            ms(l.p90),
            ms(l.p95),
            ms(l.p99),
            ms(l.p999),
            ms(l.max)
        );
    }

    if !r.thresholds.is_empty() {
        let failed = r.thresholds.iter().filter(|t| !t.passed).count();
        let _ = writeln!(
            o,
            "\n### Thresholds: {}\n\n| | threshold | observed | limit |\n| --- | --- | ---: | --- |",
            if failed == 0 {
                format!("all {} passed", r.thresholds.len())
            } else {
                format!("{failed} of {} failed", r.thresholds.len())
            }
        );
        for t in &r.thresholds {
            let mut what = format!("`{}`", t.expr.replace('`', "'"));
            if let Some(n) = &t.name {
                what = format!("{}: {what}", escape(n));
            }
            if t.default {
                what.push_str(" (default)");
            }
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} |",
                if t.passed { "✅ PASS" } else { "❌ FAIL" },
                what.replace('|', "\\|"),
                thresholds::format_observed(t),
                thresholds::format_limit(t)
            );
        }
    }

    if !r.warnings.is_empty() {
        let _ = writeln!(o, "\n### Warnings\n");
        for w in &r.warnings {
            let _ = writeln!(o, "- {}", escape(w));
        }
    }
    o
}

fn share(n: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| n as f64 / total as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thresholds::fixtures::{healthy, report};
    use crate::thresholds::{evaluate, Threshold};

    #[test]
    fn holds_the_outcome_table_rates_percentiles_and_thresholds() {
        let mut r = healthy(80, 2_000, 20, 1_000);
        let ts: Vec<Threshold> = ["p99 < 1ms", "error < 1%"]
            .iter()
            .map(|e| Threshold::parse(e).unwrap())
            .collect();
        r.thresholds = evaluate(&r, &ts);
        let md = render(&r);
        assert!(
            md.starts_with("## sdload: FAIL · http://127.0.0.1:9/\n"),
            "{md}"
        );
        assert!(md.contains("| outcome | count | share |"), "{md}");
        assert!(md.contains("| token_issued | 80 | 80.0% |"), "{md}");
        assert!(md.contains("| expected_403 | 20 | 20.0% |"), "{md}");
        assert!(md.contains("| total | 100 | 100.0% |"), "{md}");
        assert!(
            md.contains(
                "**403 rate**: overall 20.0% · good credentials 0.0% · bad credentials 100.0%"
            ),
            "{md}"
        );
        assert!(
            md.contains("| all | 100 | 2.00 | 2.00 | 2.00 | 2.00 | 2.00 | 2.00 |"),
            "{md}"
        );
        assert!(md.contains("### Thresholds: 1 of 2 failed"), "{md}");
        assert!(
            md.contains("| ❌ FAIL | `p99 < 1ms` | 2 ms | < 1 ms |"),
            "{md}"
        );
        assert!(
            md.contains("| ✅ PASS | `error < 1%` | 0% | < 1% |"),
            "{md}"
        );
    }

    #[test]
    fn outside_text_cannot_break_the_table() {
        let mut r = report(&[(CredKind::Good, Some(200), 1_000)]);
        r.target = "http://x/|<script>".into();
        r.warnings = vec!["a | b\nc".into()];
        let md = render(&r);
        assert!(md.contains("http://x/\\|\\<script\\>"), "{md}");
        assert!(md.contains("- a \\| b c"), "{md}");
        assert_eq!(escape("token_issued"), "token\\_issued");
    }
}
