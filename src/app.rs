//! Orchestration: one function per subcommand that reads like the pipeline. The only place
//! (with `main`) that turns errors into messages and exit codes.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, CompareArgs, Format, ReportArgs, RunArgs};
use crate::compare;
use crate::credentials::{Credential, Mix};
use crate::engine::{self, Finished, Load, Setup};
use crate::exit;
use crate::export::{self, text::Style};
use crate::mock_server::{self, MockServer};
use crate::outcome::CredKind;
use crate::plan::Plan;
use crate::progress::{self, Goal, Mode};
use crate::recorder::Timeline;
use crate::report::{Report, RunInfo, Settings};
use crate::secrets::Redactor;
use crate::target::Target;
use crate::thresholds::{self, Threshold};
use crate::transport::{self, ConnectionStats, SetupError, Transport};

pub fn main(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::TOOL_FAILURE);
        }
    };
    let code = match cli.command {
        Command::Run(args) => runtime.block_on(run(&args)),
        Command::Capacity(args) => runtime.block_on(crate::capacity::run(&args)),
        Command::Serve(args) => match runtime.block_on(mock_server::serve_main(args)) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: {e:#}");
                exit::USAGE
            }
        },
        Command::Compare(args) => compare_main(&args),
        Command::Report(args) => report_main(&args),
    };
    // Connection tasks of an interrupted run may still be parked: do not wait for them.
    runtime.shutdown_timeout(Duration::from_millis(100));
    ExitCode::from(code)
}

/// An error that ends `run` before a report exists, with its exit code and message.
#[derive(Debug)]
pub struct Fail(pub u8, pub String);

/// A run that produced a report, and the exit code it decided.
pub struct Ran {
    pub report: Report,
    pub code: u8,
}

pub async fn run(args: &RunArgs) -> u8 {
    match execute(args).await {
        Ok(ran) => ran.code,
        Err(Fail(code, message)) => {
            eprintln!("error: {message}");
            code
        }
    }
}

/// The whole `run` pipeline; prints unless quiet. Tests call it in-process.
pub async fn execute(args: &RunArgs) -> Result<Ran, Fail> {
    let mut plan = Plan::build(args).map_err(|e| Fail(exit::USAGE, e.to_string()))?;
    // A report that cannot be written would only fail after the whole run: check its folder now.
    for (path, what) in [
        (&plan.json, "--json"),
        (&plan.junit, "--junit"),
        (&plan.markdown, "--markdown"),
    ] {
        if let Some(dir) = path
            .as_ref()
            .and_then(|p| p.parent())
            .filter(|d| !d.as_os_str().is_empty())
        {
            if !dir.is_dir() {
                return Err(Fail(
                    exit::USAGE,
                    format!(
                        "{what} {}: the folder {} does not exist",
                        path.as_ref().expect("some").display(),
                        dir.display()
                    ),
                ));
            }
        }
    }
    // Registered before anything starts, so that no Ctrl-C falls between start and handler.
    let interrupts = Interrupts::new()
        .map_err(|e| Fail(exit::TOOL_FAILURE, format!("cannot listen for Ctrl-C: {e}")))?;
    let Prepared {
        target,
        addrs,
        transport,
        mix,
        mut server,
    } = prepare(&mut plan).await?;

    // Ctrl-C: the first stops the run and keeps the report; the second exits at once.
    let cancel = CancellationToken::new();
    let signals = watch_interrupts(interrupts, cancel.clone(), plan.quiet);

    // The connections hand their timings to the transport when they are dropped.
    let connections = transport.clone();
    let (finished, timeline) = run_load(&plan, transport, mix, plan.load.clone(), cancel).await;
    signals.abort();
    if let Some(s) = server.take() {
        s.stop().await;
    }
    let report = report_of(
        &plan,
        (&target, &addrs),
        plan.load.clone(),
        &finished,
        &timeline,
        &connections.stats(),
        &plan.thresholds,
    );

    if !plan.quiet {
        print!(
            "{}",
            export::text::render(&report, Style { color: color() })
        );
    }
    let outputs: [(&Option<std::path::PathBuf>, &str, Render); 3] = [
        (&plan.json, "JSON report", export::json::render),
        (&plan.junit, "JUnit report", |r| {
            export::junit::render(r).into_bytes()
        }),
        (&plan.markdown, "Markdown summary", |r| {
            export::markdown::render(r).into_bytes()
        }),
    ];
    for (path, what, render) in outputs {
        if let Some(path) = path {
            export::write_atomically(path, &render(&report)).map_err(|e| {
                Fail(
                    exit::TOOL_FAILURE,
                    format!("cannot write the {what} {}: {e}", path.display()),
                )
            })?;
        }
    }

    // Failed thresholds go to stderr too (even with --quiet): the CI log says why it failed.
    for t in report.thresholds.iter().filter(|t| !t.passed) {
        eprintln!(
            "threshold failed: {} (observed {}){}",
            thresholds::label(t),
            thresholds::format_observed(t),
            if t.default { " [default]" } else { "" }
        );
    }
    let code = exit::of_report(&report);
    if code == exit::UNREACHABLE {
        let why = report
            .problems
            .get("connect_error")
            .or_else(|| report.problems.get("io_error"))
            .or_else(|| report.problems.get("timeout"))
            .map(|p| p.example.as_str())
            .unwrap_or("no response");
        eprintln!("error: the target could not be reached: no request got any response ({why})");
    }
    Ok(Ran { report, code })
}

