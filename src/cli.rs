//! The command line (DESIGN.md section 5). Typed clap structs only: turning them into a
//! validated `Plan` is `plan`'s job, so nothing past here reads flags by name.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::duration;

#[derive(Parser, Debug)]
#[command(
    name = "sdload",
    version,
    about = "Load testing and benchmarking for authentication token endpoints",
    long_about = "Load testing and benchmarking for authentication token endpoints, built first for the \
ServiceDesk REST API (POST api/authorization/token: JSON credentials in, a GUID token or a 403 out).\n\n\
Every request ends in exactly one outcome (token_issued, expected_403, false_403, bad_accepted, \
invalid_token, other_status, timeout, connect_error, io_error, unfinished), with latency histograms \
per outcome and 403 rates per credential kind.",
    after_help = "Exit codes: 0 ran and every threshold held; 1 a threshold failed; 2 bad usage, scenario or \
credentials file; 3 the target could not be reached at all; 4 the tool itself failed; 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a load test (with no target anywhere, against an embedded mock server on 127.0.0.1)
    Run(Box<RunArgs>),
    /// Run the mock ServiceDesk token endpoint
    Serve(crate::mock_server::ServeArgs),
}

const RUN_EXAMPLES: &str = "\
Examples:
  sdload run                                  default scenario against the embedded mock server
  sdload run -c 16 -d 30s                     16 workers for 30 seconds
  sdload run -n 400 --bad-ratio 0.25 --seed 7 exactly 400 requests, exactly 100 with bad credentials
  sdload run --target https://sd.example.com/SD.WebAPI/ --credentials users.csv --decoy-users decoys.csv
  sdload run scenarios/default.toml --json report.json --quiet

Credentials files are CSV: username,password (header optional, UTF-8 with or without BOM).
Wrong passwords are only sent to decoy users (--decoy-users), or to the good users with
--lockout-test, so that a server with account lockout does not lock out the test's own users.";

/// Every flag here has a scenario key of the same name (dashes become underscores); the flag wins.
#[derive(Args, Debug, Default, Clone)]
#[command(after_help = RUN_EXAMPLES)]
pub struct RunArgs {
    /// Scenario file (TOML); default: scenarios/default.toml when it exists
    pub scenario: Option<PathBuf>,

    /// API root, e.g. http://127.0.0.1:8080/ or https://sd.example.com/SD.WebAPI
    #[arg(long, value_name = "URL")]
    pub target: Option<String>,

    /// Path of the token endpoint under the API root [default: api/authorization/token]
    #[arg(long, value_name = "PATH")]
    pub token_path: Option<String>,

    /// Closed model: N workers, each with its own keep-alive connection [default: 8]
    #[arg(short, long, value_name = "N")]
    pub concurrency: Option<u64>,

    /// Stop after this long (30s, 2m, 1h)
    #[arg(short, long, value_name = "D", value_parser = duration::parse_arg)]
    pub duration: Option<Duration>,

    /// Stop after exactly N requests (whichever of --duration and --requests comes first)
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,

    /// Run this long first and leave it out of every figure
    #[arg(long, value_name = "D", value_parser = duration::parse_arg)]
    pub warmup: Option<Duration>,

    /// Per-request timeout [default: 10s]
    #[arg(long, value_name = "D", value_parser = duration::parse_arg)]
    pub timeout: Option<Duration>,

    /// How long requests still in flight at the end may finish before they count as unfinished [default: 2s]
    #[arg(long, value_name = "D", value_parser = duration::parse_arg)]
    pub grace: Option<Duration>,

    /// Good credentials: CSV username,password (header optional)
    #[arg(long, value_name = "FILE")]
    pub credentials: Option<PathBuf>,

    /// Existing accounts that may be locked: wrong-password requests go to them
    #[arg(long, value_name = "FILE")]
    pub decoy_users: Option<PathBuf>,

    /// Send wrong passwords to the good users too (tests the server's lockout; may lock them)
    #[arg(long)]
    pub lockout_test: bool,

    /// Share of requests sent with bad credentials, 0..1, exact [default: 0.2]
    #[arg(long, value_name = "F")]
    pub bad_ratio: Option<f64>,

    /// Makes the choice of credentials reproducible [default: 1]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,

    /// The status a server answers to bad credentials [default: 403]
    #[arg(long, value_name = "CODE")]
    pub reject_status: Option<u16>,

    /// Write the JSON report (schema sdload.report/v1) to FILE
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// No progress display (the report is still printed)
    #[arg(long)]
    pub no_progress: bool,

    /// Print nothing but errors (no progress, no report on stdout)
    #[arg(short, long)]
    pub quiet: bool,

    /// Skip TLS certificate verification (self-signed test servers): warned, and recorded in the report
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,

    /// Trust the CA certificates of this PEM file (a private CA) instead of the system's
    #[arg(long, value_name = "FILE")]
    pub ca_cert: Option<PathBuf>,

    /// Client certificate chain (PEM) for servers that ask for one (with --client-key)
    #[arg(long, value_name = "FILE", requires = "client_key")]
    pub client_cert: Option<PathBuf>,

    /// The private key (PEM) of --client-cert
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    pub client_key: Option<PathBuf>,

    /// Follow 307/308 redirects (method and body kept); 301/302/303 and https -> http are reported, not followed
    #[arg(long)]
    pub follow_redirects: bool,
}
