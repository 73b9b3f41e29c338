//! The report: a serializable summary with no behaviour, the single source of every figure
//! that the exporters print (DESIGN.md section 7, `sdload.report/v1`).

use std::collections::BTreeMap;

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::outcome::{CredKind, Outcome};
use crate::recorder::{Recorder, Timeline};

pub const SCHEMA: &str = "sdload.report/v1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub schema: String,
    pub target: String,
    /// The addresses the target's host resolved to (tried in order).
    pub target_addrs: Vec<String>,
    /// True when the target was the embedded mock server.
    pub embedded_target: bool,
    pub started_at: String,
    pub duration_s: f64,
    pub model: String,
    pub concurrency: Option<u64>,
    pub rate: Option<f64>,
    /// Open model: the schedule and how much of it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleInfo>,
    /// The load's stages (target from → to over a duration), when it was not constant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageInfo>,
    pub counts: Counts,
    pub interrupted: bool,
    pub status_codes: BTreeMap<String, u64>,
    pub rates: Rates,
    /// 403 rate and latency per credential kind (`good`, `wrong_password`, `unknown_user`, `empty`).
    pub by_credential: BTreeMap<String, KindSummary>,
    pub latency_ms: BTreeMap<String, LatencySummary>,
    /// Open model only: from each request's actual start (latency runs from its schedule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time_ms: Option<BTreeMap<String, LatencySummary>>,
    /// Open model only: how late each request started against its schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lag_ms: Option<BTreeMap<String, LatencySummary>>,
    /// HdrHistogram V2, base64, in microseconds: `all` and each outcome's name for latency;
    /// `service_time.*` and `schedule_lag.*` in the open model.
    pub histograms: BTreeMap<String, String>,
    pub timeline: Vec<TimelineSecond>,
    pub thresholds: Vec<ThresholdResult>,
    /// Why 200 bodies were not tokens: reason → count and one short snippet.
    pub invalid_tokens: BTreeMap<String, Problem>,
    /// One example per failing outcome: outcome → count and message.
    pub problems: BTreeMap<String, Problem>,
    pub redirect_location: Option<String>,
    pub connections_opened: u64,
    pub settings: Settings,
    pub warnings: Vec<String>,
    /// Time to open a TCP connection, per new connection (warm-up included).
    #[serde(default)]
    pub connect_ms: LatencySummary,
    /// Time to finish the TLS handshake, per new connection (https only).
    #[serde(default)]
    pub tls_handshake_ms: LatencySummary,
    /// The TLS in use; `null` for an http target.
    #[serde(default)]
    pub tls: Option<TlsInfo>,
    /// What became of redirects (`--follow-redirects`).
    #[serde(default)]
    pub redirects: Redirects,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct TlsInfo {
    /// The version of the first completed handshake ("TLSv1.3"); `null` when none completed.
    pub version: Option<String>,
    pub cipher_suite: Option<String>,
    /// Certificates were not verified (`--insecure`).
    pub insecure: bool,
    /// The private CA trusted instead of the system's roots (`--ca-cert`).
    pub ca_cert: Option<String>,
    /// A client certificate was offered (`--client-cert`).
    pub client_cert: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Redirects {
    /// `--follow-redirects` was on.
    pub follow: bool,
    /// 307/308 hops followed (latency covers every hop).
    pub followed: u64,
    /// 301/302/303 not followed: they would have turned the POST into a GET.
    pub not_followed: u64,
    /// https -> http redirects refused: the credentials would travel in clear text.
    pub refused_insecure: u64,
    /// Chains cut after the most hops followed for one login.
    pub too_many: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub total: u64,
    pub good_credentials: u64,
    pub bad_credentials: u64,
    pub token_issued: u64,
    pub expected_403: u64,
    pub false_403: u64,
    pub bad_accepted: u64,
    pub invalid_token: u64,
    pub other_status: u64,
    pub timeout: u64,
    pub connect_error: u64,
    pub io_error: u64,
    pub unfinished: u64,
    pub nil_token: u64,
    pub not_sent: u64,
}

impl Counts {
    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::TokenIssued => self.token_issued,
            Outcome::Expected403 => self.expected_403,
            Outcome::False403 => self.false_403,
            Outcome::BadAccepted => self.bad_accepted,
            Outcome::InvalidToken => self.invalid_token,
            Outcome::OtherStatus => self.other_status,
            Outcome::Timeout => self.timeout,
            Outcome::ConnectError => self.connect_error,
            Outcome::IoError => self.io_error,
            Outcome::Unfinished => self.unfinished,
        }
    }
}

