//! The open model: request starts follow a timetable, whatever the server does. A dispatcher
//! hands each due request to a free connection ("slot"); slots are opened on demand up to
//! `max_in_flight`. When all are busy, due requests wait in order and start as soon as one
//! frees, their latency still counted from the schedule. Requests still waiting at the end
//! are `not_sent`: nothing is skipped silently.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pool::Pool;
use super::ticker::Alarm;
use super::timetable::{Arrivals, Profile, Timetable};
use super::{Collected, End, Job, Shared, Timers, Worker};

/// The warm-up's timetable (at the starting rate), then the measured one.
struct Schedule {
    warm: Option<Timetable>,
    warm_origin: Instant,
    main: Timetable,
    origin: Instant,
    end_at: Option<Instant>,
    limit: Option<u64>,
    /// The schedule ended on `limit` (`--requests`), not on the end of the duration.
    limit_reached: bool,
}

impl Schedule {
    fn next(&mut self) -> Option<Job> {
        if let Some(warm) = &mut self.warm {
            match warm.next_start() {
                Some((index, at)) if self.warm_origin + at < self.origin => {
                    return Some(Job {
                        index,
                        scheduled: self.warm_origin + at,
                        warm: true,
                    })
                }
                _ => self.warm = None,
            }
        }
        let (index, at) = self.main.next_start()?;
        let scheduled = self.origin + at;
        if self.limit.is_some_and(|n| index >= n) {
            self.limit_reached = true;
            return None;
        }
        if self.end_at.is_some_and(|end| scheduled >= end) {
            return None;
        }
        Some(Job {
            index,
            scheduled,
            warm: false,
        })
    }
}

pub(super) async fn run(
    shared: Arc<Shared>,
    rate: Profile,
    arrivals: Arrivals,
    max_in_flight: u64,
    pool: &mut Pool,
    cancel: CancellationToken,
) -> Collected {
    // One dispatcher per load thread, each with its share of the timetable and of the
    // connections: handing a request to a connection never crosses threads (the cross-thread
    // hand-over cost about 50 µs of system time per request at 10,000 req/s).
    // Each dispatcher holds at least one connection: a cap under the number of threads uses
    // that many dispatchers. The cap is split evenly, so a thread may queue a request while
    // another has a connection free; with the default cap (64 and more) that is rare.
    let threads = (pool.threads() as u64).clamp(1, max_in_flight.max(1));
    let stop = CancellationToken::new();
    let mut dispatchers = JoinSet::new();
    for part in 0..threads {
        let cap = max_in_flight / threads + u64::from(part < max_in_flight % threads);
        pool.spawn_on(
            part as usize,
            &mut dispatchers,
            dispatch(
                shared.clone(),
                Share { part, of: threads },
                rate.clone(),
                arrivals,
                cap.max(1),
                stop.clone(),
            ),
        );
    }
    let mut timers = Timers::new(&shared);
    let mut parts = Vec::new();
    let end = loop {
        tokio::select! {
            r = dispatchers.join_next() => match r {
                Some(part) => parts.push(part),
                None => break End::Done,
            },
            end = timers.wait(&shared, &cancel) => break end,
        }
    };
    // No new requests; each dispatcher counts what never started and gives its requests in
    // flight the grace period.
    shared.stop.store(true, Ordering::Relaxed);
    stop.cancel();
    while let Some(part) = dispatchers.join_next().await {
        parts.push(part);
    }
    let mut collected = Collected {
        connections: 0,
        end,
        scheduled: 0,
        not_sent: 0,
    };
    // A dispatcher that panicked lost only its counts; its records are in its thread's recorder.
    for part in parts.into_iter().flatten() {
        collected.connections += part.connections;
        collected.scheduled += part.scheduled;
        collected.not_sent += part.not_sent;
    }
    collected
}

/// Which requests of the timetable a dispatcher starts: those whose index is `part` modulo
/// `of` (every dispatcher reads the whole timetable, so the run stays a function of the seed).
#[derive(Clone, Copy)]
struct Share {
    part: u64,
    of: u64,
}

/// What one dispatcher did.
struct Part {
    connections: u64,
    scheduled: u64,
    not_sent: u64,
}

