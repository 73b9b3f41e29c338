//! The bodies the server answers, shaped like what ServiceDesk on IIS sends.

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use uuid::Uuid;

pub(crate) const JSON_UTF8: &str = "application/json; charset=utf-8";

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// 200 with the token as a JSON string: `"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c"`.
pub(crate) fn token(token: Uuid) -> Response {
    respond(
        StatusCode::OK,
        JSON_UTF8,
        format!("\"{}\"", token.hyphenated()),
    )
}

/// 200 with an HTML page instead of a token (a sign-in page a proxy might serve).
pub(crate) fn html_instead_of_token() -> Response {
    respond(
        StatusCode::OK,
        "text/html; charset=utf-8",
        "<!DOCTYPE html>\r\n<html><head><title>Sign in</title></head>\r\n\
<body><h1>Sign in</h1><form method=\"post\" action=\"login\">\
<input name=\"username\"/><input name=\"password\" type=\"password\"/></form></body></html>\r\n",
    )
}

/// An IIS-style error page for `status` (403: "403 - Forbidden: Access is denied.").
pub(crate) fn iis_error(status: StatusCode) -> Response {
    let (title, detail) = match status.as_u16() {
        401 => (
            "401 - Unauthorized: Access is denied due to invalid credentials.".to_owned(),
            "You do not have permission to view this directory or page using the credentials that you supplied.",
        ),
        403 => (
            "403 - Forbidden: Access is denied.".to_owned(),
            "You do not have permission to view this directory or page using the credentials that you supplied.",
        ),
        500 => (
            "500 - Internal server error.".to_owned(),
            "There is a problem with the resource you are looking for, and it cannot be displayed.",
        ),
        code => (
            format!(
                "{code} - {}.",
                status.canonical_reason().unwrap_or("Error")
            ),
            "The request could not be completed.",
        ),
    };
    let page = format!(
        "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" \
\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n\
<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n<head>\r\n\
<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"/>\r\n\
<title>{title}</title>\r\n</head>\r\n<body>\r\n\
<div id=\"header\"><h1>Server Error</h1></div>\r\n<div id=\"content\">\r\n\
 <div class=\"content-container\"><fieldset>\r\n  <h2>{title}</h2>\r\n  <h3>{detail}</h3>\r\n\
 </fieldset></div>\r\n</div>\r\n</body>\r\n</html>\r\n"
    );
    respond(status, "text/html", page)
}

/// A short plain-text answer (400, 404, 405, 413, 415). Never echoes the request.
pub(crate) fn text(status: StatusCode, message: &'static str) -> Response {
    respond(status, "text/plain; charset=utf-8", message)
}

pub(crate) fn method_not_allowed(allow: &'static str, message: &'static str) -> Response {
    let mut response = text(StatusCode::METHOD_NOT_ALLOWED, message);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

pub(crate) fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "404 Not Found\n")
}

/// 200 for an `Authentication`-protected call.
pub(crate) fn api_ok(method: &str, path: &str) -> Response {
    let body = serde_json::json!({ "ok": true, "method": method, "path": path });
    respond(StatusCode::OK, JSON_UTF8, body.to_string())
}

pub(crate) fn json(body: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => respond(StatusCode::OK, JSON_UTF8, bytes),
        Err(_) => iis_error(StatusCode::INTERNAL_SERVER_ERROR),
    }
}

/// An error page that echoes the request body verbatim, as a careless server might: the load
/// side must never let it reach a report unredacted (it holds the password).
pub(crate) fn echo_page(status: StatusCode, request_body: &[u8]) -> Response {
    let page = format!(
        "<html><body><h2>{} {}</h2><p>Request body:</p><pre>{}</pre></body></html>\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error"),
        String::from_utf8_lossy(request_body)
    );
    respond(status, "text/html", page)
}
