//! `Scenario` + CLI flags → `Plan`. All validation and defaults live here, so that later
//! stages never see an invalid configuration. A refused value names where it came from:
//! the flag, or the scenario file, line and key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::cli::RunArgs;
use crate::credentials::{self, Credential};
use crate::duration;
use crate::engine::timetable::{Arrivals, Profile, Stage};
use crate::engine::Load;
use crate::outcome::CredKind;
use crate::scenario::{self, Scenario, Source};
use crate::target::{Target, DEFAULT_TOKEN_PATH};
use crate::thresholds::Threshold;

/// A validated run: nothing here can be out of range.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario file the plan came from (or the default's path).
    pub scenario: PathBuf,
    /// `None`: start the embedded mock server.
    pub target: Option<Target>,
    pub token_path: String,
    pub embedded: EmbeddedPlan,
    /// How the load is offered (closed: workers; open: request starts per second).
    pub load: Load,
    pub duration: Option<Duration>,
    pub requests: Option<u64>,
    pub warmup: Duration,
    pub timeout: Duration,
    pub grace: Duration,
    pub good: Vec<Credential>,
    pub decoys: Vec<Credential>,
    pub lockout_test: bool,
    pub bad_ratio: f64,
    /// Weights of `CredKind::BAD`, in that order.
    pub bad_weights: [u32; 3],
    pub seed: u64,
    pub reject_status: u16,
    pub json: Option<PathBuf>,
    pub progress: bool,
    pub quiet: bool,
    /// Things the user should know about the plan (printed, and kept in the report).
    pub notes: Vec<String>,
    /// Given thresholds (flags, else the scenario's), then the defaults left beside them.
    pub thresholds: Vec<Threshold>,
    pub junit: Option<PathBuf>,
    pub markdown: Option<PathBuf>,
    /// TLS certificates are not verified (`--insecure`).
    pub insecure: bool,
    /// A private CA to trust instead of the system's roots.
    pub ca_cert: Option<PathBuf>,
    /// Client certificate chain and key (PEM files).
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Follow 307/308 redirects.
    pub follow_redirects: bool,
}

#[derive(Debug, Clone)]
pub struct EmbeddedPlan {
    pub users: usize,
    pub decoys: usize,
    pub latency: Option<(Duration, Duration)>,
    pub hash_iterations: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
    #[error(transparent)]
    Credentials(#[from] credentials::CredentialsError),
    #[error("{0}")]
    Invalid(String),
}

/// Where a value came from, to name it in an error.
enum From<'a> {
    Flag(&'static str),
    Key(&'a Source, &'static str, std::ops::Range<usize>),
}

impl From<'_> {
    fn error(&self, reason: impl std::fmt::Display) -> PlanError {
        PlanError::Invalid(match self {
            From::Flag(flag) => format!("--{flag}: {reason}"),
            From::Key(src, key, span) => format!(
                "{}:{}: {key}: {reason}",
                src.path.display(),
                src.line_of(span.start)
            ),
        })
    }
}

/// Picks the flag when given, else the scenario key, and remembers which for errors.
fn pick<'a, T: Clone>(
    flag: Option<T>,
    flag_name: &'static str,
    key: &Option<Spanned<T>>,
    key_name: &'static str,
    src: &'a Source,
) -> Option<(T, From<'a>)> {
    match (flag, key) {
        (Some(v), _) => Some((v, From::Flag(flag_name))),
        (None, Some(k)) => Some((k.get_ref().clone(), From::Key(src, key_name, k.span()))),
        (None, None) => None,
    }
}

fn key_duration(
    key: &Option<Spanned<String>>,
    name: &'static str,
    src: &Source,
) -> Result<Option<Duration>, PlanError> {
    match key {
        None => Ok(None),
        Some(k) => duration::parse(k.get_ref())
            .map(Some)
            .map_err(|e| From::Key(src, name, k.span()).error(e)),
    }
}

/// Reads a path from the scenario relative to the scenario file's folder.
fn relative(src: &Source, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        return p.to_owned();
    }
    match src.path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_owned(),
    }
}

/// Parses `5ms` or `2ms..20ms`.
pub fn parse_latency(text: &str) -> Result<(Duration, Duration), String> {
    match text.split_once("..") {
        None => duration::parse(text).map(|d| (d, d)),
        Some((lo, hi)) => {
            let (lo, hi) = (duration::parse(lo)?, duration::parse(hi)?);
            if lo > hi {
                return Err(format!("`{text}`: the lower bound is above the upper one"));
            }
            Ok((lo, hi))
        }
    }
}

