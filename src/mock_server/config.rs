//! What the server does: the `Config` every switch lives in, and the parsers and checks for
//! the values users type (latencies, rates, the API prefix).

use std::time::Duration;

use super::User;

/// A latency to sleep before answering: `(min, max)`, drawn uniformly; `min == max` is fixed.
pub type LatencyRange = (Duration, Duration);

/// At most this many issued tokens are remembered by default (the oldest are forgotten first).
pub const DEFAULT_MAX_TOKENS: usize = 1_000_000;
/// How long `stop` lets requests in flight finish before closing their connections.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// The status answered for wrong credentials unless `reject_status` says otherwise.
pub const DEFAULT_REJECT_STATUS: u16 = 403;

/// What a successful login answers.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum TokenFormat {
    /// A new random GUID as a JSON string (what ServiceDesk does)
    #[default]
    Guid,
    /// Always the nil GUID "00000000-0000-0000-0000-000000000000" (the documentation's sample)
    Nil,
    /// An HTML page: a 200 that is not a token
    Html,
}

/// What the server does; every fault is off by default (`Config::default()` is a well-behaved
/// ServiceDesk with no users).
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// API root path such as `/SD.WebAPI`; empty for the host root. Normalised at start
    /// (leading slash, no trailing slash).
    pub prefix: String,
    /// The accounts that can log in. A later duplicate user name replaces an earlier one.
    /// An empty password never logs in.
    pub users: Vec<User>,
    /// Slept before every API answer (token POSTs and `Authentication`-protected calls).
    pub latency: Option<LatencyRange>,
    /// Replaces `latency` for successful logins.
    pub latency_ok: Option<LatencyRange>,
    /// Replaces `latency` for refused logins (wrong credentials, locked out).
    pub latency_fail: Option<LatencyRange>,
    /// PBKDF2-HMAC-SHA256 iterations run per login attempt (on the blocking pool); 0 = none.
    pub hash_iterations: u32,
    /// Every this long (from server start) the server stops answering for `pause_for`.
    pub pause_every: Option<Duration>,
    pub pause_for: Duration,
    /// Every Nth token POST (N, 2N, ...) waits an extra `stall_for` before answering.
    pub stall_every: Option<u64>,
    pub stall_for: Duration,
    /// Share (0..=1) of token POSTs answered 500 with an HTML body.
    pub error_rate: f64,
    /// Share (0..=1) of token POSTs whose connection is closed without an answer.
    pub drop_rate: f64,
    /// This many failed logins in a row for an existing user lock it for `lockout_for`.
    pub lockout_after: Option<u32>,
    pub lockout_for: Duration,
    /// Every well-formed token POST gets a token, whatever the credentials (a broken server).
    pub accept_any: bool,
    /// The status for wrong credentials (400..=599); `None` is 403.
    pub reject_status: Option<u16>,
    /// What a successful login answers.
    pub token_format: TokenFormat,
    /// Seeds the randomised faults (each connection's generator is seeded from seed + its index).
    pub seed: u64,
    /// Issued tokens remembered; `None` is `DEFAULT_MAX_TOKENS`.
    pub max_tokens: Option<usize>,
    /// How long `stop` waits for requests in flight; `None` is `DEFAULT_SHUTDOWN_GRACE`.
    pub shutdown_grace: Option<Duration>,
    /// Every answer carries `Connection: close`: one connection per request.
    pub close_after_response: bool,
    /// Keep-alive connections idle (waiting for the next request's headers) this long are closed.
    pub idle_timeout: Option<Duration>,
    /// Token POSTs are read and counted, and never answered.
    pub never_answer: bool,
    /// Token POST answers send their headers, then the body one byte every this long.
    pub trickle: Option<Duration>,
    /// Token POST answers announce the whole body's Content-Length, send half of it and close.
    pub truncate_body: bool,
    /// Every request is read, counted and answered with bytes that are not HTTP; then close.
    pub garbage: bool,
    /// Error pages (400, 403, 500 of token POSTs) echo the request body, as careless servers do.
    pub echo_body: bool,
    /// Serve HTTPS with this certificate (and require client certificates when it says so).
    pub tls: Option<super::TlsIdentity>,
    /// At most this many token POSTs are served per second; beyond that they queue, first come
    /// first served, so latency climbs as on a saturated server. `None`: no limit.
    pub capacity: Option<f64>,
}

