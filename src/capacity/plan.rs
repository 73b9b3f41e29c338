//! `sdload capacity`'s flags + the scenario (its `[capacity]` table) → a validated search plan.
//! The target, credentials and mix come from `run`'s own `Plan` (built from the same scenario),
//! so that both commands read a scenario the same way; the keys that shape `run`'s load are
//! set aside, since the search decides the load.

use std::path::PathBuf;
use std::time::Duration;

use toml::Spanned;

use crate::cli::{CapacityArgs, RunArgs};
use crate::engine::timetable::Arrivals;
use crate::engine::Load;
use crate::plan::Plan;
use crate::scenario::{self, Source, Thresholds};
use crate::thresholds::{self, Threshold};

pub const DEFAULT_START_RATE: f64 = 10.0;
pub const DEFAULT_MAX_RATE: f64 = 10_000.0;
pub const DEFAULT_STEP_DURATION: Duration = Duration::from_secs(20);
pub const DEFAULT_STEP_WARMUP: Duration = Duration::from_secs(5);
pub const DEFAULT_PRECISION: f64 = 0.05;
const MAX_RATE_LIMIT: f64 = 10_000_000.0;

/// A validated search.
#[derive(Debug, Clone)]
pub struct CapacityPlan {
    /// Target, credentials, mix, timeout, grace, seed, arrivals; `duration` and `warmup` are a
    /// step's, `load` is the first step's.
    pub run: Plan,
    /// The given SLOs, then the default thresholds that none of them replaces.
    pub slo: Vec<Threshold>,
    pub start_rate: f64,
    pub max_rate: f64,
    pub step_duration: Duration,
    pub step_warmup: Duration,
    pub precision: f64,
    pub require_rate: Option<f64>,
    pub arrivals: Arrivals,
    /// Given by flag or key; else each step's default for its rate.
    pub max_in_flight: Option<u64>,
    pub json: Option<PathBuf>,
}

/// `run` flags that shape the load or its outputs, and what to use instead.
fn refused(a: &RunArgs) -> Option<&'static str> {
    let pairs: [(bool, &'static str); 9] = [
        (
            a.rate.is_some(),
            "--rate: capacity chooses each step's rate: give --start-rate and --max-rate",
        ),
        (
            a.ramp.is_some(),
            "--ramp: capacity chooses each step's rate: give --start-rate and --max-rate",
        ),
        (
            a.concurrency.is_some(),
            "--concurrency: capacity runs the open model: --max-in-flight caps connections",
        ),
        (
            a.duration.is_some(),
            "--duration: give --step-duration (each step's length)",
        ),
        (
            a.requests.is_some(),
            "--requests: give --step-duration (each step's length)",
        ),
        (
            a.warmup.is_some(),
            "--warmup: give --step-warmup (each step's warm-up)",
        ),
        (
            !a.threshold.is_empty(),
            "--threshold: give --slo (same language)",
        ),
        (a.junit.is_some(), "--junit: capacity writes --json only"),
        (
            a.markdown.is_some(),
            "--markdown: capacity writes --json only",
        ),
    ];
    pairs.into_iter().find(|(given, _)| *given).map(|(_, m)| m)
}

/// `file:line: capacity.key: reason`.
fn at<T>(src: &Source, key: &str, value: &Spanned<T>, reason: impl std::fmt::Display) -> String {
    format!(
        "{}:{}: capacity.{key}: {reason}",
        src.path.display(),
        src.line_of(value.span().start)
    )
}

/// A flag's value, else the key's, with the error prefix for either.
type Blame<'a> = Box<dyn Fn(String) -> String + 'a>;

