//! The closed model: N workers, each with its own keep-alive connection, each sending its next
//! request as soon as the previous one ended. With stages, worker `w` works while the target is
//! above `w` and waits otherwise.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::pool::Pool;
use super::timetable::Profile;
use super::{Collected, End, Job, Shared, Timers, Worker};

pub(super) async fn run(
    shared: Arc<Shared>,
    workers: Profile,
    pool: &mut Pool,
    cancel: CancellationToken,
) -> Collected {
    let count = workers.peak().ceil().max(1.0) as u64;
    let staged = workers.stages().len() > 1 || workers.stages().iter().any(|s| s.from != s.to);
    let mut set = JoinSet::new();
    let mut hard_stops = Vec::new();
    for w in 0..count {
        let (tx, rx) = oneshot::channel();
        hard_stops.push(tx);
        let profile = staged.then(|| workers.clone());
        pool.spawn(&mut set, worker(shared.clone(), w, profile, rx));
    }

    let mut connections = 0;
    // Phase 1: until the end of the duration, the last request, or Ctrl-C.
    let mut timers = Timers::new(&shared);
    let end = loop {
        tokio::select! {
            r = set.join_next() => match r {
                Some(r) => connections += r.unwrap_or(0),
                None => break End::Done,
            },
            end = timers.wait(&shared, &cancel) => break end,
        }
    };
    // Phase 2: nothing new starts; requests in flight get the grace period.
    shared.stop.store(true, Ordering::Relaxed);
    connections += super::finish_in_grace(&mut set, hard_stops, shared.setup.grace).await;
    Collected {
        connections,
        end,
        scheduled: 0,
        not_sent: 0,
    }
}

async fn worker(
    shared: Arc<Shared>,
    w: u64,
    stages: Option<Profile>,
    mut hard_stop: oneshot::Receiver<()>,
) -> u64 {
    let setup = &shared.setup;
    let mut worker = Worker::new(&setup.transport, false);
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if shared.end_at.is_some_and(|end| now >= end) {
            break;
        }
        // Stages: this worker waits while the target is at or below its number.
        if let Some(profile) = &stages {
            let t = now
                .saturating_duration_since(shared.warm_until)
                .as_secs_f64();
            if profile.at(t) <= w as f64 {
                let Some(wake) = profile.first_above(w as f64, t) else {
                    break;
                };
                let wake = shared.warm_until + std::time::Duration::from_secs_f64(wake);
                let wake = shared.end_at.map_or(wake, |end| wake.min(end));
                tokio::select! {
                    _ = tokio::time::sleep_until(wake) => continue,
                    _ = &mut hard_stop => break,
                }
            }
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
        if !worker
            .serve(
                &shared,
                Job {
                    index,
                    scheduled: now,
                    warm,
                },
                &mut hard_stop,
            )
            .await
        {
            break;
        }
        if let Some(pause) = worker.backoff() {
            let wake = Instant::now() + pause;
            let wake = shared.end_at.map_or(wake, |end| wake.min(end));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = &mut hard_stop => break,
            }
        }
    }
    worker.finish()
}
