//! When each request should start: a pure function of the request's index, so that the
//! schedule never drifts (request `i` starts at the time the cumulative target count reaches
//! `i`, not "one interval after the previous one"), and so that it is unit-tested without a clock.
//!
//! The target is piecewise linear (stages, ramps): the cumulative count `N(t)` is piecewise
//! quadratic and inverted exactly. Poisson arrivals map a unit-rate Poisson process through the
//! same inverse (time rescaling), which is exact for a varying rate too.

use std::time::Duration;

/// One stretch of the load: the target goes linearly from `from` to `to` over `duration`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    pub duration: Duration,
    pub from: f64,
    pub to: f64,
}

/// A piecewise-linear target over time (requests per second, or workers).
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
    stages: Vec<Stage>,
}

impl Profile {
    /// A constant target for `duration` (`None`: for ever).
    pub fn constant(target: f64, duration: Option<Duration>) -> Profile {
        let duration = duration.unwrap_or(Duration::from_secs(100 * 365 * 86400));
        Profile {
            stages: vec![Stage {
                duration,
                from: target,
                to: target,
            }],
        }
    }

    pub fn new(stages: Vec<Stage>) -> Profile {
        Profile { stages }
    }

    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    pub fn duration(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    pub fn peak(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| s.from.max(s.to))
            .fold(0.0, f64::max)
    }

    /// The target at `t` seconds (0 after the end).
    pub fn at(&self, t: f64) -> f64 {
        let mut start = 0.0;
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            if t < start + d {
                return s.from + (s.to - s.from) * (t - start) / d;
            }
            start += d;
        }
        0.0
    }

    /// `N(t)`: how many requests the target asks for in `[0, t)`.
    pub fn count_until(&self, t: f64) -> f64 {
        let mut start = 0.0;
        let mut n = 0.0;
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            let x = (t - start).clamp(0.0, d);
            n += s.from * x + (s.to - s.from) * x * x / (2.0 * d);
            if t < start + d {
                break;
            }
            start += d;
        }
        n
    }

    /// The time (seconds) at which `N(t)` reaches `n`, or `None` if it never does.
    pub fn time_of(&self, n: f64) -> Option<f64> {
        let mut start = 0.0;
        let mut before = 0.0;
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            let total = (s.from + s.to) / 2.0 * d;
            if n < before + total || (n == before && total > 0.0) {
                let y = n - before;
                let a = (s.to - s.from) / (2.0 * d);
                let b = s.from;
                // Solves a·t² + b·t = y in the form that stays exact as a → 0 (and for a < 0).
                let disc = (b * b + 4.0 * a * y).max(0.0);
                let t = if y == 0.0 {
                    0.0
                } else {
                    2.0 * y / (b + disc.sqrt())
                };
                return Some(start + t.clamp(0.0, d));
            }
            before += total;
            start += d;
        }
        None
    }

    /// The first time (seconds) at which the target is above `level`, or `None`. For the
    /// closed model's stages: worker `w` works while the target is above `w`.
    pub fn first_above(&self, level: f64, from: f64) -> Option<f64> {
        let mut start = 0.0;
        for s in &self.stages {
            let d = s.duration.as_secs_f64();
            let end = start + d;
            if end > from {
                let t0 = from.max(start);
                if self.at(t0) > level {
                    return Some(t0);
                }
                if s.to > level {
                    // Rising through `level` inside this stage.
                    let t = start + (level - s.from) / (s.to - s.from) * d;
                    return Some(t.max(t0) + 1e-9);
                }
            }
            start = end;
        }
        None
    }
}

/// How request starts are spread.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Arrivals {
    /// Evenly: request i at N⁻¹(i)
    Uniform,
    /// A Poisson process of the target rate (seeded)
    Poisson,
}

/// The open model's schedule: yields each request's intended start, in order.
pub struct Timetable {
    profile: Profile,
    arrivals: Arrivals,
    rng: rand_chacha::ChaCha8Rng,
    next: u64,
    poisson_clock: f64,
}

