//! Fault injection: the pause schedule, the stall rule, and each connection's own random
//! generator and "drop me" signal.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::Notify;

use super::config::LatencyRange;

/// From `start`, the server pauses at `every`, `2 * every`, ... for `pause_for` each time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PauseSchedule {
    pub start: Instant,
    pub every: Duration,
    pub pause_for: Duration,
}

impl PauseSchedule {
    /// How long the current pause still lasts at `now`, if the server is paused.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        let elapsed = now.saturating_duration_since(self.start).as_nanos();
        let every = self.every.as_nanos().max(1);
        if elapsed < every {
            return None;
        }
        let into = elapsed % every;
        let pause = self.pause_for.as_nanos();
        (into < pause).then(|| Duration::from_nanos((pause - into) as u64))
    }

    /// Waits while the server is paused; true when it had to wait.
    pub async fn wait(&self) -> bool {
        let mut waited = false;
        while let Some(left) = self.remaining(Instant::now()) {
            waited = true;
            tokio::time::sleep(left).await;
        }
        waited
    }
}

/// Whether the `ordinal`-th token POST (counting from 1) stalls: N, 2N, 3N, ...
pub(crate) fn stalls(ordinal: u64, every: Option<u64>) -> bool {
    matches!(every, Some(n) if n > 0 && ordinal % n == 0)
}

/// Per-connection state. Requests on one HTTP/1.1 connection are served one after another, so
/// the generator's lock is never contended and connections never wait on each other.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    rng: Mutex<ChaCha8Rng>,
    /// Notified by a handler that wants its connection closed without an answer.
    pub drop_now: Notify,
}

impl ConnCtx {
    /// The generator of the `index`-th connection (from 0) is seeded from `seed + index`.
    pub fn new(seed: u64, index: u64) -> Self {
        ConnCtx {
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(seed.wrapping_add(index))),
            drop_now: Notify::new(),
        }
    }

    fn with_rng<T>(&self, f: impl FnOnce(&mut ChaCha8Rng) -> T) -> T {
        f(&mut self.rng.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// True with probability `p` (no draw when `p` is 0 or 1).
    pub fn chance(&self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.with_rng(|rng| rng.random::<f64>() < p)
        }
    }

    /// A latency drawn uniformly in the range (no draw when it is fixed).
    pub fn latency(&self, (lo, hi): LatencyRange) -> Duration {
        if lo >= hi {
            return lo;
        }
        let (lo_ns, hi_ns) = (lo.as_nanos() as u64, hi.as_nanos() as u64);
        Duration::from_nanos(self.with_rng(|rng| rng.random_range(lo_ns..=hi_ns)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn pause_windows_start_at_each_period() {
        let start = Instant::now();
        let p = PauseSchedule {
            start,
            every: MS(100),
            pause_for: MS(30),
        };
        assert_eq!(p.remaining(start), None);
        assert_eq!(p.remaining(start + MS(99)), None);
        assert_eq!(p.remaining(start + MS(100)), Some(MS(30)));
        assert_eq!(p.remaining(start + MS(110)), Some(MS(20)));
        assert_eq!(p.remaining(start + MS(130)), None);
        assert_eq!(p.remaining(start + MS(205)), Some(MS(25)));
    }

    #[test]
    fn every_nth_stalls() {
        let hits: Vec<u64> = (1..=10).filter(|&n| stalls(n, Some(3))).collect();
        assert_eq!(hits, vec![3, 6, 9]);
        assert!(!stalls(3, None));
    }

    #[test]
    fn connection_randomness_is_reproducible() {
        let draws = |seed, index| {
            let c = ConnCtx::new(seed, index);
            (0..32).map(|_| c.chance(0.5)).collect::<Vec<_>>()
        };
        assert_eq!(draws(1, 0), draws(1, 0));
        assert_ne!(draws(1, 0), draws(1, 1));
        let c = ConnCtx::new(0, 0);
        assert!(c.chance(1.0) && !c.chance(0.0));
        for _ in 0..100 {
            let d = c.latency((MS(2), MS(20)));
            assert!(d >= MS(2) && d <= MS(20));
        }
        assert_eq!(c.latency((MS(5), MS(5))), MS(5));
    }
}
