//! `sdload capacity` against the in-process mock server, whose `capacity` switch gives a known
//! answer; and the mock's queue itself. Steps are 1-2 s long to keep the file fast.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{assert_counts_add_up, Fixture};
use sdload::capacity::report::{CapacityReport, StepVerdict};
use sdload::capacity::search::{End, Phase};
use sdload::capacity::{self, Searched};
use sdload::cli::{CapacityArgs, RunArgs};

/// A quiet search against the fixture's server (from an empty scenario).
fn search(fx: &Fixture, slo: &str, start: f64, max: f64, step: Duration) -> CapacityArgs {
    CapacityArgs {
        run: RunArgs {
            concurrency: None,
            warmup: None,
            ..fx.args()
        },
        slo: vec![slo.into()],
        start_rate: Some(start),
        max_rate: Some(max),
        step_duration: Some(step),
        step_warmup: Some(Duration::ZERO),
        ..Default::default()
    }
}

async fn execute(args: &CapacityArgs) -> Searched {
    match capacity::execute(args).await {
        Ok(s) => s,
        Err(sdload::app::Fail(code, message)) => panic!("exit {code}: {message}"),
    }
}

fn assert_steps_are_whole_runs(c: &CapacityReport) {
    for s in &c.steps {
        assert_counts_add_up(&s.report);
        assert_eq!(s.report.model, "open");
        assert_eq!(s.report.rate, Some(s.target_rate));
        assert_eq!(s.report.thresholds.len(), c.search.slo.len());
        assert!(s.report.histograms.contains_key("all"));
        assert!(s.report.histograms.contains_key("service_time.all"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finds_the_mock_servers_capacity_within_ten_percent() {
    let fx = Fixture::start(|c| c.capacity = Some(200.0)).await;
    let json = fx.path("capacity.json");
    let args = CapacityArgs {
        step_warmup: Some(Duration::from_secs(1)),
        run: RunArgs {
            json: Some(json.clone()),
            ..search(&fx, "p99 < 100ms", 100.0, 400.0, Duration::from_secs(2)).run
        },
        require_rate: Some(150.0),
        ..search(&fx, "p99 < 100ms", 100.0, 400.0, Duration::from_secs(2))
    };
    let Searched { report: c, code } = execute(&args).await;
    let summary = c.result.summary.join("\n");
    assert_eq!(c.result.end, End::Converged, "{summary}");
    let found = c.result.sustained_rate.unwrap();
    let failing = c.result.first_failing_rate.unwrap();
    assert!((180.0..=220.0).contains(&found), "found {found}: {summary}");
    assert!(
        failing > found && failing - found <= 0.05 * found,
        "{found}..{failing}"
    );
    assert_eq!(code, 0, "{summary}");
    assert_eq!(c.result.require_rate_met, Some(true));
    assert!(
        summary.starts_with(&format!("sustains {found} logins/s: token_issued p99 ")),
        "{summary}"
    );
    assert!(summary.contains(&format!(
        "fails at {failing} logins/s: p99 < 100ms (observed "
    )));
    assert_eq!(c.result.broke.len(), 1, "{:?}", c.result.broke);
    assert!(fx.server.stats().queued > 0, "the server queued logins");

    // Climbing ×1.5 from the start, then bisecting; every step a whole run of its own.
    assert_eq!(
        c.steps
            .iter()
            .map(|s| s.target_rate)
            .take(3)
            .collect::<Vec<_>>(),
        [100.0, 150.0, 225.0]
    );
    assert_eq!(c.steps[2].verdict, StepVerdict::Fail);
    assert!(c.steps[3..].iter().all(|s| s.phase == Phase::Bisect));
    assert_steps_are_whole_runs(&c);
    // Above the capacity, the server answers no faster than its capacity.
    let over = &c.steps[2];
    assert!(over.achieved_rate < 215.0, "{}", over.achieved_rate);

    // The JSON report: the same result, every step with its histograms.
    let back: CapacityReport = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(back.schema, "sdload.capacity/v1");
    assert_eq!(back, c);
    let h = sdload::report::decode_histogram(&back.steps[0].report.histograms["all"]).unwrap();
    assert_eq!(h.len(), back.steps[0].report.counts.total);

    // The terminal report: the answer, the table and the chart.
    let text =
        sdload::export::capacity_text::render(&c, sdload::export::text::Style { color: false });
    assert!(
        text.contains(&format!("sustains {found} logins/s")),
        "{text}"
    );
    assert!(text.contains("  3 climb          225"), "{text}");
    assert!(
        text.contains("p99 by rate (ms, log scale; │ marks the SLO's 100 ms)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_step_that_breaks_the_slo_is_below_the_start_rate() {
    let fx = Fixture::start(|c| {
        c.latency = Some((Duration::from_millis(20), Duration::from_millis(20)))
    })
    .await;
    let args = CapacityArgs {
        require_rate: Some(50.0),
        ..search(&fx, "p99 < 10ms", 50.0, 400.0, Duration::from_secs(1))
    };
    let Searched { report: c, code } = execute(&args).await;
    assert_eq!(c.result.end, End::BelowStart);
    assert_eq!(c.steps.len(), 1, "no step below the start rate");
    assert_eq!(
        (c.result.sustained_rate, c.result.first_failing_rate),
        (None, Some(50.0))
    );
    assert_eq!(code, 1, "below the required rate");
    assert_eq!(c.result.require_rate_met, Some(false));
    assert_eq!(
        c.result.summary[..2],
        [
            "below the start rate: the first step, at 50 logins/s, already failed".to_owned(),
            format!("fails at 50 logins/s: {}", c.steps[0].reasons.join("; ")),
        ]
    );
    assert!(c.steps[0].reasons[0].starts_with("p99 < 10ms (observed "));
    assert_eq!(c.result.summary[2], "required 50 logins/s: NOT met");
    assert_steps_are_whole_runs(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_breaks_is_at_least_max_rate() {
    let fx = Fixture::start(|_| {}).await;
    let args = CapacityArgs {
        require_rate: Some(40.0),
        ..search(&fx, "p99 < 500ms", 20.0, 45.0, Duration::from_secs(1))
    };
    let Searched { report: c, code } = execute(&args).await;
    assert_eq!(c.result.end, End::AtLeastMax);
    assert_eq!(
        c.steps.iter().map(|s| s.target_rate).collect::<Vec<_>>(),
        [20.0, 30.0, 45.0]
    );
    assert!(c.steps.iter().all(|s| s.verdict == StepVerdict::Pass));
    assert_eq!(
        (c.result.sustained_rate, c.result.first_failing_rate),
        (Some(45.0), None)
    );
    assert_eq!(code, 0);
    assert!(
        c.result.summary[0].starts_with("sustains at least 45 logins/s: token_issued p99 "),
        "{:?}",
        c.result.summary
    );
    assert!(c.result.summary[1].contains("no step failed up to the max rate (45/s)"));
    assert_steps_are_whole_runs(&c);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_that_breaks_by_a_wide_margin_ends_the_search() {
    let fx = Fixture::start(|c| c.error_rate = 0.8).await;
    let args = search(&fx, "error < 1%", 50.0, 400.0, Duration::from_secs(1));
    let Searched { report: c, code } = execute(&args).await;
    assert_eq!(c.result.end, End::BelowStart);
    assert_eq!(c.steps.len(), 1);
    assert!(c.steps[0].guard);
    assert!(
        c.steps[0]
            .reasons
            .iter()
            .any(|r| r.contains("broke by a wide margin")),
        "{:?}",
        c.steps[0].reasons
    );
    assert_eq!(code, 0, "no --require-rate: the search answered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_server_queues_logins_beyond_its_capacity() {
    let fx = Fixture::start(|c| c.capacity = Some(50.0)).await;
    let client = reqwest::Client::new();
    let user = fx.users[0].clone();
    let start = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..25 {
        let request = client.post(fx.server.token_url()).json(&serde_json::json!({
            "username": user.username,
            "password": user.password,
        }));
        answers.push(tokio::spawn(async move {
            let r = request.send().await.unwrap();
            (r.status().as_u16(), Instant::now())
        }));
    }
    let mut done = Vec::new();
    for a in answers {
        done.push(a.await.unwrap());
    }
    assert!(done.iter().all(|(status, _)| *status == 200));
    // 25 logins at 50/s: the last waits for the 24 before it, less the small burst allowed.
    let last = done.iter().map(|(_, t)| *t - start).max().unwrap();
    assert!(last >= Duration::from_millis(400), "{last:?}");
    let stats = fx.server.stats();
    assert_eq!(stats.logins_ok, 25);
    assert!(stats.queued >= 20, "{stats:?}");
}

fn sdload(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sdload"));
    c.args(args);
    c
}

#[test]
fn usage_errors_exit_2() {
    for (args, message) in [
        (&["capacity"][..], "needs an SLO"),
        (&["capacity", "--slo", "p99 < 1s", "-r", "5"], "--rate"),
        (&["capacity", "--slo", "p99 <"], "--slo: expected a value"),
        (
            &[
                "capacity",
                "--slo",
                "p99 < 1s",
                "--start-rate",
                "100",
                "--max-rate",
                "10",
            ],
            "above the max rate",
        ),
    ] {
        let out = sdload(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// Ctrl-C ends the search, keeps what is known, and exits 130.
#[cfg(unix)]
#[test]
fn ctrl_c_reports_what_is_known() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("c.json");
    let child = sdload(&[
        "capacity",
        "--slo",
        "p99 < 1s",
        "--start-rate",
        "20",
        "--step-duration",
        "1s",
        "--step-warmup",
        "0s",
        "--no-progress",
        "--json",
        json.to_str().unwrap(),
    ])
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Steps of about 1 s each: Ctrl-C during the third or the fourth.
    std::thread::sleep(Duration::from_millis(3500));
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("interrupted: sustains at least "),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("interrupted\n"), "the cut step: {stdout}");
    let c: CapacityReport = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert!(c.interrupted);
    assert_eq!(c.result.end, End::Interrupted);
    assert!(c.steps.iter().any(|s| s.verdict == StepVerdict::Pass));
}

/// `scenarios/capacity.toml` plans as a search (and, like every shipped scenario, as a run).
#[test]
fn the_shipped_capacity_scenario_plans() {
    let args = CapacityArgs {
        run: RunArgs {
            scenario: Some(concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/capacity.toml").into()),
            ..Default::default()
        },
        ..Default::default()
    };
    let p = sdload::capacity::plan::CapacityPlan::build(&args).unwrap();
    assert_eq!(
        (p.start_rate, p.max_rate, p.require_rate),
        (20.0, 1000.0, Some(150.0))
    );
    assert_eq!(p.step_duration, Duration::from_secs(20));
    let names: Vec<_> = p
        .slo
        .iter()
        .map(|t| t.name.as_deref().unwrap_or(&t.expr))
        .collect();
    assert_eq!(
        names,
        [
            "login_latency",
            "errors",
            "no_false_403",
            "bad_accepted == 0",
            "invalid_token == 0"
        ]
    );
}
