//! `--capacity N`: the server serves at most N token POSTs per second; the others queue, in
//! order of arrival, so that latency climbs as on a saturated real server (a CPU-bound password
//! check: the queue grows by the excess rate, and each login waits for the ones ahead of it).
//!
//! One FIFO pacer for the whole server: the login at the head of the queue holds the lock while
//! it waits for its slot; the others wait for the lock (tokio's `Mutex` is fair, so first come,
//! first served). A login whose connection closes while it waits leaves the queue without
//! taking a slot.

use std::time::{Duration, Instant};

/// How far the schedule of slots may fall behind the clock before slots are lost. Timers wake a
/// little late (tokio's resolution is 1 ms): without this, each late wake-up would push every
/// later slot back and the server would serve less than N per second. It also lets an idle
/// server take a burst of `LATE_TOLERANCE × N` logins at once, as a real one would.
pub(crate) const LATE_TOLERANCE: Duration = Duration::from_millis(5);

#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    /// When the next slot is free (`None` before the first login).
    next: tokio::sync::Mutex<Option<Instant>>,
}

/// The slot of a login that reaches the head of the queue at `now`, when the next free slot is
/// `next`: when it is served, and when the slot after it is free. Pure, for the tests.
pub(crate) fn take(next: Option<Instant>, now: Instant, interval: Duration) -> (Instant, Instant) {
    let floor = now.checked_sub(LATE_TOLERANCE).unwrap_or(now);
    let base = next.map_or(floor, |n| n.max(floor));
    (base.max(now), base + interval)
}

impl Pacer {
    /// A pacer for `per_second` logins per second (above 0, checked by `Config::validate`).
    pub fn new(per_second: f64) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / per_second),
            next: tokio::sync::Mutex::new(None),
        }
    }

    /// Waits for this login's slot; true when it had to wait (the server was saturated).
    pub async fn wait(&self) -> bool {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        let (at, after) = take(*next, now, self.interval);
        let waited = at > now;
        if waited {
            tokio::time::sleep_until(at.into()).await;
        }
        // Only once served: a login cancelled while waiting leaves its slot to the next one.
        *next = Some(after);
        waited
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn slots_are_one_interval_apart_and_never_before_arrival() {
        let t0 = Instant::now() + Duration::from_secs(1);
        // The first login is served at once.
        let (at, next) = take(None, t0, MS(10));
        assert_eq!(at, t0);
        assert_eq!(next, t0 - LATE_TOLERANCE + MS(10));
        // Five logins arriving together: each waits for the one before.
        let mut next = Some(t0);
        let mut served = Vec::new();
        for _ in 0..5 {
            let (at, n) = take(next, t0, MS(10));
            served.push(at - t0);
            next = Some(n);
        }
        assert_eq!(served, [MS(0), MS(10), MS(20), MS(30), MS(40)]);
    }

    #[test]
    fn late_wake_ups_do_not_cost_capacity_but_idle_time_is_not_banked() {
        let t0 = Instant::now() + Duration::from_secs(1);
        // The slot was due at t0 and the login got there 3 ms late: the next slot keeps the
        // schedule (t0 + 10 ms), not "10 ms after it was actually served".
        let (at, next) = take(Some(t0), t0 + MS(3), MS(10));
        assert_eq!((at, next), (t0 + MS(3), t0 + MS(10)));
        // After a long idle time, at most LATE_TOLERANCE worth of slots is there to be taken.
        let later = t0 + Duration::from_secs(5);
        let mut next = Some(t0);
        let mut immediate = 0;
        for _ in 0..10 {
            let (at, n) = take(next, later, MS(1));
            immediate += (at == later) as u32;
            next = Some(n);
        }
        assert_eq!(immediate as u128, LATE_TOLERANCE.as_millis() + 1);
    }

    #[test]
    fn rate_over_a_long_run_is_the_capacity() {
        // 1,000 logins arriving at once at 200/s take 5 s, to within the tolerance.
        let t0 = Instant::now() + Duration::from_secs(1);
        let mut next = None;
        let mut last = t0;
        for _ in 0..1000 {
            let (at, n) = take(next, t0, MS(5));
            last = at;
            next = Some(n);
        }
        let took = last - t0;
        assert!(
            took + LATE_TOLERANCE >= MS(4995) && took <= MS(4995),
            "{took:?}"
        );
    }

    #[tokio::test]
    async fn logins_are_served_in_arrival_order_at_the_capacity() {
        let pacer = std::sync::Arc::new(Pacer::new(200.0));
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let start = Instant::now();
        let mut tasks = Vec::new();
        for i in 0..30 {
            let (pacer, tx) = (pacer.clone(), tx.clone());
            tasks.push(tokio::spawn(async move {
                pacer.wait().await;
                tx.send(i).unwrap();
            }));
            // Arrive one after another (each task is queued before the next is spawned).
            tokio::task::yield_now().await;
        }
        // One waiter gives up: its place in the queue goes to the next.
        tasks.remove(20).abort();
        for t in tasks {
            let _ = t.await;
        }
        let took = start.elapsed();
        drop(tx);
        let mut order = Vec::new();
        while let Some(i) = rx.recv().await {
            order.push(i);
        }
        let expected: Vec<i32> = (0..30).filter(|&i| i != 20).collect();
        assert_eq!(order, expected);
        // 29 logins at 200/s: 28 intervals of 5 ms, less the tolerance's burst.
        assert!(
            took >= MS(140 - 5) - LATE_TOLERANCE && took < MS(400),
            "{took:?}"
        );
    }
}
