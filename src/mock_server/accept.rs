//! The accept loop: one task per connection, HTTP/1.1 with keep-alive, counted; a connection
//! can be dropped without an answer; stop closes idle connections at once and gives busy ones
//! a grace period.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use super::faults::ConnCtx;
use super::state::Shared;

/// Resolves once stop is asked (or the handle is gone).
pub(crate) async fn stopping(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

pub(crate) async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    router: Router,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopping(&mut stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    let index = shared.counters.connections_accepted.fetch_add(1, Relaxed);
                    let ctx = Arc::new(ConnCtx::new(shared.config.seed, index));
                    connections.spawn(serve_connection(
                        stream,
                        shared.clone(),
                        router.clone(),
                        ctx,
                        stop.clone(),
                    ));
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// Counts the connection as closed however its task ends (finished, dropped or aborted).
struct ClosedOnDrop(Arc<Shared>);

impl Drop for ClosedOnDrop {
    fn drop(&mut self) {
        self.0.counters.connections_closed.fetch_add(1, Relaxed);
    }
}

/// How long a client has to finish the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    router: Router,
    ctx: Arc<ConnCtx>,
    stop: watch::Receiver<bool>,
) {
    let _closed = ClosedOnDrop(shared.clone());
    let _ = stream.set_nodelay(true);
    match shared.tls.clone() {
        None => serve_io(stream, shared, router, ctx, stop).await,
        Some(acceptor) => {
            // A failed handshake (untrusted certificate, no client certificate): the client
            // sees the alert; nothing to serve.
            let handshake = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
            if let Ok(Ok(tls)) = handshake.await {
                serve_io(tls, shared, router, ctx, stop).await
            }
        }
    }
}

async fn serve_io<I>(
    io: I,
    shared: Arc<Shared>,
    router: Router,
    ctx: Arc<ConnCtx>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    if shared.config.garbage {
        tokio::select! {
            _ = answer_garbage(io, &shared) => {}
            _ = stopping(&mut stop) => {}
        }
        return;
    }
    let request_ctx = ctx.clone();
    let service = router.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(request_ctx.clone());
        req
    });
    let mut builder = http1::Builder::new();
    builder.keep_alive(true);
    if let Some(idle) = shared.config.idle_timeout {
        // hyper's header read timeout runs from the moment it waits for the next request's
        // head: on a keep-alive connection, that is exactly the idle time.
        builder
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(idle);
    }
    let connection = builder.serve_connection(TokioIo::new(io), TowerToHyperService::new(service));
    let mut connection = std::pin::pin!(connection);
    let dropped = ctx.drop_now.notified();
    let mut dropped = std::pin::pin!(dropped);
    tokio::select! {
        _ = connection.as_mut() => return,
        // Returning drops the connection, which closes the socket without an answer.
        _ = dropped.as_mut() => return,
        _ = stopping(&mut stop) => {}
    }
    // Stop: an idle connection closes now, a busy one after its current answer.
    connection.as_mut().graceful_shutdown();
    tokio::select! {
        _ = connection.as_mut() => {}
        _ = dropped.as_mut() => {}
    }
}

/// The `garbage` fault: reads each request (head and Content-Length body), counts it, and
/// answers bytes that are not HTTP, then closes.
async fn answer_garbage<I>(mut io: I, shared: &Shared)
where
    I: AsyncRead + AsyncWrite + Unpin,
{
    use super::stats::bump;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        if buf.len() > 64 * 1024 {
            return;
        }
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut request_line = head.lines().next().unwrap_or_default().split(' ');
    let (method, target) = (request_line.next(), request_line.next().unwrap_or_default());
    // The target may be in origin form (/path) or absolute form (http://host/path).
    let path = match target.find("://") {
        Some(i) => target[i + 3..]
            .find('/')
            .map(|j| &target[i + 3 + j..])
            .unwrap_or("/"),
        None => target,
    };
    bump(&shared.counters.requests);
    if method == Some("POST") && path == shared.token_path {
        bump(&shared.counters.token_posts);
    }
    let _ = io
        .write_all(b"\x16\x03\x01\x00\x02garbage: this is not an HTTP answer\r\n\r\n")
        .await;
    let _ = io.shutdown().await;
}
