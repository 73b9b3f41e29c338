//! What the server saw: lock-free counters on the request path, and the `Stats` snapshot that
//! `MockServer::stats` and `GET /__sdload/stats` return.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use serde::{Deserialize, Serialize};

/// Counts since the server started. Every field only grows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Stats {
    /// TCP connections accepted.
    pub connections_accepted: u64,
    /// Connections that have ended (closed by either side, dropped, or at stop).
    pub connections_closed: u64,
    /// HTTP requests received, every path and method except the stats endpoint itself.
    pub requests: u64,
    /// POSTs to the token path, whatever their answer (dropped ones included).
    pub token_posts: u64,
    /// Logins answered 200 (with `accept_any`, wrong credentials too).
    pub logins_ok: u64,
    /// Logins refused with the reject status (wrong credentials or a locked account).
    pub logins_failed: u64,
    /// New GUID tokens issued and remembered (not the nil or HTML answers).
    pub tokens_issued: u64,
    /// Logins refused because the account was locked (also in `logins_failed`).
    pub locked_out: u64,
    /// Token POSTs whose connection was closed without an answer (`drop_rate`).
    pub dropped_connections: u64,
    /// Token POSTs answered 500 on purpose (`error_rate`).
    pub injected_errors: u64,
    /// Token POSTs that waited the extra stall (`stall_every`).
    pub stalled: u64,
    /// Requests that waited for a server pause to end (`pause_every`).
    pub paused: u64,
    /// Token POSTs that waited for a free slot (`capacity`: the server was saturated).
    pub queued: u64,
    /// Answers by status code (`"200"`, `"403"`, ...); dropped requests have none.
    pub responses: BTreeMap<String, u64>,
}

impl Stats {
    /// The number of answers with this status.
    pub fn status(&self, code: u16) -> u64 {
        self.responses.get(&code.to_string()).copied().unwrap_or(0)
    }

    /// All answers, whatever their status.
    pub fn responses_total(&self) -> u64 {
        self.responses.values().sum()
    }
}

/// Status codes are 100..=999 (what `http::StatusCode` accepts): one slot each.
const STATUS_SLOTS: usize = 1000;

#[derive(Debug)]
pub(crate) struct Counters {
    pub connections_accepted: AtomicU64,
    pub connections_closed: AtomicU64,
    pub requests: AtomicU64,
    pub token_posts: AtomicU64,
    pub logins_ok: AtomicU64,
    pub logins_failed: AtomicU64,
    pub tokens_issued: AtomicU64,
    pub locked_out: AtomicU64,
    pub dropped_connections: AtomicU64,
    pub injected_errors: AtomicU64,
    pub stalled: AtomicU64,
    pub paused: AtomicU64,
    pub queued: AtomicU64,
    responses: Box<[AtomicU64]>,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            connections_accepted: AtomicU64::new(0),
            connections_closed: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            token_posts: AtomicU64::new(0),
            logins_ok: AtomicU64::new(0),
            logins_failed: AtomicU64::new(0),
            tokens_issued: AtomicU64::new(0),
            locked_out: AtomicU64::new(0),
            dropped_connections: AtomicU64::new(0),
            injected_errors: AtomicU64::new(0),
            stalled: AtomicU64::new(0),
            paused: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            responses: (0..STATUS_SLOTS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

/// Adds one and returns the new count.
pub(crate) fn bump(counter: &AtomicU64) -> u64 {
    counter.fetch_add(1, Relaxed) + 1
}

impl Counters {
    pub fn record_status(&self, code: u16) {
        if let Some(slot) = self.responses.get(usize::from(code)) {
            slot.fetch_add(1, Relaxed);
        }
    }

    pub fn snapshot(&self) -> Stats {
        let get = |c: &AtomicU64| c.load(Relaxed);
        Stats {
            connections_accepted: get(&self.connections_accepted),
            connections_closed: get(&self.connections_closed),
            requests: get(&self.requests),
            token_posts: get(&self.token_posts),
            logins_ok: get(&self.logins_ok),
            logins_failed: get(&self.logins_failed),
            tokens_issued: get(&self.tokens_issued),
            locked_out: get(&self.locked_out),
            dropped_connections: get(&self.dropped_connections),
            injected_errors: get(&self.injected_errors),
            stalled: get(&self.stalled),
            paused: get(&self.paused),
            queued: get(&self.queued),
            responses: self
                .responses
                .iter()
                .enumerate()
                .filter_map(|(code, n)| {
                    let n = get(n);
                    (n > 0).then(|| (code.to_string(), n))
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_lists_statuses_seen() {
        let c = Counters::default();
        c.record_status(200);
        c.record_status(200);
        c.record_status(403);
        assert_eq!(bump(&c.requests), 1);
        let s = c.snapshot();
        assert_eq!(s.status(200), 2);
        assert_eq!(s.status(403), 1);
        assert_eq!(s.status(500), 0);
        assert_eq!(s.responses_total(), 3);
        assert_eq!(s.requests, 1);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""responses":{"200":2,"403":1}"#), "{json}");
        let back: Stats = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let partial: Stats = serde_json::from_str(r#"{"requests":3}"#).unwrap();
        assert_eq!(partial.requests, 3);
    }
}
