//! `sdload serve`: the flags, and running the server until Ctrl-C.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use super::config::{
    parse_latency, parse_rate, parse_reject_status, Config, LatencyRange, TokenFormat,
    DEFAULT_MAX_TOKENS,
};
use super::{generate_users, MockServer, TlsIdentity, User};
use crate::credentials;
use crate::duration;

const SERVE_ABOUT: &str = "\
Run the mock ServiceDesk token endpoint: a real HTTP/1.1 server that answers like ServiceDesk 8.5 \
(POST {prefix}/api/authorization/token with JSON credentials; a GUID token or a 403 back), with \
switchable faults, and counts of what it received at GET /__sdload/stats.";

const SERVE_HELP: &str = "\
What the server answers:
  200  right credentials: a JSON string holding a new GUID, as application/json; charset=utf-8
       (--token-format nil: always the nil GUID; html: an HTML page); also any
       {prefix}/api/... call whose Authentication header holds an issued token
  400  a token POST whose body is not JSON, not an object, or lacks a string username or password
  403  wrong credentials (unknown user, wrong password, empty strings, a locked account), as an
       IIS-style HTML page (--reject-status changes the code); a {prefix}/api/... call without a
       valid Authentication token
  404  any path outside {prefix}/api/ (except /__sdload/stats)
  405  a method other than POST on the token path
  413  a token POST body over 64 KiB
  415  a token POST whose Content-Type is not application/json or text/json
  500  --error-rate: that share of token POSTs, with an HTML body
  (no answer) --drop-rate: that share of token POSTs has its connection closed
  (no answer) --never-answer: every token POST waits forever
  (broken)   --trickle D: the body a byte every D; --truncate-body: half the body, then close;
             --garbage: bytes that are not HTTP; --close-after-response: Connection: close

The first line on stdout is `listening on http://ADDR/` (https:// with TLS; the real address,
also with port 0). Property names are matched in any case (username, Username, USERNAME).
Passwords are never printed (--echo-body sends them back in error pages, on purpose).
Durations: 250ms, 2s, 1m; latencies: 5ms (fixed) or 2ms..20ms (uniform).

Examples:
  sdload serve --prefix /SD.WebAPI --generate-users 50 --write-users users.csv
  sdload run --target http://127.0.0.1:8080/SD.WebAPI/ --credentials users.csv
  sdload serve --listen 127.0.0.1:0 --users users.csv --latency 2ms..20ms --hash-iterations 10000
  sdload serve --capacity 200 --latency 2ms   at most 200 logins/s, then a queue (sdload capacity)
  sdload serve --latency-fail 5ms --latency-ok 100ms --lockout-after 5 --lockout-for 1m
  sdload serve --pause-every 10s --pause-for 2s --error-rate 0.01 --drop-rate 0.01 --seed 7
  sdload serve --tls-self-signed --tls-write-cert cert.pem   (then: sdload run --ca-cert cert.pem)
  curl -s http://127.0.0.1:8080/__sdload/stats";

#[derive(clap::Args, Debug, Clone)]
#[command(long_about = SERVE_ABOUT, after_help = SERVE_HELP)]
pub struct ServeArgs {
    /// Address to listen on (port 0: any free port; the first stdout line shows the real one)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// API root path, e.g. /SD.WebAPI (the token endpoint is then /SD.WebAPI/api/authorization/token)
    #[arg(long, value_name = "PATH", default_value = "")]
    pub prefix: String,

    /// Users CSV file: username,password (header optional, UTF-8 with or without BOM)
    #[arg(long, value_name = "FILE", conflicts_with = "generate_users")]
    pub users: Option<PathBuf>,

    /// Generate N users named user0001, ... with random passwords [default: 10 without --users]
    #[arg(long, value_name = "N")]
    pub generate_users: Option<usize>,

    /// Name prefix of generated users
    #[arg(long, value_name = "NAME", default_value = "user")]
    pub user_prefix: String,

    /// Write the generated users and their passwords to this CSV file (for `sdload run --credentials`);
    /// written before the server listens
    #[arg(long, value_name = "FILE", conflicts_with = "users")]
    pub write_users: Option<PathBuf>,

    /// What the server does: latency, hashing cost and fault switches (all off by default)
    #[command(flatten, next_help_heading = "Latency and faults")]
    pub behaviour: Box<BehaviourArgs>,

