//! The search itself, with no clock and no server: which rate to try next, when to stop, and
//! what a step's figures say. Unit-tested on its own.
//!
//! Climb: steps at rising rates (×`FACTOR`) until one fails (breaks an SLO or falls behind its
//! schedule) or `max` passes. Then bisect between the highest passing rate and the lowest
//! failing one until the gap is within `precision` of the passing rate. A step that breaks the
//! SLO by a wide margin (error rate over `GUARD_ERROR_RATE`) ends the search at once: the target
//! is not pushed any further.

use serde::{Deserialize, Serialize};

use crate::report::ThresholdResult;

/// Each climbing step's rate is the previous one's times this.
pub const FACTOR: f64 = 1.5;
/// A step whose error rate is above this ends the search (the guard).
pub const GUARD_ERROR_RATE: f64 = 0.5;

/// Which part of the search a step belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Climb,
    Bisect,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Climb => "climb",
            Phase::Bisect => "bisect",
        }
    }
}

/// What a step says about the rate it ran at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    /// Broke an SLO or fell behind; `severe`: by a wide margin (the guard stops the search).
    Fail {
        severe: bool,
    },
}

/// How the search ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The highest passing and the lowest failing rate are within the precision.
    Converged,
    /// The first step (the start rate) already failed.
    BelowStart,
    /// Every step passed, up to and including the max rate: the knee is above it.
    AtLeastMax,
    /// A step broke the SLO by a wide margin: the search stopped there (no bisection).
    Guard,
    /// Ctrl-C.
    Interrupted,
    /// No request of a step got any response.
    Unreachable,
}

/// Where the search stands or ended: the highest passing and the lowest failing rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bracket {
    pub sustained: Option<f64>,
    pub first_failing: Option<f64>,
}

/// The next thing to do.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Next {
    Step { rate: f64, phase: Phase },
    Done(End),
}

#[derive(Clone, Debug)]
pub struct Search {
    start: f64,
    max: f64,
    precision: f64,
    pass: Option<f64>,
    fail: Option<f64>,
}

impl Search {
    /// `0 < start <= max`, `precision > 0` (checked by the plan).
    pub fn new(start: f64, max: f64, precision: f64) -> Search {
        Search {
            start,
            max,
            precision,
            pass: None,
            fail: None,
        }
    }

    pub fn first(&self) -> Next {
        Next::Step {
            rate: self.start,
            phase: Phase::Climb,
        }
    }

    pub fn bracket(&self) -> Bracket {
        Bracket {
            sustained: self.pass,
            first_failing: self.fail,
        }
    }

    /// Records a finished step and says what comes next.
    pub fn record(&mut self, rate: f64, verdict: &Verdict) -> Next {
        match verdict {
            Verdict::Pass => self.pass = Some(self.pass.map_or(rate, |p| p.max(rate))),
            Verdict::Fail { .. } => self.fail = Some(self.fail.map_or(rate, |f| f.min(rate))),
        }
        let severe = matches!(verdict, Verdict::Fail { severe: true });
        match (self.pass, self.fail) {
            (None, _) => Next::Done(End::BelowStart),
            (Some(_), Some(_)) if severe => Next::Done(End::Guard),
            (Some(p), None) if p >= self.max => Next::Done(End::AtLeastMax),
            (Some(p), None) => Next::Step {
                rate: round_rate(p * FACTOR).min(self.max),
                phase: Phase::Climb,
            },
            (Some(p), Some(f)) => match bisect(p, f, self.precision) {
                Some(rate) => Next::Step {
                    rate,
                    phase: Phase::Bisect,
                },
                None => Next::Done(End::Converged),
            },
        }
    }
}

/// The rate between a passing `pass` and a failing `fail` to try next, or `None` when the gap
/// is within `precision` of `pass` (or too small to split).
pub fn bisect(pass: f64, fail: f64, precision: f64) -> Option<f64> {
    if fail - pass <= precision * pass {
        return None;
    }
    let mid = (pass + fail) / 2.0;
    let rounded = round_rate(mid);
    if pass < rounded && rounded < fail {
        Some(rounded)
    } else if pass < mid && mid < fail {
        Some(mid)
    } else {
        None
    }
}

/// Three significant digits: rates a person can read (281, not 281.25; 0.75 stays 0.75).
pub fn round_rate(rate: f64) -> f64 {
    if !(rate.is_finite() && rate > 0.0) {
        return rate;
    }
    let scale = 10f64.powi(2 - rate.log10().floor() as i32);
    (rate * scale).round() / scale
}

/// A step's figures, as far as the verdict goes.
#[derive(Clone, Debug, Default)]
pub struct StepFacts {
    /// Every SLO (the defaults included), evaluated on the step's report.
    pub slo: Vec<ThresholdResult>,
    pub scheduled: u64,
    pub not_sent: u64,
    pub error_rate: Option<f64>,
}

