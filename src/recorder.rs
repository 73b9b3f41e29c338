//! Recording: outcomes and latencies → counts and histograms. Each worker owns a `Recorder`
//! (no lock on the hot path); they are merged once at the end. Each worker also cuts its
//! records into one-second `Interval`s sent to the collector, which builds the `Timeline`
//! and feeds the progress display.

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::outcome::{Classified, CredKind, Outcome};
use crate::token::TokenError;

/// Latencies are recorded in microseconds with 3 significant digits; histograms resize
/// themselves, so no value is ever dropped or clamped.
pub fn new_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(3).expect("3 significant digits is valid");
    h.auto(true);
    h
}

/// Timeline seconds keep 2 significant digits: enough for a p99 per second, at a tenth of
/// the memory, so that an hour-long run's timeline stays small.
fn new_interval_histogram() -> Histogram<u64> {
    let mut h = Histogram::new(2).expect("2 significant digits is valid");
    h.auto(true);
    h
}

/// The longest body snippet a report shows.
pub const SNIPPET_CHARS: usize = 200;

/// What a request produced, as the recorder needs it.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    pub kind: CredKind,
    pub classified: Classified,
    /// `None` when no response came back.
    pub status: Option<u16>,
    /// From the intended start (the schedule, in the open model) to the end of the response.
    pub latency_us: u64,
    /// From the actual start; `Some` only in the open model, where it can differ from latency.
    pub service_us: Option<u64>,
    /// The body (for a snippet when the outcome needs one).
    pub body: &'a [u8],
}

/// A first example of something that went wrong, kept once per kind of problem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub count: u64,
    pub example: String,
}

/// A histogram allocated on its first value: a worker that never sees an outcome (most never
/// see most) spends no memory on it, which matters with thousands of connections.
pub type Lazy = Option<Histogram<u64>>;

/// One measure (latency, service time or schedule lag) for all requests and per outcome.
#[derive(Clone, Debug, Default)]
pub struct Latencies {
    pub all: Lazy,
    pub by_outcome: [Lazy; Outcome::COUNT],
}

impl Latencies {
    fn record(&mut self, outcome: Outcome, us: u64) {
        record_lazy(&mut self.all, us);
        record_lazy(&mut self.by_outcome[outcome.index()], us);
    }

    fn merge(&mut self, other: &Latencies) {
        merge_lazy(&mut self.all, &other.all);
        for (into, from) in self.by_outcome.iter_mut().zip(&other.by_outcome) {
            merge_lazy(into, from);
        }
    }

    pub fn outcome(&self, outcome: Outcome) -> Option<&Histogram<u64>> {
        self.by_outcome[outcome.index()].as_ref()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_none()
    }
}

fn record_lazy(h: &mut Lazy, us: u64) {
    record_value(h.get_or_insert_with(new_histogram), us);
}

fn merge_lazy(into: &mut Lazy, from: &Lazy) {
    if let Some(from) = from {
        add(into.get_or_insert_with(new_histogram), from);
    }
}

