//! The token endpoint: `POST {prefix}/api/authorization/token`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::to_bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::Response;
use axum::Extension;
use uuid::Uuid;

use super::config::TokenFormat;
use super::faults::{stalls, ConnCtx};
use super::responses;
use super::state::Shared;
use super::stats::bump;
use super::users::{hash_cost, Verdict};

/// Login bodies are a few dozen bytes; anything past this is refused with 413.
const MAX_BODY: usize = 64 * 1024;

/// Which latency setting applies to an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Accepted,
    Refused,
    Other,
}

pub(crate) async fn token_endpoint(
    State(s): State<Arc<Shared>>,
    Extension(conn): Extension<Arc<ConnCtx>>,
    req: Request,
) -> Response {
    if req.method() != Method::POST {
        return responses::method_not_allowed(
            "POST",
            "405 Method Not Allowed: the token endpoint only takes POST\n",
        );
    }
    let ordinal = bump(&s.counters.token_posts);
    let (parts, body) = req.into_parts();
    let body = match to_bytes(body, MAX_BODY).await {
        Ok(body) => body,
        Err(e) => {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|inner| inner.is::<http_body_util::LengthLimitError>());
            return if too_large {
                responses::text(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "413 Payload Too Large: a login body is at most 64 KiB\n",
                )
            } else {
                responses::text(
                    StatusCode::BAD_REQUEST,
                    "400 Bad Request: the request body could not be read\n",
                )
            };
        }
    };
    // A saturated server: wait for a slot, in order of arrival.
    if let Some(pacer) = &s.pacer {
        if pacer.wait().await {
            bump(&s.counters.queued);
        }
    }
    if s.config.never_answer {
        // Read and counted; the client waits until its timeout (or the server stops).
        return std::future::pending().await;
    }
    if conn.chance(s.config.drop_rate) {
        bump(&s.counters.dropped_connections);
        // The connection task drops the connection: no answer is ever written.
        conn.drop_now.notify_one();
        return std::future::pending().await;
    }
    let (response, kind) = if conn.chance(s.config.error_rate) {
        bump(&s.counters.injected_errors);
        (
            responses::iis_error(StatusCode::INTERNAL_SERVER_ERROR),
            Kind::Other,
        )
    } else {
        login(&s, &parts.headers, &body).await
    };
    let c = &s.config;
    let latency = match kind {
        Kind::Accepted => c.latency_ok.or(c.latency),
        Kind::Refused => c.latency_fail.or(c.latency),
        Kind::Other => c.latency,
    };
    let mut delay = latency.map(|r| conn.latency(r)).unwrap_or_default();
    if stalls(ordinal, c.stall_every) {
        bump(&s.counters.stalled);
        delay += c.stall_for;
    }
    if delay > Duration::ZERO {
        tokio::time::sleep(delay).await;
    }
    let response = if c.echo_body && response.status() != StatusCode::OK {
        responses::echo_page(response.status(), &body)
    } else {
        response
    };
    if let Some(step) = c.trickle {
        faulty(response, Some(step), false).await
    } else if c.truncate_body {
        faulty(response, None, true).await
    } else {
        response
    }
}

/// The same answer with a misbehaving body: one byte every `step`, or cut after half of it
/// (the Content-Length still announces the whole body; hyper then closes the connection).
async fn faulty(response: Response, step: Option<Duration>, truncate: bool) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX).await.unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_LENGTH, bytes.len().into());
    let cut = truncate.then_some(bytes.len() / 2);
    Response::from_parts(
        parts,
        axum::body::Body::new(FaultBody {
            bytes,
            sent: 0,
            step,
            cut,
            flushed: false,
            sleep: None,
        }),
    )
}

struct FaultBody {
    bytes: bytes::Bytes,
    sent: usize,
    step: Option<Duration>,
    cut: Option<usize>,
    flushed: bool,
    sleep: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl hyper::body::Body for FaultBody {
    type Data = bytes::Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, std::io::Error>>> {
        use std::future::Future;
        use std::task::Poll;
        let this = &mut *self;
        if this.cut.is_some_and(|cut| this.sent >= cut) {
            // Pending once first, so that hyper flushes the head and the half body it holds:
            // failing at once would drop them unsent and the client would see no answer at all.
            if !std::mem::replace(&mut this.flushed, true) {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            return Poll::Ready(Some(Err(std::io::Error::other("body cut on purpose"))));
        }
        if this.sent >= this.bytes.len() {
            return Poll::Ready(None);
        }
        let end = match this.step {
            Some(step) => {
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(step)));
                if sleep.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                this.sleep = None;
                this.sent + 1
            }
            None => this.cut.unwrap_or(this.bytes.len()),
        };
        let chunk = this.bytes.slice(this.sent..end.min(this.bytes.len()));
        this.sent += chunk.len();
        Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.bytes.len() as u64)
    }
}

