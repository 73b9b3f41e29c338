//! The fault matrix: a target that misbehaves in every way the issue lists. In every case the
//! run ends within duration + grace, each request lands in exactly one outcome, nothing
//! panics, and the server saw exactly as many token POSTs as the tool counted requests sent
//! (no silent retry). Loopback and port 0 only; each run lasts about a second.

mod common;

use std::time::{Duration, Instant};

use common::{assert_counts_add_up, raw_server_with, run, token_answer, Fixture, Reply};
use sdload::app::Ran;
use sdload::cli::RunArgs;
use sdload::mock_server::{Config, MockServer, Stats};
use sdload::report::Report;

const DURATION: Duration = Duration::from_millis(1000);
const TIMEOUT: Duration = Duration::from_millis(300);
const GRACE: Duration = Duration::from_millis(500);
/// Scheduling slack on a loaded 2-core machine.
const SLACK: Duration = Duration::from_millis(1000);

fn fault_args(fx: &Fixture) -> RunArgs {
    RunArgs {
        duration: Some(DURATION),
        timeout: Some(TIMEOUT),
        grace: Some(GRACE),
        concurrency: Some(4),
        ..fx.args()
    }
}

async fn timed(args: &RunArgs) -> (Ran, Duration) {
    let start = Instant::now();
    let ran = run(args).await;
    (ran, start.elapsed())
}

/// The checks of every cell of the matrix; prints the counts seen (`--nocapture` shows them).
fn check(name: &str, r: &Report, took: Duration, server_posts: u64) {
    eprintln!(
        "matrix {name}: total {} token_issued {} expected_403 {} other_status {} timeout {} \
         connect_error {} io_error {} unfinished {} invalid_token {} | server token POSTs {server_posts} \
         | connections {} | {:.2}s",
        r.counts.total,
        r.counts.token_issued,
        r.counts.expected_403,
        r.counts.other_status,
        r.counts.timeout,
        r.counts.connect_error,
        r.counts.io_error,
        r.counts.unfinished,
        r.counts.invalid_token,
        r.connections_opened,
        took.as_secs_f64()
    );
    assert_counts_add_up(r);
    assert!(r.counts.total > 0, "{name}: nothing was sent");
    assert!(
        took < DURATION + GRACE + SLACK,
        "{name}: the run took {took:?}"
    );
    assert_eq!(
        server_posts,
        r.counts.total - r.counts.connect_error,
        "{name}: the server's token POSTs equal the requests the tool sent: {:?}",
        r.counts
    );
}

