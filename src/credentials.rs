//! Credentials: the good pool, the bad generators, and the deterministic mix.

use bytes::Bytes;

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
