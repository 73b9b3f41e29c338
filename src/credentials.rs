//! Credentials: the good pool, the bad generators, and the deterministic mix.

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

/// One account: user name and password, byte-exact (spaces included).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

impl Credential {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credential {
            username: username.into(),
            password: password.into(),
        }
    }
}

/// Passwords never reach a log, a panic message or a report, even through `{:?}`.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A credentials file that cannot be used; the message names the file, the line and the field.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{path}: cannot read the credentials file: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {field}: {reason}")]
    Invalid {
        path: PathBuf,
        line: u64,
        field: &'static str,
        reason: String,
    },
    #[error("{path}: no credentials in the file (expected lines of username,password)")]
    Empty { path: PathBuf },
}

/// Reads a CSV file of `username,password` rows: header optional (a first row of exactly
/// `username,password`, any case), UTF-8 with or without a BOM, CRLF or LF line ends, quoted
/// fields (a comma or a quote inside a password), values taken byte-exact.
pub fn read_csv(path: &Path) -> Result<Vec<Credential>, CredentialsError> {
    let bytes = std::fs::read(path).map_err(|source| CredentialsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_csv(path, &bytes)
}

/// `read_csv` on bytes already in memory; `path` only names the source in errors.
pub fn parse_csv(path: &Path, bytes: &[u8]) -> Result<Vec<Credential>, CredentialsError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let invalid = |line: u64, field: &'static str, reason: String| CredentialsError::Invalid {
        path: path.to_owned(),
        line,
        field,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::None)
        .from_reader(bytes);
    let mut out = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut first = true;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                return Err(invalid(
                    line,
                    "record",
                    format!("not valid CSV: {}", csv_error_kind(&e)),
                ));
            }
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        // A line that is empty or only whitespace (often the last one) is not a record.
        if record.len() == 1 && record[0].iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let is_header = first
            && record.len() == 2
            && record[0].eq_ignore_ascii_case(b"username")
            && record[1].eq_ignore_ascii_case(b"password");
        first = false;
        if is_header {
            continue;
        }
        match record.len() {
            1 => {
                return Err(invalid(
                    line,
                    "password",
                    "missing (expected username,password)".into(),
                ))
            }
            2 => {}
            n => {
                return Err(invalid(
                    line,
                    "record",
                    format!(
                        "{n} fields, expected 2 (quote a password that holds a comma: \"a,b\")"
                    ),
                ))
            }
        }
        let text = |i: usize, field: &'static str| {
            std::str::from_utf8(&record[i])
                .map(str::to_owned)
                .map_err(|_| invalid(line, field, "not valid UTF-8".into()))
        };
        let username = text(0, "username")?;
        let password = text(1, "password")?;
        // A quote left open swallows the lines after it into one field: refuse, rather than
        // take a run of lines for a password.
        for (value, field) in [(&username, "username"), (&password, "password")] {
            if value.contains(['\n', '\r']) {
                return Err(invalid(
                    line,
                    field,
                    "holds a line break (a quote left open?)".into(),
                ));
            }
        }
        if username.is_empty() {
            return Err(invalid(line, "username", "empty".into()));
        }
        out.push(Credential { username, password });
    }
    if out.is_empty() {
        return Err(CredentialsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(out)
}

/// The kind of a CSV error without the record's content (which may hold a password).
fn csv_error_kind(e: &csv::Error) -> &'static str {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8",
        csv::ErrorKind::UnequalLengths { .. } => "unequal number of fields",
        csv::ErrorKind::Io(_) => "read error",
        _ => "malformed record",
    }
}

/// Writes credentials as CSV with a `username,password` header, quoting where needed.
pub fn write_csv(path: &Path, credentials: &[Credential]) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_path(path)?;
    writer.write_record(["username", "password"])?;
    for c in credentials {
        writer.write_record([&c.username, &c.password])?;
    }
    writer.flush()
}

#[derive(serde::Serialize)]
struct LoginBody<'a> {
    username: &'a str,
    password: &'a str,
}

