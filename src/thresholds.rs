//! Thresholds: `p99 < 250ms`, `error < 1%`, `bad_accepted == 0`, ... parsed once into a typed
//! `Threshold` (a malformed one is a usage error that points at the spot), then evaluated as a
//! pure function of the `Report`. Whatever the metric, no data never passes.
//!
//! Grammar (spaces optional):
//!
//! ```text
//! threshold := metric op value
//! op        := "<" | "<=" | ">" | ">=" | "=="
//! metric    := [scope "."] [family "."] stat        latency, in ms   (p99, token_issued.p95)
//!            | rate                                 a share          (error, forbidden_bad)
//!            | count | "status_" NNN                a count          (bad_accepted, status_429)
//!            | "throughput_rps"                     requests per second
//! scope     := "all" | an outcome | a credential kind
//! family    := "latency" | "service_time" | "schedule_lag"
//! stat      := "p" N (p50, p99.9; p999 = p99.9) | "min" | "mean" | "max"
//! value     := number unit: ms, s, us for latency (a unit is required); % or a fraction
//!              0..1 for rates; a whole number for counts; a number (optionally /s) for throughput
//! ```

use std::collections::BTreeMap;
use std::fmt;

use crate::outcome::{CredKind, Outcome};
use crate::report::{self, LatencySummary, Report, ThresholdResult};

/// Applied unless `--no-default-thresholds`: a login endpoint that lets a wrong credential in,
/// or answers 200 with something that is not a token, fails the run.
pub const DEFAULTS: [&str; 2] = ["bad_accepted == 0", "invalid_token == 0"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
}

impl Op {
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
        }
    }

    /// Equality within a relative 1e-9, so that `forbidden_bad == 100%` or `error <= 0.3` do not
    /// hinge on the last bit of a division.
    pub fn holds(self, observed: f64, limit: f64) -> bool {
        let same = (observed - limit).abs() <= 1e-9 * limit.abs().max(1.0);
        match self {
            Op::Lt => observed < limit && !same,
            Op::Le => observed <= limit || same,
            Op::Gt => observed > limit && !same,
            Op::Ge => observed >= limit || same,
            Op::Eq => same,
        }
    }
}

/// Which latency: of the whole request, or (open model) the server's part of it, or how late
/// the request started against its schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Latency,
    ServiceTime,
    ScheduleLag,
}

impl Family {
    pub const ALL: [Family; 3] = [Family::Latency, Family::ServiceTime, Family::ScheduleLag];
    pub fn name(self) -> &'static str {
        match self {
            Family::Latency => "latency",
            Family::ServiceTime => "service_time",
            Family::ScheduleLag => "schedule_lag",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stat {
    /// A percentile in (0, 100].
    Percentile(f64),
    Min,
    Mean,
    Max,
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Percentile(q) => write!(f, "p{q}"),
            Stat::Min => f.write_str("min"),
            Stat::Mean => f.write_str("mean"),
            Stat::Max => f.write_str("max"),
        }
    }
}

/// What the observed value and the limit are measured in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    /// Milliseconds.
    Ms,
    /// A share in 0..1 (shown as a percentage).
    Ratio,
    Count,
    /// Requests per second.
    Rps,
}