/// Parses a ramp: `FROM:TO/s:DURATION` (open model: rates) or `FROM:TO:DURATION` (workers).
/// Returns whether it is a rate ramp, and the stage.
pub fn parse_ramp(text: &str) -> Result<(bool, Stage), String> {
    let parts: Vec<&str> = text.split(':').collect();
    let [from, to, d] = parts.as_slice() else {
        return Err(format!(
            "`{text}`: write FROM:TO/s:DURATION (e.g. 0:300/s:60s) or FROM:TO:DURATION for workers"
        ));
    };
    let per_second = |v: &str| v.trim().strip_suffix("/s").map(str::to_owned);
    let open = per_second(to).is_some() || per_second(from).is_some();
    let number = |v: &str| -> Result<f64, String> {
        let v = per_second(v).unwrap_or_else(|| v.trim().to_owned());
        match v.parse::<f64>() {
            Ok(n) if n >= 0.0 && n.is_finite() => Ok(n),
            _ => Err(format!("`{text}`: `{v}` is not a number at or above 0")),
        }
    };
    let duration = duration::parse(d).map_err(|e| format!("`{text}`: {e}"))?;
    let (from, to) = (number(from)?, number(to)?);
    if !open && (from.fract() != 0.0 || to.fract() != 0.0) {
        return Err(format!(
            "`{text}`: workers are whole numbers (for rates write {to}/s)"
        ));
    }
    Ok((open, Stage { duration, from, to }))
}

/// The load model: open when a rate (or rate stages) is given, else closed. Stages and ramps
/// set the duration when none is given with the same or a stronger source.
fn load(
    args: &RunArgs,
    sc: &Scenario,
    src: &Source,
    concurrency: u64,
    duration: Option<Duration>,
    duration_from_flag: bool,
    notes: &mut Vec<String>,
) -> Result<(Load, Option<Duration>), PlanError> {
    let rate = match pick(args.rate, "rate", &sc.rate, "rate", src) {
        Some((r, from)) if !(r > 0.0 && r <= 10_000_000.0) => {
            return Err(from.error(format!(
                "{r}: must be above 0 (fractions allowed, e.g. 0.5)"
            )))
        }
        other => other.map(|(r, _)| r),
    };
    let arrivals = match (args.arrivals, &sc.arrivals) {
        (Some(a), _) => a,
        (None, Some(k)) => {
            <Arrivals as clap::ValueEnum>::from_str(k.get_ref(), true).map_err(|_| {
                From::Key(src, "arrivals", k.span())
                    .error(format!("`{}`: expected uniform or poisson", k.get_ref()))
            })?
        }
        (None, None) => Arrivals::Uniform,
    };
    let max_in_flight = match pick(
        args.max_in_flight.map(|n| n as i64),
        "max-in-flight",
        &sc.max_in_flight,
        "max_in_flight",
        src,
    ) {
        Some((n, from)) if !(1..=100_000).contains(&n) => {
            return Err(from.error(format!("{n} is out of range 1..=100000")))
        }
        other => other.map(|(n, _)| n as u64),
    };

    // Stages: a --ramp flag, else a ramp key, else [[stages]].
    let mut stages: Option<(bool, Vec<Stage>, bool)> = None; // (open, stages, from a flag)
    if let Some((text, from)) = pick(args.ramp.clone(), "ramp", &sc.ramp, "ramp", src) {
        let (open, stage) = parse_ramp(&text).map_err(|e| from.error(e))?;
        stages = Some((open, vec![stage], matches!(from, From::Flag(_))));
    } else if !sc.stages.is_empty() {
        let mut kind = None;
        let mut list = Vec::new();
        let mut previous = None;
        for spec in &sc.stages {
            let stage = spec.get_ref();
            let d = duration::parse(stage.duration.get_ref())
                .map_err(|e| From::Key(src, "stages.duration", stage.duration.span()).error(e))?;
            if d.is_zero() {
                return Err(From::Key(src, "stages.duration", stage.duration.span())
                    .error("must be more than zero"));
            }
            let (open, target) = match (&stage.rate, &stage.workers) {
                (Some(r), None) if *r.get_ref() >= 0.0 && r.get_ref().is_finite() => {
                    (true, *r.get_ref())
                }
                (Some(r), None) => {
                    return Err(
                        From::Key(src, "stages.rate", r.span()).error("must be at or above 0")
                    )
                }
                (None, Some(w)) if (0..=100_000).contains(w.get_ref()) => {
                    (false, *w.get_ref() as f64)
                }
                (None, Some(w)) => {
                    return Err(From::Key(src, "stages.workers", w.span())
                        .error("is out of range 0..=100000"))
                }
                _ => {
                    return Err(From::Key(src, "stages", spec.span())
                        .error("give exactly one of rate and workers"))
                }
            };
            if kind.is_some_and(|k| k != open) {
                return Err(From::Key(src, "stages", spec.span())
                    .error("all stages give rate, or all give workers"));
            }
            kind = Some(open);
            let start = previous.unwrap_or(if open {
                rate.unwrap_or(0.0)
            } else if sc.concurrency.is_some() || args.concurrency.is_some() {
                concurrency as f64
            } else {
                0.0
            });
            list.push(Stage {
                duration: d,
                from: start,
                to: target,
            });
            previous = Some(target);
        }
        stages = Some((kind.expect("at least one stage"), list, false));
    }

    let open = match (&stages, rate) {
        (Some((false, ..)), Some(_)) => {
            return Err(PlanError::Invalid("--rate gives the open model, but the stages give workers (closed model): use rate stages".into()))
        }
        (Some((open, ..)), _) => *open,
        (None, rate) => rate.is_some(),
    };
    if open && args.concurrency.is_some() {
        notes.push(
            "--concurrency is ignored in the open model: --max-in-flight caps connections".into(),
        );
    }
    let (profile, duration) = match stages {
        None => {
            let target = if open {
                rate.expect("open has a rate")
            } else {
                concurrency as f64
            };
            (Profile::constant(target, duration), duration)
        }
        Some((_, mut list, from_flag)) => {
            let total: Duration = list.iter().map(|s| s.duration).sum();
            // A ramp given on the command line sets the length unless --duration is given too.
            let duration = if from_flag && !duration_from_flag {
                Some(total)
            } else {
                duration.or(Some(total))
            };
            let d = duration.expect("set above");
            if d < total {
                notes.push(format!(
                    "the duration ({}) cuts the stages short: they last {}",
                    duration::format(d),
                    duration::format(total)
                ));
            }
            if d > total {
                let last = list.last().expect("at least one stage").to;
                list.push(Stage {
                    duration: d - total,
                    from: last,
                    to: last,
                });
            }
            (Profile::new(list), duration)
        }
    };
    if profile.peak() <= 0.0 {
        return Err(PlanError::Invalid(
            "the load's target is 0 throughout: give a rate or workers above 0".into(),
        ));
    }
    let load = if open {
        Load::Open {
            max_in_flight: max_in_flight
                .unwrap_or_else(|| crate::engine::default_max_in_flight(profile.peak())),
            rate: profile,
            arrivals,
        }
    } else {
        Load::Closed { workers: profile }
    };
    Ok((load, duration))
}