#[derive(Clone, Debug)]
pub struct Recorder {
    pub counts: [u64; Outcome::COUNT],
    pub kind_counts: [u64; 4],
    /// 403 responses per credential kind (the "403 rate" is about 403, whatever the reject status).
    pub kind_forbidden: [u64; 4],
    pub latency: Latencies,
    /// Open model only: from the actual start, and how late the start was against the schedule.
    pub service: Latencies,
    pub lag: Latencies,
    pub by_kind: [Lazy; 4],
    /// Status codes seen, with counts (a handful of codes: a linear scan beats a map).
    pub statuses: Vec<(u16, u64)>,
    pub nil_tokens: u64,
    /// Why 200 bodies were not tokens, each with one snippet.
    pub invalid_tokens: Vec<(TokenError, Sample)>,
    /// One example message per failure outcome (timeout, connect_error, io_error, other_status...).
    pub failures: Vec<(Outcome, Sample)>,
    /// The `Location` of the first redirect.
    pub redirect_location: Option<String>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            counts: [0; Outcome::COUNT],
            kind_counts: [0; 4],
            kind_forbidden: [0; 4],
            latency: Latencies::default(),
            service: Latencies::default(),
            lag: Latencies::default(),
            by_kind: Default::default(),
            statuses: Vec::new(),
            nil_tokens: 0,
            invalid_tokens: Vec::new(),
            failures: Vec::new(),
            redirect_location: None,
        }
    }

    pub fn record(&mut self, r: &Record<'_>) {
        let outcome = r.classified.outcome;
        self.counts[outcome.index()] += 1;
        self.kind_counts[r.kind.index()] += 1;
        // A zero latency is recorded as 1 µs: the histogram's lowest value.
        let v = r.latency_us.max(1);
        self.latency.record(outcome, v);
        record_lazy(&mut self.by_kind[r.kind.index()], v);
        if let Some(service) = r.service_us {
            let service = service.max(1).min(v);
            self.service.record(outcome, service);
            // Lag 0 is recorded as 1 µs too (the histogram's floor): "on time".
            self.lag.record(outcome, (v - service).max(1));
        }
        if let Some(status) = r.status {
            if status == 403 {
                self.kind_forbidden[r.kind.index()] += 1;
            }
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, n)) => *n += 1,
                None => self.statuses.push((status, 1)),
            }
        }
        if r.classified.nil_token {
            self.nil_tokens += 1;
        }
        if let Some(e) = r.classified.token_error {
            sample(&mut self.invalid_tokens, e, || snippet(r.body));
        } else if outcome == Outcome::OtherStatus {
            let status = r.status.unwrap_or(0);
            sample(&mut self.failures, outcome, || {
                format!("HTTP {status}: {}", snippet(r.body))
            });
        } else if outcome == Outcome::BadAccepted {
            sample(&mut self.failures, outcome, || {
                format!("a {} credential got HTTP 200", r.kind.name())
            });
        }
    }

    /// Counts a failure's message once per outcome (the first example is kept).
    pub fn note_failure(&mut self, outcome: Outcome, message: impl FnOnce() -> String) {
        sample(&mut self.failures, outcome, message);
    }

    pub fn note_redirect(&mut self, location: &str) {
        if self.redirect_location.is_none() {
            self.redirect_location = Some(location.chars().take(SNIPPET_CHARS).collect());
        }
    }

    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn count(&self, outcome: Outcome) -> u64 {
        self.counts[outcome.index()]
    }

    pub fn merge(&mut self, other: &Recorder) {
        for i in 0..Outcome::COUNT {
            self.counts[i] += other.counts[i];
        }
        self.latency.merge(&other.latency);
        self.service.merge(&other.service);
        self.lag.merge(&other.lag);
        for i in 0..4 {
            self.kind_counts[i] += other.kind_counts[i];
            self.kind_forbidden[i] += other.kind_forbidden[i];
            merge_lazy(&mut self.by_kind[i], &other.by_kind[i]);
        }
        for &(status, n) in &other.statuses {
            match self.statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, m)) => *m += n,
                None => self.statuses.push((status, n)),
            }
        }
        self.statuses.sort_unstable();
        self.nil_tokens += other.nil_tokens;
        for (key, s) in &other.invalid_tokens {
            merge_sample(&mut self.invalid_tokens, *key, s);
        }
        for (key, s) in &other.failures {
            merge_sample(&mut self.failures, *key, s);
        }
        if self.redirect_location.is_none() {
            self.redirect_location.clone_from(&other.redirect_location);
        }
    }
}

fn record_value(h: &mut Histogram<u64>, v: u64) {
    // With auto-resize on, recording only fails for values beyond u64 range.
    h.record(v).expect("auto-resizing histogram takes any u64");
}

fn add(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Most of a worker's histograms are empty (one per outcome and kind): merging 10,000
    // workers costs seconds when each empty one is walked.
    if from.is_empty() {
        return;
    }
    into.add(from)
        .expect("auto-resizing histograms always merge");
}

fn sample<K: PartialEq>(samples: &mut Vec<(K, Sample)>, key: K, example: impl FnOnce() -> String) {
    match samples.iter_mut().find(|(k, _)| *k == key) {
        Some((_, s)) => s.count += 1,
        None => samples.push((
            key,
            Sample {
                count: 1,
                example: example(),
            },
        )),
    }
}

fn merge_sample<K: PartialEq + Copy>(samples: &mut Vec<(K, Sample)>, key: K, from: &Sample) {
    match samples.iter_mut().find(|(k, _)| *k == key) {
        Some((_, s)) => s.count += from.count,
        None => samples.push((key, from.clone())),
    }
}