impl Config {
    /// Checks every switch; the message names the switch as the command line spells it.
    pub fn validate(&self) -> Result<(), String> {
        normalize_prefix(&self.prefix)?;
        for (name, latency) in [
            ("--latency", self.latency),
            ("--latency-ok", self.latency_ok),
            ("--latency-fail", self.latency_fail),
        ] {
            if let Some((lo, hi)) = latency {
                if lo > hi {
                    return Err(format!("{name}: the minimum is above the maximum"));
                }
            }
        }
        check_rate("--error-rate", self.error_rate)?;
        check_rate("--drop-rate", self.drop_rate)?;
        if let Some(every) = self.pause_every {
            if self.pause_for.is_zero() {
                return Err("--pause-every needs --pause-for (a non-zero duration)".into());
            }
            if self.pause_for >= every {
                return Err(format!(
                    "--pause-for ({}) must be shorter than --pause-every ({}), or the server never answers",
                    crate::duration::format(self.pause_for),
                    crate::duration::format(every)
                ));
            }
        }
        match self.stall_every {
            Some(0) => return Err("--stall-every must be at least 1".into()),
            Some(_) if self.stall_for.is_zero() => {
                return Err("--stall-every needs --stall-for (a non-zero duration)".into())
            }
            _ => {}
        }
        match self.lockout_after {
            Some(0) => return Err("--lockout-after must be at least 1".into()),
            Some(_) if self.lockout_for.is_zero() => {
                return Err("--lockout-after needs --lockout-for (a non-zero duration)".into())
            }
            _ => {}
        }
        if let Some(code) = self.reject_status {
            check_reject_status(code)?;
        }
        if let Some(n) = self.capacity {
            if !(n.is_finite() && n > 0.0 && n <= 1_000_000.0) {
                return Err(format!(
                    "--capacity must be above 0 logins per second (at most 1000000), not {n}"
                ));
            }
        }
        if self.max_tokens == Some(0) {
            return Err("--max-tokens must be at least 1".into());
        }
        for (name, d) in [
            ("--idle-timeout", self.idle_timeout),
            ("--trickle", self.trickle),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(format!("{name} must be more than zero"));
            }
        }
        if let Some(tls) = &self.tls {
            tls.server_config()?;
        }
        Ok(())
    }

    pub(crate) fn reject_status(&self) -> u16 {
        self.reject_status.unwrap_or(DEFAULT_REJECT_STATUS)
    }
}

/// `SD.WebAPI/`, `/SD.WebAPI` and ` /SD.WebAPI// ` all become `/SD.WebAPI`; `/` and `` become ``.
pub fn normalize_prefix(prefix: &str) -> Result<String, String> {
    let trimmed = prefix.trim().trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    if let Some(c) = trimmed
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || "{}*?#%".contains(*c))
    {
        return Err(format!(
            "--prefix `{prefix}`: the character {c:?} is not allowed in the API root path"
        ));
    }
    if trimmed.split('/').any(str::is_empty) {
        return Err(format!("--prefix `{prefix}`: empty path segment (`//`)"));
    }
    Ok(format!("/{trimmed}"))
}

/// `5ms` (fixed) or `2ms..20ms` (uniform between the two, inclusive).
pub fn parse_latency(text: &str) -> Result<LatencyRange, String> {
    match text.split_once("..") {
        None => {
            let d = crate::duration::parse(text)?;
            Ok((d, d))
        }
        Some((lo, hi)) => {
            let lo = crate::duration::parse(lo)?;
            let hi = crate::duration::parse(hi)?;
            if lo > hi {
                return Err(format!(
                    "`{}` starts above where it ends (write MIN..MAX, e.g. 2ms..20ms)",
                    text.trim()
                ));
            }
            Ok((lo, hi))
        }
    }
}

