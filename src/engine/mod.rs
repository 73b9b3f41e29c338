//! The engine: workers send requests and record outcomes; the coordinator decides when the
//! run ends. Two load models share one request step (`Worker::serve`):
//!
//! - closed (`closed.rs`): N workers, each sending its next request as soon as the previous one
//!   ended; with stages, worker `w` works while the target is above `w`.
//! - open (`open.rs`): request starts on a timetable (`timetable.rs`), each handed to a free
//!   connection; latency runs from the schedule, so a stalled server cannot hide its stall.
//!
//! End of a run: at the end of `duration` (or when `requests` have been claimed, or on Ctrl-C)
//! nothing new starts; requests still in flight get `grace`, then count as `unfinished`.

mod closed;
mod open;
mod pool;
mod ticker;
pub use open::default_max_in_flight;
pub mod timetable;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::credentials::Mix;
use crate::outcome::{classify, Classified, Outcome};
use crate::recorder::{Interval, Record, Recorder};
use crate::transport::{Connection, Failure, Transport};
use timetable::{Arrivals, Profile};

/// How the load is offered.
#[derive(Clone, Debug)]
pub enum Load {
    /// Workers over time (constant, or stages).
    Closed { workers: Profile },
    /// Request starts per second over time, spread by `arrivals`, on at most `max_in_flight`
    /// connections.
    Open {
        rate: Profile,
        arrivals: Arrivals,
        max_in_flight: u64,
    },
}

/// Everything a run needs, resolved.
pub struct Setup {
    pub transport: Transport,
    pub mix: Arc<Mix>,
    pub load: Load,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
    pub timeout: Duration,
    pub grace: Duration,
    pub reject_status: u16,
    pub seed: u64,
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
    /// Open model: requests the timetable scheduled in the measured part, and those that
    /// never started (no free connection before the end).
    pub scheduled: u64,
    pub not_sent: u64,
}

/// How long a run goes on when every connection attempt fails and nothing ever answered.
pub const UNREACHABLE_AFTER: Duration = Duration::from_secs(3);

/// Shared, read-mostly state of a run: the request counter and the stop flag are the only
/// shared words a worker touches per request (one atomic add, one load; no lock).
struct Shared {
    setup: Setup,
    next: AtomicU64,
    warm_next: AtomicU64,
    stop: AtomicBool,
    /// Set once any response (of any status) came back, and once a connection failed (to open,
    /// or broke): a target that never answered anything is given up on instead of hammered
    /// for the whole run. A slow target is not: timeouts do not count.
    answered: AtomicBool,
    connection_failed: AtomicBool,
    warm_until: Instant,
    end_at: Option<Instant>,
}

impl Shared {
    fn unreachable(&self) -> bool {
        !self.answered.load(Ordering::Relaxed) && self.connection_failed.load(Ordering::Relaxed)
    }
}

/// Why phase 1 of a run ended.
enum End {
    /// Every worker finished by itself (requests claimed, schedule done).
    Done,
    Deadline,
    Interrupted,
    GaveUp,
}

/// What the model's runner hands back (the recording is in the pool's threads).
struct Collected {
    connections: u64,
    end: End,
    scheduled: u64,
    not_sent: u64,
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
    let shared = Arc::new(Shared {
        next: AtomicU64::new(0),
        warm_next: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        answered: AtomicBool::new(false),
        connection_failed: AtomicBool::new(false),
        warm_until,
        end_at,
        setup,
    });
    let mut pool = match pool::Pool::new(&intervals) {
        Ok(pool) => pool,
        Err(e) => {
            // Without threads nothing can run; the report says so rather than panicking.
            let mut recorder = Recorder::new();
            recorder.note_failure(Outcome::ConnectError, || {
                format!("cannot start the load threads: {e}")
            });
            return Finished {
                recorder,
                started_at,
                measured: Duration::ZERO,
                interrupted: false,
                gave_up: true,
                connections: 0,
                scheduled: 0,
                not_sent: 0,
            };
        }
    };
    drop(intervals);
    let collected = match shared.setup.load.clone() {
        Load::Closed { workers } => closed::run(shared.clone(), workers, &mut pool, cancel).await,
        Load::Open {
            rate,
            arrivals,
            max_in_flight,
        } => {
            open::run(
                shared.clone(),
                rate,
                arrivals,
                max_in_flight,
                &mut pool,
                cancel,
            )
            .await
        }
    };
    let recorder = pool.collect().await;
    drop(pool);
    Finished {
        recorder,
        started_at,
        measured: Instant::now().saturating_duration_since(warm_until),
        interrupted: matches!(collected.end, End::Interrupted),
        gave_up: matches!(collected.end, End::GaveUp),
        connections: collected.connections,
        scheduled: collected.scheduled,
        not_sent: collected.not_sent,
    }
}

