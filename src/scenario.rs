//! Scenario files: TOML bytes on disk → `Scenario`. Only parsing here; every value keeps its
//! span so that `plan` can name the file, line and key of a value it refuses.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

/// The default scenario, compiled in so that `sdload run` works from any directory.
pub const DEFAULT_SCENARIO: &str = include_str!("../scenarios/default.toml");
pub const DEFAULT_SCENARIO_PATH: &str = "scenarios/default.toml";

type S<T> = Option<Spanned<T>>;

/// Every CLI flag of `run` has a key here of the same name (dashes become underscores).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub target: S<String>,
    pub token_path: S<String>,
    pub concurrency: S<i64>,
    pub rate: S<f64>,
    pub arrivals: S<String>,
    pub max_in_flight: S<i64>,
    pub ramp: S<String>,
    /// Load stages, each ramping linearly from the previous target.
    #[serde(default)]
    pub stages: Vec<Spanned<StageSpec>>,
    pub duration: S<String>,
    pub requests: S<i64>,
    pub warmup: S<String>,
    pub timeout: S<String>,
    pub grace: S<String>,
    pub credentials: S<String>,
    pub decoy_users: S<String>,
    pub lockout_test: S<bool>,
    pub bad_ratio: S<f64>,
    pub seed: S<i64>,
    pub reject_status: S<i64>,
    pub json: S<String>,
    pub no_progress: S<bool>,
    pub quiet: S<bool>,
    /// Weights of the bad credential kinds.
    pub bad_kinds: Option<Spanned<BadKinds>>,
    /// Good credentials written in the scenario (beside or instead of a credentials file).
    #[serde(default)]
    pub users: Vec<Spanned<ScenarioUser>>,
    /// The embedded mock server used when no target is given.
    pub embedded: Option<Embedded>,
    pub insecure: S<bool>,
    pub ca_cert: S<String>,
    pub client_cert: S<String>,
    pub client_key: S<String>,
    pub follow_redirects: S<bool>,
    /// Pass/fail conditions (`--threshold`): a list, or a `[thresholds]` table of `name = "expr"`.
    pub thresholds: Option<Spanned<Thresholds>>,
    pub no_default_thresholds: S<bool>,
    pub junit: S<String>,
    pub markdown: S<String>,
    /// `sdload capacity`: the search (`run` ignores it).
    pub capacity: Option<Spanned<CapacityTable>>,
}

/// `[capacity]`: every flag of `sdload capacity` but those it shares with `run`.
///
/// ```toml
/// [capacity]
/// slo = ["token_issued.p99 < 250ms", "error < 1%"]   # or a table of name = "expr"
/// start_rate = 20
/// max_rate = 2000
/// step_duration = "20s"
/// step_warmup = "5s"
/// precision = "5%"        # or 0.05
/// require_rate = 300
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacityTable {
    pub slo: Option<Spanned<Thresholds>>,
    pub start_rate: S<f64>,
    pub max_rate: S<f64>,
    pub step_duration: S<String>,
    pub step_warmup: S<String>,
    /// `"5%"` or `0.05`.
    pub precision: S<toml::Value>,
    pub require_rate: S<f64>,
    pub json: S<String>,
}

/// `thresholds = ["p99 < 250ms", "error < 1%"]`, or a table whose keys name them:
///
/// ```toml
/// [thresholds]
/// login_latency = "token_issued.p99 < 250ms"
/// errors = "error < 1%"
/// ```
#[derive(Debug, Default)]
pub struct Thresholds(pub Vec<(Option<String>, Spanned<String>)>);

