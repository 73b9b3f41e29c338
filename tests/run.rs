//! End-to-end runs against the in-process mock server: counts, mixes, outcomes, end of run.

mod common;

use std::time::{Duration, Instant};

use common::{assert_counts_add_up, run, Fixture};
use sdload::cli::RunArgs;
use sdload::mock_server::TokenFormat;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_bad_share_and_rates_and_reproducible_seed() {
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        requests: Some(400),
        bad_ratio: Some(0.25),
        seed: Some(7),
        ..fx.args()
    };
    let a = run(&args).await;
    let r = &a.report;
    assert_eq!(a.code, 0);
    assert_counts_add_up(r);
    assert_eq!(r.counts.total, 400);
    assert_eq!(r.counts.bad_credentials, 100);
    assert_eq!(r.counts.expected_403, 100);
    assert_eq!(r.counts.token_issued, 300);
    assert_eq!(r.rates.forbidden, Some(0.25));
    assert_eq!(r.rates.forbidden_bad, Some(1.0));
    assert_eq!(r.rates.forbidden_good, Some(0.0));
    assert_eq!(r.rates.error, Some(0.0));
    // Every bad kind was sent (decoys make wrong passwords possible).
    for kind in ["wrong_password", "unknown_user", "empty"] {
        assert!(r.by_credential[kind].requests > 0, "{kind}");
        assert_eq!(r.by_credential[kind].forbidden_rate, Some(1.0), "{kind}");
    }
    // The server saw exactly what the report says.
    let stats = fx.server.stats();
    assert_eq!(stats.token_posts, 400);
    assert_eq!(stats.logins_ok, 300);
    assert_eq!(stats.logins_failed, 100);
    assert_eq!(stats.responses.get("200"), Some(&300));
    assert_eq!(stats.responses.get("403"), Some(&100));

    let b = run(&args).await;
    let kinds = |r: &sdload::report::Report| {
        r.by_credential
            .iter()
            .map(|(k, v)| (k.clone(), v.requests))
            .collect::<Vec<_>>()
    };
    assert_eq!(kinds(&a.report), kinds(&b.report));
    assert_eq!(a.report.counts, b.report.counts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_holds_one_connection_per_worker() {
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        requests: Some(2000),
        concurrency: Some(4),
        ..fx.args()
    };
    let ran = run(&args).await;
    assert_counts_add_up(&ran.report);
    assert_eq!(ran.report.counts.total, 2000);
    assert_eq!(ran.report.connections_opened, 4);
    assert_eq!(fx.server.stats().connections_accepted, 4);
    assert_eq!(fx.server.stats().token_posts, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn latency_is_kept_per_outcome_not_blended() {
    let fx = Fixture::start(|c| {
        c.latency_ok = Some((Duration::from_millis(100), Duration::from_millis(100)));
        c.latency_fail = Some((Duration::from_millis(5), Duration::from_millis(5)));
    })
    .await;
    let args = RunArgs {
        requests: Some(80),
        concurrency: Some(8),
        bad_ratio: Some(0.5),
        ..fx.args()
    };
    let r = run(&args).await.report;
    assert_counts_add_up(&r);
    let good = r.latency_ms["token_issued"].p50.unwrap();
    let bad = r.latency_ms["expected_403"].p50.unwrap();
    assert!((100.0..130.0).contains(&good), "token_issued p50 {good}");
    assert!((5.0..30.0).contains(&bad), "expected_403 p50 {bad}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_requests_time_out_at_the_timeout_and_the_run_ends_on_time() {
    let fx = Fixture::start(|c| {
        c.stall_every = Some(5);
        c.stall_for = Duration::from_secs(1);
    })
    .await;
    let args = RunArgs {
        duration: Some(Duration::from_millis(1500)),
        timeout: Some(Duration::from_millis(200)),
        grace: Some(Duration::from_millis(300)),
        ..fx.args()
    };
    let start = Instant::now();
    let r = run(&args).await.report;
    let took = start.elapsed();
    assert_counts_add_up(&r);
    assert!(r.counts.timeout > 0, "{:?}", r.counts);
    let t = &r.latency_ms["timeout"];
    assert!(
        t.min.unwrap() >= 199.0 && t.max.unwrap() < 260.0,
        "timeouts recorded near 200 ms: {t:?}"
    );
    // Never mixed into the tokens' histogram.
    assert!(r.latency_ms["token_issued"].max.unwrap() < 150.0);
    assert!(
        took < Duration::from_millis(1500 + 300 + 400),
        "took {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_past_the_grace_are_unfinished() {
    let fx = Fixture::start(|c| {
        c.latency = Some((Duration::from_secs(5), Duration::from_secs(5)));
    })
    .await;
    let args = RunArgs {
        duration: Some(Duration::from_millis(300)),
        grace: Some(Duration::from_millis(200)),
        concurrency: Some(3),
        ..fx.args()
    };
    let start = Instant::now();
    let r = run(&args).await.report;
    assert!(
        start.elapsed() < Duration::from_millis(1200),
        "{:?}",
        start.elapsed()
    );
    assert_counts_add_up(&r);
    assert_eq!(r.counts.unfinished, 3);
    assert_eq!(r.counts.total, 3);
    assert!(r.warnings.iter().any(|w| w.contains("unfinished")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_hits_good_users_only_with_lockout_test() {
    let lockout = |c: &mut sdload::mock_server::Config| {
        c.lockout_after = Some(2);
        c.lockout_for = Duration::from_secs(60);
    };
    // Default: wrong passwords go to decoys only, so good users are never locked.
    let fx = Fixture::start(lockout).await;
    let args = RunArgs {
        requests: Some(300),
        bad_ratio: Some(0.5),
        ..fx.args()
    };
    let r = run(&args).await.report;
    assert_counts_add_up(&r);
    assert!(r.by_credential["wrong_password"].requests > 0);
    assert_eq!(r.counts.false_403, 0);

    let fx = Fixture::start(lockout).await;
    let args = RunArgs {
        requests: Some(300),
        bad_ratio: Some(0.5),
        lockout_test: true,
        decoy_users: None,
        ..fx.args()
    };
    let r = run(&args).await.report;
    assert_counts_add_up(&r);
    assert!(r.counts.false_403 > 0, "{:?}", r.counts);
    assert!(r.rates.forbidden_good.unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_servers_are_classified() {
    // Lets everyone in: bad_accepted.
    let fx = Fixture::start(|c| c.accept_any = true).await;
    let r = run(&RunArgs {
        requests: Some(100),
        ..fx.args()
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.bad_accepted, 20);
    assert!(r.warnings.iter().any(|w| w.contains("SECURITY")));

    // Answers 401 to wrong credentials: counted as 401, never as 403.
    let fx = Fixture::start(|c| c.reject_status = Some(401)).await;
    let r = run(&RunArgs {
        requests: Some(100),
        ..fx.args()
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.status_codes.get("401"), Some(&20));
    assert_eq!(r.counts.other_status, 20);
    assert_eq!(r.rates.forbidden, Some(0.0));
    // ... unless the scenario says 401 is the rejection status.
    let r = run(&RunArgs {
        requests: Some(100),
        reject_status: Some(401),
        ..fx.args()
    })
    .await
    .report;
    assert_eq!(r.counts.expected_403, 20);
    assert_eq!(r.rates.forbidden, Some(0.0));

    // A 200 with an HTML page: invalid_token, with a short snippet.
    let fx = Fixture::start(|c| c.token_format = TokenFormat::Html).await;
    let r = run(&RunArgs {
        requests: Some(50),
        ..fx.args()
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.invalid_token, 40);
    let (reason, problem) = r.invalid_tokens.iter().next().expect("a reason");
    assert_eq!(reason, "html");
    assert!(
        problem.example.chars().count() <= 201,
        "{}",
        problem.example
    );

    // The documentation's sample token: counted apart.
    let fx = Fixture::start(|c| c.token_format = TokenFormat::Nil).await;
    let r = run(&RunArgs {
        requests: Some(50),
        ..fx.args()
    })
    .await
    .report;
    assert_eq!(r.counts.token_issued, 40);
    assert_eq!(r.counts.nil_token, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_dropped_connections_are_counted() {
    let fx = Fixture::start(|c| c.error_rate = 1.0).await;
    let r = run(&RunArgs {
        requests: Some(40),
        ..fx.args()
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.other_status, 40);
    assert_eq!(r.status_codes.get("500"), Some(&40));

    let fx = Fixture::start(|c| c.drop_rate = 1.0).await;
    let ran = run(&RunArgs {
        requests: Some(40),
        ..fx.args()
    })
    .await;
    // Not one request got a response: the target could not be reached (exit 3).
    assert_eq!(ran.code, 3);
    let r = ran.report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.io_error, 40);
    // Never silently retried: the server saw each login once.
    assert_eq!(fx.server.stats().token_posts, 40);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_join_with_or_without_slash_prefix_and_localhost() {
    let fx = Fixture::start(|c| c.prefix = "/SD.WebAPI".into()).await;
    let port = fx.server.addr().port();
    for root in [
        format!("http://127.0.0.1:{port}/SD.WebAPI"),
        format!("http://127.0.0.1:{port}/SD.WebAPI/"),
        format!("http://localhost:{port}/SD.WebAPI/"),
    ] {
        let r = run(&RunArgs {
            target: Some(root.clone()),
            requests: Some(20),
            ..fx.args()
        })
        .await
        .report;
        assert_eq!(
            r.counts.token_issued + r.counts.expected_403,
            20,
            "{root}: {:?}",
            r.counts
        );
    }
    // Without the prefix: the server answers 404, counted as other_status.
    let r = run(&RunArgs {
        target: Some(format!("http://127.0.0.1:{port}/")),
        requests: Some(10),
        ..fx.args()
    })
    .await
    .report;
    assert_eq!(r.status_codes.get("404"), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unreachable_exit_3() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        target: Some(format!("http://127.0.0.1:{port}/")),
        duration: Some(Duration::from_millis(500)),
        ..fx.args()
    };
    let ran = run(&args).await;
    assert_eq!(ran.code, 3);
    assert_counts_add_up(&ran.report);
    assert_eq!(ran.report.counts.connect_error, ran.report.counts.total);
    // Workers back off on connect failures instead of retrying tens of thousands of times a
    // second: 4 workers in 0.5 s make at most a few dozen attempts.
    assert!(ran.report.counts.total < 200, "{}", ran.report.counts.total);
    assert!(ran.report.problems["connect_error"]
        .example
        .contains(&format!("127.0.0.1:{port}")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_other_status_with_their_location_shown_once() {
    let addr = common::raw_server(
        b"HTTP/1.1 302 Found\r\nLocation: https://login.example.com/sso\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    let fx = Fixture::start(|_| {}).await;
    let r = run(&RunArgs {
        target: Some(format!("http://{addr}/")),
        requests: Some(30),
        ..fx.args()
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.other_status, 30);
    assert_eq!(r.status_codes.get("302"), Some(&30));
    assert_eq!(
        r.redirect_location.as_deref(),
        Some("https://login.example.com/sso")
    );
    let text = sdload::export::text::render(&r, sdload::export::text::Style { color: false });
    assert_eq!(
        text.matches("https://login.example.com/sso").count(),
        1,
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_line_is_origin_form_with_a_host_header() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let head = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
        }
        let _ = s
            .write_all(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            .await;
        String::from_utf8_lossy(&buf).into_owned()
    });
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        target: Some(format!("http://{addr}/SD.WebAPI")),
        requests: Some(1),
        concurrency: Some(1),
        ..fx.args()
    };
    run(&args).await;
    let head = head.await.unwrap();
    assert!(
        head.starts_with("POST /SD.WebAPI/api/authorization/token HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: {addr}\r\n")),
        "{head}"
    );
}