/// At most `SNIPPET_CHARS` characters of a body, on one line, never a whole page.
pub fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(SNIPPET_CHARS * 4)]);
    let mut out = String::new();
    let mut last_space = true;
    for c in text.chars() {
        let c = if c.is_control() || c.is_whitespace() {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
        if out.chars().count() >= SNIPPET_CHARS {
            out.push('…');
            break;
        }
    }
    if out.is_empty() {
        "(empty body)".into()
    } else {
        out.trim_end().to_owned()
    }
}

/// One second of one worker's records, sent to the collector when the worker moves on.
#[derive(Clone, Debug)]
pub struct Interval {
    pub second: u32,
    pub requests: u64,
    pub errors: u64,
    pub forbidden: u64,
    pub latency: Histogram<u64>,
}

impl Interval {
    pub fn new(second: u32) -> Interval {
        Interval {
            second,
            requests: 0,
            errors: 0,
            forbidden: 0,
            latency: new_interval_histogram(),
        }
    }

    pub fn record(&mut self, outcome: Outcome, status: Option<u16>, latency_us: u64) {
        self.requests += 1;
        self.errors += outcome.is_error() as u64;
        self.forbidden += (status == Some(403)) as u64;
        record_value(&mut self.latency, latency_us.max(1));
    }
}

/// The per-second timeline, merged from every thread's intervals. They may arrive late (a
/// thread moves past a second only when a request of a later second ends), so a second keeps
/// its latency histogram while late intervals can still come, `horizon` seconds behind the
/// newest; then only its counts and percentiles stay. Without that, a long run's timeline
/// grew by a histogram (about 10 KB) every second.
#[derive(Clone, Debug)]
pub struct Timeline {
    pub seconds: Vec<Second>,
    horizon: u32,
    /// Seconds before this one are closed.
    closed: usize,
}

/// One second of the timeline.
#[derive(Clone, Debug)]
pub struct Second {
    pub second: u32,
    pub requests: u64,
    pub errors: u64,
    pub forbidden: u64,
    /// `None` once the second is closed.
    latency: Option<Histogram<u64>>,
    /// p50 and p99 in µs, kept when the second closes.
    kept: (Option<u64>, Option<u64>),
}

impl Second {
    fn new(second: u32) -> Second {
        Second {
            second,
            requests: 0,
            errors: 0,
            forbidden: 0,
            latency: Some(new_interval_histogram()),
            kept: (None, None),
        }
    }

    fn quantile(&self, q: f64) -> Option<u64> {
        self.latency
            .as_ref()
            .and_then(|h| (!h.is_empty()).then(|| h.value_at_quantile(q)))
    }

    pub fn p50_us(&self) -> Option<u64> {
        self.quantile(0.5).or(self.kept.0)
    }

    pub fn p99_us(&self) -> Option<u64> {
        self.quantile(0.99).or(self.kept.1)
    }

    fn close(&mut self) {
        self.kept = (self.quantile(0.5), self.quantile(0.99));
        self.latency = None;
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new(Duration::from_secs(60))
    }
}

impl Timeline {
    /// `late`: how long after its second an interval may still arrive (the request timeout
    /// plus the grace period bound it).
    pub fn new(late: Duration) -> Timeline {
        Timeline {
            seconds: Vec::new(),
            horizon: late.as_secs().saturating_add(3).min(u32::MAX as u64) as u32,
            closed: 0,
        }
    }