impl Unit {
    pub fn name(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::Ratio => "ratio",
            Unit::Count => "count",
            Unit::Rps => "rps",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    Latency {
        family: Family,
        /// `all`, an outcome name or a credential kind name.
        scope: &'static str,
        stat: Stat,
    },
    /// A key of `rates` other than throughput.
    Rate(&'static str),
    /// An outcome count, `nil_token`, `not_sent`, `total`, `good_credentials`, `bad_credentials`.
    Count(&'static str),
    /// Responses with this HTTP status.
    Status(u16),
    Throughput,
}

impl Metric {
    pub fn unit(&self) -> Unit {
        match self {
            Metric::Latency { .. } => Unit::Ms,
            Metric::Rate(_) => Unit::Ratio,
            Metric::Count(_) | Metric::Status(_) => Unit::Count,
            Metric::Throughput => Unit::Rps,
        }
    }

    /// The canonical name: `p99`, `token_issued.p95`, `service_time.p99`, `error`, ... (the
    /// scope `all` and the family `latency` are left out).
    pub fn name(&self) -> String {
        match self {
            Metric::Latency {
                family,
                scope,
                stat,
            } => {
                let mut s = String::new();
                if *scope != "all" {
                    s.push_str(scope);
                    s.push('.');
                }
                if *family != Family::Latency {
                    s.push_str(family.name());
                    s.push('.');
                }
                s.push_str(&stat.to_string());
                s
            }
            Metric::Rate(n) | Metric::Count(n) => (*n).to_owned(),
            Metric::Status(code) => format!("status_{code}"),
            Metric::Throughput => "throughput_rps".to_owned(),
        }
    }
}

/// A parsed threshold; `limit` is in the metric's unit (ms, a share in 0..1, a count, req/s).
#[derive(Clone, Debug, PartialEq)]
pub struct Threshold {
    /// As written (trimmed).
    pub expr: String,
    /// The scenario's name for it, from a `[thresholds]` table.
    pub name: Option<String>,
    pub metric: Metric,
    pub op: Op,
    pub limit: f64,
    /// One of `DEFAULTS`.
    pub default: bool,
}

const RATES: [&str; 4] = ["error", "forbidden", "forbidden_good", "forbidden_bad"];
const OTHER_COUNTS: [&str; 5] = [
    "nil_token",
    "not_sent",
    "total",
    "good_credentials",
    "bad_credentials",
];

fn scope_names() -> impl Iterator<Item = &'static str> {
    std::iter::once("all")
        .chain(Outcome::ALL.iter().map(|o| o.name()))
        .chain(CredKind::ALL.iter().map(|k| k.name()))
}

fn count_names() -> impl Iterator<Item = &'static str> {
    Outcome::ALL
        .iter()
        .map(|o| o.name())
        .chain(OTHER_COUNTS.iter().copied())
}

/// The list of metrics, shown under an unknown-metric error.
pub fn metrics_help() -> String {
    let outcomes: Vec<&str> = Outcome::ALL.iter().map(|o| o.name()).collect();
    let kinds: Vec<&str> = CredKind::ALL.iter().map(|k| k.name()).collect();
    format!(
        "valid metrics:\n\
         \x20 latency, with a unit (250ms, 1s, 500us): p50 p90 p95 p99 p99.9 (any pN), min, mean, max\n\
         \x20   of all requests (p99, latency.p99), or per outcome or credential kind (token_issued.p95, good.p99);\n\
         \x20   open model: service_time.p99, schedule_lag.p99, token_issued.service_time.p95\n\
         \x20   outcomes: {}\n\
         \x20   credential kinds: {}\n\
         \x20 rates, as 1% or 0.01: {}\n\
         \x20 counts, whole numbers: {} {}, status_NNN (e.g. status_429)\n\
         \x20 throughput: throughput_rps",
        outcomes.join(" "),
        kinds.join(" "),
        RATES.join(" "),
        outcomes.join(" "),
        OTHER_COUNTS.join(" "),
    )
}

/// A malformed threshold: what is wrong and where (character columns in `expr`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThresholdError {
    pub expr: String,
    pub column: usize,
    pub width: usize,
    pub message: String,
    /// Show the list of metrics under the message.
    pub list_metrics: bool,
}

impl fmt::Display for ThresholdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.message)?;
        writeln!(f, "    {}", self.expr)?;
        write!(
            f,
            "    {}{}",
            " ".repeat(self.column),
            "^".repeat(self.width.max(1))
        )?;
        if self.list_metrics {
            write!(f, "\n  {}", metrics_help())?;
        }
        Ok(())
    }
}

impl std::error::Error for ThresholdError {}

/// A byte range of the expression that an error points at.
struct Spot {
    start: usize,
    end: usize,
    message: String,
    list_metrics: bool,
}

fn spot(start: usize, end: usize, message: impl Into<String>) -> Spot {
    Spot {
        start,
        end,
        message: message.into(),
        list_metrics: false,
    }
}

impl Threshold {
    pub fn parse(text: &str) -> Result<Threshold, ThresholdError> {
        let expr = text.trim();
        parse_trimmed(expr).map_err(|s| ThresholdError {
            expr: expr.to_owned(),
            column: expr[..s.start.min(expr.len())].chars().count(),
            width: expr[s.start.min(expr.len())..s.end.min(expr.len())]
                .chars()
                .count(),
            message: s.message,
            list_metrics: s.list_metrics,
        })
    }

    pub fn result(&self, observed: Option<f64>) -> ThresholdResult {
        ThresholdResult {
            expr: self.expr.clone(),
            observed,
            passed: observed.is_some_and(|v| self.op.holds(v, self.limit)),
            metric: self.metric.name(),
            op: self.op.symbol().to_owned(),
            limit: Some(self.limit),
            unit: self.metric.unit().name().to_owned(),
            name: self.name.clone(),
            default: self.default,
        }
    }
}

/// The default thresholds that no given threshold on the same metric replaces.
pub fn defaults_beside(given: &[Threshold]) -> Vec<Threshold> {
    DEFAULTS
        .iter()
        .map(|d| Threshold {
            default: true,
            ..Threshold::parse(d).expect("the defaults parse")
        })
        .filter(|d| !given.iter().any(|g| g.metric == d.metric))
        .collect()
}