async fn dispatch(
    shared: Arc<Shared>,
    share: Share,
    rate: Profile,
    arrivals: Arrivals,
    max_in_flight: u64,
    stop: CancellationToken,
) -> Part {
    let setup = &shared.setup;
    let warm_rate = rate.at(0.0);
    let mut schedule = Schedule {
        warm: (!setup.warmup.is_zero() && warm_rate > 0.0).then(|| {
            Timetable::new(
                Profile::constant(warm_rate, Some(setup.warmup)),
                arrivals,
                setup.seed ^ 1,
            )
        }),
        warm_origin: shared.warm_until - setup.warmup,
        main: Timetable::new(rate, arrivals, setup.seed),
        origin: shared.warm_until,
        end_at: shared.end_at,
        limit: setup.requests,
        limit_reached: false,
    };
    let next_job = move |schedule: &mut Schedule| loop {
        let job = schedule.next()?;
        if job.index % share.of == share.part {
            return Some(job);
        }
    };

    // Slots run on this thread, like the dispatcher: their channels wake tasks of the same
    // runtime, which costs no system call.
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<usize>();
    let mut slots: Vec<mpsc::Sender<Job>> = Vec::new();
    let mut hard_stops = Vec::new();
    let mut set = JoinSet::new();
    let mut idle: Vec<usize> = Vec::new();
    let mut pending: VecDeque<Job> = VecDeque::new();
    let mut next = next_job(&mut schedule);
    let mut scheduled = 0u64;
    let mut alarm = Alarm::new();

    loop {
        // Hand every due request to a free slot, opening slots up to the cap.
        while let Some(&job) = pending.front() {
            let slot = match idle.pop() {
                Some(s) => s,
                None if (slots.len() as u64) < max_in_flight => {
                    let (tx, rx) = mpsc::channel(1);
                    let (stop_tx, stop_rx) = oneshot::channel();
                    slots.push(tx);
                    hard_stops.push(stop_tx);
                    let id = slots.len() - 1;
                    set.spawn(slot(shared.clone(), id, rx, done_tx.clone(), stop_rx));
                    id
                }
                None => break,
            };
            if slots[slot].try_send(job).is_ok() {
                pending.pop_front();
            }
        }
        let in_flight = slots.len() - idle.len();
        // Done early only when --requests ran out; a schedule that ends with the duration
        // waits for the deadline, so that the measured time is the duration (a low rate's
        // last request does not end the run and inflate its throughput).
        let ended = schedule.limit_reached || shared.end_at.is_none();
        if next.is_none() && pending.is_empty() && in_flight == 0 && ended {
            break;
        }
        let due = next.map(|j| j.scheduled);
        tokio::select! {
            biased;
            _ = stop.cancelled() => break,
            Some(id) = done_rx.recv() => idle.push(id),
            _ = alarm.wait_until(due.unwrap_or_else(Instant::now)), if due.is_some() => {
                let now = Instant::now();
                while let Some(job) = next.filter(|j| j.scheduled <= now) {
                    scheduled += !job.warm as u64;
                    pending.push_back(job);
                    next = next_job(&mut schedule);
                }
            }
        }
    }

    // Requests due before the end that never got a connection are `not_sent`.
    let cutoff = shared
        .end_at
        .map_or(Instant::now(), |end| end.min(Instant::now()));
    while let Some(job) = next.filter(|j| j.scheduled < cutoff) {
        scheduled += !job.warm as u64;
        pending.push_back(job);
        next = next_job(&mut schedule);
    }
    let not_sent = pending.iter().filter(|j| !j.warm).count() as u64;

    // Closing the slots' queues ends them after their current request; requests in flight
    // get the grace period.
    drop(slots);
    let connections = super::finish_in_grace(&mut set, hard_stops, setup.grace).await;
    Part {
        connections,
        scheduled,
        not_sent,
    }
}

async fn slot(
    shared: Arc<Shared>,
    id: usize,
    mut jobs: mpsc::Receiver<Job>,
    done: mpsc::UnboundedSender<usize>,
    mut hard_stop: oneshot::Receiver<()>,
) -> u64 {
    let mut worker = Worker::new(&shared.setup.transport, true);
    while let Some(job) = jobs.recv().await {
        if !worker.serve(&shared, job, &mut hard_stop).await {
            break;
        }
        let _ = done.send(id);
    }
    worker.finish()
}

/// The default cap on connections: enough for the peak rate at a 1-second latency, at least
/// 64 and at most 1,000 (past that, the server is saturated and more would only hide it).
pub fn default_max_in_flight(peak_rate: f64) -> u64 {
    (peak_rate * Duration::from_secs(1).as_secs_f64())
        .ceil()
        .clamp(64.0, 1000.0) as u64
}
