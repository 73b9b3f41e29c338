//! The result of a search (`sdload.capacity/v1`): the answer, how the search went, and every
//! step with its full run report (`sdload.report/v1`, serialized histograms included), so that a
//! step can be merged, compared or printed again like any run.

use serde::{Deserialize, Serialize};

use super::search::{End, Phase};
use crate::exit;
use crate::report::Report;

pub const SCHEMA: &str = "sdload.capacity/v1";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CapacityReport {
    pub schema: String,
    pub target: String,
    pub embedded_target: bool,
    pub started_at: String,
    pub search: SearchSettings,
    pub result: CapacityResult,
    /// True when Ctrl-C ended the search (exit 130): the result is what was known then.
    pub interrupted: bool,
    /// In the order they ran.
    pub steps: Vec<Step>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SearchSettings {
    pub slo: Vec<String>,
    pub start_rate: f64,
    pub max_rate: f64,
    /// Each climbing step's rate is the previous one's times this.
    pub factor: f64,
    pub step_duration_s: f64,
    pub step_warmup_s: f64,
    /// Bisection stops when the lowest failing rate is within this share of the highest passing one.
    pub precision: f64,
    pub require_rate: Option<f64>,
    /// A step with an error rate above this ends the search.
    pub guard_error_rate: f64,
    pub arrivals: crate::engine::timetable::Arrivals,
    /// `null`: each step's default for its rate.
    pub max_in_flight: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CapacityResult {
    pub end: End,
    /// The highest rate whose step passed (`null`: none did).
    pub sustained_rate: Option<f64>,
    /// The lowest rate whose step failed (`null`: none did).
    pub first_failing_rate: Option<f64>,
    /// Why the step at `first_failing_rate` failed.
    pub broke: Vec<String>,
    /// `null` without `--require-rate`.
    pub require_rate_met: Option<bool>,
    /// The answer in words, as printed.
    pub summary: Vec<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StepVerdict {
    Pass,
    Fail,
    /// Cut short by Ctrl-C: no verdict.
    Interrupted,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Step {
    /// From 1.
    pub index: usize,
    pub phase: Phase,
    pub target_rate: f64,
    /// Responses per second over the measured part (the report's `throughput_rps`).
    pub achieved_rate: f64,
    pub verdict: StepVerdict,
    /// Broke the SLO by a wide margin (the guard ended the search).
    pub guard: bool,
    /// Why it failed (empty when it passed).
    pub reasons: Vec<String>,
    pub report: Report,
}

impl CapacityReport {
    /// The step that ran at `rate` with a verdict.
    pub fn step_at(&self, rate: Option<f64>) -> Option<&Step> {
        let rate = rate?;
        self.steps
            .iter()
            .find(|s| s.target_rate == rate && s.verdict != StepVerdict::Interrupted)
    }

    /// 0 the search ended (and met `--require-rate`); 1 it found less than required; 3 the
    /// target could not be reached; 130 interrupted. (2 and 4 are decided before and after.)
    pub fn exit_code(&self) -> u8 {
        match self.result.end {
            End::Interrupted => exit::INTERRUPTED,
            End::Unreachable => exit::UNREACHABLE,
            _ if self.result.require_rate_met == Some(false) => exit::THRESHOLD_FAILED,
            _ => exit::OK,
        }
    }
}

/// Whether the search showed the target sustains `required`: only a passing step at or above
/// it does (an interrupted search that has not got there yet has not shown it).
pub fn meets(sustained: Option<f64>, required: Option<f64>) -> Option<bool> {
    required.map(|n| sustained.is_some_and(|s| s >= n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_required_rate_is_met_only_by_a_passing_step_at_or_above_it() {
        assert_eq!(meets(Some(200.0), None), None);
        assert_eq!(meets(Some(200.0), Some(200.0)), Some(true));
        assert_eq!(meets(Some(199.0), Some(200.0)), Some(false));
        assert_eq!(meets(None, Some(1.0)), Some(false));
    }
}