/// What every run against a target needs, set up once: the target (the embedded mock server
/// when none is given), its addresses, the HTTP client and the credential mix.
pub(crate) struct Prepared {
    pub target: Target,
    pub addrs: Vec<std::net::SocketAddr>,
    pub transport: Transport,
    pub mix: Arc<Mix>,
    /// The embedded mock server, to stop when done.
    pub server: Option<MockServer>,
}

/// Starts the embedded mock server when the plan has no target (its users become the plan's),
/// prints the plan's notes, resolves the target, and builds the transport and the mix.
pub(crate) async fn prepare(plan: &mut Plan) -> Result<Prepared, Fail> {
    let quiet = plan.quiet;
    let say = |line: &str| {
        if !quiet {
            eprintln!("{line}");
        }
    };
    // Enough descriptors for every worker's socket, or a clear message before anything is sent.
    match crate::limits::ensure_open_files(
        crate::limits::needed(
            plan.connections(),
            plan.target.is_none(),
            plan.follow_redirects,
        ),
        &match plan.concurrency() {
            Some(c) => format!("{c} workers"),
            None => format!("{} connections (--max-in-flight)", plan.connections()),
        },
        plan.target.is_none(),
    ) {
        Ok(Some(note)) => say(&format!("note: {note}")),
        Ok(None) => {}
        Err(message) => return Err(Fail(exit::USAGE, message)),
    }
    if plan.insecure {
        say("warning: --insecure: TLS certificates are not verified (anyone in the middle could read the credentials)");
    }

    // No target anywhere: the embedded mock server, with generated users and decoys.
    let mut server = None;
    let target = match plan.target.clone() {
        Some(t) => t,
        None => {
            let users = mock_server::generate_users("user", plan.embedded.users);
            let decoys = mock_server::generate_users("decoy", plan.embedded.decoys);
            let config = mock_server::Config {
                users: users.iter().chain(&decoys).cloned().collect(),
                latency: plan.embedded.latency,
                hash_iterations: plan.embedded.hash_iterations,
                ..Default::default()
            };
            let s = MockServer::start(config).await.map_err(|e| {
                Fail(
                    exit::TOOL_FAILURE,
                    format!("cannot start the embedded mock server: {e}"),
                )
            })?;
            let target = Target::parse(&s.url(), &plan.token_path)
                .map_err(|e| Fail(exit::TOOL_FAILURE, e.to_string()))?;
            say(&format!(
                "no target given: started the embedded mock ServiceDesk at {} ({} users, {} decoys)",
                s.url(),
                users.len(),
                decoys.len()
            ));
            plan.good = users;
            plan.decoys = decoys;
            server = Some(s);
            target
        }
    };
    // The plan's notes are not printed here: they end the report, as its warnings.

    let addrs = target.resolve().await.map_err(|e| {
        Fail(
            exit::UNREACHABLE,
            format!("cannot resolve {}: {e}", target.host),
        )
    })?;
    let options = transport::Options {
        connect_timeout: plan.timeout,
        insecure: plan.insecure,
        ca_cert: plan.ca_cert.clone(),
        client_cert: plan.client_cert.clone(),
        follow_redirects: plan.follow_redirects,
    };
    let transport =
        Transport::with_options(target.clone(), addrs.clone(), &options).map_err(|e| match e {
            SetupError::BadInput(m) => Fail(exit::USAGE, m),
            SetupError::Other(e) => Fail(
                exit::TOOL_FAILURE,
                format!("cannot set up the HTTP client: {e:#}"),
            ),
        })?;
    let wrong_targets: Vec<Credential> = if plan.lockout_test {
        plan.decoys.iter().chain(&plan.good).cloned().collect()
    } else {
        plan.decoys.clone()
    };
    let weights: Vec<(CredKind, u32)> = plan.bad_kinds().collect();
    let mix = Mix::new(
        &plan.good,
        &wrong_targets,
        plan.bad_ratio,
        &weights,
        plan.seed,
    );
    if !mix.is_usable() {
        return Err(Fail(exit::USAGE, "no good credentials to send".into()));
    }

    Ok(Prepared {
        target,
        addrs,
        transport,
        mix: Arc::new(mix),
        server,
    })
}