impl Plan {
    /// The most connections the run may hold: the closed model's peak workers, or the open
    /// model's `max_in_flight`.
    pub fn connections(&self) -> u64 {
        match &self.load {
            Load::Closed { workers } => workers.peak().ceil() as u64,
            Load::Open { max_in_flight, .. } => *max_in_flight,
        }
    }

    /// The closed model's peak worker count, or `None` in the open model.
    pub fn concurrency(&self) -> Option<u64> {
        match &self.load {
            Load::Closed { workers } => Some(workers.peak().ceil() as u64),
            Load::Open { .. } => None,
        }
    }

    /// Builds a plan from the flags and the scenario they name (or the default one).
    pub fn build(args: &RunArgs) -> Result<Plan, PlanError> {
        let (scenario, source) = scenario::load(args.scenario.as_deref())?;
        Plan::from_parts(args, &scenario, &source)
    }

    pub fn from_parts(args: &RunArgs, sc: &Scenario, src: &Source) -> Result<Plan, PlanError> {
        let mut notes = Vec::new();
        let token_path = pick(
            args.token_path.clone(),
            "token-path",
            &sc.token_path,
            "token_path",
            src,
        )
        .map(|(v, _)| v)
        .unwrap_or_else(|| DEFAULT_TOKEN_PATH.to_owned());
        let target = match pick(args.target.clone(), "target", &sc.target, "target", src) {
            Some((url, from)) => Some(Target::parse(&url, &token_path).map_err(|e| from.error(e))?),
            None => None,
        };

        let concurrency = match pick(
            args.concurrency.map(|c| c as i64),
            "concurrency",
            &sc.concurrency,
            "concurrency",
            src,
        ) {
            None => 8,
            Some((c, from)) if !(1..=100_000).contains(&c) => {
                return Err(from.error(format!("{c} is out of range 1..=100000")))
            }
            Some((c, _)) => c as u64,
        };
        let requests = match pick(
            args.requests.map(|n| n as i64),
            "requests",
            &sc.requests,
            "requests",
            src,
        ) {
            None => None,
            Some((n, from)) if n < 1 => return Err(from.error(format!("{n}: must be at least 1"))),
            Some((n, _)) => Some(n as u64),
        };
        let positive = |flag: Option<Duration>,
                        flag_name,
                        key: &Option<Spanned<String>>,
                        key_name,
                        zero_ok: bool| {
            let value = match flag {
                Some(d) => Some((d, From::Flag(flag_name))),
                None => match key {
                    None => None,
                    Some(k) => Some((
                        key_duration(key, key_name, src)?.expect("key present"),
                        From::Key(src, key_name, k.span()),
                    )),
                },
            };
            match value {
                Some((d, from)) if d.is_zero() && !zero_ok => {
                    Err(from.error("must be more than zero"))
                }
                Some((d, _)) => Ok(Some(d)),
                None => Ok(None),
            }
        };
        let duration = positive(args.duration, "duration", &sc.duration, "duration", false)?;
        let warmup =
            positive(args.warmup, "warmup", &sc.warmup, "warmup", true)?.unwrap_or_default();
        let timeout = positive(args.timeout, "timeout", &sc.timeout, "timeout", false)?
            .unwrap_or(Duration::from_secs(10));
        let grace = positive(args.grace, "grace", &sc.grace, "grace", true)?
            .unwrap_or(Duration::from_secs(2));
        let duration_from_flag = args.duration.is_some();
        let (load, duration) = load(
            args,
            sc,
            src,
            concurrency,
            duration,
            duration_from_flag,
            &mut notes,
        )?;
        let (duration, requests) = match (duration, requests) {
            (None, None) => {
                notes.push("no --duration nor --requests: running for 10s".into());
                (Some(Duration::from_secs(10)), None)
            }
            other => other,
        };

        let bad_ratio = match pick(args.bad_ratio, "bad-ratio", &sc.bad_ratio, "bad_ratio", src) {
            None => 0.2,
            Some((r, from)) if !(0.0..=1.0).contains(&r) || r.is_nan() => {
                return Err(from.error(format!("{r} is outside 0..1")))
            }
            Some((r, _)) => r,
        };
        let seed = match pick(args.seed.map(|s| s as i64), "seed", &sc.seed, "seed", src) {
            None => 1,
            Some((s, _)) => s as u64,
        };
        let reject_status = match pick(
            args.reject_status.map(i64::from),
            "reject-status",
            &sc.reject_status,
            "reject_status",
            src,
        ) {
            None => 403,
            Some((s, from)) if !(100..=599).contains(&s) || s == 200 => {
                return Err(from.error(format!(
                    "{s} is not a rejection status (100..=599, not 200)"
                )))
            }
            Some((s, _)) => s as u16,
        };
        let lockout_test =
            args.lockout_test || sc.lockout_test.as_ref().is_some_and(|v| *v.get_ref());

        let mut bad_weights = [1u32; 3];
        if let Some(kinds) = &sc.bad_kinds {
            let kinds = kinds.get_ref();
            for (i, (value, name)) in [
                (&kinds.wrong_password, "bad_kinds.wrong_password"),
                (&kinds.unknown_user, "bad_kinds.unknown_user"),
                (&kinds.empty, "bad_kinds.empty"),
            ]
            .into_iter()
            .enumerate()
            {
                bad_weights[i] = match value {
                    None => 0,
                    Some(v) if !(0..=1000).contains(v.get_ref()) => {
                        return Err(From::Key(src, name, v.span())
                            .error(format!("{} is out of range 0..=1000", v.get_ref())))
                    }
                    Some(v) => *v.get_ref() as u32,
                };
            }
            if bad_weights == [0; 3] && bad_ratio > 0.0 {
                let span = sc.bad_kinds.as_ref().expect("present").span();
                return Err(From::Key(src, "bad_kinds", span)
                    .error("every weight is 0 but bad_ratio is above 0"));
            }
        }

        // Good credentials: the file, then [[users]].
        let mut good = Vec::new();
        if let Some((path, from)) = pick(
            args.credentials.clone(),
            "credentials",
            &sc.credentials
                .as_ref()
                .map(|s| Spanned::new(s.span(), PathBuf::from(s.get_ref()))),
            "credentials",
            src,
        ) {
            let path = match from {
                From::Flag(_) => path,
                From::Key(..) => relative(src, &path.to_string_lossy()),
            };
            good = credentials::read_csv(&path)?;
        }
        for user in &sc.users {
            let span = user.span();
            let user = user.get_ref();
            let password = match (&user.password, &user.password_env) {
                (Some(p), None) => p.get_ref().clone(),
                (None, Some(var)) => std::env::var(var.get_ref()).map_err(|_| {
                    From::Key(src, "users.password_env", var.span()).error(format!(
                        "environment variable {} is not set (or not UTF-8)",
                        var.get_ref()
                    ))
                })?,
                _ => {
                    return Err(From::Key(src, "users", span)
                        .error("give exactly one of password and password_env"))
                }
            };
            if user.username.get_ref().is_empty() {
                return Err(From::Key(src, "users.username", user.username.span()).error("empty"));
            }
            good.push(Credential::new(user.username.get_ref().clone(), password));
        }
        let decoys = match pick(
            args.decoy_users.clone(),
            "decoy-users",
            &sc.decoy_users
                .as_ref()
                .map(|s| Spanned::new(s.span(), PathBuf::from(s.get_ref()))),
            "decoy_users",
            src,
        ) {
            None => Vec::new(),
            Some((path, From::Flag(_))) => credentials::read_csv(&path)?,
            Some((path, From::Key(..))) => {
                credentials::read_csv(&relative(src, &path.to_string_lossy()))?
            }
        };

        let emb = sc.embedded.as_ref();
        let count = |v: Option<&Option<Spanned<i64>>>,
                     name: &'static str,
                     default: usize,
                     max: i64|
         -> Result<usize, PlanError> {
            match v.and_then(Option::as_ref) {
                None => Ok(default),
                Some(k) if !(0..=max).contains(k.get_ref()) => Err(From::Key(src, name, k.span())
                    .error(format!("{} is out of range 0..={max}", k.get_ref()))),
                Some(k) => Ok(*k.get_ref() as usize),
            }
        };
        let embedded = EmbeddedPlan {
            users: count(emb.map(|e| &e.users), "embedded.users", 100, 1_000_000)?.max(1),
            decoys: count(emb.map(|e| &e.decoys), "embedded.decoys", 20, 1_000_000)?,
            latency: match emb.and_then(|e| e.latency.as_ref()) {
                None => None,
                Some(k) => Some(
                    parse_latency(k.get_ref())
                        .map_err(|e| From::Key(src, "embedded.latency", k.span()).error(e))?,
                ),
            },
            hash_iterations: count(
                emb.map(|e| &e.hash_iterations),
                "embedded.hash_iterations",
                0,
                10_000_000,
            )? as u32,
        };

        if target.is_some() {
            if good.is_empty() && bad_ratio < 1.0 {
                return Err(PlanError::Invalid(
                    "a target needs good credentials: give --credentials FILE (CSV username,password) or [[users]] in the scenario".into(),
                ));
            }
            if bad_weights[0] > 0 && bad_ratio > 0.0 && decoys.is_empty() && !lockout_test {
                bad_weights[0] = 0;
                notes.push(
                    "no wrong-password requests: give --decoy-users FILE (accounts that may be locked) or --lockout-test".into(),
                );
                if bad_weights == [0; 3] {
                    return Err(PlanError::Invalid(
                        "wrong_password is the only bad kind, and there is nobody to send wrong passwords to: \
                         give --decoy-users FILE or --lockout-test"
                            .into(),
                    ));
                }
            }
        }

        let json = pick(
            args.json.clone(),
            "json",
            &sc.json
                .as_ref()
                .map(|s| Spanned::new(s.span(), PathBuf::from(s.get_ref()))),
            "json",
            src,
        )
        .map(|(p, from)| match from {
            From::Flag(_) => p,
            From::Key(..) => relative(src, &p.to_string_lossy()),
        });
        let thresholds = thresholds(args, sc, src)?;
        let output = |flag: &Option<PathBuf>, name: &'static str, key: &Option<Spanned<String>>| {
            pick(
                flag.clone(),
                name,
                &key.as_ref()
                    .map(|s| Spanned::new(s.span(), PathBuf::from(s.get_ref()))),
                name,
                src,
            )
            .map(|(p, from)| match from {
                From::Flag(_) => p,
                From::Key(..) => relative(src, &p.to_string_lossy()),
            })
        };
        let junit = output(&args.junit, "junit", &sc.junit);
        let markdown = output(&args.markdown, "markdown", &sc.markdown);
        let quiet = args.quiet || sc.quiet.as_ref().is_some_and(|v| *v.get_ref());
        let progress =
            !(quiet || args.no_progress || sc.no_progress.as_ref().is_some_and(|v| *v.get_ref()));

