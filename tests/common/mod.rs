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

/// A raw HTTP/1.1 server on 127.0.0.1:0 that answers every request it reads with `response`
/// (bytes as given), keeping the connection open. For behaviours the mock server does not have.
pub async fn raw_server(response: &'static [u8]) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    // One request: headers, then Content-Length bytes of body.
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..end + 4 + len);
                    if stream.write_all(response).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}