/// One run of the engine with `load` and the plan's length, warm-up and mix, with the plan's
/// progress display; the timeline comes back beside what the engine finished with.
pub(crate) async fn run_load(
    plan: &Plan,
    transport: Transport,
    mix: Arc<Mix>,
    load: Load,
    cancel: CancellationToken,
) -> (Finished, Timeline) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let goal = Goal {
        duration: plan.duration,
        requests: plan.requests,
        warmup: plan.warmup,
    };
    let collector = tokio::spawn(progress::collect(
        Mode::detect(plan.progress),
        goal,
        plan.timeout + plan.grace,
        rx,
    ));
    let setup = Setup {
        transport,
        mix,
        load,
        duration: plan.duration,
        requests: plan.requests,
        warmup: plan.warmup,
        timeout: plan.timeout,
        grace: plan.grace,
        reject_status: plan.reject_status,
        seed: plan.seed,
    };
    let finished = engine::run(setup, tx, cancel).await;
    let timeline = collector.await.unwrap_or_default();
    (finished, timeline)
}

/// The report of a finished run: its figures, the warnings, secrets masked, and `thresholds`
/// evaluated.
pub(crate) fn report_of(
    plan: &Plan,
    (target, addrs): (&Target, &[std::net::SocketAddr]),
    load: Load,
    finished: &Finished,
    timeline: &Timeline,
    connections: &ConnectionStats,
    thresholds: &[Threshold],
) -> Report {
    let info = RunInfo {
        target: target.to_string(),
        target_addrs: addrs.iter().map(|a| a.to_string()).collect(),
        embedded_target: plan.target.is_none(),
        started_at: finished.started_at,
        measured: finished.measured,
        load,
        scheduled: finished.scheduled,
        not_sent: finished.not_sent,
        interrupted: finished.interrupted,
        connections_opened: finished.connections,
        settings: settings(plan),
        warnings: Vec::new(),
    };
    let mut report = Report::build(&finished.recorder, timeline, info);
    add_connection_stats(&mut report, connections, plan, target);
    report.warnings = warnings(plan, &report);
    if finished.gave_up {
        report.warnings.push(format!(
            "stopped early: nothing answered in the first {}s and connections failed",
            engine::UNREACHABLE_AFTER.as_secs()
        ));
    }
    redact(
        &mut report,
        &Redactor::new(plan.good.iter().chain(&plan.decoys)),
    );
    report.thresholds = thresholds::evaluate(&report, thresholds);
    report
}