/// The verdict on a step, and why it failed (empty when it passed).
pub fn judge(f: &StepFacts) -> (Verdict, Vec<String>) {
    let mut reasons: Vec<String> = f
        .slo
        .iter()
        .filter(|t| !t.passed)
        .map(|t| {
            let observed = match t.observed {
                // Three significant digits, as in the tables.
                Some(v) if t.unit == "ms" => format!("{} ms", crate::export::text::ms(Some(v))),
                _ => crate::thresholds::format_observed(t),
            };
            format!("{} (observed {observed})", crate::thresholds::label(t))
        })
        .collect();
    if f.not_sent > 0 {
        reasons.push(format!(
            "fell behind: {} of {} scheduled logins were never sent",
            f.not_sent, f.scheduled
        ));
    }
    let severe = f.error_rate.is_some_and(|e| e > GUARD_ERROR_RATE);
    if severe {
        reasons.push(format!(
            "broke by a wide margin: error rate {:.1}% (over {}%): the search stops here",
            f.error_rate.unwrap_or_default() * 100.0,
            GUARD_ERROR_RATE * 100.0
        ));
    }
    let verdict = if reasons.is_empty() {
        Verdict::Pass
    } else {
        Verdict::Fail { severe }
    };
    (verdict, reasons)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: Verdict = Verdict::Pass;
    const FAIL: Verdict = Verdict::Fail { severe: false };
    const SEVERE: Verdict = Verdict::Fail { severe: true };

    /// Runs a search against a server that passes every rate at or below `knee` (and fails
    /// severely above `guard_above`): the rates tried, and how it ended.
    fn simulate(
        start: f64,
        max: f64,
        precision: f64,
        knee: f64,
        guard_above: f64,
    ) -> (Vec<f64>, End, Bracket) {
        let mut s = Search::new(start, max, precision);
        let mut next = s.first();
        let mut rates = Vec::new();
        loop {
            match next {
                Next::Step { rate, .. } => {
                    rates.push(rate);
                    assert!(rates.len() < 50, "the search ends: {rates:?}");
                    let v = if rate <= knee {
                        PASS
                    } else if rate > guard_above {
                        SEVERE
                    } else {
                        FAIL
                    };
                    next = s.record(rate, &v);
                }
                Next::Done(end) => return (rates, end, s.bracket()),
            }
        }
    }

    #[test]
    fn climbs_geometrically_then_bisects_to_the_precision() {
        let (rates, end, b) = simulate(100.0, 1000.0, 0.05, 205.0, f64::INFINITY);
        // 187.5 and 206.5 round to three digits; 198..207 is within 5% of 198.
        assert_eq!(rates, [100.0, 150.0, 225.0, 188.0, 207.0, 198.0]);
        assert_eq!(end, End::Converged);
        let (p, f) = (b.sustained.unwrap(), b.first_failing.unwrap());
        assert_eq!((p, f), (198.0, 207.0));
        assert!(f - p <= 0.05 * p);
        // Phases: climbing until the first failure, then bisecting.
        let mut s = Search::new(100.0, 1000.0, 0.05);
        assert_eq!(
            s.record(100.0, &PASS),
            Next::Step {
                rate: 150.0,
                phase: Phase::Climb
            }
        );
        s.record(150.0, &PASS);
        assert!(matches!(
            s.record(225.0, &FAIL),
            Next::Step {
                phase: Phase::Bisect,
                ..
            }
        ));
    }

    #[test]
    fn the_found_rate_is_within_the_precision_of_the_knee() {
        for knee in [1.0, 7.3, 42.0, 199.0, 200.0, 201.0, 333.3, 999.0, 4321.0] {
            for precision in [0.01, 0.05, 0.1] {
                let (_, end, b) = simulate(1.0, 10_000.0, precision, knee, f64::INFINITY);
                assert_eq!(end, End::Converged, "knee {knee}");
                let (p, f) = (b.sustained.unwrap(), b.first_failing.unwrap());
                assert!(p <= knee && knee < f, "knee {knee}: {p}..{f}");
                assert!(
                    f - p <= precision * p + 0.01,
                    "knee {knee} precision {precision}: {p}..{f}"
                );
            }
        }
    }

    #[test]
    fn first_step_failing_is_below_the_start_rate() {
        let (rates, end, b) = simulate(50.0, 1000.0, 0.05, 10.0, f64::INFINITY);
        assert_eq!((rates, end), (vec![50.0], End::BelowStart));
        assert_eq!(b.sustained, None);
        assert_eq!(b.first_failing, Some(50.0));
        // A severe failure at the start rate is below the start rate too.
        let (rates, end, _) = simulate(50.0, 1000.0, 0.05, 10.0, 20.0);
        assert_eq!((rates, end), (vec![50.0], End::BelowStart));
    }

    #[test]
    fn never_failing_is_at_least_max_and_the_max_is_tried_exactly() {
        let (rates, end, b) = simulate(100.0, 400.0, 0.05, f64::INFINITY, f64::INFINITY);
        assert_eq!(rates, [100.0, 150.0, 225.0, 338.0, 400.0]);
        assert_eq!(end, End::AtLeastMax);
        assert_eq!(b.sustained, Some(400.0));
        assert_eq!(b.first_failing, None);
        // start == max: one step.
        let (rates, end, _) = simulate(100.0, 100.0, 0.05, f64::INFINITY, f64::INFINITY);
        assert_eq!((rates, end), (vec![100.0], End::AtLeastMax));
    }

    #[test]
    fn failing_at_the_max_rate_bisects_below_it() {
        let (rates, end, b) = simulate(100.0, 400.0, 0.05, 390.0, f64::INFINITY);
        assert_eq!(rates[..5], [100.0, 150.0, 225.0, 338.0, 400.0]);
        assert_eq!(end, End::Converged);
        assert!(b.first_failing.unwrap() <= 400.0);
    }

    #[test]
    fn the_guard_stops_at_the_first_severe_failure_without_bisecting() {
        // Fails from 206 up, severely from 220: the climb reaches 225 (severe) and stops.
        let (rates, end, b) = simulate(100.0, 1000.0, 0.05, 205.0, 220.0);
        assert_eq!(rates, [100.0, 150.0, 225.0]);
        assert_eq!(end, End::Guard);
        assert_eq!((b.sustained, b.first_failing), (Some(150.0), Some(225.0)));
        // A severe failure during bisection stops too.
        let mut s = Search::new(100.0, 1000.0, 0.05);
        s.record(100.0, &PASS);
        s.record(150.0, &FAIL);
        assert_eq!(s.record(125.0, &SEVERE), Next::Done(End::Guard));
        assert_eq!(s.bracket().first_failing, Some(125.0));
    }

    #[test]
    fn bisection_and_rounding() {
        assert_eq!(bisect(100.0, 150.0, 0.05), Some(125.0));
        assert_eq!(bisect(100.0, 105.0, 0.05), None);
        assert_eq!(bisect(100.0, 105.1, 0.05), Some(103.0));
        // Too close to split at three digits: the exact midpoint.
        assert_eq!(bisect(100.0, 101.0, 0.001), Some(100.5));
        assert_eq!(bisect(1.0, 1.0 + f64::EPSILON, 0.0), None);
        assert_eq!(round_rate(281.25), 281.0);
        assert_eq!(round_rate(1012.5), 1010.0);
        assert_eq!(round_rate(0.75), 0.75);
        assert_eq!(round_rate(337.5), 338.0);
        assert_eq!(round_rate(12.345), 12.3);
    }

    fn slo(expr: &str, passed: bool, observed: f64) -> ThresholdResult {
        let t = crate::thresholds::Threshold::parse(expr).unwrap();
        ThresholdResult {
            passed,
            ..t.result(Some(observed))
        }
    }

    #[test]
    fn judging_a_step() {
        let ok = StepFacts {
            slo: vec![slo("p99 < 100ms", true, 12.0)],
            scheduled: 200,
            not_sent: 0,
            error_rate: Some(0.0),
        };
        assert_eq!(judge(&ok), (Verdict::Pass, vec![]));
        // Breaking an SLO.
        let slow = StepFacts {
            slo: vec![slo("p99 < 100ms", false, 240.0)],
            ..ok.clone()
        };
        let (v, why) = judge(&slow);
        assert_eq!(v, FAIL);
        assert_eq!(why, ["p99 < 100ms (observed 240 ms)"]);
        // Falling behind the schedule fails even when every SLO holds.
        let behind = StepFacts {
            not_sent: 12,
            ..ok.clone()
        };
        let (v, why) = judge(&behind);
        assert_eq!(v, FAIL);
        assert!(why[0].contains("12 of 200"), "{why:?}");
        // Errors over half: the guard.
        let broken = StepFacts {
            slo: vec![slo("error < 1%", false, 0.6)],
            error_rate: Some(0.6),
            ..ok.clone()
        };
        let (v, why) = judge(&broken);
        assert_eq!(v, SEVERE);
        assert!(why[1].contains("60.0%"), "{why:?}");
        // Exactly half is not the guard.
        let half = StepFacts {
            slo: vec![slo("error < 1%", false, 0.5)],
            error_rate: Some(0.5),
            ..ok
        };
        assert_eq!(judge(&half).0, FAIL);
    }
}