fn parse_trimmed(expr: &str) -> Result<Threshold, Spot> {
    if expr.is_empty() {
        return Err(spot(
            0,
            0,
            "empty threshold: write e.g. `p99 < 250ms` or `error < 1%`",
        ));
    }
    let bytes = expr.as_bytes();
    let is_name = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b'.';
    let metric_end = bytes
        .iter()
        .position(|&b| !is_name(b))
        .unwrap_or(bytes.len());
    if metric_end == 0 {
        let end = expr.char_indices().nth(1).map_or(expr.len(), |(i, _)| i);
        return Err(Spot {
            list_metrics: true,
            ..spot(0, end, "expected a metric first, e.g. `p99 < 250ms`")
        });
    }
    let metric = parse_metric(&expr[..metric_end])?;

    let op_start = skip_spaces(expr, metric_end);
    let op_end = expr[op_start..]
        .find(|c: char| !matches!(c, '<' | '>' | '=' | '!'))
        .map_or(expr.len(), |i| op_start + i);
    let op = match &expr[op_start..op_end] {
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">" => Op::Gt,
        ">=" => Op::Ge,
        "==" => Op::Eq,
        "" => {
            let end = expr[op_start..]
                .char_indices()
                .nth(1)
                .map_or(expr.len(), |(i, _)| op_start + i);
            let what = if op_start == expr.len() {
                "expected an operator (<, <=, >, >=, ==) and a value after the metric".to_owned()
            } else {
                format!(
                    "expected an operator (<, <=, >, >=, ==) after `{}`",
                    &expr[..metric_end]
                )
            };
            return Err(spot(op_start, end.max(op_start + 1), what));
        }
        "=" => return Err(spot(op_start, op_end, "`=` is not an operator: write `==`")),
        "=<" => return Err(spot(op_start, op_end, "write `<=`")),
        "=>" => return Err(spot(op_start, op_end, "write `>=`")),
        other => {
            return Err(spot(
                op_start,
                op_end,
                format!("unknown operator `{other}`: use <, <=, >, >= or =="),
            ))
        }
    };

    let value_start = skip_spaces(expr, op_end);
    if value_start == expr.len() {
        return Err(spot(
            value_start,
            value_start + 1,
            format!("expected a value after `{}`", op.symbol()),
        ));
    }
    let limit = parse_value(expr, value_start, metric)?;
    Ok(Threshold {
        expr: expr.to_owned(),
        name: None,
        metric,
        op,
        limit,
        default: false,
    })
}

fn skip_spaces(s: &str, from: usize) -> usize {
    s[from..]
        .find(|c: char| !c.is_whitespace())
        .map_or(s.len(), |i| from + i)
}

/// `p99`, `p99.9`, `p999` (the JSON key, = p99.9), `min`, `mean`, `max`.
fn parse_stat(seg: &str) -> Option<Stat> {
    match seg {
        "min" => return Some(Stat::Min),
        "mean" => return Some(Stat::Mean),
        "max" => return Some(Stat::Max),
        _ => {}
    }
    let digits = seg.strip_prefix('p')?;
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if int.is_empty() || frac.contains('.') || (digits.contains('.') && frac.is_empty()) {
        return None;
    }
    // p999 = p99.9, p9999 = p99.99 (the report's key style): the digits past 100 are decimals.
    let q: f64 = if frac.is_empty() && int.len() > 2 && int.starts_with("99") {
        format!("{}.{}", &int[..2], &int[2..]).parse().ok()?
    } else {
        digits.parse().ok()?
    };
    (q > 0.0 && q <= 100.0).then_some(Stat::Percentile(q))
}

fn parse_metric(text: &str) -> Result<Metric, Spot> {
    // Segments with their byte offsets; `p99` `.` `9` is one segment, `p99.9`.
    let mut segs: Vec<(usize, &str)> = Vec::new();
    let mut at = 0;
    for part in text.split('.') {
        let merge = matches!(segs.last(), Some((_, prev)) if parse_stat(prev).is_some()
            && prev.starts_with('p') && !prev.contains('.'))
            && !part.is_empty()
            && part.chars().all(|c| c.is_ascii_digit());
        if merge {
            let (start, _) = segs.pop().expect("checked");
            segs.push((start, &text[start..at + part.len()]));
        } else {
            segs.push((at, part));
        }
        at += part.len() + 1;
    }
    let end_of = |(start, s): (usize, &str)| start + s.len();
    if let Some(&(start, _)) = segs.iter().find(|(_, s)| s.is_empty()) {
        return Err(spot(start, start + 1, "an empty part in the metric name"));
    }
    let unknown = |(start, s): (usize, &str), what: &str| {
        let hint = suggestion(s)
            .map(|g| format!(" (did you mean `{g}`?)"))
            .unwrap_or_default();
        Spot {
            list_metrics: true,
            ..spot(
                start,
                start + s.len(),
                format!("unknown {what} `{s}`{hint}"),
            )
        }
    };
    let stat_of = |seg: (usize, &str)| {
        parse_stat(seg.1).ok_or_else(|| {
            spot(
                seg.0,
                end_of(seg),
                format!(
                    "`{}` is not a latency statistic: write p50, p95, p99, p99.9 (any pN), min, mean or max",
                    seg.1
                ),
            )
        })
    };
    let family_of = |s: &str| Family::ALL.into_iter().find(|f| f.name() == s);
    let scope_of = |s: &str| scope_names().find(|n| *n == s);
    match segs.as_slice() {
        [one] => {
            let s = one.1;
            if let Some(stat) = parse_stat(s) {
                return Ok(Metric::Latency {
                    family: Family::Latency,
                    scope: "all",
                    stat,
                });
            }
            if s == "throughput_rps" {
                return Ok(Metric::Throughput);
            }
            if let Some(r) = RATES.iter().find(|r| **r == s) {
                return Ok(Metric::Rate(r));
            }
            if let Some(c) = count_names().find(|c| *c == s) {
                return Ok(Metric::Count(c));
            }
            if let Some(code) = s.strip_prefix("status_") {
                return match code.parse::<u16>() {
                    Ok(c) if (100..=599).contains(&c) && code.len() == 3 => Ok(Metric::Status(c)),
                    _ => Err(spot(
                        one.0 + "status_".len(),
                        end_of(*one),
                        format!("`{code}` is not an HTTP status (100..599)"),
                    )),
                };
            }
            if family_of(s).is_some() || scope_of(s).is_some() {
                return Err(spot(
                    one.0,
                    end_of(*one),
                    format!("`{s}` needs a statistic: write e.g. `{s}.p99`"),
                ));
            }
            Err(unknown(*one, "metric"))
        }
        [first, stat] => {
            let stat = stat_of(*stat)?;
            if let Some(family) = family_of(first.1) {
                Ok(Metric::Latency {
                    family,
                    scope: "all",
                    stat,
                })
            } else if let Some(scope) = scope_of(first.1) {
                Ok(Metric::Latency {
                    family: Family::Latency,
                    scope,
                    stat,
                })
            } else {
                Err(unknown(
                    *first,
                    "outcome, credential kind or latency family",
                ))
            }
        }
        [scope, family, stat] => {
            let Some(scope_name) = scope_of(scope.1) else {
                return Err(unknown(*scope, "outcome or credential kind"));
            };
            let Some(family) = family_of(family.1) else {
                return Err(spot(
                    family.0,
                    end_of(*family),
                    format!(
                        "unknown latency family `{}`: write latency, service_time or schedule_lag",
                        family.1
                    ),
                ));
            };
            Ok(Metric::Latency {
                family,
                scope: scope_name,
                stat: stat_of(*stat)?,
            })
        }
        _ => Err(Spot {
            list_metrics: true,
            ..spot(0, text.len(), format!("`{text}` has too many parts"))
        }),
    }
}

