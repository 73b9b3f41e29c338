//! `sdload capacity`: the highest login rate the target sustains within its SLO.
//!
//! Each step is one open-model run at a constant rate (`engine::run`, its warm-up left out),
//! turned into its own `Report` and judged by the SLO (`thresholds::evaluate`). `search` decides
//! the next rate; `report` holds the result; `export::capacity_text` prints it.

pub mod plan;
pub mod report;
pub mod search;

use std::sync::Arc;
use std::time::SystemTime;

use tokio_util::sync::CancellationToken;

use crate::app::{self, Fail, Interrupts, Prepared};
use crate::cli::CapacityArgs;
use crate::engine::timetable::Profile;
use crate::engine::{default_max_in_flight, Load};
use crate::exit;
use crate::export::{self, capacity_text, text::Style};
use crate::report::Report;
use plan::CapacityPlan;
use report::{CapacityReport, CapacityResult, SearchSettings, Step, StepVerdict};
use search::{judge, End, Next, Search, StepFacts, Verdict};

/// A search that ran, and the exit code it decided.
pub struct Searched {
    pub report: CapacityReport,
    pub code: u8,
}

pub async fn run(args: &CapacityArgs) -> u8 {
    match execute(args).await {
        Ok(s) => s.code,
        Err(Fail(code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

/// The whole search; prints unless quiet. Tests call it in-process.
pub async fn execute(args: &CapacityArgs) -> Result<Searched, Fail> {
    let mut cp = CapacityPlan::build(args).map_err(|e| Fail(exit::USAGE, e))?;
    let interrupts = Interrupts::new()
        .map_err(|e| Fail(exit::TOOL_FAILURE, format!("cannot listen for Ctrl-C: {e}")))?;
    let prepared = app::prepare(&mut cp.run).await?;
    let quiet = cp.run.quiet;
    let say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    if cp.run.target.is_none() {
        say("note: the embedded mock server has no capacity limit: the search finds this machine's limits (sdload serve --capacity N sets one)");
    }
    say(&capacity_text::intro(
        &prepared.target.to_string(),
        &settings(&cp),
    ));

    let cancel = CancellationToken::new();
    let signals = app::watch_interrupts(interrupts, cancel.clone(), quiet);
    let started_at = SystemTime::now();
    let mut search = Search::new(cp.start_rate, cp.max_rate, cp.precision);
    let mut next = search.first();
    let mut steps: Vec<Step> = Vec::new();
    let end = loop {
        let (rate, phase) = match next {
            Next::Step { rate, phase } => (rate, phase),
            Next::Done(end) => break end,
        };
        let report = step(&prepared, &cp, rate, &cancel).await;
        let mut step = Step {
            index: steps.len() + 1,
            phase,
            target_rate: rate,
            achieved_rate: report.rates.throughput_rps,
            verdict: StepVerdict::Interrupted,
            guard: false,
            reasons: Vec::new(),
            report,
        };
        if step.report.interrupted {
            say(&capacity_text::step_line(&step));
            steps.push(step);
            break End::Interrupted;
        }
        let r = &step.report;
        let facts = StepFacts {
            slo: r.thresholds.clone(),
            scheduled: r.schedule.as_ref().map_or(0, |s| s.scheduled),
            not_sent: r.counts.not_sent,
            error_rate: r.rates.error,
        };
        let (verdict, reasons) = judge(&facts);
        let unreachable = r.unreachable();
        step.verdict = match verdict {
            Verdict::Pass => StepVerdict::Pass,
            Verdict::Fail { .. } => StepVerdict::Fail,
        };
        step.guard = matches!(verdict, Verdict::Fail { severe: true });
        step.reasons = reasons;
        say(&capacity_text::step_line(&step));
        steps.push(step);
        if unreachable {
            break End::Unreachable;
        }
        next = search.record(rate, &verdict);
        // Ctrl-C between two steps.
        if cancel.is_cancelled() && matches!(next, Next::Step { .. }) {
            break End::Interrupted;
        }
    };
    signals.abort();
    if let Some(s) = prepared.server {
        s.stop().await;
    }

    let bracket = search.bracket();
    let first_failing = bracket.first_failing;
    let mut report = CapacityReport {
        schema: report::SCHEMA.to_owned(),
        target: prepared.target.to_string(),
        embedded_target: cp.run.target.is_none(),
        started_at: humantime::format_rfc3339_seconds(started_at).to_string(),
        search: settings(&cp),
        result: CapacityResult {
            end,
            sustained_rate: bracket.sustained,
            first_failing_rate: first_failing,
            broke: Vec::new(),
            require_rate_met: report::meets(bracket.sustained, cp.require_rate),
            summary: Vec::new(),
        },
        interrupted: end == End::Interrupted,
        steps,
    };
    report.result.broke = report
        .step_at(first_failing)
        .map(|s| s.reasons.clone())
        .unwrap_or_default();
    report.result.summary = capacity_text::summary(&report);

    if !quiet {
        print!(
            "{}",
            capacity_text::render(
                &report,
                Style {
                    color: app::color()
                }
            )
        );
    }
    if let Some(path) = &cp.json {
        export::write_atomically(path, &render_json(&report)).map_err(|e| {
            Fail(
                exit::TOOL_FAILURE,
                format!("cannot write the JSON report {}: {e}", path.display()),
            )
        })?;
    }
    let code = report.exit_code();
    match code {
        exit::THRESHOLD_FAILED => eprintln!(
            "capacity below the required rate: {}",
            report.result.summary.first().map_or("", String::as_str)
        ),
        exit::UNREACHABLE => eprintln!(
            "error: the target could not be reached: every request of step {} failed to connect",
            report.steps.len()
        ),
        _ => {}
    }
    Ok(Searched { report, code })
}

pub fn render_json(report: &CapacityReport) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(report).expect("a report always serializes");
    out.push(b'\n');
    out
}

fn settings(cp: &CapacityPlan) -> SearchSettings {
    SearchSettings {
        slo: cp.slo.iter().map(|t| t.expr.clone()).collect(),
        start_rate: cp.start_rate,
        max_rate: cp.max_rate,
        factor: search::FACTOR,
        step_duration_s: cp.step_duration.as_secs_f64(),
        step_warmup_s: cp.step_warmup.as_secs_f64(),
        precision: cp.precision,
        require_rate: cp.require_rate,
        guard_error_rate: search::GUARD_ERROR_RATE,
        arrivals: cp.arrivals,
        max_in_flight: cp.max_in_flight,
    }
}

/// One step: an open-model run at `rate` for a step's duration after its warm-up (the plan's
/// `duration` and `warmup`), reported and judged by the SLO like any run.
async fn step(p: &Prepared, cp: &CapacityPlan, rate: f64, cancel: &CancellationToken) -> Report {
    let load = Load::Open {
        rate: Profile::constant(rate, Some(cp.step_duration)),
        arrivals: cp.arrivals,
        max_in_flight: cp
            .max_in_flight
            .unwrap_or_else(|| default_max_in_flight(rate)),
    };
    let (finished, timeline) = app::run_load(
        &cp.run,
        p.transport.clone(),
        Arc::clone(&p.mix),
        load.clone(),
        cancel.clone(),
    )
    .await;
    app::report_of(
        &cp.run,
        (&p.target, &p.addrs),
        load,
        &finished,
        &timeline,
        &p.transport.stats(),
        &cp.slo,
    )
}