fn pick<'a, T: Clone>(
    flag: Option<T>,
    flag_name: &str,
    key: &'a Option<Spanned<T>>,
    key_name: &str,
    src: &'a Source,
) -> Option<(T, Blame<'a>)> {
    let flag_name = flag_name.to_owned();
    match (flag, key) {
        (Some(v), _) => Some((v, Box::new(move |r| format!("--{flag_name}: {r}")))),
        (None, Some(k)) => {
            let key_name = key_name.to_owned();
            Some((
                k.get_ref().clone(),
                Box::new(move |r| at(src, &key_name, k, r)),
            ))
        }
        (None, None) => None,
    }
}

fn rate(
    flag: Option<f64>,
    name: &str,
    key: &Option<Spanned<f64>>,
    src: &Source,
) -> Result<Option<f64>, String> {
    match pick(flag, name, key, &name.replace('-', "_"), src) {
        None => Ok(None),
        Some((r, err)) if !(r.is_finite() && r > 0.0 && r <= MAX_RATE_LIMIT) => Err(err(format!(
            "{r}: a rate is above 0 logins per second (fractions allowed, at most 10000000)"
        ))),
        Some((r, _)) => Ok(Some(r)),
    }
}

fn duration(
    flag: Option<Duration>,
    name: &str,
    key: &Option<Spanned<String>>,
    src: &Source,
    zero_ok: bool,
) -> Result<Option<Duration>, String> {
    let key_name = name.replace('-', "_");
    let (d, err): (Duration, Blame) = match (flag, key) {
        (Some(d), _) => (d, Box::new(|r| format!("--{name}: {r}"))),
        (None, Some(k)) => {
            let d = crate::duration::parse(k.get_ref()).map_err(|e| at(src, &key_name, k, e))?;
            (d, Box::new(|r| at(src, &key_name, k, r)))
        }
        (None, None) => return Ok(None),
    };
    if d.is_zero() && !zero_ok {
        return Err(err("must be more than zero".into()));
    }
    Ok(Some(d))
}

fn precision(
    flag: Option<f64>,
    key: &Option<Spanned<toml::Value>>,
    src: &Source,
) -> Result<f64, String> {
    let (p, err): (f64, Blame) = match (flag, key) {
        (Some(p), _) => (p, Box::new(|r| format!("--precision: {r}"))),
        (None, Some(k)) => {
            let p = match k.get_ref() {
                toml::Value::Float(f) => *f,
                toml::Value::Integer(i) => *i as f64,
                toml::Value::String(s) => {
                    crate::cli::parse_share(s).map_err(|e| at(src, "precision", k, e))?
                }
                other => {
                    return Err(at(
                        src,
                        "precision",
                        k,
                        format!(
                            "expected a share such as \"5%\" or 0.05, found {}",
                            other.type_str()
                        ),
                    ))
                }
            };
            (p, Box::new(|r| at(src, "precision", k, r)))
        }
        (None, None) => return Ok(DEFAULT_PRECISION),
    };
    if !(0.001..=1.0).contains(&p) {
        return Err(err(format!(
            "{}% is outside 0.1%..100% (the gap between the passing and the failing rate, relative to the passing one)",
            p * 100.0
        )));
    }
    Ok(p)
}

fn slo(
    args: &CapacityArgs,
    list: &Option<Spanned<Thresholds>>,
    src: &Source,
) -> Result<Vec<Threshold>, String> {
    let mut given = Vec::new();
    if !args.slo.is_empty() {
        for expr in &args.slo {
            given.push(Threshold::parse(expr).map_err(|e| format!("--slo: {e}"))?);
        }
    } else if let Some(list) = list {
        for (name, expr) in &list.get_ref().0 {
            let t = Threshold::parse(expr.get_ref()).map_err(|e| {
                let key = name
                    .as_ref()
                    .map_or("slo".to_owned(), |n| format!("slo.{n}"));
                at(src, &key, expr, e)
            })?;
            given.push(Threshold {
                name: name.clone(),
                ..t
            });
        }
    }
    if given.is_empty() {
        return Err(
            "capacity needs an SLO to search against: --slo 'token_issued.p99 < 250ms' (repeatable), or slo = [...] in the scenario's [capacity] table"
                .into(),
        );
    }
    Ok(given)
}

