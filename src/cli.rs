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
credentials file; 3 the target could not be reached at all; 4 the tool itself failed; 130 interrupted. \
When several apply: 130, then 3, then 1."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a load test (with no target anywhere, against an embedded mock server on 127.0.0.1)
    Run(Box<RunArgs>),
    /// Find the highest login rate the target sustains within its SLO (open-model steps, then bisection)
    Capacity(Box<CapacityArgs>),
    /// Run the mock ServiceDesk token endpoint
    Serve(crate::mock_server::ServeArgs),
    /// Compare a JSON report with a baseline: exit 1 when something regressed beyond the margin
    Compare(CompareArgs),
    /// Print a saved JSON report again, as text (what `run` printed), Markdown, JSON or JUnit
    Report(ReportArgs),
}

const RUN_EXAMPLES: &str = "\
Examples:
  sdload run                                  default scenario against the embedded mock server
  sdload run -c 16 -d 30s                     closed model: 16 workers for 30 seconds
  sdload run -r 300 -d 60s                    open model: 300 logins/s, latency from the schedule
  sdload run --ramp 0:300/s:60s               open model: ramp from 0 to 300 logins/s over a minute
  sdload run -n 400 --bad-ratio 0.25 --seed 7 exactly 400 requests, exactly 100 with bad credentials
  sdload run --target https://sd.example.com/SD.WebAPI/ --credentials users.csv --decoy-users decoys.csv
  sdload run scenarios/default.toml --json report.json --quiet

Credentials files are CSV: username,password (header optional, UTF-8 with or without BOM).
Wrong passwords are only sent to decoy users (--decoy-users), or to the good users with
--lockout-test, so that a server with account lockout does not lock out the test's own users.

Thresholds decide the exit code (1 when one fails), e.g. --threshold 'p99 < 250ms':
  latency (ms, s, us): p50 p95 p99 p99.9 min mean max; per outcome: token_issued.p95
  rates (1% or 0.01): error forbidden forbidden_good forbidden_bad
  counts: bad_accepted false_403 invalid_token nil_token timeout ... status_429
  throughput: throughput_rps
Unless --no-default-thresholds, bad_accepted == 0 and invalid_token == 0 apply too (a
threshold on the same metric replaces its default). --threshold replaces the scenario's list.";

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

    /// Open model: N request starts per second (fractions allowed: 0.5), latency counted from the schedule
    #[arg(short, long, value_name = "N")]
    pub rate: Option<f64>,

    /// Open model: how starts are spread [default: uniform]
    #[arg(long, value_enum, value_name = "KIND")]
    pub arrivals: Option<crate::engine::timetable::Arrivals>,

    /// Open model: at most N connections in flight; due requests wait for one [default: the peak rate, 64..1000]
    #[arg(long, value_name = "N")]
    pub max_in_flight: Option<u64>,

    /// A linear ramp: FROM:TO/s:DURATION (open model, e.g. 0:300/s:60s) or FROM:TO:DURATION (workers)
    #[arg(long, value_name = "RAMP")]
    pub ramp: Option<String>,

    /// Stop after this long (30s, 2m, 1h)
    #[arg(short, long, value_name = "D", value_parser = duration::parse)]
    pub duration: Option<Duration>,

    /// Stop after exactly N requests (whichever of --duration and --requests comes first)
    #[arg(short = 'n', long, value_name = "N")]
    pub requests: Option<u64>,

    /// Run this long first and leave it out of every figure
    #[arg(long, value_name = "D", value_parser = duration::parse)]
    pub warmup: Option<Duration>,

    /// Per-request timeout [default: 10s]
    #[arg(long, value_name = "D", value_parser = duration::parse)]
    pub timeout: Option<Duration>,

    /// How long requests still in flight at the end may finish before they count as unfinished [default: 2s]
    #[arg(long, value_name = "D", value_parser = duration::parse)]
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
    /// A pass/fail condition, repeatable: 'p99 < 250ms', 'error < 1%', 'bad_accepted == 0'
    #[arg(long = "threshold", value_name = "EXPR")]
    pub threshold: Vec<String>,

    /// Leave out the default thresholds (bad_accepted == 0, invalid_token == 0)
    #[arg(long)]
    pub no_default_thresholds: bool,

    /// Write JUnit XML (one test case per threshold) to FILE
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Write a Markdown summary (for a CI job summary) to FILE
    #[arg(long, value_name = "FILE")]
    pub markdown: Option<PathBuf>,
}

const CAPACITY_EXAMPLES: &str = "\
Examples:
  sdload capacity scenarios/capacity.toml --target URL --credentials users.csv
  sdload capacity --slo 'token_issued.p99 < 250ms' --slo 'error < 1%' --target URL --credentials u.csv
  sdload capacity --slo 'p99 < 100ms' --start-rate 50 --max-rate 400 --require-rate 200 --json c.json