        let file = |flag: Option<PathBuf>,
                    flag_name: &'static str,
                    key: &Option<Spanned<String>>,
                    key_name: &'static str| {
            pick(
                flag,
                flag_name,
                &key.as_ref()
                    .map(|s| Spanned::new(s.span(), PathBuf::from(s.get_ref()))),
                key_name,
                src,
            )
            .map(|(p, from)| match from {
                From::Flag(_) => (p, from),
                From::Key(..) => (relative(src, &p.to_string_lossy()), from),
            })
        };
        let insecure = args.insecure || sc.insecure.as_ref().is_some_and(|v| *v.get_ref());
        let ca_cert = file(args.ca_cert.clone(), "ca-cert", &sc.ca_cert, "ca_cert");
        if let (true, Some((_, from))) = (insecure, &ca_cert) {
            return Err(from.error(
                "excludes --insecure (insecure = true): --insecure verifies nothing, \
                 --ca-cert verifies against a private CA",
            ));
        }
        let ca_cert = ca_cert.map(|(p, _)| p);
        let client_cert = match (
            file(
                args.client_cert.clone(),
                "client-cert",
                &sc.client_cert,
                "client_cert",
            ),
            file(
                args.client_key.clone(),
                "client-key",
                &sc.client_key,
                "client_key",
            ),
        ) {
            (Some((cert, _)), Some((key, _))) => Some((cert, key)),
            (None, None) => None,
            (Some((_, from)), None) => {
                return Err(from.error("needs a key too (--client-key, client_key)"))
            }
            (None, Some((_, from))) => {
                return Err(from.error("needs a certificate too (--client-cert, client_cert)"))
            }
        };
        let follow_redirects =
            args.follow_redirects || sc.follow_redirects.as_ref().is_some_and(|v| *v.get_ref());

        Ok(Plan {
            insecure,
            ca_cert,
            client_cert,
            follow_redirects,
            scenario: src.path.clone(),
            target,
            token_path,
            embedded,
            load,
            duration,
            requests,
            warmup,
            timeout,
            grace,
            good,
            decoys,
            lockout_test,
            bad_ratio,
            bad_weights,
            seed,
            reject_status,
            json,
            progress,
            quiet,
            notes,
            thresholds,
            junit,
            markdown,
        })
    }

    /// The bad kinds that will be sent, with their weights.
    pub fn bad_kinds(&self) -> impl Iterator<Item = (CredKind, u32)> + '_ {
        CredKind::BAD
            .into_iter()
            .zip(self.bad_weights)
            .filter(|(_, w)| *w > 0)
    }
}

