//! The router: the token endpoint, `Authentication`-protected calls under `{prefix}/api/`,
//! the stats endpoint, and the middleware that counts requests and holds them during pauses.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};

use super::faults::ConnCtx;
use super::login::{parse_token_header, token_endpoint};
use super::responses;
use super::state::Shared;
use super::stats::bump;

/// Answers the server's counts as JSON, whatever the prefix; never counted, paused or delayed.
pub const STATS_PATH: &str = "/__sdload/stats";

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(&shared.token_path, any(token_endpoint))
        .route(STATS_PATH, any(stats))
        .fallback(api_or_not_found)
        .layer(middleware::from_fn_with_state(shared.clone(), track))
        .with_state(shared)
}

/// Counts every request but the stats calls, holds it while the server is paused (on arrival
/// and again before answering), and counts its answer by status.
async fn track(State(s): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    if req.uri().path() == STATS_PATH {
        return next.run(req).await;
    }
    bump(&s.counters.requests);
    let mut paused = s.wait_pause().await;
    let response = next.run(req).await;
    paused |= s.wait_pause().await;
    if paused {
        bump(&s.counters.paused);
    }
    s.counters.record_status(response.status().as_u16());
    let mut response = response;
    if s.config.close_after_response {
        response.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    response
}

async fn stats(State(s): State<Arc<Shared>>, method: Method) -> Response {
    if method != Method::GET {
        return responses::method_not_allowed(
            "GET",
            "405 Method Not Allowed: the stats endpoint only takes GET\n",
        );
    }
    responses::json(&s.counters.snapshot())
}

/// Any other `{prefix}/api/...` call: 200 with a small JSON body when its `Authentication`
/// header holds an issued token, 403 otherwise. Everything else: 404.
async fn api_or_not_found(
    State(s): State<Arc<Shared>>,
    Extension(conn): Extension<Arc<ConnCtx>>,
    req: Request,
) -> Response {
    let path = req.uri().path();
    if !path.starts_with(&s.api_base) {
        return responses::not_found();
    }
    if let Some(range) = s.config.latency {
        tokio::time::sleep(conn.latency(range)).await;
    }
    let authenticated = req
        .headers()
        .get("authentication")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_token_header)
        .is_some_and(|token| s.tokens.contains(&token));
    if authenticated {
        responses::api_ok(req.method().as_str(), path)
    } else {
        responses::iis_error(StatusCode::FORBIDDEN)
    }
}