impl<'de> Deserialize<'de> for Thresholds {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Thresholds;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of threshold strings, or a table of name = \"threshold\"")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Thresholds, A::Error> {
                let mut out = Vec::new();
                while let Some(expr) = seq.next_element::<Spanned<String>>()? {
                    out.push((None, expr));
                }
                Ok(Thresholds(out))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Thresholds, A::Error> {
                let mut out = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    out.push((Some(name), map.next_value::<Spanned<String>>()?));
                }
                // In the file's order (a table may come back sorted by key).
                out.sort_by_key(|(_, expr)| expr.span().start);
                Ok(Thresholds(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}

/// One stage: a duration and a target, `rate` (open model) or `workers` (closed model).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageSpec {
    pub duration: Spanned<String>,
    pub rate: S<f64>,
    pub workers: S<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BadKinds {
    pub wrong_password: S<i64>,
    pub unknown_user: S<i64>,
    pub empty: S<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioUser {
    pub username: Spanned<String>,
    pub password: S<String>,
    /// Name of an environment variable holding the password, so it need not be written here.
    pub password_env: S<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Embedded {
    pub users: S<i64>,
    pub decoys: S<i64>,
    /// `5ms` or `2ms..20ms`.
    pub latency: S<String>,
    pub hash_iterations: S<i64>,
}

/// Where a scenario came from and its text, to turn spans into line numbers.
#[derive(Debug, Clone)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
}

impl Source {
    /// 1-based line of a byte offset into the text without its BOM (what the parser saw).
    pub fn line_of(&self, offset: usize) -> usize {
        let text = self.text.strip_prefix('\u{feff}').unwrap_or(&self.text);
        text.as_bytes()[..offset.min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Loads a scenario file; `None` loads `scenarios/default.toml` from the working directory
/// when it exists (so that editing it takes effect), else the compiled-in copy.
pub fn load(path: Option<&Path>) -> Result<(Scenario, Source), ScenarioError> {
    let source = match path {
        Some(p) => Source {
            path: p.to_owned(),
            text: std::fs::read_to_string(p).map_err(|source| ScenarioError::Read {
                path: p.to_owned(),
                source,
            })?,
        },
        None => {
            let p = Path::new(DEFAULT_SCENARIO_PATH);
            let text = std::fs::read_to_string(p).unwrap_or_else(|_| DEFAULT_SCENARIO.to_owned());
            Source {
                path: p.to_owned(),
                text,
            }
        }
    };
    let scenario = parse(&source)?;
    Ok((scenario, source))
}

pub fn parse(source: &Source) -> Result<Scenario, ScenarioError> {
    let text = source.text.strip_prefix('\u{feff}').unwrap_or(&source.text);
    toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        let line = source.line_of(offset);
        let message = e
            .message()
            .trim()
            .replace("expected i64", "expected an integer")
            .replace("expected f64", "expected a number");
        let text = source.text.strip_prefix('\u{feff}').unwrap_or(&source.text);
        let message = suggest_key(&message).unwrap_or(message);
        let message = match key_on_line(text, line) {
            // The value may be a password written with the wrong type: never echo it.
            Some(key) if key.contains("password") => format!("{key}: invalid value"),
            Some(key) if !message.contains(&format!("`{key}`")) => format!("{key}: {message}"),
            _ => message,
        };
        ScenarioError::Parse {
            path: source.path.clone(),
            line,
            message,
        }
    })
}

/// "unknown field `duraton`, expected one of `target`, ... (34 keys)" becomes
/// "unknown field `duraton`: did you mean `duration`?" when one key is a typo away.
fn suggest_key(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest.split_once("expected one of")?.1;
    let keys = expected.split('`').skip(1).step_by(2);
    let guess = crate::thresholds::closest(unknown, keys)?;
    Some(format!(
        "unknown field `{unknown}`: did you mean `{guess}`?"
    ))
}

/// The key of a `key = value` line, to name it in type errors (toml's message does not).
fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let (key, _) = text.lines().nth(line - 1)?.split_once('=')?;
    let key = key.trim();
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(text: &str) -> Source {
        Source {
            path: "s.toml".into(),
            text: text.into(),
        }
    }

    #[test]
    fn default_scenario_parses() {
        parse(&src(DEFAULT_SCENARIO)).unwrap();
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let err = parse(&src("concurrency = 4\nconcurency = 5\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("s.toml:2: unknown field `concurency`"),
            "{err}"
        );
    }

    #[test]
    fn a_mistyped_key_gets_a_suggestion() {
        let err = parse(&src("concurrency = 4\nduraton = \"5s\"\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "s.toml:2: unknown field `duraton`: did you mean `duration`?"
        );
    }

    #[test]
    fn wrong_type_names_line() {
        let err = parse(&src("\n\nconcurrency = \"four\"\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "s.toml:3: concurrency: invalid type: string \"four\", expected an integer"
        );
        let err = parse(&src("[[users]]\nusername = \"a\"\npassword = 12345\n"))
            .unwrap_err()
            .to_string();
        assert_eq!(err, "s.toml:3: password: invalid value");
    }

    #[test]
    fn syntax_error_names_line() {
        let err = parse(&src("concurrency = 4\nduration = \"10s\n"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("s.toml:2: "), "{err}");
    }
}
