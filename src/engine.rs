//! The engine: workers send requests and record outcomes; the coordinator decides when
//! the run ends. Closed model: N workers, each with its own keep-alive connection, each
//! sending its next request as soon as the previous one ended.
//!
//! End of a run: at the end of `duration` (or when `requests` have been claimed, or on Ctrl-C)
//! workers start nothing new; requests still in flight get `grace`, then count as `unfinished`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::credentials::Mix;
use crate::outcome::{classify, Classified, Outcome};
use crate::recorder::{Interval, Record, Recorder};
use crate::transport::{Failure, Transport};

/// Everything a run needs, resolved.
pub struct Setup {
    pub transport: Transport,
    pub mix: Arc<Mix>,
    pub concurrency: u64,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
    pub timeout: Duration,
    pub grace: Duration,
    pub reject_status: u16,
}

/// What a run produced.
pub struct Finished {
    pub recorder: Recorder,
    pub started_at: SystemTime,
    /// From the end of the warm-up to the moment the last request ended or was cut.
    pub measured: Duration,
    pub interrupted: bool,
    /// The run ended early because nothing at all answered (see `UNREACHABLE_AFTER`).
    pub gave_up: bool,
    /// New connections opened, all workers together (warm-up included).
    pub connections: u64,
}

/// Shared, read-mostly state of a run: the request counter and the stop flag are the only
/// shared words a worker touches per request (one atomic add, one load; no lock).
struct Shared {
    setup: Setup,
    next: AtomicU64,
    warm_next: AtomicU64,
    stop: AtomicBool,
    /// Set once any response (of any status) came back, and once any connect failed: a target
    /// that never answered anything is given up on instead of hammered for the whole run.
    answered: AtomicBool,
    connect_failed: AtomicBool,
    warm_until: Instant,
    end_at: Option<Instant>,
}

/// Runs the load. Intervals go to `intervals` as the run goes (for the timeline and the
/// progress display); `cancel` (Ctrl-C) ends the run early, keeping what was done.
pub async fn run(
    setup: Setup,
    intervals: mpsc::UnboundedSender<Interval>,
    cancel: CancellationToken,
) -> Finished {
    let started_at = SystemTime::now();
    let start = Instant::now();
    let warm_until = start + setup.warmup;
    let end_at = setup.duration.map(|d| warm_until + d);
    let grace = setup.grace;
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        warm_next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        answered: AtomicBool::new(false),
        connect_failed: AtomicBool::new(false),
        warm_until,
        end_at,
        setup,
    });

    let mut workers = JoinSet::new();
    let mut hard_stops = Vec::new();
    for _ in 0..shared.setup.concurrency {
        let (tx, rx) = oneshot::channel();
        hard_stops.push(tx);
        workers.spawn(worker(shared.clone(), intervals.clone(), rx));
    }
    drop(intervals);

    let mut recorder = Recorder::new();
    let mut connections = 0;
    let mut collect = |r: Result<(Recorder, u64), tokio::task::JoinError>| {
        let (worker_recorder, connects) = r.expect("a worker panicked");
        recorder.merge(&worker_recorder);
        connections += connects;
    };

    // Phase 1: until the end of the duration, the last request, or Ctrl-C.
    let end_sleep = tokio::time::sleep_until(
        end_at.unwrap_or_else(|| start + Duration::from_secs(86400 * 365)),
    );
    tokio::pin!(end_sleep);
    let give_up_check = tokio::time::sleep(UNREACHABLE_AFTER);
    tokio::pin!(give_up_check);
    let mut checked = false;
    let mut interrupted = false;
    let mut gave_up = false;
    let mut running = true;
    while running {
        tokio::select! {
            r = workers.join_next() => match r {
                Some(r) => collect(r),
                None => running = false,
            },
            _ = &mut end_sleep => break,
            _ = cancel.cancelled() => {
                interrupted = true;
                break;
            }
            _ = &mut give_up_check, if !checked => {
                checked = true;
                if !shared.answered.load(Ordering::Relaxed) && shared.connect_failed.load(Ordering::Relaxed) {
                    gave_up = true;
                    break;
                }
            }
        }
    }
    // Phase 2: nothing new starts; requests in flight get the grace period.
    shared.stop.store(true, Ordering::Relaxed);
    if running {
        let grace_sleep = tokio::time::sleep(grace);
        tokio::pin!(grace_sleep);
        loop {
            tokio::select! {
                r = workers.join_next() => match r {
                    Some(r) => collect(r),
                    None => break,
                },
                _ = &mut grace_sleep, if !hard_stops.is_empty() => {
                    for tx in hard_stops.drain(..) {
                        let _ = tx.send(());
                    }
                }
            }
        }
    }
    let measured = Instant::now().saturating_duration_since(warm_until);
    Finished {
        recorder,
        started_at,
        measured,
        interrupted,
        gave_up,
        connections,
    }
}

