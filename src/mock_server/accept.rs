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

async fn serve_connection(
    stream: TcpStream,
    shared: Arc<Shared>,
    router: Router,
    ctx: Arc<ConnCtx>,
    mut stop: watch::Receiver<bool>,
) {
    let _closed = ClosedOnDrop(shared);
    let _ = stream.set_nodelay(true);
    let request_ctx = ctx.clone();
    let service = router.map_request(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(request_ctx.clone());
        req
    });
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
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