/// The closest known name within two edits, for "did you mean".
fn suggestion(s: &str) -> Option<&'static str> {
    let names = scope_names()
        .chain(count_names())
        .chain(RATES.iter().copied())
        .chain(Family::ALL.iter().map(|f| f.name()))
        .chain(["throughput_rps", "min", "mean", "max"]);
    closest(s, names)
}

/// The name in `names` closest to `s` within two edits (typos), for "did you mean".
pub(crate) fn closest<'a>(s: &str, names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    names
        .map(|n| (edit_distance(s, n), n))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = here;
        }
    }
    row[b.len()]
}

/// The value at `start`: a number, then a unit that the metric decides.
fn parse_value(expr: &str, start: usize, metric: Metric) -> Result<f64, Spot> {
    let text = &expr[start..];
    let num_len = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let end = expr.len();
    let number: f64 = match text[..num_len].parse() {
        Ok(n) if num_len > 0 => n,
        _ => {
            return Err(spot(
                start,
                start + num_len.max(text.find(char::is_whitespace).unwrap_or(text.len())),
                format!("`{}` is not a number", text.trim()),
            ))
        }
    };
    let unit_start = skip_spaces(expr, start + num_len);
    let unit = &expr[unit_start..];
    let unit_spot = |message: String| spot(unit_start, end.max(unit_start + 1), message);
    let num = &text[..num_len];
    match metric.unit() {
        Unit::Ms => match unit {
            "ms" => Ok(number),
            "s" => Ok(number * 1000.0),
            "us" | "µs" => Ok(number / 1000.0),
            "" => Err(unit_spot(format!(
                "a latency needs a unit: write {num}ms, {num}s or {num}us"
            ))),
            other => Err(unit_spot(format!(
                "`{other}` is not a latency unit: write ms, s or us"
            ))),
        },
        Unit::Ratio => match unit {
            "%" if number <= 100.0 => Ok(number / 100.0),
            "%" => Err(spot(start, end, format!("{num}% is above 100%"))),
            "" if number <= 1.0 => Ok(number),
            "" => Err(spot(
                start,
                end,
                format!(
                    "a rate is a share: write {num}% or a fraction in 0..1 (e.g. {})",
                    number / 100.0
                ),
            )),
            other => Err(unit_spot(format!(
                "`{other}` is not a unit of a rate: write % or a plain fraction"
            ))),
        },
        Unit::Count => match unit {
            "" if number.fract() == 0.0 => Ok(number),
            "" => Err(spot(
                start,
                end,
                format!(
                    "`{}` is a count: write a whole number",
                    metric.name()
                ),
            )),
            _ => Err(unit_spot(format!(
                "`{}` is a count: write a whole number without a unit (rates: error, forbidden, forbidden_good, forbidden_bad)",
                metric.name()
            ))),
        },
        Unit::Rps => match unit {
            "" | "/s" | "rps" => Ok(number),
            other => Err(unit_spot(format!(
                "`{other}` is not a unit of throughput: write a number of requests per second (300 or 300/s)"
            ))),
        },
    }
}