async fn login(s: &Shared, headers: &HeaderMap, body: &[u8]) -> (Response, Kind) {
    if !is_json(headers) {
        let r = responses::text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "415 Unsupported Media Type: send the credentials as application/json or text/json\n",
        );
        return (r, Kind::Other);
    }
    let (username, password) = match parse_login(body) {
        Ok(credentials) => credentials,
        Err(message) => {
            return (
                responses::text(StatusCode::BAD_REQUEST, message),
                Kind::Other,
            )
        }
    };
    let (username, password) = if s.config.hash_iterations > 0 {
        let iterations = s.config.hash_iterations;
        match tokio::task::spawn_blocking(move || {
            hash_cost(&username, &password, iterations);
            (username, password)
        })
        .await
        {
            Ok(credentials) => credentials,
            Err(_) => {
                let r = responses::iis_error(StatusCode::INTERNAL_SERVER_ERROR);
                return (r, Kind::Other);
            }
        }
    } else {
        (username, password)
    };
    let verdict = if s.config.accept_any {
        Verdict::Accepted
    } else {
        let lockout = s.config.lockout_after.map(|n| (n, s.config.lockout_for));
        s.accounts
            .check(&username, &password, lockout, Instant::now())
    };
    match verdict {
        Verdict::Accepted => {
            bump(&s.counters.logins_ok);
            (issue(s), Kind::Accepted)
        }
        Verdict::Refused | Verdict::LockedOut => {
            if verdict == Verdict::LockedOut {
                bump(&s.counters.locked_out);
            }
            bump(&s.counters.logins_failed);
            (responses::iis_error(s.reject), Kind::Refused)
        }
    }
}

fn issue(s: &Shared) -> Response {
    match s.config.token_format {
        TokenFormat::Guid => {
            let token = Uuid::new_v4();
            s.tokens.insert(token);
            bump(&s.counters.tokens_issued);
            responses::token(token)
        }
        TokenFormat::Nil => responses::token(Uuid::nil()),
        TokenFormat::Html => responses::html_instead_of_token(),
    }
}

/// `application/json` or `text/json`, any case, parameters such as `; charset=utf-8` allowed.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or_default().trim())
        .is_some_and(|mime| {
            mime.eq_ignore_ascii_case("application/json") || mime.eq_ignore_ascii_case("text/json")
        })
}

/// The user name and password from a JSON object; property names match in any case (as ASP.NET
/// Web API binds them). The error is a short text that never echoes the body.
fn parse_login(body: &[u8]) -> Result<(String, String), &'static str> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|_| "400 Bad Request: the body is not valid JSON\n")?;
    let serde_json::Value::Object(fields) = value else {
        return Err("400 Bad Request: the body must be a JSON object {\"username\": ..., \"password\": ...}\n");
    };
    let field = |name: &str, missing: &'static str, twice: &'static str, not_string| {
        let mut found = fields.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
        match (found.next(), found.next()) {
            (None, _) => Err(missing),
            (Some(_), Some(_)) => Err(twice),
            (Some((_, serde_json::Value::String(s))), None) => Ok(s.clone()),
            (Some(_), None) => Err(not_string),
        }
    };
    let username = field(
        "username",
        "400 Bad Request: the username field is missing\n",
        "400 Bad Request: the username field is given twice\n",
        "400 Bad Request: the username must be a string\n",
    )?;
    let password = field(
        "password",
        "400 Bad Request: the password field is missing\n",
        "400 Bad Request: the password field is given twice\n",
        "400 Bad Request: the password must be a string\n",
    )?;
    Ok((username, password))
}

/// The token in an `Authentication` header: the bare GUID, or the JSON string as the login
/// returned it (quotes included).
pub(crate) fn parse_token_header(value: &str) -> Option<Uuid> {
    Uuid::parse_str(value.trim().trim_matches('"')).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn content_types() {
        let with = |ct: &'static str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            is_json(&h)
        };
        assert!(with("application/json"));
        assert!(with("application/json; charset=utf-8"));
        assert!(with("Text/JSON"));
        assert!(!with("text/plain"));
        assert!(!with("application/x-www-form-urlencoded"));
        assert!(!is_json(&HeaderMap::new()));
    }

    #[test]
    fn login_bodies() {
        let ok = |b: &str| parse_login(b.as_bytes());
        assert_eq!(
            ok(r#"{"username":"a","password":"b"}"#).unwrap(),
            ("a".into(), "b".into())
        );
        assert_eq!(
            ok(r#"{"USERNAME":"a","Password":"b","extra":1}"#).unwrap(),
            ("a".into(), "b".into())
        );
        assert!(ok(r#"{"username":"a"}"#)
            .unwrap_err()
            .contains("password field is missing"));
        assert!(ok(r#"{"username":"a","password":1}"#)
            .unwrap_err()
            .contains("string"));
        assert!(ok(r#"{"username":"a","Username":"b","password":"c"}"#)
            .unwrap_err()
            .contains("twice"));
        assert!(ok(r#"["a","b"]"#).unwrap_err().contains("object"));
        assert!(ok(r#"{"username":"a","password":"secret"#)
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(!ok("{\"username\":\"a\",\"password\":\"hunter2")
            .unwrap_err()
            .contains("hunter2"));
    }

    #[test]
    fn token_headers() {
        let t = Uuid::new_v4();
        assert_eq!(parse_token_header(&t.to_string()), Some(t));
        assert_eq!(parse_token_header(&format!("\"{t}\"")), Some(t));
        assert_eq!(parse_token_header("not-a-token"), None);
    }
}
