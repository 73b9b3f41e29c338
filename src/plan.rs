//! `Scenario` + CLI flags → `Plan`. All validation and defaults live here, so that later
//! stages never see an invalid configuration. A refused value names where it came from:
//! the flag, or the scenario file, line and key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::Spanned;

use crate::cli::RunArgs;
use crate::credentials::{self, Credential};
use crate::duration;
use crate::outcome::CredKind;
use crate::scenario::{self, Scenario, Source};
use crate::target::{Target, DEFAULT_TOKEN_PATH};

/// A validated run: nothing here can be out of range.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The scenario file the plan came from (or the default's path).
    pub scenario: PathBuf,
    /// `None`: start the embedded mock server.
    pub target: Option<Target>,
    pub token_path: String,
    pub embedded: EmbeddedPlan,
    pub concurrency: u64,
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

impl Plan {
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
            concurrency,
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
            (p.concurrency, p.duration, p.bad_ratio, p.reject_status),
            (3, Some(Duration::from_secs(5)), 0.2, 403)
        );
        let args = RunArgs {
            concurrency: Some(7),
            duration: Some(Duration::from_secs(2)),
            ..Default::default()
        };
        let p = plan(&args, "concurrency = 3\nduration = \"5s\"\n").unwrap();
        assert_eq!(
            (p.concurrency, p.duration),
            (7, Some(Duration::from_secs(2)))
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