/// Evaluates every threshold against the report: a pure function.
pub fn evaluate(report: &Report, thresholds: &[Threshold]) -> Vec<ThresholdResult> {
    thresholds
        .iter()
        .map(|t| t.result(observe(report, &t.metric)))
        .collect()
}

/// The observed value of a metric, `None` when there is no data to judge by.
pub fn observe(r: &Report, metric: &Metric) -> Option<f64> {
    // Over no request at all, nothing was measured (but the totals themselves).
    if r.counts.total == 0 && !matches!(metric, Metric::Count("total" | "not_sent")) {
        return None;
    }
    match *metric {
        Metric::Latency {
            family,
            scope,
            stat,
        } => latency(r, family, scope, stat),
        Metric::Rate(name) => match name {
            "error" => r.rates.error,
            "forbidden" => r.rates.forbidden,
            "forbidden_good" => r.rates.forbidden_good,
            "forbidden_bad" => r.rates.forbidden_bad,
            _ => None,
        },
        Metric::Count(name) => Some(count(r, name)? as f64),
        Metric::Status(code) => {
            Some(r.status_codes.get(&code.to_string()).copied().unwrap_or(0) as f64)
        }
        Metric::Throughput => Some(r.rates.throughput_rps),
    }
}

fn count(r: &Report, name: &str) -> Option<u64> {
    if let Some(o) = Outcome::ALL.iter().find(|o| o.name() == name) {
        return Some(r.counts.get(*o));
    }
    let c = &r.counts;
    Some(match name {
        "nil_token" => c.nil_token,
        "not_sent" => c.not_sent,
        "total" => c.total,
        "good_credentials" => c.good_credentials,
        "bad_credentials" => c.bad_credentials,
        _ => return None,
    })
}

/// The open model's summaries (`service_time_ms`, `schedule_lag_ms` in the report), keyed
/// `all` and by outcome. Those fields come with the open model: until they are in `Report`,
/// this gives `None` and `latency` reads the histograms `service_time.all`, ... instead.
fn open_model_summaries(r: &Report, family: Family) -> Option<&BTreeMap<String, LatencySummary>> {
    match family {
        Family::ServiceTime => r.service_time_ms.as_ref(),
        Family::ScheduleLag => r.schedule_lag_ms.as_ref(),
        Family::Latency => Some(&r.latency_ms),
    }
}

fn summary_stat(s: &LatencySummary, stat: Stat) -> Option<f64> {
    match stat {
        Stat::Min => s.min,
        Stat::Mean => s.mean,
        Stat::Max => s.max,
        Stat::Percentile(50.0) => s.p50,
        Stat::Percentile(90.0) => s.p90,
        Stat::Percentile(95.0) => s.p95,
        Stat::Percentile(99.0) => s.p99,
        Stat::Percentile(99.9) => s.p999,
        Stat::Percentile(_) => None,
    }
}

fn latency(r: &Report, family: Family, scope: &str, stat: Stat) -> Option<f64> {
    let is_kind = CredKind::ALL.iter().any(|k| k.name() == scope);
    // Latency over every request, when none got a response, is the time it took to fail to
    // connect: it says nothing about the service, so it is no data (per outcome it stays).
    let responded = r.status_codes.values().any(|n| *n > 0);
    if !responded && (scope == "all" || is_kind) {
        return None;
    }
    let summary = match family {
        Family::Latency if is_kind => r.by_credential.get(scope).map(|k| &k.latency_ms),
        Family::Latency => r.latency_ms.get(scope),
        _ => open_model_summaries(r, family).and_then(|m| m.get(scope)),
    };
    if let Some(s) = summary {
        if s.count == 0 {
            return None;
        }
        if let Some(v) = summary_stat(s, stat) {
            return Some(v);
        }
    }
    // Any other percentile, or a summary the report does not hold: the exact histogram.
    let key = match family {
        Family::Latency => scope.to_owned(),
        _ => format!("{}.{scope}", family.name()),
    };
    let h = report::decode_histogram(r.histograms.get(&key)?)?;
    if h.is_empty() {
        return None;
    }
    match stat {
        Stat::Percentile(q) => report::percentile(&h, q / 100.0),
        other => summary_stat(&report::summarize(&h), other),
    }
}

/// An observed value or a limit, in its unit, for people: `3.41 ms`, `0.25%`, `1,204`, `312.5/s`.
pub fn format_value(unit: &str, v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    match unit {
        "ms" => format!("{} ms", trim(format!("{v:.3}"))),
        "ratio" => format!("{}%", trim(format!("{:.3}", v * 100.0))),
        "count" if v.fract() == 0.0 && v >= 0.0 => crate::export::text::thousands(v as u64),
        "rps" => format!("{}/s", trim(format!("{v:.1}"))),
        _ => format!("{v}"),
    }
}

/// `20 ms`, `no data`.
pub fn format_observed(t: &ThresholdResult) -> String {
    match t.observed {
        Some(v) => format_value(&t.unit, v),
        None => "no data".to_owned(),
    }
}

/// `< 250 ms`, `== 0` (empty for a result without a limit, from an older report).
pub fn format_limit(t: &ThresholdResult) -> String {
    match t.limit {
        Some(l) => format!("{} {}", t.op, format_value(&t.unit, l)),
        None => String::new(),
    }
}