/// The JSON request body for one credential, built by serde_json (never by string formatting:
/// user names such as `DOMAIN\user` and passwords holding quotes must be escaped exactly).
pub fn login_body(username: &str, password: &str) -> Bytes {
    let body = serde_json::to_vec(&LoginBody { username, password })
        .expect("two strings always serialize");
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<Vec<Credential>, CredentialsError> {
        parse_csv(Path::new("users.csv"), text)
    }

    #[test]
    fn reads_header_bom_crlf_quotes_and_spaces() {
        let creds = parse(
            b"\xEF\xBB\xBFUsername,Password\r\nEXAMPLE\\svc,\" p\"\"a,ss \"\r\nbob, x \r\n\r\n",
        )
        .unwrap();
        assert_eq!(
            creds,
            vec![
                Credential::new("EXAMPLE\\svc", " p\"a,ss "),
                Credential::new("bob", " x ")
            ]
        );
    }

    #[test]
    fn header_is_optional() {
        assert_eq!(
            parse(b"alice,secret\n").unwrap(),
            vec![Credential::new("alice", "secret")]
        );
    }

    #[test]
    fn errors_name_line_and_field_without_the_password() {
        let err = parse(b"username,password\nalice,secret\nbob\n")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "users.csv:3: password: missing (expected username,password)"
        );
        let err = parse(b"alice,se,cret-xyz\n").unwrap_err().to_string();
        assert!(err.starts_with("users.csv:1: record: 3 fields"), "{err}");
        assert!(!err.contains("cret-xyz"));
        assert!(matches!(
            parse(b"").unwrap_err(),
            CredentialsError::Empty { .. }
        ));
        assert!(matches!(
            parse(b"username,password\n").unwrap_err(),
            CredentialsError::Empty { .. }
        ));
        let err = parse(b",pw\n").unwrap_err().to_string();
        assert_eq!(err, "users.csv:1: username: empty");
    }

    #[test]
    fn debug_redacts_password() {
        let shown = format!("{:?}", Credential::new("alice", "hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn login_body_escapes() {
        let body = login_body("EXAMPLE\\svc_load01", "q\"b\\é");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["username"], "EXAMPLE\\svc_load01");
        assert_eq!(v["password"], "q\"b\\é");
    }
}

/// Parts per million: the bad ratio as an integer, so that the interleave is exact.
const PPM: u64 = 1_000_000;

/// Which credential each request carries, as a pure function of the request's index: any
/// worker can pick request `i` without shared state, and the same seed gives the same run.
///
/// Bad requests are a deterministic interleave (with 400 requests at 0.25, exactly 100 are bad,
/// spread evenly), not coin flips; their kinds follow a seeded shuffle of the weights, exact per
/// cycle of the weights' sum; the user within a kind is a seeded hash of the index.
pub struct Mix {
    good: Vec<Bytes>,
    wrong_password: Vec<Bytes>,
    unknown_user: Vec<Bytes>,
    empty: Bytes,
    bad_ppm: u64,
    /// One cycle of bad kinds, `weights` long, in a seeded order.
    kind_cycle: Vec<crate::outcome::CredKind>,
    seed: u64,
}

impl Mix {
    /// `wrong_targets` are the accounts that get wrong passwords (decoys, or good users with
    /// `--lockout-test`); every body is serialized here, once, not per request.
    pub fn new(
        good: &[Credential],
        wrong_targets: &[Credential],
        bad_ratio: f64,
        bad_weights: &[(crate::outcome::CredKind, u32)],
        seed: u64,
    ) -> Mix {
        use crate::outcome::CredKind;
        use rand::seq::SliceRandom;
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let good: Vec<Bytes> = good
            .iter()
            .map(|c| login_body(&c.username, &c.password))
            .collect();
        let wrong_password = wrong_targets
            .iter()
            .map(|c| {
                let mut wrong = format!("sdload-wrong-{:08x}", rng.random::<u32>());
                if wrong == c.password {
                    wrong.push('x');
                }
                login_body(&c.username, &wrong)
            })
            .collect();
        let unknown_user = (0..64)
            .map(|_| {
                let name = format!(
                    "sdload-unknown-{:012x}",
                    rng.random::<u64>() & 0xffff_ffff_ffff
                );
                login_body(&name, &format!("sdload-{:08x}", rng.random::<u32>()))
            })
            .collect();
        let mut kind_cycle: Vec<CredKind> = bad_weights
            .iter()
            .filter(|(kind, _)| *kind != CredKind::WrongPassword || !wrong_targets.is_empty())
            .flat_map(|&(kind, w)| std::iter::repeat_n(kind, w as usize))
            .collect();
        kind_cycle.shuffle(&mut rng);
        let bad_ppm = if kind_cycle.is_empty() {
            0
        } else {
            (bad_ratio * PPM as f64).round() as u64
        };
        Mix {
            good,
            wrong_password,
            unknown_user,
            empty: login_body("", ""),
            bad_ppm,
            kind_cycle,
            seed,
        }
    }

    /// How many of the first `n` requests carry bad credentials.
    pub fn bad_before(&self, n: u64) -> u64 {
        (n as u128 * self.bad_ppm as u128 / PPM as u128) as u64
    }