Each step is an open-model run at a constant rate: --step-warmup, left out of its figures, then
--step-duration measured with its own histograms. A step fails when it breaks an SLO (same
language as run --threshold; bad_accepted == 0 and invalid_token == 0 apply too unless
--no-default-thresholds) or falls behind its schedule (logins not sent). Rates rise x1.5 from
--start-rate until a step fails or --max-rate passes, then bisect between the highest passing and
the lowest failing rate until they are within --precision. A step with an error rate over 50%
ends the search at once. Ctrl-C ends the search and reports what is known.

The flags of run that shape the load (--rate, --ramp, -c, -d, -n, --warmup, --threshold, --junit,
--markdown) do not apply; the others (target, credentials, mix, --arrivals, --max-in-flight,
--timeout, --json ...) do. Every capacity flag is also a key of a [capacity] table in the scenario.

Exit codes: 0 the search ended; 1 the capacity found is below --require-rate; 2 bad usage;
3 the target could not be reached; 4 the tool failed (e.g. the JSON file); 130 interrupted.";

/// `sdload capacity`: `run`'s flags for the target, credentials and mix (the load-shaping ones
/// are refused), and the search's own. Each of these has a key in the scenario's `[capacity]`.
#[derive(Args, Debug, Default, Clone)]
#[command(after_help = CAPACITY_EXAMPLES)]
#[command(mut_arg("rate", |a| a.hide(true)), mut_arg("ramp", |a| a.hide(true)),
          mut_arg("concurrency", |a| a.hide(true)), mut_arg("duration", |a| a.hide(true)),
          mut_arg("requests", |a| a.hide(true)), mut_arg("warmup", |a| a.hide(true)),
          mut_arg("threshold", |a| a.hide(true)), mut_arg("junit", |a| a.hide(true)),
          mut_arg("markdown", |a| a.hide(true)),
          mut_arg("json", |a| a.help("Write the JSON report (schema sdload.capacity/v1: the result, and every step's run report with its histograms) to FILE")),
          mut_arg("no_default_thresholds", |a| a.help("Leave the default thresholds (bad_accepted == 0, invalid_token == 0) out of the SLO")))]
pub struct CapacityArgs {
    #[command(flatten)]
    pub run: RunArgs,

    /// The service level objective every step must meet, repeatable: 'token_issued.p99 < 250ms', 'error < 1%'
    #[arg(long = "slo", value_name = "EXPR")]
    pub slo: Vec<String>,

    /// The first step's rate, in logins per second [default: 10]
    #[arg(long, value_name = "N")]
    pub start_rate: Option<f64>,

    /// No step goes above this rate; passing it means "at least max-rate" [default: 10000]
    #[arg(long, value_name = "N")]
    pub max_rate: Option<f64>,

    /// How long each step is measured [default: 20s]
    #[arg(long, value_name = "D", value_parser = duration::parse)]
    pub step_duration: Option<Duration>,

    /// How long each step runs first at its rate, left out of its figures [default: 5s]
    #[arg(long, value_name = "D", value_parser = duration::parse)]
    pub step_warmup: Option<Duration>,

    /// Bisect until the lowest failing rate is within this of the highest passing one: 5% or 0.05 [default: 5%]
    #[arg(long, value_name = "SHARE", value_parser = parse_share)]
    pub precision: Option<f64>,

    /// Exit 1 when the capacity found is below N logins per second (a CI gate)
    #[arg(long, value_name = "N")]
    pub require_rate: Option<f64>,
}

/// The formats a saved report can be printed in.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Text,
    Markdown,
    Json,
    Junit,
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// A JSON report written by `sdload run --json`
    pub file: PathBuf,

    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Args, Debug, Clone)]
#[command(after_help = "\
A latency percentile is judged only when both runs hold at least 100 samples beyond it (p50: 200
samples, p95: 2,000, p99: 10,000); otherwise it says \"not enough data\". Rates are judged by a
two-proportion test (z >= 3) as well as the margin, so that noise does not fail a build.
Exit codes: 0 no regression, 1 a regression beyond the margin, 2 a file that is not a report.")]
pub struct CompareArgs {
    /// The reference report (JSON)
    pub baseline: PathBuf,

    /// The report to judge (JSON)
    pub current: PathBuf,

    /// How much worse a figure may get before it counts as a regression: 10% or 0.1
    #[arg(long, value_name = "SHARE", default_value = "10%", value_parser = parse_share)]
    pub max_regression: f64,

    /// Latency changes smaller than this are never a regression (timer noise)
    #[arg(long, value_name = "D", default_value = "1ms", value_parser = duration::parse)]
    pub min_delta: Duration,
}

/// `10%` or `0.1`, at least 0.
pub fn parse_share(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (num, scale) = match t.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (t, 1.0),
    };
    match num.parse::<f64>() {
        // A bare 5 is far more likely to mean 5 % than 500 %: ask rather than guess.
        Ok(v) if scale == 1.0 && v > 1.0 => Err(format!(
            "`{text}` would mean {}%: write {text}% for {text} percent, or a fraction such as 0.05",
            v * 100.0
        )),
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v / scale),
        _ => Err(format!("`{text}` is not a share: write e.g. 10% or 0.1")),
    }
}