    /// HTTPS: a self-signed or given certificate, client certificates
    #[command(flatten, next_help_heading = "TLS")]
    pub tls: Box<TlsArgs>,
}

/// The TLS switches of `sdload serve` (boxed, like `BehaviourArgs`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// HTTPS with a new self-signed certificate for localhost, 127.0.0.1 and ::1
    #[arg(long, conflicts_with = "tls_cert")]
    pub tls_self_signed: bool,

    /// HTTPS with this certificate chain (PEM; with --tls-key)
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Require client certificates signed by this CA (PEM)
    #[arg(long, value_name = "FILE")]
    pub tls_client_ca: Option<PathBuf>,

    /// Write the self-signed certificate (PEM) here, for `sdload run --ca-cert FILE`
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_self_signed",
        help_heading = "TLS"
    )]
    pub tls_write_cert: Option<PathBuf>,
}

/// The switches of `sdload serve` that shape its answers (kept apart, and boxed, so that
/// `ServeArgs` stays small inside the `Command` enum).
#[derive(clap::Args, Debug, Clone)]
pub struct BehaviourArgs {
    /// Sleep before every API answer: fixed (5ms) or uniform (2ms..20ms)
    #[arg(long, value_name = "D|MIN..MAX", value_parser = parse_latency)]
    pub latency: Option<LatencyRange>,

    /// Latency of successful logins instead of --latency
    #[arg(long, value_name = "D|MIN..MAX", value_parser = parse_latency)]
    pub latency_ok: Option<LatencyRange>,

    /// Latency of refused logins instead of --latency
    #[arg(long, value_name = "D|MIN..MAX", value_parser = parse_latency)]
    pub latency_fail: Option<LatencyRange>,

    /// Serve at most N token POSTs per second; the rest queue in order, so latency climbs as on a
    /// saturated server (a known answer for `sdload capacity`)
    #[arg(long, value_name = "N")]
    pub capacity: Option<f64>,

    /// Run PBKDF2-HMAC-SHA256 with N iterations per login attempt (real CPU cost)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub hash_iterations: u32,

    /// Every D from start, stop answering for --pause-for (requests wait, then are answered)
    #[arg(long, value_name = "D", value_parser = duration::parse, requires = "pause_for")]
    pub pause_every: Option<Duration>,

    /// Length of each pause (shorter than --pause-every)
    #[arg(long, value_name = "D", value_parser = duration::parse, requires = "pause_every")]
    pub pause_for: Option<Duration>,

    /// Every Nth token POST (N, 2N, ...) waits an extra --stall-for
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), requires = "stall_for")]
    pub stall_every: Option<u64>,

    /// The extra wait of a stalled token POST
    #[arg(long, value_name = "D", value_parser = duration::parse, requires = "stall_every")]
    pub stall_for: Option<Duration>,

    /// Share of token POSTs answered 500 with an HTML body (0..1)
    #[arg(long, value_name = "F", value_parser = parse_rate, default_value = "0")]
    pub error_rate: f64,

    /// Share of token POSTs whose connection is closed without an answer (0..1)
    #[arg(long, value_name = "F", value_parser = parse_rate, default_value = "0")]
    pub drop_rate: f64,

    /// Lock an existing user after N failed logins in a row (a success resets the count)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), requires = "lockout_for")]
    pub lockout_after: Option<u32>,

    /// How long a locked user is refused, even with the right password
    #[arg(long, value_name = "D", value_parser = duration::parse, requires = "lockout_after")]
    pub lockout_for: Option<Duration>,

    /// Answer every well-formed token POST with 200 and a token (a broken server)
    #[arg(long)]
    pub accept_any: bool,

    /// Status answered for wrong credentials (some servers answer 401)
    #[arg(long, value_name = "CODE", value_parser = parse_reject_status, default_value = "403")]
    pub reject_status: u16,

    /// What a successful login answers
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = TokenFormat::Guid)]
    pub token_format: TokenFormat,

    /// Seed of the randomised faults (and of the latency draws)
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,

    /// Answer every request with `Connection: close` (one connection per request)
    #[arg(long)]
    pub close_after_response: bool,

    /// Close keep-alive connections that stay idle this long
    #[arg(long, value_name = "D", value_parser = duration::parse)]
    pub idle_timeout: Option<Duration>,

    /// Read and count token POSTs, and never answer them
    #[arg(long)]
    pub never_answer: bool,

    /// Send token answers' headers, then their body one byte every D
    #[arg(long, value_name = "D", value_parser = duration::parse)]
    pub trickle: Option<Duration>,

    /// Announce the whole body's Content-Length, send half of it, and close
    #[arg(long)]
    pub truncate_body: bool,

    /// Answer every request with bytes that are not HTTP, then close
    #[arg(long)]
    pub garbage: bool,

    /// Echo the request body (with its password) in error pages, as careless servers do
    #[arg(long)]
    pub echo_body: bool,

    /// Issued tokens remembered for Authentication checks (the oldest are forgotten first)
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_TOKENS,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub max_tokens: usize,
}

