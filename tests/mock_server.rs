//! The mock ServiceDesk server, driven in-process over loopback with a plain reqwest client
//! (plus one run of the real binary).

use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::StatusCode;
use sdload::mock_server::{Config, MockServer, Stats, TokenFormat, User};

const MS: fn(u64) -> Duration = Duration::from_millis;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

fn users() -> Vec<User> {
    vec![User::new("alice", "alice-pw"), User::new("bob", "bob-pw")]
}

fn config() -> Config {
    Config {
        prefix: "/SD.WebAPI".into(),
        users: users(),
        ..Config::default()
    }
}

fn body(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password }).to_string()
}

async fn post(
    c: &reqwest::Client,
    s: &MockServer,
    content_type: &str,
    body: String,
) -> reqwest::Response {
    c.post(s.token_url())
        .header(CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn login(
    c: &reqwest::Client,
    s: &MockServer,
    username: &str,
    password: &str,
) -> reqwest::Response {
    post(c, s, "application/json", body(username, password)).await
}

/// Status and body of one login.
async fn login_text(
    c: &reqwest::Client,
    s: &MockServer,
    username: &str,
    password: &str,
) -> (StatusCode, String) {
    let r = login(c, s, username, password).await;
    (r.status(), r.text().await.unwrap())
}

/// The GUID in a 200 body, checked to be a JSON string holding a hyphenated lower-case v4 GUID.
fn guid(body: &str) -> uuid::Uuid {
    let text: String =
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not a JSON string: {body}"));
    let token = uuid::Uuid::parse_str(&text).unwrap();
    assert_eq!(token.get_version_num(), 4, "{text}");
    assert_eq!(
        text,
        token.hyphenated().to_string(),
        "hyphenated lower case"
    );
    token
}

#[tokio::test]
async fn right_credentials_get_a_guid_as_json() {
    let s = MockServer::start(config()).await.unwrap();
    assert_eq!(s.url(), format!("http://{}/SD.WebAPI/", s.addr()));
    let c = client();
    let r = login(&c, &s, "alice", "alice-pw").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    let first = guid(&r.text().await.unwrap());
    let (status, text) = login_text(&c, &s, "alice", "alice-pw").await;
    assert_eq!(status, 200);
    assert_ne!(guid(&text), first, "a new token each time");
    let stats = s.stats();
    assert_eq!(
        (stats.logins_ok, stats.tokens_issued, stats.logins_failed),
        (2, 2, 0)
    );
    s.stop().await;
}

#[tokio::test]
async fn wrong_credentials_get_403_html() {
    let s = MockServer::start(config()).await.unwrap();
    let c = client();
    for (user, password) in [
        ("alice", "bob-pw"),
        ("mallory", "alice-pw"),
        ("", ""),
        ("alice", ""),
    ] {
        let r = login(&c, &s, user, password).await;
        assert_eq!(r.status(), 403, "{user}");
        assert!(r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let page = r.text().await.unwrap();
        assert!(
            page.contains("403 - Forbidden: Access is denied."),
            "{page}"
        );
    }
    assert_eq!(s.stats().logins_failed, 4);
    s.stop().await;
}

#[tokio::test]
async fn malformed_json_and_missing_fields_get_400() {
    let s = MockServer::start(config()).await.unwrap();
    let c = client();
    for bad in [
        r#"{"username":"alice","password":"#,
        "not json",
        r#"["alice","alice-pw"]"#,
        r#"{"username":"alice"}"#,
        r#"{"password":"alice-pw"}"#,
        r#"{"username":"alice","password":42}"#,
        "",
    ] {
        let r = post(&c, &s, "application/json", bad.into()).await;
        assert_eq!(r.status(), 400, "{bad}");
        let text = r.text().await.unwrap();
        assert!(text.starts_with("400"), "{text}");
        assert!(!text.contains("alice-pw"), "never echoes the body");
    }
    let stats = s.stats();
    assert_eq!(
        (stats.token_posts, stats.logins_ok, stats.logins_failed),
        (7, 0, 0)
    );
    s.stop().await;
}

#[tokio::test]
async fn other_methods_405_unknown_paths_404_other_content_types_415() {
    let s = MockServer::start(config()).await.unwrap();
    let c = client();
    let r = c.get(s.token_url()).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(c.put(s.token_url()).send().await.unwrap().status(), 405);
    for path in ["nope", "api/authorization/token", "SD.WebAPI/api"] {
        let url = format!("http://{}/{path}", s.addr());
        let r = c
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .body(body("alice", "alice-pw"));
        assert_eq!(r.send().await.unwrap().status(), 404, "{path}");
    }
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/jsonp",
    ] {
        assert_eq!(
            post(&c, &s, ct, body("alice", "alice-pw")).await.status(),
            415,
            "{ct}"
        );
    }
    let r = c
        .post(s.token_url())
        .body(body("alice", "alice-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415, "no content type");
    s.stop().await;
}

#[tokio::test]
async fn text_json_charset_and_property_name_casing() {
    let s = MockServer::start(config()).await.unwrap();
    let c = client();
    for (ct, body) in [
        ("text/json", r#"{"username":"alice","password":"alice-pw"}"#),
        (
            "application/json; charset=utf-8",
            r#"{"Username":"alice","Password":"alice-pw"}"#,
        ),
        (
            "Application/JSON",
            r#"{"USERNAME":"alice","password":"alice-pw","extra":[1]}"#,
        ),
    ] {
        let r = post(&c, &s, ct, body.into()).await;
        assert_eq!(r.status(), 200, "{ct} {body}");
        guid(&r.text().await.unwrap());
    }
    s.stop().await;
}

#[tokio::test]
async fn empty_prefix_serves_at_the_root() {
    let s = MockServer::start(Config {
        users: users(),
        ..Config::default()
    })
    .await
    .unwrap();
    assert_eq!(s.url(), format!("http://{}/", s.addr()));
    assert_eq!(
        s.token_url(),
        format!("http://{}/api/authorization/token", s.addr())
    );
    assert_eq!(login(&client(), &s, "bob", "bob-pw").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn users_file_with_bom_domain_user_and_awkward_password() {
    let password = "p\"a\\ss,wörd é";
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(
        &mut file,
        "\u{feff}username,password\r\nEXAMPLE\\svc_load01,\"p\"\"a\\ss,wörd é\"\r\n".as_bytes(),
    )
    .unwrap();
    let users = sdload::credentials::read_csv(file.path()).unwrap();
    assert_eq!(users, vec![User::new("EXAMPLE\\svc_load01", password)]);
    let s = MockServer::start(Config {
        prefix: "SD.WebAPI/".into(),
        users,
        ..Config::default()
    })
    .await
    .unwrap();
    assert_eq!(s.user_count(), 1);
    let c = client();
    let (status, text) = login_text(&c, &s, "EXAMPLE\\svc_load01", password).await;
    assert_eq!(status, 200);
    guid(&text);
    assert_eq!(
        login(&c, &s, "EXAMPLE\\svc_load01", "p\"a\\ss,word e")
            .await
            .status(),
        403
    );
    s.stop().await;
}

#[tokio::test]
async fn authentication_header_guards_other_api_calls() {
    let s = MockServer::start(config()).await.unwrap();
    let c = client();
    let (_, text) = login_text(&c, &s, "alice", "alice-pw").await;
    let token = guid(&text);
    let call = |value: Option<String>| {
        let mut r = c.get(format!("{}api/incident/42", s.url()));
        if let Some(v) = value {
            r = r.header("Authentication", v);
        }
        r.send()
    };
    let r = call(Some(token.to_string())).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(
        call(Some(text.clone())).await.unwrap().status(),
        200,
        "quoted as returned"
    );
    assert_eq!(
        call(Some(uuid::Uuid::new_v4().to_string()))
            .await
            .unwrap()
            .status(),
        403,
        "forged"
    );
    assert_eq!(call(Some("garbage".into())).await.unwrap().status(), 403);
    assert_eq!(call(None).await.unwrap().status(), 403);
    let r = c
        .get(format!("{}api/incident/42", s.url()))
        .header("Authorization", token.to_string());
    assert_eq!(
        r.send().await.unwrap().status(),
        403,
        "Authorization is not Authentication"
    );
    let r = c
        .post(format!("{}api/changerequest", s.url()))
        .header("Authentication", token.to_string());
    assert_eq!(r.send().await.unwrap().status(), 200, "any method");
    s.stop().await;
}

#[tokio::test]
async fn oldest_tokens_are_forgotten_beyond_max_tokens() {
    let s = MockServer::start(Config {
        max_tokens: Some(1),
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    let first = guid(&login_text(&c, &s, "alice", "alice-pw").await.1);
    let second = guid(&login_text(&c, &s, "bob", "bob-pw").await.1);
    let call = |t: uuid::Uuid| {
        c.get(format!("{}api/incident/1", s.url()))
            .header("Authentication", t.to_string())
            .send()
    };
    assert_eq!(call(first).await.unwrap().status(), 403);
    assert_eq!(call(second).await.unwrap().status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn fixed_and_uniform_latency() {
    let s = MockServer::start(Config {
        latency: Some((MS(60), MS(60))),
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    let t = Instant::now();
    assert_eq!(login(&c, &s, "alice", "wrong").await.status(), 403);
    assert!(t.elapsed() >= MS(60), "{:?}", t.elapsed());
    s.stop().await;

    let s = MockServer::start(Config {
        latency: Some((MS(20), MS(40))),
        ..config()
    })
    .await
    .unwrap();
    let t = Instant::now();
    assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
    assert!(t.elapsed() >= MS(20), "{:?}", t.elapsed());
    s.stop().await;
}

#[tokio::test]
async fn bad_credentials_fast_good_ones_slow() {
    let s = MockServer::start(Config {
        latency_ok: Some((MS(100), MS(100))),
        latency_fail: Some((MS(5), MS(5))),
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    let t = Instant::now();
    assert_eq!(login(&c, &s, "alice", "wrong").await.status(), 403);
    let failed = t.elapsed();
    let t = Instant::now();
    assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
    let ok = t.elapsed();
    assert!(failed >= MS(5) && failed < MS(100), "{failed:?}");
    assert!(ok >= MS(100), "{ok:?}");
    s.stop().await;
}

#[tokio::test]
async fn hashing_cost_keeps_logins_correct() {
    let s = MockServer::start(Config {
        hash_iterations: 2000,
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
    assert_eq!(login(&c, &s, "alice", "nope").await.status(), 403);
    s.stop().await;
}

#[tokio::test]
async fn pause_holds_requests_then_answers_them() {
    let s = MockServer::start(Config {
        pause_every: Some(MS(150)),
        pause_for: MS(100),
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut longest = Duration::ZERO;
    while s.stats().paused == 0 && Instant::now() < deadline {
        let t = Instant::now();
        assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
        longest = longest.max(t.elapsed());
    }
    let stats = s.stats();
    assert!(stats.paused >= 1, "{stats:?}");
    // Back-to-back requests: the first one caught in a pause arrived near its start.
    assert!(longest >= MS(60), "{longest:?}");
    assert_eq!(
        stats.status(200),
        stats.requests,
        "every paused request was answered"
    );
    s.stop().await;
}

#[tokio::test]
async fn every_nth_token_post_stalls() {
    let s = MockServer::start(Config {
        stall_every: Some(3),
        stall_for: MS(150),
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    let mut slow = Vec::new();
    for n in 1..=6 {
        let t = Instant::now();
        let password = if n % 2 == 0 { "alice-pw" } else { "wrong" };
        login(&c, &s, "alice", password).await;
        if t.elapsed() >= MS(150) {
            slow.push(n);
        }
    }
    assert_eq!(slow, vec![3, 6]);
    assert_eq!(s.stats().stalled, 2);
    s.stop().await;
}

#[tokio::test]
async fn error_rate_one_answers_500_html() {
    let s = MockServer::start(Config {
        error_rate: 1.0,
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    for _ in 0..5 {
        let r = login(&c, &s, "alice", "alice-pw").await;
        assert_eq!(r.status(), 500);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("500 - Internal server error."));
    }
    let stats = s.stats();
    assert_eq!(
        (stats.injected_errors, stats.status(500), stats.logins_ok),
        (5, 5, 0)
    );
    s.stop().await;
}

#[tokio::test]
async fn error_rate_is_reproducible_with_a_seed() {
    async fn statuses(seed: u64) -> Vec<u16> {
        let s = MockServer::start(Config {
            error_rate: 0.5,
            seed,
            ..config()
        })
        .await
        .unwrap();
        let c = client();
        let mut out = Vec::new();
        for _ in 0..24 {
            out.push(login(&c, &s, "alice", "alice-pw").await.status().as_u16());
        }
        assert_eq!(s.stats().connections_accepted, 1);
        s.stop().await;
        out
    }
    let a = statuses(7).await;
    assert_eq!(a, statuses(7).await);
    assert!(a.contains(&200) && a.contains(&500), "{a:?}");
}

#[tokio::test]
async fn drop_rate_one_closes_without_answer() {
    let s = MockServer::start(Config {
        drop_rate: 1.0,
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    for _ in 0..3 {
        let r = c
            .post(s.token_url())
            .header(CONTENT_TYPE, "application/json")
            .body(body("alice", "alice-pw"))
            .send()
            .await;
        assert!(r.is_err(), "{r:?}");
    }
    let stats = s.stats();
    assert!(stats.dropped_connections >= 3, "{stats:?}");
    assert_eq!(stats.dropped_connections, stats.token_posts);
    assert_eq!(stats.responses_total(), 0);
    assert_eq!(stats.logins_ok, 0);
    s.stop().await;
}

#[tokio::test]
async fn lockout_after_failures_in_a_row() {
    let s = MockServer::start(Config {
        lockout_after: Some(3),
        lockout_for: MS(300),
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    for _ in 0..2 {
        assert_eq!(login(&c, &s, "alice", "wrong").await.status(), 403);
    }
    assert_eq!(
        login(&c, &s, "alice", "alice-pw").await.status(),
        200,
        "two failures only"
    );
    for _ in 0..3 {
        assert_eq!(login(&c, &s, "alice", "wrong").await.status(), 403);
    }
    let locked_at = Instant::now();
    assert_eq!(
        login(&c, &s, "alice", "alice-pw").await.status(),
        403,
        "locked"
    );
    assert_eq!(
        login(&c, &s, "bob", "bob-pw").await.status(),
        200,
        "others unaffected"
    );
    let stats = s.stats();
    assert_eq!(
        (stats.locked_out, stats.logins_failed, stats.logins_ok),
        (1, 6, 2)
    );
    // The lock expires.
    tokio::time::sleep(MS(300).saturating_sub(locked_at.elapsed()) + MS(20)).await;
    assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn accept_any_lets_wrong_passwords_in() {
    let s = MockServer::start(Config {
        accept_any: true,
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    for (user, password) in [("alice", "wrong"), ("mallory", "x"), ("", "")] {
        let (status, text) = login_text(&c, &s, user, password).await;
        assert_eq!(status, 200);
        guid(&text);
    }
    assert_eq!(
        post(&c, &s, "application/json", "{}".into()).await.status(),
        400
    );
    s.stop().await;
}

#[tokio::test]
async fn reject_status_401() {
    let s = MockServer::start(Config {
        reject_status: Some(401),
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    let (status, text) = login_text(&c, &s, "alice", "wrong").await;
    assert_eq!(status, 401);
    assert!(text.contains("401 - Unauthorized"), "{text}");
    assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
    s.stop().await;
}

#[tokio::test]
async fn token_format_nil_and_html() {
    let s = MockServer::start(Config {
        token_format: TokenFormat::Nil,
        ..config()
    })
    .await
    .unwrap();
    let c = client();
    let r = login(&c, &s, "alice", "alice-pw").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/json; charset=utf-8");
    assert_eq!(
        r.text().await.unwrap(),
        "\"00000000-0000-0000-0000-000000000000\""
    );
    assert_eq!(s.stats().tokens_issued, 0);
    s.stop().await;

    let s = MockServer::start(Config {
        token_format: TokenFormat::Html,
        ..config()
    })
    .await
    .unwrap();
    let r = login(&c, &s, "alice", "alice-pw").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let text = r.text().await.unwrap();
    assert!(text.contains("<html>"), "{text}");
    assert!(serde_json::from_str::<String>(&text).is_err());
    assert_eq!(login(&c, &s, "alice", "wrong").await.status(), 403);
    s.stop().await;
}

#[tokio::test]
async fn stats_add_up_over_one_keep_alive_connection() {
    let s = MockServer::start(config()).await.unwrap();
    let c = client();
    let api = |path: &str| format!("{}{path}", s.url());
    let mut sent = 0;
    for _ in 0..3 {
        assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
        sent += 1;
    }
    for _ in 0..2 {
        assert_eq!(login(&c, &s, "bob", "wrong").await.status(), 403);
        sent += 1;
    }
    assert_eq!(
        post(&c, &s, "application/json", "{".into()).await.status(),
        400
    );
    assert_eq!(
        post(&c, &s, "text/plain", body("a", "b")).await.status(),
        415
    );
    assert_eq!(c.get(s.token_url()).send().await.unwrap().status(), 405);
    assert_eq!(c.get(api("elsewhere")).send().await.unwrap().status(), 404);
    assert_eq!(
        c.get(api("api/incident")).send().await.unwrap().status(),
        403
    );
    sent += 5;
    assert_eq!(sent, 10);

    let served: Stats = c
        .get(s.stats_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stats = s.stats();
    assert_eq!(served, stats, "the endpoint and the handle agree");
    assert_eq!(stats.requests, 10, "stats calls are not counted");
    assert_eq!(stats.responses_total(), 10);
    assert_eq!(stats.connections_accepted, 1, "keep-alive: one connection");
    assert_eq!(
        stats.token_posts, 7,
        "POSTs to the token path, whatever their answer"
    );
    assert_eq!(
        (stats.logins_ok, stats.logins_failed, stats.tokens_issued),
        (3, 2, 3)
    );
    for (code, n) in [(200, 3), (403, 3), (400, 1), (415, 1), (405, 1), (404, 1)] {
        assert_eq!(stats.status(code), n, "{code}");
    }
    s.stop().await;
}

#[tokio::test]
async fn n_workers_make_exactly_n_connections() {
    let s = MockServer::start(config()).await.unwrap();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (url, c) = (s.token_url(), client());
            tokio::spawn(async move {
                for _ in 0..5 {
                    let r = c
                        .post(&url)
                        .header(CONTENT_TYPE, "application/json")
                        .body(body("bob", "bob-pw"));
                    assert_eq!(r.send().await.unwrap().status(), 200);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    let stats = s.stats();
    assert_eq!(
        (stats.connections_accepted, stats.requests, stats.logins_ok),
        (4, 20, 20)
    );
    s.stop().await;
}

#[tokio::test]
async fn stop_finishes_requests_in_flight_then_refuses() {
    let s = MockServer::start(Config {
        latency: Some((MS(150), MS(150))),
        ..config()
    })
    .await
    .unwrap();
    let (url, c) = (s.token_url(), client());
    let in_flight = tokio::spawn(async move {
        let r = c
            .post(&url)
            .header(CONTENT_TYPE, "application/json")
            .body(body("alice", "alice-pw"));
        r.send().await.map(|r| r.status())
    });
    let deadline = Instant::now() + Duration::from_secs(2);
    while s.stats().requests == 0 && Instant::now() < deadline {
        tokio::time::sleep(MS(1)).await;
    }
    let addr = s.addr();
    tokio::time::timeout(Duration::from_secs(2), s.stop())
        .await
        .unwrap();
    assert_eq!(in_flight.await.unwrap().unwrap(), 200);
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn stop_closes_idle_keep_alive_connections_at_once() {
    let s = MockServer::start(config()).await.unwrap();
    let c = client();
    assert_eq!(login(&c, &s, "alice", "alice-pw").await.status(), 200);
    let t = Instant::now();
    s.stop().await;
    assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
}

#[tokio::test]
async fn invalid_config_is_refused_with_the_switch_named() {
    for (config, switch) in [
        (
            Config {
                error_rate: 1.5,
                ..Config::default()
            },
            "--error-rate",
        ),
        (
            Config {
                pause_every: Some(MS(10)),
                pause_for: MS(20),
                ..Config::default()
            },
            "--pause-for",
        ),
        (
            Config {
                reject_status: Some(200),
                ..Config::default()
            },
            "--reject-status",
        ),
        (
            Config {
                prefix: "/a b".into(),
                ..Config::default()
            },
            "--prefix",
        ),
    ] {
        let err = MockServer::start(config).await.err().expect("refused");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains(switch), "{err}");
    }
}

mod binary {
    use super::*;
    use std::io::BufRead;
    use std::process::{Child, Command, Stdio};

    /// Starts `sdload serve` with `args` and returns it with its first stdout line.
    fn serve(args: &[&str]) -> (Child, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sdload"))
            .arg("serve")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            lines.for_each(drop); // keep the pipe drained
        });
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => (child, line),
            Err(_) => {
                let _ = child.kill();
                panic!("no first line from sdload serve");
            }
        }
    }

    fn wait_exit(mut child: Child) -> std::process::ExitStatus {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        rx.recv_timeout(Duration::from_secs(10))
            .expect("sdload serve exits")
            .unwrap()
    }

    #[tokio::test]
    async fn serve_prints_its_address_and_writes_its_users() {
        let dir = tempfile::tempdir().unwrap();
        let users_file = dir.path().join("users.csv");
        let (child, first) = serve(&[
            "--listen",
            "127.0.0.1:0",
            "--generate-users",
            "3",
            "--write-users",
            users_file.to_str().unwrap(),
        ]);
        let root = first
            .strip_prefix("listening on ")
            .expect(&first)
            .to_owned();
        let addr: std::net::SocketAddr = root
            .strip_prefix("http://")
            .and_then(|r| r.strip_suffix('/'))
            .expect(&first)
            .parse()
            .unwrap();
        assert_ne!(addr.port(), 0);
        let users = sdload::credentials::read_csv(&users_file).unwrap();
        assert_eq!(users.len(), 3);
        assert_eq!(users[0].username, "user0001");
        let r = client()
            .post(format!("{root}api/authorization/token"))
            .header(CONTENT_TYPE, "application/json")
            .body(body(&users[1].username, &users[1].password))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        guid(&r.text().await.unwrap());
        #[cfg(unix)]
        {
            // Ctrl-C stops it gracefully with exit code 0.
            let kill = Command::new("kill")
                .arg("-INT")
                .arg(child.id().to_string())
                .status()
                .unwrap();
            assert!(kill.success());
            assert_eq!(wait_exit(child).code(), Some(0));
        }
        #[cfg(not(unix))]
        {
            let mut child = child;
            child.kill().unwrap();
            wait_exit(child);
        }
    }

    #[test]
    fn bad_flags_exit_2_with_a_clear_message() {
        for (args, expected) in [
            (&["--error-rate", "1.5"][..], "between 0 and 1"),
            (&["--latency", "5"][..], "no unit"),
            (&["--latency", "20ms..2ms"][..], "MIN..MAX"),
            (&["--pause-every", "1s"][..], "--pause-for"),
            (&["--pause-every", "1s", "--pause-for", "2s"][..], "shorter"),
            (&["--reject-status", "200"][..], "400..=599"),
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_sdload"))
                .arg("serve")
                .args(["--listen", "127.0.0.1:0"])
                .args(args)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains(expected), "{args:?}: {stderr}");
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }
}
