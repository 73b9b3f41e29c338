//! The mock ServiceDesk token endpoint (`sdload serve`, the embedded default target).
//!
//! A real HTTP/1.1 server on a TCP listener that behaves like ServiceDesk 8.5's
//! `POST {api-root}/api/authorization/token` (DESIGN.md section 1), with switchable faults
//! (latency, hashing cost, pauses, stalls, errors, dropped connections, lockout, broken tokens)
//! and counters of what it saw, so tests can check the load side's totals against the server's.
//!
//! Modules: `config` (the switches and their parsers), `users` (generated users, password check,
//! lockout), `tokens` (the bounded store of issued tokens), `faults` (pause schedule, stall rule,
//! per-connection randomness), `pacer` (the `capacity` queue), `stats` (atomic counters and the `Stats` snapshot), `login` (the
//! token endpoint), `routes` (router, protected calls, stats endpoint, counting middleware),
//! `responses` (IIS-like bodies), `accept` (accept loop and graceful stop), `args` (`sdload serve`).

mod accept;
mod args;
mod config;
mod faults;
mod login;
mod pacer;
mod responses;
mod routes;
mod state;
mod stats;
mod tls;
mod tokens;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::credentials::Credential as User;
pub use args::{serve_main, BehaviourArgs, ServeArgs};
pub use config::{
    normalize_prefix, parse_latency, parse_rate, Config, LatencyRange, TokenFormat,
    DEFAULT_MAX_TOKENS, DEFAULT_REJECT_STATUS, DEFAULT_SHUTDOWN_GRACE,
};
pub use routes::STATS_PATH;
pub use stats::Stats;
pub use tls::TlsIdentity;
pub use users::{generate_users, generate_users_seeded};

/// A running mock server. Dropping the handle stops the server too (without waiting for it).
pub struct MockServer {
    addr: SocketAddr,
    prefix: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

use state::Shared;

impl MockServer {
    /// Starts a server on `127.0.0.1` with a free port. It accepts connections once this returns.
    pub async fn start(config: Config) -> std::io::Result<MockServer> {
        let listener = bind("127.0.0.1:0").await?;
        Self::start_on(listener, config).await
    }

    /// Starts a server on a listener already bound. An invalid config is an `InvalidInput`
    /// error whose message names the switch.
    pub async fn start_on(listener: TcpListener, config: Config) -> std::io::Result<MockServer> {
        let addr = listener.local_addr()?;
        let grace = config.shutdown_grace.unwrap_or(DEFAULT_SHUTDOWN_GRACE);
        let shared = Shared::new(config, Instant::now())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let shared = Arc::new(shared);
        let router = routes::router(shared.clone());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(accept::accept_loop(
            listener,
            shared.clone(),
            router,
            stop_rx,
            grace,
        ));
        Ok(MockServer {
            addr,
            prefix: shared.config.prefix.clone(),
            shared,
            stop,
            task: Some(task),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` when the server serves TLS, else `http`.
    pub fn scheme(&self) -> &'static str {
        if self.shared.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// The API root with the prefix and a trailing slash, e.g. `http://127.0.0.1:43117/SD.WebAPI/`.
    pub fn url(&self) -> String {
        format!("{}://{}{}/", self.scheme(), self.addr, self.prefix)
    }

    /// The token endpoint's full URL.
    pub fn token_url(&self) -> String {
        format!("{}api/authorization/token", self.url())
    }

    /// The stats endpoint's full URL (at the root, whatever the prefix).
    pub fn stats_url(&self) -> String {
        format!("{}://{}{}", self.scheme(), self.addr, STATS_PATH)
    }

    /// The number of distinct user names the server knows.
    pub fn user_count(&self) -> usize {
        self.shared.accounts.len()
    }

    /// The same counts as `GET /__sdload/stats`.
    pub fn stats(&self) -> Stats {
        self.shared.counters.snapshot()
    }

    /// Stops accepting, closes idle connections, lets requests in flight finish within the
    /// grace period (then closes their connections), and returns when every connection is closed.
    /// Returns the final counts (every request the server saw, to the last).
    pub async fn stop(mut self) -> Stats {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.stats()
    }
}

/// The accept queue's length: thousands of workers connect at once at the start of a run, and
/// a short queue drops their SYNs (each then waits a second for its retransmission). The
/// kernel caps it (`net.core.somaxconn`, 4096 on current Linux).
pub const LISTEN_BACKLOG: u32 = 8192;

/// Binds a listener with a long accept queue (`LISTEN_BACKLOG`), `SO_REUSEADDR` on (a server
/// restarted on its port binds again at once), on the first address `addr` resolves to.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for a in tokio::net::lookup_host(addr).await? {
        let socket = if a.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        #[cfg(unix)]
        socket.set_reuseaddr(true)?;
        match socket.bind(a).and_then(|()| socket.listen(LISTEN_BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "the address resolved to nothing",
        )
    }))
}

impl Drop for MockServer {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