impl ServeArgs {
    /// The server's config for these flags and users (checked by `Config::validate`).
    pub fn config(&self, users: Vec<User>) -> Config {
        let b = &self.behaviour;
        Config {
            prefix: self.prefix.clone(),
            users,
            latency: b.latency,
            latency_ok: b.latency_ok,
            latency_fail: b.latency_fail,
            hash_iterations: b.hash_iterations,
            pause_every: b.pause_every,
            pause_for: b.pause_for.unwrap_or_default(),
            stall_every: b.stall_every,
            stall_for: b.stall_for.unwrap_or_default(),
            error_rate: b.error_rate,
            drop_rate: b.drop_rate,
            lockout_after: b.lockout_after,
            lockout_for: b.lockout_for.unwrap_or_default(),
            accept_any: b.accept_any,
            reject_status: Some(b.reject_status),
            token_format: b.token_format,
            seed: b.seed,
            max_tokens: Some(b.max_tokens),
            shutdown_grace: None,
            close_after_response: b.close_after_response,
            idle_timeout: b.idle_timeout,
            never_answer: b.never_answer,
            trickle: b.trickle,
            truncate_body: b.truncate_body,
            garbage: b.garbage,
            echo_body: b.echo_body,
            tls: None,
            capacity: b.capacity,
        }
    }
}

/// Runs `sdload serve` until Ctrl-C (or SIGTERM), then stops gracefully. Bad flags, an unreadable
/// users file or an address that cannot be bound are errors.
pub async fn serve_main(args: ServeArgs) -> anyhow::Result<()> {
    let (users, origin) = match &args.users {
        Some(path) => {
            // The message already names the file, line and cause: keep it one line (its
            // `source` would repeat the cause under `{:#}`).
            let users = credentials::read_csv(path).map_err(|e| anyhow::anyhow!("{e}"))?;
            (users, format!("from {}", path.display()))
        }
        None => {
            let n = args.generate_users.unwrap_or(10);
            (generate_users(&args.user_prefix, n), "generated".to_owned())
        }
    };
    let mut config = args.config(users);
    config.tls = tls_identity(&args.tls)?;
    config.validate().map_err(anyhow::Error::msg)?;
    if let Some(path) = &args.write_users {
        credentials::write_csv(path, &config.users)
            .with_context(|| format!("{}: cannot write the users file", path.display()))?;
    }
    let listener = super::bind(args.listen.as_str())
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let faults = describe_faults(&config);
    let server = MockServer::start_on(listener, config).await?;
    announce(&server, &faults, &origin, &args)?;

    wait_for_signal().await?;
    eprintln!("stopping: finishing requests in flight");
    let stats_before = server.stats();
    server.stop().await;
    eprintln!(
        "served {} requests on {} connections: {} token POSTs, {} logins ok, {} refused",
        stats_before.requests,
        stats_before.connections_accepted,
        stats_before.token_posts,
        stats_before.logins_ok,
        stats_before.logins_failed
    );
    Ok(())
}