    /// The kind and body of request `index`.
    pub fn pick(&self, index: u64) -> (crate::outcome::CredKind, &Bytes) {
        use crate::outcome::CredKind;
        let bad_so_far = self.bad_before(index);
        let h = mix64(self.seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        if self.bad_before(index + 1) == bad_so_far {
            return (
                CredKind::Good,
                &self.good[(h % self.good.len() as u64) as usize],
            );
        }
        let kind = self.kind_cycle[(bad_so_far % self.kind_cycle.len() as u64) as usize];
        let body = match kind {
            CredKind::WrongPassword => {
                &self.wrong_password[(h % self.wrong_password.len() as u64) as usize]
            }
            CredKind::UnknownUser => {
                &self.unknown_user[(h % self.unknown_user.len() as u64) as usize]
            }
            _ => &self.empty,
        };
        (kind, body)
    }

    /// True when the mix can produce every request it is asked for.
    pub fn is_usable(&self) -> bool {
        !self.good.is_empty() || self.bad_ppm == PPM
    }
}

/// SplitMix64's finalizer: a cheap, well-spread hash of the request index, so that choosing a
/// user needs no shared random generator.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod mix_tests {
    use super::*;
    use crate::outcome::CredKind;

    fn users(n: usize) -> Vec<Credential> {
        (0..n)
            .map(|i| Credential::new(format!("u{i}"), format!("p{i}")))
            .collect()
    }

    fn kinds(mix: &Mix, n: u64) -> Vec<CredKind> {
        (0..n).map(|i| mix.pick(i).0).collect()
    }

    #[test]
    fn bad_share_is_exact_and_evenly_spread() {
        let all = [
            (CredKind::WrongPassword, 1),
            (CredKind::UnknownUser, 1),
            (CredKind::Empty, 1),
        ];
        let mix = Mix::new(&users(10), &users(3), 0.25, &all, 7);
        let k = kinds(&mix, 400);
        assert_eq!(k.iter().filter(|k| k.is_bad()).count(), 100);
        // Evenly spread: every block of 4 holds exactly one bad request.
        assert!(k
            .chunks(4)
            .all(|c| c.iter().filter(|k| k.is_bad()).count() == 1));
        // Kinds in equal shares per cycle of the weights.
        for kind in CredKind::BAD {
            let n = k.iter().filter(|&&x| x == kind).count();
            assert!((33..=34).contains(&n), "{kind:?}: {n}");
        }
        for ratio in [0.0, 0.1, 0.3, 0.57, 0.7, 0.999, 1.0] {
            let mix = Mix::new(&users(5), &[], ratio, &all, 1);
            let bad = kinds(&mix, 1000).iter().filter(|k| k.is_bad()).count();
            assert_eq!(bad, (ratio * 1000.0).round() as usize, "ratio {ratio}");
        }
    }

    #[test]
    fn same_seed_same_choices_other_seed_other_choices() {
        let all = [
            (CredKind::WrongPassword, 2),
            (CredKind::UnknownUser, 1),
            (CredKind::Empty, 1),
        ];
        let a = Mix::new(&users(50), &users(5), 0.3, &all, 42);
        let b = Mix::new(&users(50), &users(5), 0.3, &all, 42);
        let c = Mix::new(&users(50), &users(5), 0.3, &all, 43);
        let pa: Vec<_> = (0..200).map(|i| a.pick(i).1.clone()).collect();
        let pb: Vec<_> = (0..200).map(|i| b.pick(i).1.clone()).collect();
        let pc: Vec<_> = (0..200).map(|i| c.pick(i).1.clone()).collect();
        assert_eq!(pa, pb);
        assert_ne!(pa, pc);
    }

    #[test]
    fn no_wrong_targets_means_no_wrong_passwords() {
        let all = [
            (CredKind::WrongPassword, 1),
            (CredKind::UnknownUser, 1),
            (CredKind::Empty, 1),
        ];
        let mix = Mix::new(&users(3), &[], 0.5, &all, 1);
        assert!(!kinds(&mix, 300).contains(&CredKind::WrongPassword));
    }

    #[test]
    fn wrong_password_bodies_never_hold_the_real_password() {
        let decoys = users(20);
        let all = [(CredKind::WrongPassword, 1)];
        let mix = Mix::new(&users(1), &decoys, 1.0, &all, 3);
        for i in 0..100 {
            let (kind, body) = mix.pick(i);
            assert_eq!(kind, CredKind::WrongPassword);
            let v: serde_json::Value = serde_json::from_slice(body).unwrap();
            let user = decoys.iter().find(|d| d.username == v["username"]).unwrap();
            assert_ne!(v["password"], user.password.as_str());
        }
    }
}
