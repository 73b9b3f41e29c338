//! The collector: merges workers' one-second intervals into the timeline and shows progress.
//! On a terminal, an indicatif bar on stderr; otherwise one plain line at most every 5 s (no
//! escape codes, no carriage returns); nothing with `--quiet` or `--no-progress`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::export::text::{ms, pct, thousands};
use crate::recorder::{Interval, Timeline};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
    Off,
}

impl Mode {
    /// Decided once: the only place that asks whether stderr is a terminal.
    pub fn detect(enabled: bool) -> Mode {
        match (enabled, std::io::stderr().is_terminal()) {
            (false, _) => Mode::Off,
            (true, true) => Mode::Bar,
            (true, false) => Mode::Lines,
        }
    }
}

/// What the run is heading for, to size the bar.
#[derive(Clone, Copy, Debug)]
pub struct Goal {
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
}

#[derive(Default)]
struct Live {
    requests: u64,
    errors: u64,
    forbidden: u64,
    /// The request count at the previous display, to show the current rate.
    last: Option<(Instant, u64)>,
    rate: f64,
}

/// Runs until every worker has dropped its sender; returns the timeline. `late`: how long
/// after its second a request may still end (timeout plus grace).
pub async fn collect(
    mode: Mode,
    goal: Goal,
    late: Duration,
    mut rx: mpsc::UnboundedReceiver<Interval>,
) -> Timeline {
    let mut timeline = Timeline::new(late);
    let mut live = Live {
        last: Some((Instant::now(), 0)),
        ..Default::default()
    };
    let start = Instant::now();
    let bar = match mode {
        Mode::Bar => Some(new_bar(goal)),
        _ => None,
    };
    let every = if mode == Mode::Bar {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(5)
    };
    let mut tick = tokio::time::interval_at(start + every, every);
    loop {
        tokio::select! {
            msg = rx.recv() => match msg {
                Some(interval) => {
                    live.requests += interval.requests;
                    live.errors += interval.errors;
                    live.forbidden += interval.forbidden;
                    timeline.merge(interval);
                }
                None => break,
            },
            _ = tick.tick(), if mode != Mode::Off => {
                let now = Instant::now();
                match live.last {
                    Some((at, n)) if now - at >= Duration::from_secs(1) => {
                        live.rate = (live.requests - n) as f64 / (now - at).as_secs_f64();
                        live.last = Some((now, live.requests));
                    }
                    None => live.last = Some((now, live.requests)),
                    _ => {}
                }
                let line = status(&live, &timeline, start.elapsed(), goal);
                match &bar {
                    Some(bar) => {
                        let done = match (goal.requests, goal.duration) {
                            (Some(n), None) => live.requests.min(n),
                            _ => start.elapsed().saturating_sub(goal.warmup).as_secs(),
                        };
                        bar.set_position(done);
                        bar.set_message(line);
                    }
                    None => eprintln!("[{:>4}s] {line}", start.elapsed().as_secs()),
                }
            }
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    timeline
}

fn new_bar(goal: Goal) -> ProgressBar {
    let (len, unit) = match (goal.requests, goal.duration) {
        (Some(n), None) => (n, "req"),
        (_, Some(d)) => (d.as_secs().max(1), "s"),
        (None, None) => (0, "s"),
    };
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr_with_hz(4));
    let template = format!("{{elapsed_precise}} [{{bar:30}}] {{pos}}/{{len}}{unit} {{msg}}");
    bar.set_style(
        ProgressStyle::with_template(&template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

fn status(live: &Live, timeline: &Timeline, elapsed: Duration, goal: Goal) -> String {
    if elapsed < goal.warmup {
        return format!(
            "warming up ({}s left)",
            (goal.warmup - elapsed).as_secs() + 1
        );
    }
    // Workers report a second when they move past it: the second before the last is the
    // newest one that is complete.
    let now_s = elapsed.saturating_sub(goal.warmup).as_secs() as usize;
    let newest = now_s
        .saturating_sub(2)
        .min(timeline.seconds.len().saturating_sub(1));
    // The newest complete second's count is the current rate; before one is complete, the
    // count since the previous display.
    let rps = match timeline.seconds.get(newest) {
        Some(s) if now_s >= 2 => s.requests,
        _ => live.rate.round() as u64,
    };
    let p99 = timeline
        .seconds
        .get(newest)
        .and_then(|s| s.p99_us())
        .map(|us| us as f64 / 1000.0);
    let forbidden = (live.requests > 0).then(|| live.forbidden as f64 / live.requests as f64);
    format!(
        "{} requests · {} req/s · 403 {} · errors {} · p99 {} ms",
        thousands(live.requests),
        thousands(rps),
        pct(forbidden),
        thousands(live.errors),
        ms(p99)
    )
}