/// Ctrl-C: the first cancels `cancel` (the run stops and keeps its report); the second exits at
/// once. Abort the task when done.
pub(crate) fn watch_interrupts(
    mut interrupts: Interrupts,
    cancel: CancellationToken,
    quiet: bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if interrupts.recv().await {
            if !quiet {
                eprintln!(
                    "\ninterrupted: finishing requests in flight (Ctrl-C again to exit at once)"
                );
            }
            cancel.cancel();
            if interrupts.recv().await {
                std::process::exit(exit::INTERRUPTED as i32);
            }
        }
    })
}

type Render = fn(&Report) -> Vec<u8>;

/// Colour on stdout: a terminal, and `NO_COLOR` unset or empty.
pub(crate) fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// `sdload compare`: exit 1 on a regression, 2 on a file that is not a report.
fn compare_main(args: &CompareArgs) -> u8 {
    let read = |p: &std::path::Path| export::json::read(p);
    let (base, cur) = match (read(&args.baseline), read(&args.current)) {
        (Ok(b), Ok(c)) => (b, c),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let options = compare::Options {
        max_regression: args.max_regression,
        min_delta_ms: args.min_delta.as_secs_f64() * 1000.0,
    };
    match compare::compare(&base, &cur, &options) {
        Ok(c) => {
            print!(
                "{}",
                compare::render(
                    &c,
                    &args.baseline.display().to_string(),
                    &args.current.display().to_string()
                )
            );
            c.exit_code()
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::USAGE
        }
    }
}

/// `sdload report`: a saved report printed again, byte for byte as `run` printed or wrote it.
fn report_main(args: &ReportArgs) -> u8 {
    let report = match export::json::read(&args.file) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::USAGE;
        }
    };
    let out = match args.format {
        Format::Text => export::text::render(&report, Style { color: color() }).into_bytes(),
        Format::Markdown => export::markdown::render(&report).into_bytes(),
        Format::Json => export::json::render(&report),
        Format::Junit => export::junit::render(&report).into_bytes(),
    };
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(&out).and_then(|_| stdout.flush()) {
        Ok(()) => exit::OK,
        // A closed pipe (`| head`) is not a failure worth a message.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            exit::TOOL_FAILURE
        }
    }
}

pub(crate) fn settings(plan: &Plan) -> Settings {
    Settings {
        scenario: plan.scenario.display().to_string(),
        requests: plan.requests,
        duration_s: plan.duration.map(|d| d.as_secs_f64()),
        warmup_s: plan.warmup.as_secs_f64(),
        timeout_s: plan.timeout.as_secs_f64(),
        grace_s: plan.grace.as_secs_f64(),
        bad_ratio: plan.bad_ratio,
        bad_kinds: plan
            .bad_kinds()
            .map(|(k, w)| (k.name().to_owned(), w))
            .collect(),
        seed: plan.seed,
        reject_status: plan.reject_status,
        lockout_test: plan.lockout_test,
        good_users: plan.good.len(),
        decoy_users: plan.decoys.len(),
    }
}

