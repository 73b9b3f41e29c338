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
    #[error("{path}: cannot read: {source}")]
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
