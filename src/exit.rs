//! Exit codes (DESIGN.md section 5): CI tells "the service is slow" from "the tool broke".

pub const OK: u8 = 0;
pub const THRESHOLD_FAILED: u8 = 1;
pub const USAGE: u8 = 2;
pub const UNREACHABLE: u8 = 3;
pub const TOOL_FAILURE: u8 = 4;
pub const INTERRUPTED: u8 = 130;

/// The exit code a finished run's report decides. When several apply, the first wins:
/// interrupted (130: the figures are partial), then unreachable (3: nothing was measured), then a
/// failed threshold (1). Usage errors (2) and tool failures (4) end a run before or after this.
pub fn of_report(report: &crate::report::Report) -> u8 {
    if report.interrupted {
        INTERRUPTED
    } else if report.unreachable() {
        UNREACHABLE
    } else if report.thresholds.iter().any(|t| !t.passed) {
        THRESHOLD_FAILED
    } else {
        OK
    }
}
