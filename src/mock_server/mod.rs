//! The mock ServiceDesk token endpoint (`sdload serve`, the embedded default target).
//! (Stub: the interface is fixed; the implementation lands with the foundation issue.)

use std::net::SocketAddr;
use std::time::Duration;

pub use crate::credentials::Credential as User;

/// Generates `count` users named `{prefix}0001`, ... with random passwords.
pub fn generate_users(prefix: &str, count: usize) -> Vec<User> {
    (1..=count)
        .map(|i| {
            User::new(
                format!("{prefix}{i:04}"),
                format!("pw-{}", uuid::Uuid::new_v4().simple()),
            )
        })
        .collect()
}

/// What the server does; every fault is off by default.
#[derive(Clone, Debug, Default)]
pub struct Config {
    pub prefix: String,
    pub users: Vec<User>,
    pub latency: Option<(Duration, Duration)>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    pub connections_accepted: u64,
    pub requests: u64,
    pub token_posts: u64,
    pub logins_ok: u64,
    pub logins_failed: u64,
    pub tokens_issued: u64,
    pub responses: std::collections::BTreeMap<String, u64>,
}

pub struct MockServer {
    addr: SocketAddr,
}

impl MockServer {
    pub async fn start(config: Config) -> std::io::Result<MockServer> {
        let _ = config;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        Ok(MockServer {
            addr: listener.local_addr()?,
        })
    }
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The API root, e.g. `http://127.0.0.1:43117/SD.WebAPI/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
    pub fn stats(&self) -> Stats {
        Stats::default()
    }
    pub async fn stop(self) {}
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {}

pub async fn serve_main(args: ServeArgs) -> anyhow::Result<()> {
    let _ = args;
    Ok(())
}