/// Phase 2 of a run: nothing new starts; requests in flight get `grace`, then each worker's
/// hard stop fires (their requests become `unfinished`). Returns the connections the workers
/// opened.
async fn finish_in_grace(
    set: &mut tokio::task::JoinSet<u64>,
    mut hard_stops: Vec<oneshot::Sender<()>>,
    grace: Duration,
) -> u64 {
    let mut connections = 0;
    let grace = tokio::time::sleep(grace);
    tokio::pin!(grace);
    loop {
        tokio::select! {
            r = set.join_next() => match r {
                // A worker that panicked lost only its connection count; its records are in
                // its thread's recorder.
                Some(r) => connections += r.unwrap_or(0),
                None => return connections,
            },
            _ = &mut grace, if !hard_stops.is_empty() => {
                for tx in hard_stops.drain(..) {
                    let _ = tx.send(());
                }
            }
        }
    }
}

/// Phase 1's timers: the end of the duration, Ctrl-C, and the unreachable check.
struct Timers {
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    give_up: std::pin::Pin<Box<tokio::time::Sleep>>,
    checked: bool,
}

impl Timers {
    fn new(shared: &Shared) -> Timers {
        let far = Instant::now() + Duration::from_secs(100 * 365 * 86400);
        Timers {
            deadline: Box::pin(tokio::time::sleep_until(shared.end_at.unwrap_or(far))),
            give_up: Box::pin(tokio::time::sleep(UNREACHABLE_AFTER)),
            checked: false,
        }
    }

    /// Resolves when the run must end (never resolves `End::Done`).
    async fn wait(&mut self, shared: &Shared, cancel: &CancellationToken) -> End {
        loop {
            tokio::select! {
                _ = &mut self.deadline => return End::Deadline,
                _ = cancel.cancelled() => return End::Interrupted,
                _ = &mut self.give_up, if !self.checked => {
                    self.checked = true;
                    if shared.unreachable() {
                        return End::GaveUp;
                    }
                }
            }
        }
    }
}

/// One request to make: its index in the credential mix and when it should have started.
#[derive(Clone, Copy, Debug)]
struct Job {
    index: u64,
    scheduled: Instant,
    warm: bool,
}

/// One worker's connection; owned by one task, shared with nobody. It records into its
/// thread's recorder (`pool::with_recorder`).
struct Worker {
    conn: Connection,
    /// Open model: latency runs from the schedule and service time is recorded apart.
    open: bool,
    answered: bool,
    connection_failed: bool,
    /// Connect failures in a row, for the closed model's back-off.
    failing: u32,
}

impl Worker {
    fn new(transport: &Transport, open: bool) -> Worker {
        Worker {
            conn: transport.connection(),
            open,
            answered: false,
            connection_failed: false,
            failing: 0,
        }
    }

    /// Sends one request and records it. Returns false when the hard stop cut it (the worker
    /// must end).
    async fn serve(
        &mut self,
        shared: &Shared,
        job: Job,
        hard_stop: &mut oneshot::Receiver<()>,
    ) -> bool {
        let setup = &shared.setup;
        let (kind, body) = setup.mix.pick(job.index);
        let start = Instant::now();
        let sent = tokio::select! {
            biased;
            _ = &mut *hard_stop => None,
            r = tokio::time::timeout(setup.timeout, self.conn.send(body)) => Some(r),
        };
        let end = Instant::now();
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
        if !self.answered && status.is_some() {
            self.answered = true;
            shared.answered.store(true, Ordering::Relaxed);
        }
        if !self.connection_failed
            && matches!(classified.outcome, Outcome::ConnectError | Outcome::IoError)
        {
            self.connection_failed = true;
            shared.connection_failed.store(true, Ordering::Relaxed);
        }
        if classified.outcome == Outcome::ConnectError {
            self.failing = self.failing.saturating_add(1);
        } else {
            self.failing = 0;
        }
        if job.warm {
            return sent.is_some();
        }
        let outcome = classified.outcome;
        let from = if self.open {
            job.scheduled.min(start)
        } else {
            start
        };
        let latency_us = (end - from).as_micros() as u64;
        let service_us = self.open.then(|| (end - start).as_micros() as u64);
        // The timeline counts a request in the second it started (in the open model, the
        // second it was scheduled), so a second's count is what was offered then.
        let second = job
            .scheduled
            .max(shared.warm_until)
            .saturating_duration_since(shared.warm_until)
            .as_secs() as u32;
        pool::with_recorder(second, |recorder, interval| {
            recorder.record(&Record {
                kind,
                classified,
                status,
                latency_us,
                service_us,
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
            interval.record(outcome, status, latency_us);
        });
        sent.is_some()
    }

    /// How long to wait before the next request after connect failures in a row: a closed-model
    /// worker would otherwise retry a dead target tens of thousands of times a second. Doubles
    /// from 1 ms to 250 ms, so a target that comes back is reached again within a quarter second.
    fn backoff(&self) -> Option<Duration> {
        (self.failing > 0)
            .then(|| Duration::from_millis((1u64 << (self.failing - 1).min(8)).min(250)))
    }

    /// How many connections the worker opened.
    fn finish(self) -> u64 {
        self.conn.connects
    }
}
