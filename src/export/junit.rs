//! JUnit XML: one test case per threshold, as CI systems (GitLab, Jenkins, GitHub test
//! reporters) read it. A failed threshold is a `<failure>` whose message holds the observed
//! value and the limit. A pure function of the `Report`.

use std::fmt::Write;

use crate::report::Report;
use crate::thresholds;

/// Escapes text for XML 1.0 content and attribute values. Characters XML 1.0 cannot hold at
/// all (most control characters) become U+FFFD.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Kept in attributes as written, not normalised to spaces.
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || matches!(c, '\u{FFFE}' | '\u{FFFF}') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    let tests = r.thresholds.len();
    let failures = r.thresholds.iter().filter(|t| !t.passed).count();
    let mut o = String::new();
    let _ = writeln!(o, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
    let _ = writeln!(
        o,
        r#"<testsuites name="sdload" tests="{tests}" failures="{failures}" errors="0" time="{:.3}">"#,
        r.duration_s
    );
    let _ = writeln!(
        o,
        r#"  <testsuite name="sdload thresholds" tests="{tests}" failures="{failures}" errors="0" skipped="0" time="{:.3}" timestamp="{}">"#,
        r.duration_s,
        escape(r.started_at.trim_end_matches('Z'))
    );
    let _ = writeln!(o, "    <properties>");
    let mut props: Vec<(&str, String)> = vec![
        ("target", r.target.clone()),
        ("model", r.model.clone()),
        ("requests", r.counts.total.to_string()),
        ("throughput_rps", format!("{:.1}", r.rates.throughput_rps)),
        ("verdict", crate::export::markdown::verdict(r).to_owned()),
    ];
    if r.interrupted {
        props.push(("interrupted", "true".to_owned()));
    }
    for (name, value) in props {
        let _ = writeln!(
            o,
            r#"      <property name="{name}" value="{}"/>"#,
            escape(&value)
        );
    }
    let _ = writeln!(o, "    </properties>");
    for t in &r.thresholds {
        let name = escape(&thresholds::label(t));
        let classname = if t.default {
            "sdload.thresholds.default"
        } else {
            "sdload.thresholds"
        };
        let observed = thresholds::format_observed(t);
        if t.passed {
            let _ = writeln!(
                o,
                r#"    <testcase name="{name}" classname="{classname}" time="0">"#
            );
            let _ = writeln!(
                o,
                "      <system-out>{}</system-out>",
                escape(&format!("observed {observed}"))
            );
        } else {
            let message = format!(
                "{}: observed {observed}, limit {}",
                t.metric,
                thresholds::format_limit(t)
            );
            let detail = format!(
                "threshold {}\nobserved  {observed}{}\nlimit     {}",
                t.expr,
                if t.observed.is_none() {
                    " (no samples: a threshold over no data fails)"
                } else {
                    ""
                },
                thresholds::format_limit(t)
            );
            let _ = writeln!(
                o,
                r#"    <testcase name="{name}" classname="{classname}" time="0">"#
            );
            let _ = writeln!(
                o,
                r#"      <failure message="{}" type="threshold">{}</failure>"#,
                escape(&message),
                escape(&detail)
            );
        }
        let _ = writeln!(o, "    </testcase>");
    }
    let _ = writeln!(o, "  </testsuite>");
    let _ = writeln!(o, "</testsuites>");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::thresholds::fixtures::healthy;
    use crate::thresholds::{evaluate, Threshold};

    #[test]
    fn escapes_markup_quotes_and_control_characters() {
        assert_eq!(
            escape("a<b & \"c\" 'd'>\u{1}\n"),
            "a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;\u{FFFD}&#10;"
        );
    }

    #[test]
    fn one_case_per_threshold_with_the_failures() {
        let mut r = healthy(10, 2_000, 0, 0);
        let mut named = Threshold::parse("p99 < 1ms").unwrap();
        named.name = Some("a & b <\"c\">".into());
        let ts = vec![
            named,
            Threshold::parse("error < 1%").unwrap(),
            Threshold::parse("timeout.p99 < 1s").unwrap(),
        ];
        r.thresholds = evaluate(&r, &ts);
        let xml = render(&r);
        assert!(xml.contains(r#"tests="3" failures="2""#), "{xml}");
        assert!(
            xml.contains(r#"<testcase name="a &amp; b &lt;&quot;c&quot;&gt;: p99 &lt; 1ms""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="p99: observed 2 ms, limit &lt; 1 ms""#),
            "{xml}"
        );
        assert!(
            xml.contains(r#"<failure message="timeout.p99: observed no data, limit &lt; 1000 ms""#),
            "{xml}"
        );
        assert_eq!(xml.matches("<testcase ").count(), 3);
        assert_eq!(xml.matches("</testcase>").count(), 3);
    }
}
