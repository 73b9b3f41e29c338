//! Shared helpers for the integration tests: an in-process mock server on 127.0.0.1:0 and
//! `run` arguments pointing at it, with credentials written to a temporary folder.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use sdload::app::{self, Ran};
use sdload::cli::RunArgs;
use sdload::credentials::{write_csv, Credential};
use sdload::mock_server::{generate_users, Config, MockServer};

pub struct Fixture {
    pub server: MockServer,
    pub users: Vec<Credential>,
    pub decoys: Vec<Credential>,
    pub dir: tempfile::TempDir,
}

impl Fixture {
    /// A mock server with 20 users and 5 decoys; `tweak` sets its switches.
    pub async fn start(tweak: impl FnOnce(&mut Config)) -> Fixture {
        let users = generate_users("user", 20);
        let decoys = generate_users("decoy", 5);
        let mut config = Config {
            users: users.iter().chain(&decoys).cloned().collect(),
            ..Default::default()
        };
        tweak(&mut config);
        let server = MockServer::start(config).await.expect("mock server starts");
        let dir = tempfile::tempdir().unwrap();
        write_csv(&dir.path().join("users.csv"), &users).unwrap();
        write_csv(&dir.path().join("decoys.csv"), &decoys).unwrap();
        std::fs::write(dir.path().join("empty.toml"), "").unwrap();
        Fixture {
            server,
            users,
            decoys,
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Arguments for a quiet run against this server, from an empty scenario (so that
    /// `scenarios/default.toml` does not leak into the test), with decoys for wrong passwords.
    pub fn args(&self) -> RunArgs {
        RunArgs {
            scenario: Some(self.path("empty.toml")),
            target: Some(self.server.url()),
            credentials: Some(self.path("users.csv")),
            decoy_users: Some(self.path("decoys.csv")),
            concurrency: Some(4),
            warmup: Some(Duration::ZERO),
            quiet: true,
            ..Default::default()
        }
    }
}

pub async fn run(args: &RunArgs) -> Ran {
    match app::execute(args).await {
        Ok(ran) => ran,
        Err(app::Fail(code, message)) => panic!("run failed with exit {code}: {message}"),
    }
}

/// Every outcome count, summed.
pub fn outcome_sum(r: &sdload::report::Report) -> u64 {
    sdload::outcome::Outcome::ALL
        .iter()
        .map(|&o| r.counts.get(o))
        .sum()
}

/// The checks every run must pass: counts add up, the histogram of all holds every request.
pub fn assert_counts_add_up(r: &sdload::report::Report) {
    let c = &r.counts;
    assert_eq!(outcome_sum(r), c.total, "outcomes sum to the total: {c:?}");
    assert_eq!(c.good_credentials + c.bad_credentials, c.total, "{c:?}");
    assert_eq!(r.latency_ms["all"].count, c.total);
    let by_kind: u64 = r.by_credential.values().map(|k| k.requests).sum();
    assert_eq!(by_kind, c.total);
    let per_outcome: u64 = sdload::outcome::Outcome::ALL
        .iter()
        .map(|o| r.latency_ms[o.name()].count)
        .sum();
    assert_eq!(
        per_outcome, c.total,
        "every outcome histogram together holds every request"
    );
}

/// A raw HTTP/1.1 server on 127.0.0.1:0 that answers every request with `response` (bytes as
/// given), keeping the connection open: for answers the mock server does not give.
pub async fn raw_server(response: &'static [u8]) -> std::net::SocketAddr {
    raw_server_with(move |_| Reply::Bytes(response.to_vec()))
        .await
        .addr
}

/// One request as a raw test server read it.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    /// The path, whether the client sent origin form or absolute form.
    pub path: String,
    pub body: Vec<u8>,
}

/// What a raw test server does with a request.
pub enum Reply {
    /// Write these bytes and keep the connection for the next request.
    Bytes(Vec<u8>),
    /// Write these bytes and close.
    Close(Vec<u8>),
    /// Never answer (the connection stays open until the client gives up).
    Silence,
}

/// A raw HTTP/1.1 server on 127.0.0.1:0 that counts the requests it read (`posts` counts
/// POSTs) and answers each as `answer` says: for what the mock server cannot misbehave at.
pub struct RawServer {
    pub addr: std::net::SocketAddr,
    pub posts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<RawRequest>>>,
}

impl RawServer {
    pub fn posts(&self) -> u64 {
        self.posts.load(std::sync::atomic::Ordering::SeqCst)
    }
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

pub async fn raw_server_with(
    answer: impl Fn(&RawRequest) -> Reply + Send + Sync + 'static,
) -> RawServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let posts = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let answer = std::sync::Arc::new(answer);
    let (p, s) = (posts.clone(), seen.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_raw(stream, answer.clone(), p.clone(), s.clone()));
        }
    });
    RawServer { addr, posts, seen }
}

/// Serves one raw connection (plain or TLS) of a `RawServer`.
pub async fn serve_raw<S, F>(
    mut stream: S,
    answer: std::sync::Arc<F>,
    posts: std::sync::Arc<std::sync::atomic::AtomicU64>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<RawRequest>>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    F: Fn(&RawRequest) -> Reply + ?Sized,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length").then(|| v.trim())
            })
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let mut line = head.lines().next().unwrap_or_default().split(' ');
        let method = line.next().unwrap_or_default().to_owned();
        let target = line.next().unwrap_or_default();
        let path = match target.find("://") {
            Some(i) => target[i + 3..]
                .find('/')
                .map(|j| target[i + 3 + j..].to_owned())
                .unwrap_or_else(|| "/".into()),
            None => target.to_owned(),
        };
        let request = RawRequest {
            method,
            path,
            body: buf[end + 4..end + 4 + len].to_vec(),
        };
        buf.drain(..end + 4 + len);
        if request.method == "POST" {
            posts.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let reply = answer(&request);
        seen.lock().unwrap().push(request);
        match reply {
            Reply::Bytes(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::Close(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            Reply::Silence => {
                // Hold the connection until the client closes it.
                let _ = stream.read(&mut chunk).await;
                return;
            }
        }
    }
}

/// A token answer as ServiceDesk sends it.
pub fn token_answer() -> Vec<u8> {
    let body = format!("\"{}\"", uuid::Uuid::new_v4());
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}