impl Timetable {
    pub fn new(profile: Profile, arrivals: Arrivals, seed: u64) -> Timetable {
        use rand::SeedableRng;
        Timetable {
            profile,
            arrivals,
            rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_A221_7A15),
            next: 0,
            poisson_clock: 0.0,
        }
    }

    /// The next request's index and start (from the start of the schedule), or `None` when the
    /// profile has no more requests.
    pub fn next_start(&mut self) -> Option<(u64, Duration)> {
        let n = match self.arrivals {
            Arrivals::Uniform => self.next as f64,
            Arrivals::Poisson => {
                use rand::Rng;
                // Exp(1) by inversion; 1 - u keeps the logarithm finite.
                let u: f64 = self.rng.random();
                self.poisson_clock += -(1.0 - u).ln();
                self.poisson_clock
            }
        };
        let t = self.profile.time_of(n)?;
        let index = self.next;
        self.next += 1;
        Some((index, Duration::from_secs_f64(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    fn starts(profile: Profile, arrivals: Arrivals) -> Vec<f64> {
        let end = profile.duration().as_secs_f64();
        let mut t = Timetable::new(profile, arrivals, 1);
        std::iter::from_fn(|| t.next_start())
            .map(|(_, d)| d.as_secs_f64())
            .take_while(|&s| s < end)
            .collect()
    }

    #[test]
    fn constant_rate_is_start_plus_i_over_rate() {
        let s = starts(
            Profile::constant(500.0, Some(secs(10.0))),
            Arrivals::Uniform,
        );
        assert_eq!(s.len(), 5000);
        for (i, t) in s.iter().enumerate() {
            assert!((t - i as f64 / 500.0).abs() < 1e-9, "{i}: {t}");
        }
    }

    #[test]
    fn low_and_fractional_rates() {
        let s = starts(Profile::constant(3.0, Some(secs(10.0))), Arrivals::Uniform);
        assert_eq!(s.len(), 30);
        // Never more than 3 (+1 at a boundary) in one second.
        for sec in 0..10 {
            let n = s
                .iter()
                .filter(|&&t| t >= sec as f64 && t < sec as f64 + 1.0)
                .count();
            assert!(n <= 4, "second {sec}: {n}");
        }
        assert_eq!(
            starts(Profile::constant(0.5, Some(secs(10.0))), Arrivals::Uniform),
            vec![0.0, 2.0, 4.0, 6.0, 8.0]
        );
    }

    #[test]
    fn ramp_counts_follow_the_integral() {
        let p = Profile::new(vec![Stage {
            duration: secs(4.0),
            from: 0.0,
            to: 200.0,
        }]);
        let s = starts(p.clone(), Arrivals::Uniform);
        assert_eq!(s.len(), 400, "the area under 0→200/s over 4 s");
        for sec in 0..4 {
            let n = s
                .iter()
                .filter(|&&t| t >= sec as f64 && t < sec as f64 + 1.0)
                .count() as f64;
            let want = p.count_until(sec as f64 + 1.0) - p.count_until(sec as f64);
            assert!((n - want).abs() <= 1.0, "second {sec}: {n} vs {want}");
        }
        // Two stages: ramp up, then hold.
        let p = Profile::new(vec![
            Stage {
                duration: secs(2.0),
                from: 100.0,
                to: 300.0,
            },
            Stage {
                duration: secs(2.0),
                from: 300.0,
                to: 300.0,
            },
        ]);
        assert_eq!(starts(p.clone(), Arrivals::Uniform).len(), 400 + 600);
        assert_eq!(p.at(1.0), 200.0);
        assert_eq!(p.at(3.0), 300.0);
        // Ramp down.
        let p = Profile::new(vec![Stage {
            duration: secs(2.0),
            from: 100.0,
            to: 0.0,
        }]);
        assert_eq!(starts(p, Arrivals::Uniform).len(), 100);
    }

    #[test]
    fn starts_are_increasing_and_inverse_of_the_count() {
        let p = Profile::new(vec![
            Stage {
                duration: secs(3.0),
                from: 7.0,
                to: 90.0,
            },
            Stage {
                duration: secs(1.0),
                from: 90.0,
                to: 5.0,
            },
        ]);
        let s = starts(p.clone(), Arrivals::Uniform);
        for w in s.windows(2) {
            assert!(w[0] <= w[1]);
        }
        for (i, t) in s.iter().enumerate() {
            assert!((p.count_until(*t) - i as f64).abs() < 1e-6, "{i}");
        }
    }

    #[test]
    fn poisson_is_seeded_and_near_the_rate() {
        let s = starts(
            Profile::constant(1000.0, Some(secs(10.0))),
            Arrivals::Poisson,
        );
        assert!((9700..=10300).contains(&s.len()), "{}", s.len());
        let again = starts(
            Profile::constant(1000.0, Some(secs(10.0))),
            Arrivals::Poisson,
        );
        assert_eq!(s, again);
        assert_ne!(
            s,
            starts(
                Profile::constant(1000.0, Some(secs(10.0))),
                Arrivals::Uniform
            )
        );
    }

    #[test]
    fn first_above_for_worker_stages() {
        let p = Profile::new(vec![
            Stage {
                duration: secs(10.0),
                from: 0.0,
                to: 10.0,
            },
            Stage {
                duration: secs(10.0),
                from: 10.0,
                to: 10.0,
            },
        ]);
        // Worker 4 starts when the target passes 4 (at 4 s).
        assert!((p.first_above(4.0, 0.0).unwrap() - 4.0).abs() < 1e-6);
        assert_eq!(p.first_above(0.0, 0.0).map(|t| t < 1e-6), Some(true));
        assert_eq!(p.first_above(10.0, 0.0), None);
    }
}
