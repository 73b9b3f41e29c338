//! The state every request shares: the normalised config, the counters, the accounts and the
//! issued tokens.

use std::time::Instant;

use axum::http::StatusCode;

use super::config::{normalize_prefix, Config, DEFAULT_MAX_TOKENS};
use super::faults::PauseSchedule;
use super::pacer::Pacer;
use super::stats::Counters;
use super::tokens::TokenStore;
use super::users::Accounts;

pub(crate) struct Shared {
    /// The config as given, with `prefix` normalised and `users` moved into `accounts`.
    pub config: Config,
    /// `{prefix}/api/authorization/token`
    pub token_path: String,
    /// `{prefix}/api/`: every other path under it is an `Authentication`-protected call.
    pub api_base: String,
    pub reject: StatusCode,
    pub pause: Option<PauseSchedule>,
    /// `capacity`: the queue every token POST goes through.
    pub pacer: Option<Pacer>,
    pub counters: Counters,
    pub accounts: Accounts,
    pub tokens: TokenStore,
    /// Built from `config.tls` at start.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
}

impl Shared {
    /// Validates the config; `start` is the origin of the pause schedule.
    pub fn new(mut config: Config, start: Instant) -> Result<Self, String> {
        config.validate()?;
        config.prefix = normalize_prefix(&config.prefix)?;
        let reject = StatusCode::from_u16(config.reject_status())
            .map_err(|_| "--reject-status is not a status code".to_owned())?;
        let pause = config.pause_every.map(|every| PauseSchedule {
            start,
            every,
            pause_for: config.pause_for,
        });
        let accounts = Accounts::new(&config.users);
        // The accounts hold the only copy the server needs.
        config.users = Vec::new();
        let tokens = TokenStore::new(config.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS));
        let tls = match &config.tls {
            Some(identity) => Some(tokio_rustls::TlsAcceptor::from(identity.server_config()?)),
            None => None,
        };
        Ok(Shared {
            tls,
            token_path: format!("{}/api/authorization/token", config.prefix),
            api_base: format!("{}/api/", config.prefix),
            reject,
            pause,
            pacer: config.capacity.map(Pacer::new),
            counters: Counters::default(),
            accounts,
            tokens,
            config,
        })
    }

    /// Waits while the server is paused; true when it had to.
    pub async fn wait_pause(&self) -> bool {
        match &self.pause {
            Some(pause) => pause.wait().await,
            None => false,
        }
    }
}