/// What a person should not miss, in plain words.
pub(crate) fn warnings(plan: &Plan, r: &Report) -> Vec<String> {
    let mut w = plan.notes.clone();
    let c = &r.counts;
    if c.bad_accepted > 0 {
        w.push(format!(
            "SECURITY: {} requests with bad credentials were answered 200 (bad_accepted)",
            c.bad_accepted
        ));
    }
    if c.false_403 > 0 {
        w.push(format!(
            "{} requests with good credentials were refused (false_403): account lockout, or the directory failing under load",
            c.false_403
        ));
    }
    if c.nil_token > 0 {
        w.push(format!(
            "{} tokens were the all-zero GUID of the API documentation's sample: the server is not issuing real tokens",
            c.nil_token
        ));
    }
    if c.not_sent > 0 {
        let scheduled = r.schedule.as_ref().map_or(0, |s| s.scheduled);
        w.push(format!(
            "target rate not reached: {} of {} scheduled requests were never sent (all {} connections were busy)",
            c.not_sent,
            scheduled,
            r.schedule.as_ref().map_or(0, |s| s.max_in_flight)
        ));
    }
    if c.unfinished > 0 {
        w.push(format!(
            "{} requests were still in flight when the grace period ({}) ended (unfinished)",
            c.unfinished,
            crate::duration::format(plan.grace)
        ));
    }
    // A large gap between wrong-password and unknown-user latency lets an attacker tell
    // existing user names from unknown ones by timing.
    let p50 = |k: &str| r.by_credential.get(k).and_then(|s| s.latency_ms.p50);
    if let (Some(wrong), Some(unknown)) = (p50("wrong_password"), p50("unknown_user")) {
        let (hi, lo) = if wrong > unknown {
            (wrong, unknown)
        } else {
            (unknown, wrong)
        };
        if hi - lo > 1.0 && hi > 2.0 * lo {
            w.push(format!(
                "timing side channel: wrong_password p50 {wrong} ms vs unknown_user p50 {unknown} ms; user names can be told apart by timing"
            ));
        }
    }
    let rd = &r.redirects;
    if rd.refused_insecure > 0 {
        w.push(format!(
            "{} redirects from https to http were refused: the credentials would have travelled in clear text (counted as other_status)",
            rd.refused_insecure
        ));
    }
    if rd.not_followed > 0 {
        w.push(format!(
            "{} redirects with 301/302/303 were not followed: they would have turned the login POST into a GET (counted as other_status)",
            rd.not_followed
        ));
    }
    if rd.too_many > 0 {
        w.push(format!(
            "{} logins were redirected more than {} times (counted as other_status)",
            rd.too_many,
            transport::MAX_REDIRECTS
        ));
    }
    if r.redirect_location.is_some() && !rd.follow {
        w.push(
            "the server answered with a redirect, which is not followed (counted as other_status; --follow-redirects follows 307/308)"
                .into(),
        );
    }
    if r.tls.as_ref().is_some_and(|t| t.insecure) {
        w.push("--insecure: TLS certificates were not verified".into());
    }
    w
}

/// Connection timings, TLS and redirects, from what the connections handed to the transport.
fn add_connection_stats(report: &mut Report, s: &ConnectionStats, plan: &Plan, target: &Target) {
    use crate::report::{encode_histogram, summarize, Redirects, TlsInfo};
    report.connect_ms = summarize(&s.connect_us);
    report.tls_handshake_ms = summarize(&s.tls_handshake_us);
    for (name, h) in [
        ("connect_ms", &s.connect_us),
        ("tls_handshake_ms", &s.tls_handshake_us),
    ] {
        if !h.is_empty() {
            report
                .histograms
                .insert(name.to_owned(), encode_histogram(h));
        }
    }
    if target.scheme == crate::target::Scheme::Https {
        report.tls = Some(TlsInfo {
            version: s.tls_version.map(str::to_owned),
            cipher_suite: s.cipher_suite.map(str::to_owned),
            insecure: plan.insecure,
            ca_cert: plan.ca_cert.as_ref().map(|p| p.display().to_string()),
            client_cert: plan.client_cert.is_some(),
        });
    }
    report.redirects = Redirects {
        follow: plan.follow_redirects,
        followed: s.redirects_followed,
        not_followed: s.redirects_not_followed,
        refused_insecure: s.redirects_refused_insecure,
        too_many: s.redirect_loops,
    };
}

pub(crate) fn redact(report: &mut Report, redactor: &Redactor) {
    for p in report
        .problems
        .values_mut()
        .chain(report.invalid_tokens.values_mut())
    {
        p.example = redactor.redact(&p.example);
    }
    if let Some(l) = report.redirect_location.as_mut() {
        *l = redactor.redact(l);
    }
    for w in &mut report.warnings {
        *w = redactor.redact(w);
    }
}

/// Ctrl-C (SIGINT on Unix, Ctrl-C on Windows), listened for from the moment it is created.
pub(crate) struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
    #[cfg(windows)]
    signal: tokio::signal::windows::CtrlC,
}

impl Interrupts {
    pub(crate) fn new() -> std::io::Result<Interrupts> {
        #[cfg(unix)]
        let signal = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        #[cfg(windows)]
        let signal = tokio::signal::windows::ctrl_c()?;
        Ok(Interrupts { signal })
    }

    async fn recv(&mut self) -> bool {
        self.signal.recv().await.is_some()
    }
}