    pub fn merge(&mut self, interval: Interval) {
        let s = interval.second as usize;
        while self.seconds.len() <= s {
            let next = self.seconds.len() as u32;
            self.seconds.push(Second::new(next));
        }
        let into = &mut self.seconds[s];
        into.requests += interval.requests;
        into.errors += interval.errors;
        into.forbidden += interval.forbidden;
        // Later than the horizon (never seen): the counts still add up; the percentiles of
        // a closed second stay as they were.
        if let Some(latency) = &mut into.latency {
            add(latency, &interval.latency);
        }
        let open_from = self.seconds.len().saturating_sub(self.horizon as usize);
        while self.closed < open_from {
            self.seconds[self.closed].close();
            self.closed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(second: u32, latencies_us: &[u64]) -> Interval {
        let mut i = Interval::new(second);
        for &us in latencies_us {
            i.record(Outcome::TokenIssued, Some(200), us);
        }
        i
    }

    #[test]
    fn the_timeline_keeps_histograms_only_within_the_horizon() {
        // Late by at most 2 s: horizon 5 seconds.
        let mut t = Timeline::new(Duration::from_secs(2));
        for s in 0..100 {
            t.merge(interval(s, &[1000, 2000, 3000, 50_000]));
        }
        let open = t.seconds.iter().filter(|s| s.latency.is_some()).count();
        assert_eq!(open, 5);
        // Closed seconds keep their counts and percentiles.
        let first = &t.seconds[0];
        assert_eq!(first.requests, 4);
        assert_eq!(first.p50_us(), t.seconds[99].p50_us());
        assert_eq!(first.p99_us(), t.seconds[99].p99_us());
        assert!((1990..=2010).contains(&first.p50_us().unwrap()));
        assert!((49_500..=50_500).contains(&first.p99_us().unwrap()));
        // An interval later than the horizon still counts; a recent one still moves p99.
        t.merge(interval(0, &[900_000]));
        assert_eq!(t.seconds[0].requests, 5);
        t.merge(interval(98, &[900_000; 10]));
        assert!(t.seconds[98].p99_us().unwrap() > 800_000);
    }

    fn rec(kind: CredKind, outcome: Outcome, status: Option<u16>, us: u64) -> Record<'static> {
        Record {
            kind,
            classified: Classified {
                outcome,
                nil_token: false,
                token_error: None,
            },
            status,
            latency_us: us,
            service_us: None,
            body: b"",
        }
    }

    #[test]
    fn counts_and_histograms_add_up_after_merge() {
        let mut a = Recorder::new();
        let mut b = Recorder::new();
        for i in 0..100 {
            a.record(&rec(
                CredKind::Good,
                Outcome::TokenIssued,
                Some(200),
                1000 + i,
            ));
            b.record(&rec(
                CredKind::UnknownUser,
                Outcome::Expected403,
                Some(403),
                5000,
            ));
        }
        b.record(&rec(CredKind::Good, Outcome::Timeout, None, 200_000));
        a.merge(&b);
        assert_eq!(a.total(), 201);
        assert_eq!(a.latency.all.as_ref().unwrap().len(), 201);
        assert_eq!(a.latency.outcome(Outcome::TokenIssued).unwrap().len(), 100);
        assert_eq!(a.latency.outcome(Outcome::Timeout).unwrap().len(), 1);
        assert!(
            a.latency.outcome(Outcome::IoError).is_none(),
            "never allocated"
        );
        assert!(a.service.is_empty(), "closed model: no service time");
        assert_eq!(a.kind_forbidden[CredKind::UnknownUser.index()], 100);
        assert_eq!(a.statuses, vec![(200, 100), (403, 100)]);
        // A very slow value is kept, not clamped.
        a.record(&rec(CredKind::Good, Outcome::Timeout, None, 7_200_000_000));
        assert!(a.latency.all.as_ref().unwrap().max() >= 7_200_000_000);
    }

    #[test]
    fn open_model_records_service_time_and_lag() {
        let mut r = Recorder::new();
        let mut one = rec(CredKind::Good, Outcome::TokenIssued, Some(200), 900_000);
        one.service_us = Some(100_000);
        r.record(&one);
        assert_eq!(r.service.all.as_ref().unwrap().max(), 100_031);
        let lag = r.lag.all.as_ref().unwrap().max();
        assert!((799_000..=801_000).contains(&lag), "{lag}");
    }

    #[test]
    fn snippets_are_short_single_line() {
        let page = format!("<html>\n<body>{}</body></html>", "x".repeat(5000));
        let s = snippet(page.as_bytes());
        assert!(s.chars().count() <= SNIPPET_CHARS + 1, "{}", s.len());
        assert!(!s.contains('\n'));
        assert_eq!(snippet(b""), "(empty body)");
    }

    #[test]
    fn timeline_merges_late_intervals() {
        let mut t = Timeline::default();
        let mut i = Interval::new(2);
        i.record(Outcome::TokenIssued, Some(200), 100);
        t.merge(i);
        let mut j = Interval::new(0);
        j.record(Outcome::Timeout, None, 100);
        t.merge(j);
        assert_eq!(t.seconds.len(), 3);
        assert_eq!((t.seconds[0].requests, t.seconds[0].errors), (1, 1));
        assert_eq!(t.seconds[1].requests, 0);
        assert_eq!(t.seconds[2].requests, 1);
    }
}