/// Shares in 0..1. A rate over no requests is `null`, never NaN.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Rates {
    pub throughput_rps: f64,
    pub forbidden: Option<f64>,
    pub forbidden_good: Option<f64>,
    pub forbidden_bad: Option<f64>,
    pub error: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct KindSummary {
    pub requests: u64,
    pub forbidden: u64,
    pub forbidden_rate: Option<f64>,
    pub latency_ms: LatencySummary,
}

/// Percentiles by the nearest-rank rule, in milliseconds; `null` over no samples.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub min: Option<f64>,
    pub mean: Option<f64>,
    pub stdev: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    pub p999: Option<f64>,
    pub max: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TimelineSecond {
    pub t_s: u32,
    /// Requests started in this second (in the open model: scheduled in it).
    pub requests: u64,
    pub errors: u64,
    pub forbidden: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Open model: the requests the schedule asked for in this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_rate: Option<f64>,
    /// Closed model with stages: the target number of workers in the middle of this second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_workers: Option<f64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScheduleInfo {
    pub arrivals: crate::engine::timetable::Arrivals,
    pub max_in_flight: u64,
    /// Requests the schedule asked for in the measured part (those due before the end).
    pub scheduled: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StageInfo {
    pub duration_s: f64,
    pub from: f64,
    pub to: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ThresholdResult {
    pub expr: String,
    /// In `unit`; `null` when there was no data (which fails the threshold).
    pub observed: Option<f64>,
    pub passed: bool,
    /// The canonical metric name (`p99`, `token_issued.p95`, `error`, `bad_accepted`).
    #[serde(default)]
    pub metric: String,
    /// `<`, `<=`, `>`, `>=` or `==`.
    #[serde(default)]
    pub op: String,
    /// The limit, in `unit`.
    #[serde(default)]
    pub limit: Option<f64>,
    /// `ms`, `ratio` (a share in 0..1), `count` or `rps`.
    #[serde(default)]
    pub unit: String,
    /// The scenario's name for it (a `[thresholds]` table key).
    #[serde(default)]
    pub name: Option<String>,
    /// A default threshold (`bad_accepted == 0`, `invalid_token == 0`).
    #[serde(default)]
    pub default: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Problem {
    pub count: u64,
    pub example: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Settings {
    pub scenario: String,
    pub requests: Option<u64>,
    pub duration_s: Option<f64>,
    pub warmup_s: f64,
    pub timeout_s: f64,
    pub grace_s: f64,
    pub bad_ratio: f64,
    pub bad_kinds: BTreeMap<String, u32>,
    pub seed: u64,
    pub reject_status: u16,
    pub lockout_test: bool,
    pub good_users: usize,
    pub decoy_users: usize,
}

/// Everything about the run that is not in the recorder.
pub struct RunInfo {
    pub target: String,
    pub target_addrs: Vec<String>,
    pub embedded_target: bool,
    pub started_at: std::time::SystemTime,
    pub measured: std::time::Duration,
    pub load: crate::engine::Load,
    pub scheduled: u64,
    pub not_sent: u64,
    pub interrupted: bool,
    pub connections_opened: u64,
    pub settings: Settings,
    pub warnings: Vec<String>,
}

fn share(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

fn ms(us: u64) -> f64 {
    // Three decimals: microsecond resolution, without float noise in the JSON.
    (us as f64 / 1000.0 * 1000.0).round() / 1000.0
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The nearest-rank percentile (hdrhistogram's rule: the smallest recorded value at or above
/// which `q` of the samples fall), `None` over no samples.
pub fn percentile(h: &Histogram<u64>, q: f64) -> Option<f64> {
    (!h.is_empty()).then(|| ms(h.value_at_quantile(q)))
}

pub fn summarize(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    LatencySummary {
        count: h.len(),
        min: Some(ms(h.min())),
        mean: Some(round3(h.mean() / 1000.0)),
        stdev: Some(round3(h.stdev() / 1000.0)),
        p50: percentile(h, 0.50),
        p90: percentile(h, 0.90),
        p95: percentile(h, 0.95),
        p99: percentile(h, 0.99),
        p999: percentile(h, 0.999),
        max: Some(ms(h.max())),
    }
}

pub fn summarize_lazy(h: Option<&Histogram<u64>>) -> LatencySummary {
    h.map(summarize).unwrap_or_default()
}

/// Summaries of `all` and every outcome (empty ones included, with null percentiles), and the
/// serialized histograms of the non-empty ones under `prefix` + name.
fn summaries(
    l: &crate::recorder::Latencies,
    prefix: &str,
    histograms: &mut BTreeMap<String, String>,
) -> BTreeMap<String, LatencySummary> {
    let mut out = BTreeMap::new();
    let mut put = |name: &str, h: Option<&Histogram<u64>>| {
        out.insert(name.to_owned(), summarize_lazy(h));
        if let Some(h) = h {
            histograms.insert(format!("{prefix}{name}"), encode_histogram(h));
        }
    };
    put("all", l.all.as_ref());
    for o in Outcome::ALL {
        put(o.name(), l.outcome(o));
    }
    out
}

/// HdrHistogram V2 serialization, base64: readable by every HdrHistogram implementation, and
/// merged exactly across runs.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2Serializer::new()
        .serialize(h, &mut buf)
        .expect("serializing to memory cannot fail");
    base64::engine::general_purpose::STANDARD.encode(buf)
}

pub fn decode_histogram(text: &str) -> Option<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()?;
    hdrhistogram::serialization::Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .ok()
}

impl Report {
    pub fn build(rec: &Recorder, timeline: &Timeline, info: RunInfo) -> Report {
        let c = |o: Outcome| rec.count(o);
        let total = rec.total();
        let good = rec.kind_counts[CredKind::Good.index()];
        let counts = Counts {
            total,
            good_credentials: good,
            bad_credentials: total - good,
            token_issued: c(Outcome::TokenIssued),
            expected_403: c(Outcome::Expected403),
            false_403: c(Outcome::False403),
            bad_accepted: c(Outcome::BadAccepted),
            invalid_token: c(Outcome::InvalidToken),
            other_status: c(Outcome::OtherStatus),
            timeout: c(Outcome::Timeout),
            connect_error: c(Outcome::ConnectError),
            io_error: c(Outcome::IoError),
            unfinished: c(Outcome::Unfinished),
            nil_token: rec.nil_tokens,
            not_sent: info.not_sent,
        };
        let forbidden_total: u64 = rec.kind_forbidden.iter().sum();
        let forbidden_good = rec.kind_forbidden[CredKind::Good.index()];
        let errors: u64 = Outcome::ALL
            .iter()
            .filter(|o| o.is_error())
            .map(|&o| c(o))
            .sum();
        let secs = info.measured.as_secs_f64();
        let rates = Rates {
            throughput_rps: if secs > 0.0 {
                round3(total as f64 / secs)
            } else {
                0.0
            },
            forbidden: share(forbidden_total, total),
            forbidden_good: share(forbidden_good, good),
            forbidden_bad: share(forbidden_total - forbidden_good, total - good),
            error: share(errors, total),
        };
        let mut histograms = BTreeMap::new();
        let latency_ms = summaries(&rec.latency, "", &mut histograms);
        let open = !rec.service.is_empty();
        let service_time_ms =
            open.then(|| summaries(&rec.service, "service_time.", &mut histograms));
        let schedule_lag_ms = open.then(|| summaries(&rec.lag, "schedule_lag.", &mut histograms));
        let by_credential = CredKind::ALL
            .iter()
            .map(|&k| {
                let requests = rec.kind_counts[k.index()];
                let forbidden = rec.kind_forbidden[k.index()];
                let summary = KindSummary {
                    requests,
                    forbidden,
                    forbidden_rate: share(forbidden, requests),
                    latency_ms: summarize_lazy(rec.by_kind[k.index()].as_ref()),
                };
                (k.name().to_owned(), summary)
            })
            .collect();
        use crate::engine::Load;
        let (model, concurrency, rate, schedule, profile) = match &info.load {
            Load::Closed { workers } => (
                "closed",
                Some(workers.peak().ceil() as u64),
                None,
                None,
                workers,
            ),
            Load::Open {
                rate,
                arrivals,
                max_in_flight,
            } => (
                "open",
                None,
                Some(rate.peak()),
                Some(ScheduleInfo {
                    arrivals: *arrivals,
                    max_in_flight: *max_in_flight,
                    scheduled: info.scheduled,
                }),
                rate,
            ),
        };
        let staged = profile.stages().len() > 1 || profile.stages().iter().any(|s| s.from != s.to);
        let stages = if staged {
            profile
                .stages()
                .iter()
                .map(|s| StageInfo {
                    duration_s: s.duration.as_secs_f64(),
                    from: s.from,
                    to: s.to,
                })
                .collect()
        } else {
            Vec::new()
        };
        let timeline = timeline
            .seconds
            .iter()
            .map(|s| {
                let t = s.second as f64;
                TimelineSecond {
                    t_s: s.second,
                    requests: s.requests,
                    errors: s.errors,
                    forbidden: s.forbidden,
                    p50_ms: s.p50_us().map(ms),
                    p99_ms: s.p99_us().map(ms),
                    target_rate: (model == "open")
                        .then(|| round3(profile.count_until(t + 1.0) - profile.count_until(t))),
                    target_workers: (model == "closed" && staged)
                        .then(|| round3(profile.at(t + 0.5))),
                }
            })
            .collect();
        let problem = |s: &crate::recorder::Sample| Problem {
            count: s.count,
            example: s.example.clone(),
        };
        Report {
            schema: SCHEMA.to_owned(),
            target: info.target,
            target_addrs: info.target_addrs,
            embedded_target: info.embedded_target,
            started_at: humantime::format_rfc3339_seconds(info.started_at).to_string(),
            duration_s: round3(secs),
            model: model.to_owned(),
            concurrency,
            rate,
            schedule,
            stages,
            counts,
            interrupted: info.interrupted,
            status_codes: rec
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect(),
            rates,
            by_credential,
            latency_ms,
            service_time_ms,
            schedule_lag_ms,
            histograms,
            timeline,
            thresholds: Vec::new(),
            invalid_tokens: rec
                .invalid_tokens
                .iter()
                .map(|(e, s)| (e.name().to_owned(), problem(s)))
                .collect(),
            problems: rec
                .failures
                .iter()
                .map(|(o, s)| (o.name().to_owned(), problem(s)))
                .collect(),
            redirect_location: rec.redirect_location.clone(),
            connections_opened: info.connections_opened,
            settings: info.settings,
            warnings: info.warnings,
            connect_ms: LatencySummary::default(),
            tls_handshake_ms: LatencySummary::default(),
            tls: None,
            redirects: Redirects::default(),
        }
    }

    /// True when no request got any response at all (the target could not be reached).
    /// DESIGN's exit 3: requests were sent and not one got any response (refused, TLS
    /// failures, broken connections, silence), as opposed to a server that answered badly.
    pub fn unreachable(&self) -> bool {
        self.counts.total > 0 && self.status_codes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank_and_null_when_empty() {
        let mut h = crate::recorder::new_histogram();
        // Values under 2048 µs are exact at 3 significant digits.
        for v in 1..=100u64 {
            h.record(v * 10).unwrap();
        }
        let s = summarize(&h);
        assert_eq!(s.count, 100);
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.max),
            (Some(0.01), Some(0.5), Some(0.9), Some(0.99), Some(1.0))
        );
        // p100 equals max.
        assert_eq!(percentile(&h, 1.0), s.max);
        let empty = summarize(&crate::recorder::new_histogram());
        assert_eq!((empty.count, empty.p50, empty.max), (0, None, None));
        let json = serde_json::to_value(&empty).unwrap();
        assert!(json["p99"].is_null());
    }

    #[test]
    fn histograms_round_trip() {
        let mut h = crate::recorder::new_histogram();
        for v in [1u64, 10, 100, 5_000, 2_000_000] {
            h.record(v).unwrap();
        }
        let back = decode_histogram(&encode_histogram(&h)).unwrap();
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }
}