/// `--threshold` flags (they replace the scenario's list), else the scenario's `thresholds`;
/// then the defaults, unless turned off, that no given threshold on the same metric replaces.
fn thresholds(args: &RunArgs, sc: &Scenario, src: &Source) -> Result<Vec<Threshold>, PlanError> {
    let mut given = Vec::new();
    if !args.threshold.is_empty() {
        for expr in &args.threshold {
            given.push(Threshold::parse(expr).map_err(|e| From::Flag("threshold").error(e))?);
        }
    } else if let Some(list) = &sc.thresholds {
        for (name, expr) in &list.get_ref().0 {
            let t = Threshold::parse(expr.get_ref()).map_err(|e| {
                let key = name
                    .as_ref()
                    .map_or("thresholds".to_owned(), |n| format!("thresholds.{n}"));
                PlanError::Invalid(format!(
                    "{}:{}: {key}: {e}",
                    src.path.display(),
                    src.line_of(expr.span().start)
                ))
            })?;
            given.push(Threshold {
                name: name.clone(),
                ..t
            });
        }
    }
    let no_defaults = args.no_default_thresholds
        || sc
            .no_default_thresholds
            .as_ref()
            .is_some_and(|v| *v.get_ref());
    if !no_defaults {
        let defaults = crate::thresholds::defaults_beside(&given);
        given.extend(defaults);
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(args: &RunArgs, toml: &str) -> Result<Plan, PlanError> {
        let src = Source {
            path: "sc/s.toml".into(),
            text: toml.into(),
        };
        let sc = scenario::parse(&src).unwrap();
        Plan::from_parts(args, &sc, &src)
    }

    #[test]
    fn defaults_and_flags_win_over_keys() {
        let p = plan(&RunArgs::default(), "concurrency = 3\nduration = \"5s\"\n").unwrap();
        assert_eq!(
            (p.concurrency(), p.duration, p.bad_ratio, p.reject_status),
            (Some(3), Some(Duration::from_secs(5)), 0.2, 403)
        );
        let args = RunArgs {
            concurrency: Some(7),
            duration: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let p = plan(&args, "concurrency = 3\nduration = \"5s\"\n").unwrap();
        assert_eq!(
            (p.concurrency(), p.duration),
            (Some(7), Some(Duration::from_secs(2)))
        );
    }

    #[test]
    fn out_of_range_values_name_file_line_and_key() {
        let err = plan(
            &RunArgs::default(),
            "duration = \"5s\"\n\nbad_ratio = 1.5\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "sc/s.toml:3: bad_ratio: 1.5 is outside 0..1");
        let err = plan(&RunArgs::default(), "concurrency = 0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "sc/s.toml:1: concurrency: 0 is out of range 1..=100000"
        );
        let err = plan(&RunArgs::default(), "duration = \"0s\"\n")
            .unwrap_err()
            .to_string();
        assert_eq!(err, "sc/s.toml:1: duration: must be more than zero");
        let err = plan(&RunArgs::default(), "timeout = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("sc/s.toml:1: timeout: `soon` is not a duration"),
            "{err}"
        );
        let err = plan(&RunArgs::default(), "[bad_kinds]\nempty = -1\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "sc/s.toml:2: bad_kinds.empty: -1 is out of range 0..=1000"
        );
        let err = plan(
            &RunArgs {
                bad_ratio: Some(-0.1),
                ..Default::default()
            },
            "",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "--bad-ratio: -0.1 is outside 0..1");
    }

    #[test]
    fn a_target_needs_good_credentials_and_drops_wrong_passwords_without_decoys() {
        let err = plan(&RunArgs::default(), "target = \"http://127.0.0.1:1/\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("--credentials"), "{err}");
        let p = plan(
            &RunArgs::default(),
            "target = \"http://127.0.0.1:1/\"\n[[users]]\nusername = \"a\"\npassword = \"b\"\n",
        )
        .unwrap();
        assert_eq!(p.bad_weights, [0, 1, 1]);
        assert!(p
            .notes
            .iter()
            .any(|n| n.contains("no wrong-password requests")));
        let args = RunArgs {
            lockout_test: true,
            ..Default::default()
        };
        let p = plan(
            &args,
            "target = \"http://127.0.0.1:1/\"\n[[users]]\nusername = \"a\"\npassword = \"b\"\n",
        )
        .unwrap();
        assert_eq!(p.bad_weights, [1, 1, 1]);
    }

    #[test]
    fn password_env_reads_the_environment() {
        let err = plan(
            &RunArgs::default(),
            "[[users]]\nusername = \"a\"\npassword_env = \"SDLOAD_TEST_SURELY_UNSET_VAR\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(err, "sc/s.toml:3: users.password_env: environment variable SDLOAD_TEST_SURELY_UNSET_VAR is not set (or not UTF-8)");
    }

    #[test]
    fn open_model_rates_ramps_and_stages() {
        let p = plan(
            &RunArgs {
                rate: Some(0.5),
                ..Default::default()
            },
            "concurrency = 8\nduration = \"10s\"\n",
        )
        .unwrap();
        assert!(matches!(p.load, Load::Open { .. }));
        assert_eq!(p.concurrency(), None);
        let err = plan(&RunArgs::default(), "rate = 0.0\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "sc/s.toml:1: rate: 0: must be above 0 (fractions allowed, e.g. 0.5)"
        );
        // A ramp flag sets the duration over a scenario's duration key.
        let args = RunArgs {
            ramp: Some("0:300/s:60s".into()),
            ..Default::default()
        };
        let p = plan(&args, "duration = \"10s\"\n").unwrap();
        assert_eq!(p.duration, Some(Duration::from_secs(60)));
        let Load::Open {
            rate,
            max_in_flight,
            ..
        } = &p.load
        else {
            panic!("open")
        };
        assert_eq!(
            (rate.at(30.0), rate.peak(), *max_in_flight),
            (150.0, 300.0, 300)
        );
        // Stages hold their last target when the duration is longer.
        let toml = "duration = \"30s\"\n[[stages]]\nduration = \"10s\"\nrate = 100\n[[stages]]\nduration = \"10s\"\nrate = 50\n";
        let p = plan(&RunArgs::default(), toml).unwrap();
        let Load::Open { rate, .. } = &p.load else {
            panic!("open")
        };
        assert_eq!(
            (rate.at(5.0), rate.at(15.0), rate.at(25.0)),
            (50.0, 75.0, 50.0)
        );
        let err = plan(
            &RunArgs::default(),
            "[[stages]]\nduration = \"10s\"\nrate = 1\nworkers = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "sc/s.toml:1: stages: give exactly one of rate and workers"
        );
        let err = plan(
            &RunArgs::default(),
            "[[stages]]\nduration = \"1s\"\nrate = 1\n[[stages]]\nduration = \"1s\"\nworkers = 2\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("all stages give rate, or all give workers"),
            "{err}"
        );
        let err = plan(
            &RunArgs {
                arrivals: None,
                ..Default::default()
            },
            "rate = 5.0\narrivals = \"bursty\"\n",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "sc/s.toml:2: arrivals: `bursty`: expected uniform or poisson"
        );
    }

    #[test]
    fn ramp_forms() {
        let (open, s) = parse_ramp("0:300/s:60s").unwrap();
        assert!(open);
        assert_eq!(
            (s.from, s.to, s.duration),
            (0.0, 300.0, Duration::from_secs(60))
        );
        let (open, s) = parse_ramp("1:16:30s").unwrap();
        assert!(!open);
        assert_eq!((s.from, s.to), (1.0, 16.0));
        assert!(parse_ramp("0-300/s")
            .unwrap_err()
            .contains("FROM:TO/s:DURATION"));
        assert!(parse_ramp("0:x/s:1s").is_err());
        assert!(parse_ramp("0:1.5:1s")
            .unwrap_err()
            .contains("whole numbers"));
    }

    #[test]
    fn thresholds_from_flags_scenario_and_defaults() {
        let exprs = |p: &Plan| {
            p.thresholds
                .iter()
                .map(|t| t.expr.clone())
                .collect::<Vec<_>>()
        };
        // None given: the defaults.
        let p = plan(&RunArgs::default(), "").unwrap();
        assert_eq!(exprs(&p), ["bad_accepted == 0", "invalid_token == 0"]);
        assert!(p.thresholds.iter().all(|t| t.default));
        // A list in the scenario; a threshold on a default's metric replaces that default.
        let p = plan(
            &RunArgs::default(),
            "thresholds = [\"p99 < 250ms\", \"invalid_token <= 2\"]\n",
        )
        .unwrap();
        assert_eq!(
            exprs(&p),
            ["p99 < 250ms", "invalid_token <= 2", "bad_accepted == 0"]
        );
        // A table: its keys name the thresholds, in the file's order.
        let p = plan(
            &RunArgs::default(),
            "no_default_thresholds = true\n[thresholds]\nz_latency = \"p99 < 1s\"\nerrors = \"error < 1%\"\n",
        )
        .unwrap();
        assert_eq!(exprs(&p), ["p99 < 1s", "error < 1%"]);
        assert_eq!(p.thresholds[0].name.as_deref(), Some("z_latency"));
        // Flags replace the scenario's list.
        let args = RunArgs {
            threshold: vec!["error < 5%".into()],
            no_default_thresholds: true,
            ..Default::default()
        };
        let p = plan(&args, "thresholds = [\"p99 < 250ms\"]\n").unwrap();
        assert_eq!(exprs(&p), ["error < 5%"]);
    }

    #[test]
    fn malformed_thresholds_name_the_flag_or_the_file_line_and_key() {
        let args = RunArgs {
            threshold: vec!["p99 < 250".into()],
            ..Default::default()
        };
        let err = plan(&args, "").unwrap_err().to_string();
        assert!(
            err.starts_with("--threshold: a latency needs a unit: write 250ms"),
            "{err}"
        );
        assert!(err.contains("\n    p99 < 250\n             ^"), "{err}");
        let err = plan(
            &RunArgs::default(),
            "concurrency = 2\nthresholds = [\n  \"p99 < 1s\",\n  \"p99x < 1s\",\n]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("sc/s.toml:4: thresholds: unknown metric `p99x`"),
            "{err}"
        );
        assert!(err.contains("valid metrics:"), "{err}");
        let err = plan(&RunArgs::default(), "[thresholds]\nfast = \"p99 <\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("sc/s.toml:2: thresholds.fast: expected a value"),
            "{err}"
        );
    }

    #[test]
    fn report_outputs_are_relative_to_the_scenario() {
        let p = plan(
            &RunArgs::default(),
            "junit = \"out/j.xml\"\nmarkdown = \"s.md\"\n",
        )
        .unwrap();
        assert_eq!(p.junit, Some(PathBuf::from("sc/out/j.xml")));
        assert_eq!(p.markdown, Some(PathBuf::from("sc/s.md")));
        let args = RunArgs {
            markdown: Some("x.md".into()),
            ..Default::default()
        };
        assert_eq!(
            plan(&args, "markdown = \"s.md\"\n").unwrap().markdown,
            Some(PathBuf::from("x.md"))
        );
    }

    #[test]
    fn latency_forms() {
        assert_eq!(
            parse_latency("5ms"),
            Ok((Duration::from_millis(5), Duration::from_millis(5)))
        );
        assert_eq!(
            parse_latency("2ms..20ms"),
            Ok((Duration::from_millis(2), Duration::from_millis(20)))
        );
        assert!(parse_latency("20ms..2ms").is_err());
    }
}