impl CapacityPlan {
    pub fn build(args: &CapacityArgs) -> Result<CapacityPlan, String> {
        if let Some(why) = refused(&args.run) {
            return Err(format!("{why} (it does not apply to capacity)"));
        }
        let (mut sc, src) =
            scenario::load(args.run.scenario.as_deref()).map_err(|e| e.to_string())?;
        let table = sc
            .capacity
            .take()
            .map(Spanned::into_inner)
            .unwrap_or_default();

        let start_rate = rate(args.start_rate, "start-rate", &table.start_rate, &src)?
            .unwrap_or(DEFAULT_START_RATE);
        let max_given = rate(args.max_rate, "max-rate", &table.max_rate, &src)?;
        let max_rate = max_given.unwrap_or(DEFAULT_MAX_RATE.max(start_rate));
        if start_rate > max_rate {
            return Err(format!(
                "the start rate ({start_rate}/s) is above the max rate ({max_rate}/s)"
            ));
        }
        let step_duration = duration(
            args.step_duration,
            "step-duration",
            &table.step_duration,
            &src,
            false,
        )?
        .unwrap_or(DEFAULT_STEP_DURATION);
        let step_warmup = duration(
            args.step_warmup,
            "step-warmup",
            &table.step_warmup,
            &src,
            true,
        )?
        .unwrap_or(DEFAULT_STEP_WARMUP);
        let precision = precision(args.precision, &table.precision, &src)?;
        let require_rate = rate(args.require_rate, "require-rate", &table.require_rate, &src)?;
        if let Some(n) = require_rate {
            if n > max_rate {
                return Err(format!(
                    "the required rate ({n}/s) is above the max rate ({max_rate}/s): no step would ever test it"
                ));
            }
        }
        let given = slo(args, &table.slo, &src)?;
        let no_defaults = args.run.no_default_thresholds
            || sc
                .no_default_thresholds
                .as_ref()
                .is_some_and(|v| *v.get_ref());
        let mut slo = given.clone();
        if !no_defaults {
            slo.extend(thresholds::defaults_beside(&given));
        }

        // The search decides the load: `run`'s load keys (and its thresholds and other outputs)
        // are set aside. What is left plans like a run at the start rate.
        let max_in_flight_key = sc.max_in_flight.as_ref().map(|v| *v.get_ref());
        sc.rate = None;
        sc.ramp = None;
        sc.stages.clear();
        sc.concurrency = None;
        sc.duration = None;
        sc.requests = None;
        sc.warmup = None;
        sc.thresholds = None;
        sc.junit = None;
        sc.markdown = None;
        let run_args = RunArgs {
            rate: Some(start_rate),
            duration: Some(step_duration),
            warmup: Some(step_warmup),
            ..args.run.clone()
        };
        let run = Plan::from_parts(&run_args, &sc, &src).map_err(|e| e.to_string())?;
        let Load::Open { arrivals, .. } = run.load else {
            unreachable!("a rate gives the open model")
        };
        // Checked by the plan (1..=100000) when given.
        let max_in_flight = args
            .run
            .max_in_flight
            .or(max_in_flight_key.map(|n| n as u64));
        let json = match (&args.run.json, &table.json) {
            (Some(p), _) => Some(p.clone()),
            (None, Some(k)) => Some(relative(&src, k.get_ref())),
            (None, None) => run.json.clone(),
        };
        Ok(CapacityPlan {
            run,
            slo,
            start_rate,
            max_rate,
            step_duration,
            step_warmup,
            precision,
            require_rate,
            arrivals,
            max_in_flight,
            json,
        })
    }
}

