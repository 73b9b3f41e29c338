//! The CI gate: thresholds and exit codes, the defaults, JUnit and Markdown outputs, `compare`
//! and `report`, against the in-process mock server (and the binary for the subcommands).

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use common::{run, Fixture};
use sdload::app::{self, Fail};
use sdload::cli::RunArgs;

fn sdload(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sdload"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn with(fx: &Fixture, thresholds: &[&str]) -> RunArgs {
    RunArgs {
        requests: Some(120),
        threshold: thresholds.iter().map(|t| t.to_string()).collect(),
        no_default_thresholds: true,
        ..fx.args()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_threshold_passes_with_exit_0_and_fails_with_exit_1() {
    // 2 ms per answer: every latency is at least 2 ms.
    let fx = Fixture::start(|c| {
        c.latency = Some((Duration::from_millis(2), Duration::from_millis(2)));
    })
    .await;
    let passing = [
        "p50 >= 2ms",             // latency, overall
        "token_issued.p95 <= 5s", // latency, per outcome
        "latency.p99.9 < 10s",    // the long form
        "good.max < 10000ms",     // per credential kind
        "error < 1%",             // rates
        "forbidden_good == 0",
        "forbidden_bad >= 99%",
        "bad_accepted == 0", // counts
        "false_403 == 0",
        "nil_token == 0",
        "status_403 >= 1",
        "throughput_rps >= 10", // throughput
    ];
    let ran = run(&with(&fx, &passing)).await;
    assert_eq!(ran.code, 0, "{:#?}", ran.report.thresholds);
    assert_eq!(ran.report.thresholds.len(), passing.len());
    assert!(ran
        .report
        .thresholds
        .iter()
        .all(|t| t.passed && t.observed.is_some()));

    for failing in [
        "p99 < 1ms",
        "expected_403.p50 < 1.5ms",
        "error > 50%",
        "forbidden_bad < 50%",
        "token_issued == 0",
        "status_500 >= 1",
        "throughput_rps >= 1000000",
        // Open-model figures do not exist in a closed-model run: no data fails.
        "service_time.p99 < 1s",
    ] {
        let ran = run(&with(&fx, &["error < 1%", failing])).await;
        assert_eq!(ran.code, 1, "{failing}: {:#?}", ran.report.thresholds);
        let t = &ran.report.thresholds;
        assert!(t[0].passed, "{t:?}");
        assert_eq!((t[1].expr.as_str(), t[1].passed), (failing, false));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_threshold_is_a_usage_error_pointing_at_the_spot() {
    let fx = Fixture::start(|_| {}).await;
    for (expr, wanted) in [
        ("p99 < 250", "a latency needs a unit"),
        ("p99x < 250ms", "unknown metric `p99x`"),
        ("error = 0", "write `==`"),
    ] {
        let Err(Fail(code, message)) = app::execute(&with(&fx, &[expr])).await else {
            panic!("{expr} was accepted");
        };
        assert_eq!(code, 2, "{message}");
        assert!(message.starts_with("--threshold: "), "{message}");
        assert!(message.contains(wanted), "{message}");
        assert!(message.contains(&format!("\n    {expr}\n")), "{message}");
        assert!(message.contains('^'), "{message}");
    }
    // Nothing was sent: the plan is refused before the run.
    assert_eq!(fx.server.stats().token_posts, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_thresholds_fail_a_server_that_lets_everyone_in() {
    let fx = Fixture::start(|c| c.accept_any = true).await;
    let args = RunArgs {
        requests: Some(100),
        ..fx.args()
    };
    let ran = run(&args).await;
    assert_eq!(ran.code, 1);
    let failed: Vec<_> = ran.report.thresholds.iter().filter(|t| !t.passed).collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].expr, "bad_accepted == 0");
    assert_eq!(failed[0].observed, Some(20.0));
    assert!(failed[0].default);
    let shown =
        sdload::export::text::render(&ran.report, sdload::export::text::Style { color: false });
    assert!(
        shown.contains("FAIL  bad_accepted == 0    20   (default)"),
        "{shown}"
    );

    // Turned off, the same run passes.
    let ran = run(&RunArgs {
        no_default_thresholds: true,
        ..args
    })
    .await;
    assert_eq!(ran.code, 0);
    assert!(ran.report.thresholds.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_target_never_passes_a_latency_threshold() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let fx = Fixture::start(|_| {}).await;
    let ran = run(&RunArgs {
        target: Some(format!("http://127.0.0.1:{port}/")),
        duration: Some(Duration::from_millis(300)),
        requests: None,
        ..with(&fx, &["p95 < 50ms"])
    })
    .await;
    // Unreachable takes precedence over a failed threshold: exit 3, never 0.
    assert_eq!(ran.code, 3);
    let t = &ran.report.thresholds[0];
    assert_eq!((t.observed, t.passed), (None, false), "{t:?}");
    let shown =
        sdload::export::text::render(&ran.report, sdload::export::text::Style { color: false });
    assert!(shown.contains("FAIL  p95 < 50ms   no data"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junit_parses_and_holds_the_failures_and_markdown_the_outcome_table() {
    let fx = Fixture::start(|_| {}).await;
    let (junit, markdown) = (fx.path("sdload.xml"), fx.path("sdload.md"));
    let ran = run(&RunArgs {
        junit: Some(junit.clone()),
        markdown: Some(markdown.clone()),
        ..with(
            &fx,
            &[
                "p99 < 1us",
                "error < 1%",
                "timeout.p99 < 1s",
                "bad_accepted == 0",
            ],
        )
    })
    .await;
    assert_eq!(ran.code, 1);

    let xml = std::fs::read_to_string(&junit).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("well-formed XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("tests"), Some("4"));
    assert_eq!(suite.attribute("failures"), Some("2"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(
        names,
        [
            "p99 < 1us",
            "error < 1%",
            "timeout.p99 < 1s",
            "bad_accepted == 0"
        ]
    );
    let failure = |i: usize| {
        cases[i]
            .children()
            .find(|n| n.has_tag_name("failure"))
            .map(|f| f.attribute("message").unwrap().to_owned())
    };
    let p99 = ran.report.latency_ms["all"].p99.unwrap();
    let m = failure(0).expect("p99 failed");
    assert!(
        m.starts_with("p99: observed ") && m.ends_with(", limit < 0.001 ms"),
        "{m}"
    );
    assert!(m.contains(&format!("{p99}")), "{m} vs {p99}");
    assert_eq!(failure(1), None);
    assert_eq!(
        failure(2).as_deref(),
        Some("timeout.p99: observed no data, limit < 1000 ms")
    );
    assert_eq!(failure(3), None);

    let md = std::fs::read_to_string(&markdown).unwrap();
    assert!(md.starts_with("## sdload: FAIL · "), "{md}");
    assert!(md.contains("| outcome | count | share |\n| --- | ---: | ---: |\n| token_issued | 96 | 80.0% |\n| expected_403 | 24 | 20.0% |\n| total | 120 | 100.0% |"), "{md}");
    assert!(md.contains("**403 rate**: overall 20.0%"), "{md}");
    assert!(md.contains("| latency (ms) | count | p50 |"), "{md}");
    assert!(md.contains("| ❌ FAIL | `p99 < 1us` |"), "{md}");
    // No password of the fixture's users appears in any output.
    for u in &fx.users {
        let pw = u.password.as_str();
        assert!(!xml.contains(pw) && !md.contains(pw));
    }
}

async fn saved_run(fx: &Fixture, name: &str, args: RunArgs) -> std::path::PathBuf {
    let path = fx.path(name);
    run(&RunArgs {
        json: Some(path.clone()),
        no_default_thresholds: true,
        ..args
    })
    .await;
    path
}

fn compare(base: &Path, cur: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["compare", base.to_str().unwrap(), cur.to_str().unwrap()];
    args.extend(extra);
    sdload(&args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_passes_the_same_setup_and_fails_a_slower_server() {
    let latency = |ms| {
        move |c: &mut sdload::mock_server::Config| {
            c.latency = Some((Duration::from_millis(ms), Duration::from_millis(ms)))
        }
    };
    let fast = Fixture::start(latency(2)).await;
    let slow = Fixture::start(latency(20)).await;
    let args = |fx: &Fixture| RunArgs {
        duration: Some(Duration::from_secs(1)),
        concurrency: Some(8),
        ..fx.args()
    };
    let base = saved_run(&fast, "base.json", args(&fast)).await;
    let again = saved_run(&fast, "again.json", args(&fast)).await;
    let slower = saved_run(&slow, "slow.json", args(&slow)).await;

    // This machine is shared with other test binaries: a wider margin than the default keeps
    // throughput noise from failing the same setup; latency noise is under --min-delta anyway.
    let out = compare(&base, &again, &["--max-regression", "30%"]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}{}", text(&out.stderr));
    assert!(shown.contains("no regression beyond 30%"), "{shown}");
    assert!(shown.contains("all p50"), "{shown}");

    let out = compare(&base, &slower, &[]);
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}{}", text(&out.stderr));
    let line = shown
        .lines()
        .find(|l| l.starts_with("all p50 "))
        .expect("an all p50 row");
    assert!(line.ends_with("REGRESSED"), "{shown}");
    assert!(shown.contains("\nREGRESSED: "), "{shown}");
    let line = shown
        .lines()
        .find(|l| l.starts_with("throughput_rps "))
        .unwrap();
    assert!(line.ends_with("REGRESSED"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_says_not_enough_data_on_short_runs() {
    let fast =
        Fixture::start(|c| c.latency = Some((Duration::from_millis(1), Duration::from_millis(1))))
            .await;
    let slow = Fixture::start(|c| {
        c.latency = Some((Duration::from_millis(20), Duration::from_millis(20)))
    })
    .await;
    let short = |fx: &Fixture| RunArgs {
        requests: Some(60),
        ..fx.args()
    };
    let base = saved_run(&fast, "base.json", short(&fast)).await;
    let cur = saved_run(&slow, "cur.json", short(&slow)).await;
    let out = compare(&base, &cur, &[]);
    let shown = text(&out.stdout);
    // 60 requests: no percentile rests on 100 samples beyond it, so no verdict, no failure.
    assert_eq!(out.status.code(), Some(0), "{shown}");
    for row in ["all p50", "all p99", "token_issued p95", "throughput_rps"] {
        let line = shown.lines().find(|l| l.starts_with(row)).expect(row);
        assert!(line.contains("not enough data"), "{line}");
    }
    assert!(shown.contains("p99 needs 10,000 samples, has "), "{shown}");
}

#[test]
fn compare_and_report_refuse_files_that_are_not_reports() {
    let dir = tempfile::tempdir().unwrap();
    let not_json = dir.path().join("a.json");
    std::fs::write(&not_json, "hello").unwrap();
    let other = dir.path().join("b.json");
    std::fs::write(&other, "{\"name\": 1}").unwrap();
    let missing = dir.path().join("missing.json");
    for (file, wanted) in [
        (&not_json, "not JSON"),
        (&other, "not an sdload report"),
        (&missing, "cannot read"),
    ] {
        let out = compare(file, file, &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = text(&out.stderr);
        assert!(
            err.contains(wanted) && err.contains(file.to_str().unwrap()),
            "{err}"
        );
        let out = sdload(&["report", file.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2));
        assert!(text(&out.stderr).contains(wanted));
    }
    let out = sdload(&["compare", "a", "b", "--max-regression", "lots"]);
    assert_eq!(out.status.code(), Some(2));
}

/// `sdload report` prints a saved report exactly as the run printed or wrote it.
#[test]
fn report_re_renders_a_saved_run_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    let out = sdload(&[
        "run",
        "-n",
        "300",
        "--warmup",
        "0s",
        "-c",
        "2",
        "--no-progress",
        "--threshold",
        "p99 < 1us",
        "--threshold",
        "error < 1%",
        "--json",
        &file("r.json"),
        "--junit",
        &file("r.xml"),
        "--markdown",
        &file("r.md"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("threshold failed: p99 < 1us (observed "),
        "{stderr}"
    );
    let printed = text(&out.stdout);
    assert!(printed.contains("Thresholds  1 of 4 failed"), "{printed}");

    let again = sdload(&["report", &file("r.json")]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(text(&again.stdout), printed);
    for (format, name) in [("markdown", "r.md"), ("junit", "r.xml"), ("json", "r.json")] {
        let again = sdload(&["report", &file("r.json"), "--format", format]);
        assert_eq!(again.status.code(), Some(0));
        assert_eq!(
            again.stdout,
            std::fs::read(file(name)).unwrap(),
            "--format {format}"
        );
    }
}

#[test]
fn a_malformed_threshold_exits_2_before_running() {
    let out = sdload(&["run", "--threshold", "token_issued.p95 <= 120"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(
        err,
        "error: --threshold: a latency needs a unit: write 120ms, 120s or 120us\n    token_issued.p95 <= 120\n                           ^\n"
    );
    let out = sdload(&["run", "--threshold", "p99 < 1s", "--threshold", "eror < 1%"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown metric `eror` (did you mean `error`?)"),
        "{err}"
    );
    assert!(err.contains("valid metrics:"), "{err}");
}

#[test]
fn the_ci_smoke_scenario_passes_against_the_embedded_server() {
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/ci-smoke.toml");
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("s.md");
    // Shortened from its 10 s for the test suite; the thresholds are the scenario's.
    let out = sdload(&[
        "run",
        scenario.to_str().unwrap(),
        "-d",
        "1s",
        "--warmup",
        "0s",
        "--quiet",
        "--markdown",
        md.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        text(&out.stderr),
        std::fs::read_to_string(&md).unwrap_or_default()
    );
    assert!(out.stdout.is_empty() && out.stderr.is_empty());
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains("### Thresholds: all 9 passed"), "{md}");
    assert!(md.contains("security: `bad_accepted == 0`"), "{md}");
}