async fn mock_case(name: &str, tweak: impl FnOnce(&mut Config)) -> (Report, Stats) {
    let fx = Fixture::start(tweak).await;
    let (ran, took) = timed(&fault_args(&fx)).await;
    let stats = fx.server.stats();
    check(name, &ran.report, took, stats.token_posts);
    (ran.report, stats)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_dropped_without_an_answer_are_io_errors() {
    let (r, _) = mock_case("drop", |c| c.drop_rate = 1.0).await;
    assert_eq!(r.counts.io_error, r.counts.total);
    assert!(r.problems["io_error"].example.contains("closed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_other_status() {
    let (r, _) = mock_case("500", |c| c.error_rate = 1.0).await;
    assert_eq!(r.counts.other_status, r.counts.total);
    assert_eq!(r.status_codes.get("500"), Some(&r.counts.total));
    // Keep-alive held: a 500 does not cost a connection.
    assert_eq!(r.connections_opened, 4);
    // Each new connection's connect time is kept (no TLS on http).
    assert_eq!(r.connect_ms.count, 4);
    assert_eq!(r.tls_handshake_ms.count, 0);
    assert!(r.tls.is_none());
    assert!(r.histograms.contains_key("connect_ms"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_is_a_timeout_at_the_timeout() {
    let (r, _) = mock_case("never-answer", |c| c.never_answer = true).await;
    assert_eq!(r.counts.timeout, r.counts.total);
    let t = &r.latency_ms["timeout"];
    assert!(
        t.min.unwrap() >= 299.0 && t.max.unwrap() < 450.0,
        "recorded at the timeout: {t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickling_body_is_a_timeout_not_a_late_success() {
    // 38 bytes at one per 100 ms would take 3.8 s: the 300 ms timeout ends each request.
    let (r, _) = mock_case("trickle", |c| c.trickle = Some(Duration::from_millis(100))).await;
    assert_eq!(r.counts.timeout, r.counts.total, "{:?}", r.counts);
    assert_eq!(r.counts.token_issued, 0);
    let t = &r.latency_ms["timeout"];
    assert!(
        t.min.unwrap() >= 299.0 && t.max.unwrap() < 450.0,
        "recorded at the timeout: {t:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_is_an_io_error() {
    let (r, _) = mock_case("truncated", |c| c.truncate_body = true).await;
    assert_eq!(r.counts.io_error, r.counts.total, "{:?}", r.counts);
    assert!(
        r.problems["io_error"]
            .example
            .contains("before the response was complete"),
        "{:?}",
        r.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_instead_of_http_is_an_io_error() {
    let (r, _) = mock_case("garbage", |c| c.garbage = true).await;
    assert_eq!(r.counts.io_error, r.counts.total, "{:?}", r.counts);
    assert!(
        r.problems["io_error"].example.contains("not valid HTTP"),
        "{:?}",
        r.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_after_every_response_costs_connections_not_requests() {
    let (r, stats) = mock_case("connection-close", |c| c.close_after_response = true).await;
    assert_eq!(
        r.counts.token_issued + r.counts.expected_403,
        r.counts.total,
        "no request lost to a closing connection: {:?}",
        r.counts
    );
    // One connection per request (the last ones may be opened and not used).
    assert!(
        r.connections_opened >= r.counts.total,
        "{}",
        r.connections_opened
    );
    assert!(stats.connections_accepted >= r.counts.total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_longer_than_the_body_is_a_timeout() {
    // The connection stays open: the client waits for bytes that never come.
    let server = raw_server_with(|_| {
        Reply::Bytes(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n\"6f1c0c3e-".to_vec())
    })
    .await;
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        target: Some(server.url()),
        ..fault_args(&fx)
    };
    let (ran, took) = timed(&args).await;
    check("content-length-long", &ran.report, took, server.posts());
    assert_eq!(ran.report.counts.timeout, ran.report.counts.total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_length_shorter_than_the_body_is_counted_and_never_retried() {
    // 10 bytes announced, 38 sent: the response is a cut token (invalid_token), and the
    // extra bytes spoil the connection for the next request (io_error, or a new connection).
    let server = raw_server_with(|_| {
        Reply::Bytes(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\""
                .to_vec(),
        )
    })
    .await;
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        target: Some(server.url()),
        bad_ratio: Some(0.0),
        ..fault_args(&fx)
    };
    let (ran, took) = timed(&args).await;
    let r = &ran.report;
    check("content-length-short", r, took, server.posts());
    assert!(r.counts.invalid_token > 0, "{:?}", r.counts);
    assert_eq!(
        r.counts.invalid_token + r.counts.io_error,
        r.counts.total,
        "{:?}",
        r.counts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_closes_idle_connections_is_reconnected_to_quietly() {
    use sdload::credentials::login_body;
    use sdload::target::{Target, DEFAULT_TOKEN_PATH};
    use sdload::transport::Transport;

    let fx = Fixture::start(|c| c.idle_timeout = Some(Duration::from_millis(100))).await;
    let target = Target::parse(&fx.server.url(), DEFAULT_TOKEN_PATH).unwrap();
    let addrs = target.resolve().await.unwrap();
    let transport = Transport::new(target, addrs, Duration::from_secs(1)).unwrap();
    let mut conn = transport.connection();
    let user = &fx.users[0];
    let body = login_body(&user.username, &user.password);
    assert_eq!(conn.send(&body).await.unwrap().status, 200);
    // The server closes the idle connection; the next login goes out on a new one.
    wait_until(|| fx.server.stats().connections_closed == 1).await;
    assert_eq!(conn.send(&body).await.unwrap().status, 200);
    assert_eq!(conn.send(&body).await.unwrap().status, 200);
    assert_eq!(conn.connects, 2);
    let stats = fx.server.stats();
    assert_eq!((stats.token_posts, stats.logins_ok), (3, 3));
}

/// Waits for a condition the test can observe (never a fixed sleep standing in for one).
async fn wait_until(mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "condition not reached in 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_and_restarted_on_the_same_port_gets_the_workers_back() {
    let fx = Fixture::start(|_| {}).await;
    let config = || Config {
        users: fx.users.iter().chain(&fx.decoys).cloned().collect(),
        // Stop aborts every connection at once: a kill, as the client sees it.
        shutdown_grace: Some(Duration::ZERO),
        ..Default::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let first = MockServer::start_on(listener, config()).await.unwrap();
    let args = RunArgs {
        target: Some(first.url()),
        duration: Some(Duration::from_millis(1500)),
        ..fault_args(&fx)
    };
    let start = Instant::now();
    let running = tokio::spawn(async move { run(&args).await });

    wait_until(|| first.stats().token_posts >= 200).await;
    let first_stats = first.stop().await;
    // Down for a moment (the fault itself, not a synchronisation): connections are refused.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let second = MockServer::start_on(listener, config()).await.unwrap();

    let ran = running.await.expect("no panic");
    let took = start.elapsed();
    let second_stats = second.stop().await;
    let r = &ran.report;
    let posts = first_stats.token_posts + second_stats.token_posts;
    eprintln!(
        "matrix restart: total {} token_issued {} expected_403 {} connect_error {} io_error {} \
         timeout {} unfinished {} | server token POSTs {} before + {} after | connections {} | {:.2}s",
        r.counts.total,
        r.counts.token_issued,
        r.counts.expected_403,
        r.counts.connect_error,
        r.counts.io_error,
        r.counts.timeout,
        r.counts.unfinished,
        first_stats.token_posts,
        second_stats.token_posts,
        r.connections_opened,
        took.as_secs_f64()
    );
    assert_counts_add_up(r);
    assert_eq!(ran.code, 0, "the target answered: not unreachable");
    assert!(
        took < Duration::from_millis(1500) + GRACE + SLACK,
        "{took:?}"
    );
    // The workers came back: the second server issued tokens to all four of them.
    assert!(second_stats.logins_ok > 0, "{second_stats:?}");
    assert!(second_stats.connections_accepted >= 4, "{second_stats:?}");
    assert!(
        r.counts.connect_error > 0,
        "the down time was seen: {:?}",
        r.counts
    );
    // No silent retry: the servers never saw more logins than the tool sent, and every
    // answer the tool counted was a login a server saw. A request in flight at the kill may
    // or may not have reached the server (io_error either way).
    let answered: u64 = r.status_codes.values().sum();
    let sent = r.counts.total - r.counts.connect_error;
    assert!(
        answered <= posts && posts <= sent,
        "answered {answered} <= server POSTs {posts} <= sent {sent}: {:?}",
        r.counts
    );
    assert!(
        sent - answered <= 8,
        "at most the requests in flight at the kill are in doubt"
    );
}

// ---- Redirects (--follow-redirects) ----

fn redirect(status: u16, location: &str) -> Vec<u8> {
    format!("HTTP/1.1 {status} Moved\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n")
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_307_and_308_keep_method_and_body_when_followed() {
    let other = raw_server_with(|_| Reply::Bytes(token_answer())).await;
    let other_url = format!("{}sso/token", other.url());
    let server = raw_server_with(move |req| {
        if req.path.ends_with("/api/authorization/token") {
            Reply::Bytes(redirect(307, "/v2/token"))
        } else {
            Reply::Bytes(redirect(308, &other_url))
        }
    })
    .await;
    let fx = Fixture::start(|_| {}).await;
    let args = RunArgs {
        target: Some(server.url()),
        requests: Some(40),
        bad_ratio: Some(0.0),
        follow_redirects: true,
        ..fault_args(&fx)
    };
    let r = run(&args).await.report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.token_issued, 40, "{:?}", r.counts);
    assert_eq!(r.redirects.followed, 80);
    // Every hop was a POST with the same body; each login went once through each hop.
    assert_eq!(server.posts(), 80);
    assert_eq!(other.posts(), 40);
    let seen = server.seen.lock().unwrap().clone();
    let last = other.seen.lock().unwrap().clone();
    let bodies = |path: &str, seen: &[common::RawRequest]| {
        let mut b: Vec<Vec<u8>> = seen
            .iter()
            .filter(|q| q.path == path)
            .map(|q| {
                assert_eq!(q.method, "POST");
                q.body.clone()
            })
            .collect();
        b.sort();
        b
    };
    let first_hop = bodies("/api/authorization/token", &seen);
    assert_eq!(first_hop.len(), 40);
    assert!(first_hop[0].starts_with(b"{\"username\""));
    assert_eq!(first_hop, bodies("/v2/token", &seen));
    assert_eq!(first_hop, bodies("/sso/token", &last));
    // Latency covers both hops: nothing to check against, but it is one sample per login.
    assert_eq!(r.latency_ms["token_issued"].count, 40);

    // Off by default: the 307 is the answer.
    let r = run(&RunArgs {
        follow_redirects: false,
        requests: Some(10),
        ..args.clone()
    })
    .await
    .report;
    assert_eq!(r.counts.other_status, 10);
    assert_eq!(r.status_codes.get("307"), Some(&10));
    assert!(r.warnings.iter().any(|w| w.contains("--follow-redirects")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_that_would_turn_the_post_into_a_get_are_reported_not_followed() {
    for status in [301u16, 302, 303] {
        let server = raw_server_with(move |_| Reply::Bytes(redirect(status, "/elsewhere"))).await;
        let fx = Fixture::start(|_| {}).await;
        let r = run(&RunArgs {
            target: Some(server.url()),
            requests: Some(12),
            follow_redirects: true,
            ..fault_args(&fx)
        })
        .await
        .report;
        assert_counts_add_up(&r);
        assert_eq!(r.counts.other_status, 12, "{status}");
        assert_eq!(r.redirects.not_followed, 12, "{status}");
        assert_eq!(server.posts(), 12, "{status}: never followed");
        assert!(
            r.warnings.iter().any(|w| w.contains("into a GET")),
            "{:?}",
            r.warnings
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_loop_is_cut() {
    let server = raw_server_with(|_| Reply::Bytes(redirect(307, "/api/authorization/token"))).await;
    let fx = Fixture::start(|_| {}).await;
    let r = run(&RunArgs {
        target: Some(server.url()),
        requests: Some(4),
        follow_redirects: true,
        ..fault_args(&fx)
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.other_status, 4);
    assert_eq!(r.redirects.too_many, 4);
    assert_eq!(
        server.posts(),
        4 * (1 + sdload::transport::MAX_REDIRECTS as u64)
    );
}

/// Three logins on one connection to a raw server answering `answer`: the statuses, the last
/// body, how many connections the client opened and how many POSTs the server read.
async fn three_logins(answer: Vec<u8>, close: bool) -> (Vec<u16>, Vec<u8>, u64, u64) {
    use sdload::target::{Target, DEFAULT_TOKEN_PATH};
    use sdload::transport::Transport;

    let server = raw_server_with(move |_| {
        if close {
            Reply::Close(answer.clone())
        } else {
            Reply::Bytes(answer.clone())
        }
    })
    .await;
    let target = Target::parse(&server.url(), DEFAULT_TOKEN_PATH).unwrap();
    let addrs = target.resolve().await.unwrap();
    let transport = Transport::new(target, addrs, Duration::from_secs(1)).unwrap();
    let mut conn = transport.connection();
    let body = sdload::credentials::login_body("alice", "secret");
    let mut statuses = Vec::new();
    let mut last = Vec::new();
    for _ in 0..3 {
        let r = conn.send(&body).await.unwrap();
        statuses.push(r.status);
        last = r.body.to_vec();
    }
    (statuses, last, conn.connects, server.posts())
}

const TOKEN: &[u8] = b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"";

#[tokio::test]
async fn a_chunked_token_is_read_whole_and_keeps_the_connection() {
    let answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\n\"6f1c\r\n21;ext=1\r\n0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"\r\n0\r\nX-T: 1\r\n\r\n";
    let (statuses, body, connects, posts) = three_logins(answer.to_vec(), false).await;
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(body, TOKEN);
    assert_eq!((connects, posts), (1, 3));
}

#[tokio::test]
async fn an_http_1_0_answer_ending_at_the_close_costs_a_connection_per_login() {
    let mut answer = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n".to_vec();
    answer.extend_from_slice(TOKEN);
    let (statuses, body, connects, posts) = three_logins(answer, true).await;
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(body, TOKEN);
    assert_eq!((connects, posts), (3, 3));
}

#[tokio::test]
async fn connection_close_is_honoured_and_interim_answers_are_skipped() {
    let mut answer = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 403 Forbidden\r\n\
                       Connection: close\r\nContent-Length: 9\r\n\r\nForbidden"
        .to_vec();
    let (statuses, body, connects, posts) = three_logins(answer.clone(), true).await;
    assert_eq!(statuses, [403, 403, 403]);
    assert_eq!(body, b"Forbidden");
    assert_eq!((connects, posts), (3, 3));
    // Without the header, the same answer keeps the connection.
    answer = String::from_utf8(answer)
        .unwrap()
        .replace("Connection: close\r\n", "")
        .into_bytes();
    let (_, _, connects, posts) = three_logins(answer, false).await;
    assert_eq!((connects, posts), (1, 3));
}

#[tokio::test]
async fn a_body_larger_than_the_read_buffer_is_read_through_and_cut_when_kept() {
    let page = "x".repeat(100 * 1024);
    let answer = format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n{page}",
        page.len()
    );
    let (statuses, body, connects, posts) = three_logins(answer.into_bytes(), false).await;
    assert_eq!(statuses, [500, 500, 500]);
    assert_eq!(body.len(), 64 * 1024);
    assert_eq!((connects, posts), (1, 3));
}