/// A path in the scenario, relative to the scenario's folder.
fn relative(src: &Source, path: &str) -> PathBuf {
    let p = std::path::Path::new(path);
    match src.path.parent() {
        Some(dir) if !p.is_absolute() && !dir.as_os_str().is_empty() => dir.join(p),
        _ => p.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(args: CapacityArgs, toml: &str) -> Result<CapacityPlan, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, toml).unwrap();
        let args = CapacityArgs {
            run: RunArgs {
                scenario: Some(path),
                ..args.run
            },
            ..args
        };
        CapacityPlan::build(&args).map_err(|e| {
            // File names differ per test: keep the part after the folder.
            e.replace(&format!("{}/", dir.path().display()), "")
        })
    }

    fn slo(e: &str) -> CapacityArgs {
        CapacityArgs {
            slo: vec![e.into()],
            ..Default::default()
        }
    }

    #[test]
    fn defaults_and_flags_over_keys() {
        let p = build(slo("p99 < 100ms"), "").unwrap();
        assert_eq!(
            (
                p.start_rate,
                p.max_rate,
                p.step_duration,
                p.step_warmup,
                p.precision
            ),
            (
                10.0,
                10_000.0,
                Duration::from_secs(20),
                Duration::from_secs(5),
                0.05
            )
        );
        let exprs: Vec<&str> = p.slo.iter().map(|t| t.expr.as_str()).collect();
        assert_eq!(
            exprs,
            ["p99 < 100ms", "bad_accepted == 0", "invalid_token == 0"]
        );
        assert_eq!(
            (p.run.duration, p.run.warmup),
            (Some(Duration::from_secs(20)), Duration::from_secs(5))
        );
        assert_eq!((p.max_in_flight, p.require_rate), (None, None));

        let toml = "max_in_flight = 50\n[capacity]\nslo = [\"error < 1%\"]\nstart_rate = 20\nmax_rate = 300\nstep_duration = \"2s\"\nstep_warmup = \"0s\"\nprecision = \"10%\"\nrequire_rate = 100\njson = \"out.json\"\n";
        let p = build(CapacityArgs::default(), toml).unwrap();
        assert_eq!(
            (
                p.start_rate,
                p.max_rate,
                p.step_duration,
                p.step_warmup,
                p.precision,
                p.require_rate
            ),
            (
                20.0,
                300.0,
                Duration::from_secs(2),
                Duration::ZERO,
                0.1,
                Some(100.0)
            )
        );
        assert_eq!(p.slo[0].expr, "error < 1%");
        assert_eq!(p.max_in_flight, Some(50));
        assert!(p.json.unwrap().ends_with("out.json"));

        let args = CapacityArgs {
            start_rate: Some(30.0),
            precision: Some(0.02),
            slo: vec!["p99 < 1s".into()],
            run: RunArgs {
                max_in_flight: Some(8),
                ..Default::default()
            },
            ..Default::default()
        };
        let p = build(args, toml).unwrap();
        assert_eq!(
            (p.start_rate, p.precision, p.max_in_flight),
            (30.0, 0.02, Some(8))
        );
        assert_eq!(p.slo[0].expr, "p99 < 1s");
    }

    #[test]
    fn run_load_keys_are_set_aside_and_run_load_flags_refused() {
        // A scenario written for `run` (workers, stages, thresholds) plans for capacity too.
        let toml = "concurrency = 4\nduration = \"1m\"\nthresholds = [\"p99 < 1s\"]\n[[stages]]\nduration = \"10s\"\nworkers = 8\n[capacity]\nslo = [\"p99 < 50ms\"]\n";
        let p = build(CapacityArgs::default(), toml).unwrap();
        assert!(matches!(p.run.load, Load::Open { .. }));
        assert_eq!(p.slo[0].expr, "p99 < 50ms");
        for (run, flag) in [
            (
                RunArgs {
                    rate: Some(5.0),
                    ..Default::default()
                },
                "--rate",
            ),
            (
                RunArgs {
                    duration: Some(Duration::from_secs(1)),
                    ..Default::default()
                },
                "--step-duration",
            ),
            (
                RunArgs {
                    threshold: vec!["p99 < 1s".into()],
                    ..Default::default()
                },
                "--slo",
            ),
            (
                RunArgs {
                    concurrency: Some(3),
                    ..Default::default()
                },
                "--max-in-flight",
            ),
        ] {
            let err = build(
                CapacityArgs {
                    run,
                    ..slo("p99 < 1s")
                },
                "",
            )
            .unwrap_err();
            assert!(
                err.contains(flag) && err.contains("does not apply to capacity"),
                "{err}"
            );
        }
    }

    #[test]
    fn refused_values_name_the_flag_or_the_file_line_and_key() {
        let err = build(CapacityArgs::default(), "").unwrap_err();
        assert!(err.contains("needs an SLO"), "{err}");
        let err = build(slo("p99 < 100"), "").unwrap_err();
        assert!(err.starts_with("--slo: a latency needs a unit"), "{err}");
        let err = build(
            CapacityArgs::default(),
            "[capacity]\nslo = [\"p99 < 1s\",\n  \"p98x < 1s\"]\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("s.toml:3: capacity.slo: unknown metric"),
            "{err}"
        );
        let err = build(
            CapacityArgs::default(),
            "[capacity]\n\n[capacity.slo]\nfast = \"p99 <\"\n",
        )
        .unwrap_err();
        assert!(
            err.starts_with("s.toml:4: capacity.slo.fast: expected a value"),
            "{err}"
        );
        let err = build(slo("p99 < 1s"), "[capacity]\nstart_rate = 0\n").unwrap_err();
        assert!(
            err.starts_with("s.toml:2: capacity.start_rate: 0: a rate is above 0"),
            "{err}"
        );
        let err = build(
            CapacityArgs {
                max_rate: Some(-1.0),
                ..slo("p99 < 1s")
            },
            "",
        )
        .unwrap_err();
        assert!(err.starts_with("--max-rate: -1"), "{err}");
        let err = build(
            CapacityArgs {
                start_rate: Some(50.0),
                max_rate: Some(20.0),
                ..slo("p99 < 1s")
            },
            "",
        )
        .unwrap_err();
        assert!(
            err.contains("start rate (50/s) is above the max rate (20/s)"),
            "{err}"
        );
        let err = build(
            CapacityArgs {
                require_rate: Some(500.0),
                max_rate: Some(400.0),
                ..slo("p99 < 1s")
            },
            "",
        )
        .unwrap_err();
        assert!(err.contains("no step would ever test it"), "{err}");
        let err = build(slo("p99 < 1s"), "[capacity]\nstep_duration = \"0s\"\n").unwrap_err();
        assert_eq!(
            err,
            "s.toml:2: capacity.step_duration: must be more than zero"
        );
        let err = build(slo("p99 < 1s"), "[capacity]\nprecision = \"50 percent\"\n").unwrap_err();
        assert!(
            err.starts_with("s.toml:2: capacity.precision: `50 percent` is not a share"),
            "{err}"
        );
        let err = build(
            CapacityArgs {
                precision: Some(0.0),
                ..slo("p99 < 1s")
            },
            "",
        )
        .unwrap_err();
        assert!(err.starts_with("--precision: 0% is outside"), "{err}");
        let err = build(slo("p99 < 1s"), "[capacity]\nstart_rates = 5\n").unwrap_err();
        assert!(err.contains("unknown field `start_rates`"), "{err}");
        // The defaults can be left out; an SLO on the same metric replaces its default.
        let p = build(
            CapacityArgs {
                run: RunArgs {
                    no_default_thresholds: true,
                    ..Default::default()
                },
                ..slo("p99 < 1s")
            },
            "",
        )
        .unwrap();
        assert_eq!(p.slo.len(), 1);
        let p = build(slo("invalid_token <= 3"), "").unwrap();
        assert_eq!(p.slo.len(), 2);
    }
}