/// The startup lines: the first is exactly `listening on http://ADDR/`, flushed at once.
fn announce(
    server: &MockServer,
    faults: &[String],
    origin: &str,
    args: &ServeArgs,
) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "listening on {}://{}/", server.scheme(), server.addr())?;
    out.flush()?;
    let written = match (&args.write_users, args.users.is_none()) {
        (Some(path), _) => format!(", written to {}", path.display()),
        (None, true) => ", passwords not saved: add --write-users FILE to use them".to_owned(),
        (None, false) => String::new(),
    };
    writeln!(
        out,
        "API root {} with {} users ({origin}{written})",
        server.url(),
        server.user_count()
    )?;
    writeln!(out, "token endpoint: POST {}", server.token_url())?;
    writeln!(out, "stats: GET {}", server.stats_url())?;
    if !faults.is_empty() {
        writeln!(out, "faults: {}", faults.join(", "))?;
    }
    writeln!(out, "press Ctrl-C to stop")?;
    out.flush()?;
    Ok(())
}

/// The certificate the flags ask for (self-signed or from files), with the client CA.
fn tls_identity(args: &TlsArgs) -> anyhow::Result<Option<TlsIdentity>> {
    let mut identity = if args.tls_self_signed {
        let identity = TlsIdentity::self_signed(&["localhost", "127.0.0.1", "::1"])
            .map_err(anyhow::Error::msg)?;
        if let Some(path) = &args.tls_write_cert {
            std::fs::write(path, &identity.cert_pem)
                .with_context(|| format!("{}: cannot write the certificate", path.display()))?;
        }
        identity
    } else if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        TlsIdentity::from_files(cert, key).map_err(anyhow::Error::msg)?
    } else if args.tls_client_ca.is_some() {
        anyhow::bail!("--tls-client-ca needs --tls-self-signed or --tls-cert/--tls-key");
    } else {
        return Ok(None);
    };
    if let Some(path) = &args.tls_client_ca {
        identity.client_ca_pem = Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("--tls-client-ca {}: cannot read", path.display()))?,
        );
    }
    Ok(Some(identity))
}

fn describe_faults(c: &Config) -> Vec<String> {
    let latency = |(lo, hi): LatencyRange| {
        if lo == hi {
            duration::format(lo)
        } else {
            format!("{}..{}", duration::format(lo), duration::format(hi))
        }
    };
    let mut out = Vec::new();
    if let Some(r) = c.latency {
        out.push(format!("latency {}", latency(r)));
    }
    if let Some(r) = c.latency_ok {
        out.push(format!("latency-ok {}", latency(r)));
    }
    if let Some(r) = c.latency_fail {
        out.push(format!("latency-fail {}", latency(r)));
    }
    if let Some(n) = c.capacity {
        out.push(format!("capacity {n} logins/s (the rest queue)"));
    }
    if c.hash_iterations > 0 {
        out.push(format!("hash-iterations {}", c.hash_iterations));
    }
    if let Some(every) = c.pause_every {
        out.push(format!(
            "pause {} every {}",
            duration::format(c.pause_for),
            duration::format(every)
        ));
    }
    if let Some(n) = c.stall_every {
        out.push(format!(
            "stall {} every {n} token POSTs",
            duration::format(c.stall_for)
        ));
    }
    if c.error_rate > 0.0 {
        out.push(format!("error-rate {}", c.error_rate));
    }
    if c.drop_rate > 0.0 {
        out.push(format!("drop-rate {}", c.drop_rate));
    }
    if let Some(n) = c.lockout_after {
        out.push(format!(
            "lockout after {n} failures for {}",
            duration::format(c.lockout_for)
        ));
    }
    if c.accept_any {
        out.push("accept-any (wrong passwords get tokens)".into());
    }
    if c.reject_status() != super::DEFAULT_REJECT_STATUS {
        out.push(format!("reject-status {}", c.reject_status()));
    }
    if c.token_format != TokenFormat::Guid {
        out.push(format!("token-format {:?}", c.token_format).to_lowercase());
    }
    if c.close_after_response {
        out.push("close-after-response".into());
    }
    if let Some(d) = c.idle_timeout {
        out.push(format!("idle-timeout {}", duration::format(d)));
    }
    if c.never_answer {
        out.push("never-answer".into());
    }
    if let Some(d) = c.trickle {
        out.push(format!("trickle a byte every {}", duration::format(d)));
    }
    if c.truncate_body {
        out.push("truncate-body".into());
    }
    if c.garbage {
        out.push("garbage".into());
    }
    if c.echo_body {
        out.push("echo-body (error pages show the password)".into());
    }
    out
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("cannot watch for Ctrl-C")?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c()
        .await
        .context("cannot watch for Ctrl-C")?;
    Ok(())
}