/// How long a run goes on when every connection attempt fails and nothing ever answered.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(3);

async fn worker(
    shared: Arc<Shared>,
    intervals: mpsc::UnboundedSender<Interval>,
    mut hard_stop: oneshot::Receiver<()>,
) -> (Recorder, u64) {
    let setup = &shared.setup;
    let mut conn = setup.transport.connection();
    let mut recorder = Recorder::new();
    let mut interval: Option<Interval> = None;
    let (mut answered, mut connect_failed) = (false, false);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if shared.end_at.is_some_and(|end| now >= end) {
            break;
        }
        let warm = now < shared.warm_until;
        let index = if warm {
            shared.warm_next.fetch_add(1, Ordering::Relaxed)
        } else {
            let i = shared.next.fetch_add(1, Ordering::Relaxed);
            if setup.requests.is_some_and(|n| i >= n) {
                break;
            }
            i
        };
        let (kind, body) = setup.mix.pick(index);

        let start = Instant::now();
        let sent = tokio::select! {
            biased;
            _ = &mut hard_stop => None,
            r = tokio::time::timeout(setup.timeout, conn.send(body)) => Some(r),
        };
        let latency_us = start.elapsed().as_micros() as u64;
        let plain = |outcome| Classified {
            outcome,
            nil_token: false,
            token_error: None,
        };
        let (classified, status, body, failure, location) = match &sent {
            None => (plain(Outcome::Unfinished), None, &[][..], None, None),
            Some(Err(_elapsed)) => (plain(Outcome::Timeout), None, &[][..], None, None),
            Some(Ok(Err(Failure::Connect(m)))) => {
                (plain(Outcome::ConnectError), None, &[][..], Some(m), None)
            }
            Some(Ok(Err(Failure::Io(m)))) => {
                (plain(Outcome::IoError), None, &[][..], Some(m), None)
            }
            Some(Ok(Ok(r))) => (
                classify(kind, r.status, r.body, setup.reject_status),
                Some(r.status),
                r.body,
                None,
                r.location.as_deref(),
            ),
        };
        if !answered && status.is_some() {
            answered = true;
            shared.answered.store(true, Ordering::Relaxed);
        }
        if !connect_failed && classified.outcome == Outcome::ConnectError {
            connect_failed = true;
            shared.connect_failed.store(true, Ordering::Relaxed);
        }
        if warm {
            if sent.is_none() {
                break;
            }
            continue;
        }
        let outcome = classified.outcome;
        recorder.record(&Record {
            kind,
            classified,
            status,
            latency_us,
            body,
        });
        match (outcome, failure) {
            (_, Some(m)) => recorder.note_failure(outcome, || m.clone()),
            (Outcome::Timeout, _) => recorder.note_failure(outcome, || {
                format!("no complete response within {:?}", setup.timeout)
            }),
            _ => {}
        }
        if let Some(location) = location {
            recorder.note_redirect(location);
        }
        let second = Instant::now()
            .saturating_duration_since(shared.warm_until)
            .as_secs() as u32;
        if interval.as_ref().is_some_and(|i| i.second != second) {
            let _ = intervals.send(interval.take().expect("checked"));
        }
        interval
            .get_or_insert_with(|| Interval::new(second))
            .record(outcome, status, latency_us);
        if sent.is_none() {
            break;
        }
    }
    if let Some(i) = interval {
        let _ = intervals.send(i);
    }
    (recorder, conn.connects)
}