/// `latency: p99 < 250ms` for a named threshold, else the expression.
pub fn label(t: &ThresholdResult) -> String {
    match &t.name {
        Some(n) => format!("{n}: {}", t.expr),
        None => t.expr.clone(),
    }
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! Hand-built reports for the unit tests of thresholds, compare and the exporters.
    use std::time::{Duration, SystemTime};

    use crate::outcome::{classify, CredKind};
    use crate::recorder::{Record, Recorder, Timeline};
    use crate::report::{Report, RunInfo, Settings};

    const TOKEN: &[u8] = b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"";

    /// A report of `(kind, status, latency in µs)` requests (`None`: no response, a connect
    /// error), measured over one second.
    pub fn report(requests: &[(CredKind, Option<u16>, u64)]) -> Report {
        let mut rec = Recorder::new();
        for &(kind, status, latency_us) in requests {
            let classified = match status {
                Some(s) => classify(kind, s, TOKEN, 403),
                None => crate::outcome::Classified {
                    outcome: crate::outcome::Outcome::ConnectError,
                    nil_token: false,
                    token_error: None,
                },
            };
            rec.record(&Record {
                kind,
                classified,
                status,
                latency_us,
                service_us: None,
                body: TOKEN,
            });
        }
        let info = RunInfo {
            target: "http://127.0.0.1:9/".into(),
            target_addrs: vec!["127.0.0.1:9".into()],
            embedded_target: false,
            started_at: SystemTime::UNIX_EPOCH,
            measured: Duration::from_secs(1),
            load: crate::engine::Load::Closed {
                workers: crate::engine::timetable::Profile::constant(4.0, None),
            },
            scheduled: 0,
            not_sent: 0,
            interrupted: false,
            connections_opened: 4,
            settings: Settings::default(),
            warnings: Vec::new(),
        };
        Report::build(&rec, &Timeline::default(), info)
    }

    /// `good` good logins at `good_us` each and `bad` bad ones refused at `bad_us` each.
    pub fn healthy(good: usize, good_us: u64, bad: usize, bad_us: u64) -> Report {
        let mut r: Vec<(CredKind, Option<u16>, u64)> =
            vec![(CredKind::Good, Some(200), good_us); good];
        r.extend(vec![(CredKind::UnknownUser, Some(403), bad_us); bad]);
        report(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{healthy, report};
    use super::*;

    fn eval(r: &Report, expr: &str) -> ThresholdResult {
        let t = Threshold::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        evaluate(r, &[t]).remove(0)
    }

    fn err(expr: &str) -> ThresholdError {
        Threshold::parse(expr).expect_err(expr)
    }

    #[test]
    fn parses_every_kind_of_metric_and_unit() {
        let p = |s: &str| Threshold::parse(s).unwrap();
        let t = p("p99 < 250ms");
        assert_eq!(
            (t.metric.name(), t.op, t.limit, t.metric.unit()),
            ("p99".into(), Op::Lt, 250.0, Unit::Ms)
        );
        assert_eq!(p("latency.p99.9<1s").metric.name(), "p99.9");
        assert_eq!(p("latency.p99.9<1s").limit, 1000.0);
        assert_eq!(p("p999 < 1s").metric.name(), "p99.9");
        assert_eq!(p("p75 < 500us").limit, 0.5);
        assert_eq!(p("p100 <= 2 s").metric.name(), "p100");
        assert_eq!(
            p("token_issued.p95 <= 120ms").metric,
            Metric::Latency {
                family: Family::Latency,
                scope: "token_issued",
                stat: Stat::Percentile(95.0)
            }
        );
        assert_eq!(p("good.max < 1s").metric.name(), "good.max");
        assert_eq!(
            p("token_issued.service_time.p95 < 100ms").metric.name(),
            "token_issued.service_time.p95"
        );
        assert_eq!(
            p("schedule_lag.p99 < 5ms").metric.name(),
            "schedule_lag.p99"
        );
        assert_eq!(p("all.latency.mean < 5ms").metric.name(), "mean");
        let t = p("error < 1%");
        assert_eq!((t.metric, t.limit), (Metric::Rate("error"), 0.01));
        assert_eq!(p("error < 0.01").limit, 0.01);
        assert_eq!(p("forbidden_bad >= 99%").limit, 0.99);
        assert_eq!(
            p("forbidden_good == 0").metric,
            Metric::Rate("forbidden_good")
        );
        assert_eq!(p("bad_accepted == 0").metric, Metric::Count("bad_accepted"));
        assert_eq!(p("nil_token == 0").metric, Metric::Count("nil_token"));
        assert_eq!(p("status_429 <= 10").metric, Metric::Status(429));
        assert_eq!(p("throughput_rps >= 300").metric, Metric::Throughput);
        assert_eq!(p("throughput_rps >= 300/s").limit, 300.0);
        assert_eq!(p("  total>=100  ").expr, "total>=100");
    }

    #[test]
    fn malformed_thresholds_point_at_the_spot() {
        let e = err("p99 < 250");
        assert!(e.message.contains("needs a unit"), "{e}");
        assert_eq!(e.column, 9, "{e}");
        assert_eq!(
            e.to_string(),
            "a latency needs a unit: write 250ms, 250s or 250us\n    p99 < 250\n             ^"
        );

        let e = err("p99x < 250ms");
        assert_eq!((e.column, e.width), (0, 4));
        assert!(e.message.starts_with("unknown metric `p99x`"), "{e}");
        assert!(e.list_metrics);
        let shown = e.to_string();
        assert!(
            shown.contains("valid metrics:") && shown.contains("throughput_rps"),
            "{shown}"
        );

        let e = err("bad_acepted == 0");
        assert!(e.message.contains("did you mean `bad_accepted`"), "{e}");

        let e = err("token_isued.p95 < 1s");
        assert_eq!((e.column, e.width), (0, 11), "{e}");
        let e = err("token_issued.p9x < 1s");
        assert_eq!((e.column, e.width), (13, 3), "{e}");
        assert!(e.message.contains("not a latency statistic"), "{e}");
        let e = err("token_issued.latncy.p95 < 1s");
        assert_eq!(e.column, 13, "{e}");

        let e = err("error = 0");
        assert_eq!((e.column, e.width), (6, 1));
        assert!(e.message.contains("=="), "{e}");
        assert!(err("error != 0").message.contains("unknown operator"));
        assert!(err("error").message.contains("expected an operator"));
        assert!(err("error 1%").message.contains("expected an operator"));
        assert!(err("error <").message.contains("expected a value"));
        assert!(err("error < 5").message.contains("write 5%"));
        assert!(err("error < 120%").message.contains("above 100%"));
        assert!(err("error < 1ms").message.contains("not a unit of a rate"));
        assert!(err("bad_accepted == 0.5").message.contains("whole number"));
        assert!(err("bad_accepted < 1%").message.contains("whole number"));
        assert!(err("p99 < 2m").message.contains("not a latency unit"));
        assert!(err("p99 < fast").message.contains("not a number"));
        assert!(err("p0 < 1ms").message.contains("unknown metric"));
        assert!(err("p101 < 1ms").message.contains("unknown metric"));
        assert!(err("status_9999 == 0").message.contains("HTTP status"));
        assert!(err("token_issued < 1ms").message.contains("whole number"));
        assert!(err("service_time < 1ms")
            .message
            .contains("needs a statistic"));
        assert!(err("a.b.c.d < 1ms").message.contains("too many parts"));
        assert!(err("p99..9 < 1ms").message.contains("empty part"));
        assert!(err("").message.contains("empty threshold"));
        assert!(err("< 5ms").message.contains("expected a metric"));
        // Columns count characters, not bytes.
        let e = err("p99 < 5µx");
        assert_eq!(e.column, 7, "{e}");
    }

    #[test]
    fn latency_percentiles_pass_fail_and_no_data() {
        // 90 good at 1 ms, 10 bad at 2 ms (exact: under 2,048 µs HdrHistogram keeps every µs).
        let r = healthy(90, 1_000, 10, 2_000);
        let t = eval(&r, "p50 < 1.5ms");
        assert_eq!((t.observed, t.passed), (Some(1.0), true));
        assert!(!eval(&r, "p99 < 1.5ms").passed);
        assert_eq!(eval(&r, "p99 < 1.5ms").observed, Some(2.0));
        assert!(eval(&r, "token_issued.p99 <= 1ms").passed);
        assert!(eval(&r, "good.p99 <= 1000us").passed);
        assert!(eval(&r, "unknown_user.min >= 2ms").passed);
        assert!(eval(&r, "expected_403.p95 > 1.5ms").passed);
        assert!(eval(&r, "max < 0.0021s").passed);
        // A percentile the summary does not hold comes from the histogram.
        assert_eq!(eval(&r, "p80 < 1s").observed, Some(1.0));
        assert_eq!(eval(&r, "p91 < 1s").observed, Some(2.0));
        assert_eq!(eval(&r, "mean < 1s").observed, Some(1.1));
        // No samples: no data, and it fails whatever the operator.
        for expr in [
            "timeout.p99 < 1s",
            "false_403.max >= 0ms",
            "wrong_password.p50 < 1s",
        ] {
            let t = eval(&r, expr);
            assert_eq!((t.observed, t.passed), (None, false), "{expr}");
        }
        // Open-model figures are absent from a closed-model report: no data.
        for expr in [
            "service_time.p99 < 1s",
            "schedule_lag.p99 < 1s",
            "token_issued.service_time.p95 < 1s",
        ] {
            let t = eval(&r, expr);
            assert_eq!((t.observed, t.passed), (None, false), "{expr}");
        }
    }

    #[test]
    fn open_model_histograms_are_read_when_present() {
        let mut r = healthy(100, 2_000, 0, 0);
        let mut h = crate::recorder::new_histogram();
        for _ in 0..100 {
            h.record(1_500).unwrap();
        }
        r.histograms
            .insert("service_time.all".into(), report::encode_histogram(&h));
        let t = eval(&r, "service_time.p99 < 2ms");
        assert_eq!((t.observed, t.passed), (Some(1.5), true));
        assert!(!eval(&r, "schedule_lag.p99 < 2ms").passed);
    }

    #[test]
    fn rates_counts_and_throughput() {
        let r = healthy(90, 1_000, 10, 2_000);
        assert!(eval(&r, "error < 1%").passed);
        assert!(eval(&r, "error == 0").passed);
        assert_eq!(eval(&r, "forbidden < 50%").observed, Some(0.1));
        assert!(eval(&r, "forbidden == 10%").passed);
        assert!(eval(&r, "forbidden_good == 0").passed);
        assert!(eval(&r, "forbidden_bad >= 99%").passed);
        assert!(eval(&r, "forbidden_bad == 100%").passed);
        assert!(!eval(&r, "forbidden_bad < 100%").passed);
        assert!(eval(&r, "bad_accepted == 0").passed);
        assert!(eval(&r, "false_403 == 0").passed);
        assert!(eval(&r, "nil_token == 0").passed);
        assert!(eval(&r, "token_issued >= 90").passed);
        assert!(!eval(&r, "token_issued > 90").passed);
        assert!(eval(&r, "status_403 == 10").passed);
        assert!(eval(&r, "status_500 == 0").passed);
        // 100 requests over 1 s.
        assert_eq!(eval(&r, "throughput_rps >= 100").observed, Some(100.0));
        assert!(!eval(&r, "throughput_rps >= 300").passed);

        // A broken server: bad credentials let in, good ones refused.
        let broken = report(&[
            (CredKind::Good, Some(200), 1_000),
            (CredKind::Good, Some(403), 1_000),
            (CredKind::Empty, Some(200), 1_000),
            (CredKind::UnknownUser, Some(500), 1_000),
        ]);
        let t = eval(&broken, "bad_accepted == 0");
        assert_eq!((t.observed, t.passed), (Some(1.0), false));
        assert!(!eval(&broken, "false_403 == 0").passed);
        assert_eq!(eval(&broken, "error < 1%").observed, Some(0.75));
        assert!(!eval(&broken, "forbidden_good == 0").passed);
        assert_eq!(eval(&broken, "forbidden_bad >= 99%").observed, Some(0.0));
        assert!(!eval(&broken, "status_500 == 0").passed);

        // No bad credentials sent: the bad 403 rate is no data.
        let only_good = healthy(10, 1_000, 0, 0);
        let t = eval(&only_good, "forbidden_bad >= 99%");
        assert_eq!((t.observed, t.passed), (None, false));
    }

    #[test]
    fn an_unreachable_target_has_no_latency_data() {
        let r = report(&[(CredKind::Good, None, 300); 50]);
        assert!(r.unreachable());
        let t = eval(&r, "p95 < 50ms");
        assert_eq!((t.observed, t.passed), (None, false));
        assert!(!eval(&r, "good.p95 < 50ms").passed);
        // The time to fail to connect stays available per outcome.
        assert_eq!(eval(&r, "connect_error.p95 < 50ms").observed, Some(0.3));
        assert!(eval(&r, "error > 99%").passed);
        assert!(eval(&r, "bad_accepted == 0").passed);
    }

    #[test]
    fn an_empty_run_has_no_data_but_its_totals() {
        let r = report(&[]);
        assert!(!eval(&r, "bad_accepted == 0").passed);
        assert!(!eval(&r, "throughput_rps < 1000").passed);
        assert!(eval(&r, "total == 0").passed);
    }

    #[test]
    fn defaults_give_way_to_a_threshold_on_the_same_metric() {
        let d = defaults_beside(&[]);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|t| t.default));
        let given = [Threshold::parse("invalid_token <= 5").unwrap()];
        let d = defaults_beside(&given);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].expr, "bad_accepted == 0");
    }

    #[test]
    fn results_carry_metric_limit_and_unit() {
        let r = healthy(10, 2_000, 0, 0);
        let t = eval(&r, "p99 < 1s");
        assert_eq!(
            (t.metric.as_str(), t.op.as_str(), t.limit, t.unit.as_str()),
            ("p99", "<", Some(1000.0), "ms")
        );
        assert_eq!(format_observed(&t), "2 ms");
        assert_eq!(format_limit(&t), "< 1000 ms");
        let t = eval(&r, "error < 0.5%");
        assert_eq!(
            (format_observed(&t), format_limit(&t)),
            ("0%".into(), "< 0.5%".into())
        );
        assert_eq!(format_value("count", 12345.0), "12,345");
        assert_eq!(format_value("rps", 312.54), "312.5/s");
        assert_eq!(format_value("ms", 3.4105), "3.41 ms");
    }

    #[test]
    fn operators_compare_with_a_tolerance_only_at_equality() {
        assert!(Op::Le.holds(0.07, 7.0 / 100.0));
        assert!(Op::Eq.holds(0.1 + 0.2, 0.3));
        assert!(!Op::Lt.holds(0.3, 0.1 + 0.2));
        assert!(Op::Lt.holds(0.29, 0.3));
        assert!(Op::Gt.holds(2.0, 1.0) && !Op::Gt.holds(1.0, 1.0));
        assert!(Op::Ge.holds(1.0, 1.0));
    }
}