/// A share between 0 and 1 (`0.05` is 5 %).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number (write a share such as 0.05)"))?;
    check_rate("the value", value)?;
    Ok(value)
}

fn check_rate(name: &str, value: f64) -> Result<(), String> {
    if value.is_finite() && (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be a share between 0 and 1 (0.05 is 5 %), not {value}"
        ))
    }
}

pub(crate) fn check_reject_status(code: u16) -> Result<(), String> {
    if (400..=599).contains(&code) {
        Ok(())
    } else {
        Err(format!(
            "--reject-status must be an error status (400..=599), not {code}"
        ))
    }
}

/// clap value parser for `--reject-status`.
pub(crate) fn parse_reject_status(text: &str) -> Result<u16, String> {
    let code: u16 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an HTTP status code"))?;
    check_reject_status(code)?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn prefix_is_normalised() {
        assert_eq!(normalize_prefix("").unwrap(), "");
        assert_eq!(normalize_prefix("/").unwrap(), "");
        assert_eq!(normalize_prefix("SD.WebAPI").unwrap(), "/SD.WebAPI");
        assert_eq!(normalize_prefix("/SD.WebAPI/").unwrap(), "/SD.WebAPI");
        assert_eq!(normalize_prefix(" /a/b// ").unwrap(), "/a/b");
        assert!(normalize_prefix("/a{b}").is_err());
        assert!(normalize_prefix("/a//b").is_err());
        assert!(normalize_prefix("/a b").is_err());
    }

    #[test]
    fn latency_fixed_and_range() {
        assert_eq!(parse_latency("5ms").unwrap(), (MS(5), MS(5)));
        assert_eq!(parse_latency("2ms..20ms").unwrap(), (MS(2), MS(20)));
        assert!(parse_latency("20ms..2ms").unwrap_err().contains("MIN..MAX"));
        assert!(parse_latency("5").unwrap_err().contains("no unit"));
        assert!(parse_latency("2ms..").is_err());
        assert!(parse_latency("fast").is_err());
    }

    #[test]
    fn rates_are_shares() {
        assert_eq!(parse_rate("0.25").unwrap(), 0.25);
        assert_eq!(parse_rate("1").unwrap(), 1.0);
        assert!(parse_rate("1.5").unwrap_err().contains("between 0 and 1"));
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("lots").is_err());
    }

    #[test]
    fn validate_names_the_switch() {
        assert!(Config::default().validate().is_ok());
        let bad = |f: fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.error_rate = 2.0).contains("--error-rate"));
        assert!(bad(|c| c.drop_rate = -1.0).contains("--drop-rate"));
        assert!(bad(|c| c.pause_every = Some(MS(10))).contains("--pause-for"));
        assert!(bad(|c| {
            c.pause_every = Some(MS(10));
            c.pause_for = MS(10)
        })
        .contains("shorter"));
        assert!(bad(|c| c.stall_every = Some(0)).contains("--stall-every"));
        assert!(bad(|c| c.stall_every = Some(2)).contains("--stall-for"));
        assert!(bad(|c| c.lockout_after = Some(3)).contains("--lockout-for"));
        assert!(bad(|c| c.reject_status = Some(200)).contains("--reject-status"));
        assert!(bad(|c| c.latency = Some((MS(5), MS(1)))).contains("--latency"));
        assert!(bad(|c| c.max_tokens = Some(0)).contains("--max-tokens"));
        assert!(bad(|c| c.capacity = Some(0.0)).contains("--capacity"));
        assert!(bad(|c| c.capacity = Some(f64::NAN)).contains("--capacity"));
    }
}
