//! The HTTP client, behind one small interface: a worker owns one `Connection` and sends the
//! body bytes it prepared once. Nothing outside this module knows which client sits here.
//!
//! It is hyper's connection-level HTTP/1.1 client rather than reqwest: a load generator wants
//! one explicit connection per worker (exact connection counts, no pool, no silent retries),
//! and peers-measured.md shows reqwest costing about twice the CPU per request.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::target::{Scheme, Target};

/// At most this much of a body is kept for classification; the rest is read and dropped so
/// that the connection stays usable. A token is 38 bytes; 64 KiB covers any error page.
const MAX_KEPT_BODY: usize = 64 * 1024;

const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// How one request failed before a complete response came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Could not connect: refused, unreachable, DNS, TLS. The message names the address.
    Connect(String),
    /// The connection broke after the request was handed over.
    Io(String),
}

/// A complete response. The body borrows the connection's buffer (no allocation per request).
#[derive(Debug)]
pub struct Response<'a> {
    pub status: u16,
    pub body: &'a [u8],
    /// The `Location` header of a 3xx (redirects are not followed).
    pub location: Option<String>,
}

/// Settings shared read-only by every connection of a run.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    target: Target,
    addrs: Vec<SocketAddr>,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
    connect_timeout: Duration,
}

impl Transport {
    /// `addrs` are the target's resolved addresses, tried in order at every connect.
    pub fn new(
        target: Target,
        addrs: Vec<SocketAddr>,
        connect_timeout: Duration,
    ) -> anyhow::Result<Transport> {
        let tls = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                use rustls_platform_verifier::BuilderVerifierExt;
                let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
                let mut config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()?
                    .with_platform_verifier()?
                    .with_no_client_auth();
                config.alpn_protocols = vec![b"http/1.1".to_vec()];
                let name =
                    rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| {
                        anyhow::anyhow!("`{}` is not a valid TLS server name: {e}", target.host)
                    })?;
                Some((tokio_rustls::TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Transport {
            shared: Arc::new(Shared {
                target,
                addrs,
                tls,
                connect_timeout,
            }),
        })
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.shared.addrs
    }

    /// A new connection, not yet connected: it connects on its first send.
    pub fn connection(&self) -> Connection {
        Connection {
            shared: self.shared.clone(),
            live: None,
            busy: false,
            body: Vec::new(),
            addr: 0,
            connects: 0,
        }
    }
}

/// A TCP or TLS stream: one concrete type, so that a connection's future has one type.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type HyperConn = hyper::client::conn::http1::Connection<TokioIo<Stream>, Full<Bytes>>;

/// An open connection: the handle to send on, and hyper's connection future, which this
/// worker's task drives itself (no separate task: a request never wakes another task).
struct Live {
    sender: SendRequest<Full<Bytes>>,
    conn: Pin<Box<HyperConn>>,
}

/// One worker's connection. Reconnects when the server closed it, never resends a request.
pub struct Connection {
    shared: Arc<Shared>,
    live: Option<Live>,
    /// Set while a request is in flight: if the caller dropped the send (timeout, end of run),
    /// the connection is in an unknown state and the next send starts a new one.
    busy: bool,
    body: Vec<u8>,
    /// Index of the address that last worked, tried first next time.
    addr: usize,
    /// How many times this connection (re)connected.
    pub connects: u64,
}

impl Connection {
    /// Sends one POST of `body` to the token endpoint and reads the whole response.
    pub async fn send(&mut self, body: &Bytes) -> Result<Response<'_>, Failure> {
        if std::mem::replace(&mut self.busy, true) {
            self.live = None;
        }
        let ready = match self.live.as_mut() {
            Some(live) => live.ready().await.is_ok(),
            None => false,
        };
        if !ready {
            // Nothing was sent on the old connection: connecting anew is not a retry.
            self.live = None;
            // Boxed: connecting is rare, and its (TLS) state would otherwise make every send's
            // future kilobytes larger, copied on every request.
            let mut live = Box::pin(self.connect()).await?;
            live.ready().await.map_err(Failure::Io)?;
            self.live = Some(live);
        }
        let shared = &*self.shared;
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = shared.target.token_uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, shared.target.host_header.clone());
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        headers.insert(ACCEPT, APPLICATION_JSON);

        let (result, conn_ended) = {
            let Live { sender, conn } = self.live.as_mut().expect("connected above");
            let buf = &mut self.body;
            let exchange = async {
                let response = sender
                    .send_request(request)
                    .await
                    .map_err(|e| describe_hyper(&e))?;
                let status = response.status().as_u16();
                let location = if response.status().is_redirection() {
                    response
                        .headers()
                        .get(LOCATION)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                } else {
                    None
                };
                buf.clear();
                let mut incoming = response.into_body();
                while let Some(frame) = incoming.frame().await {
                    let frame = frame.map_err(|e| describe_hyper(&e))?;
                    if let Some(data) = frame.data_ref() {
                        let room = MAX_KEPT_BODY.saturating_sub(buf.len());
                        buf.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Ok::<_, String>((status, location))
            };
            tokio::pin!(exchange);
            // Both futures run in this task: the exchange, and hyper's connection that does the I/O.
            tokio::select! {
                biased;
                r = &mut exchange => (r, false),
                _ = conn.as_mut() => (exchange.await, true),
            }
        };
        match result {
            Ok((status, location)) => {
                if conn_ended {
                    self.live = None;
                }
                self.busy = false;
                Ok(Response {
                    status,
                    body: &self.body,
                    location,
                })
            }
            Err(message) => {
                self.live = None;
                Err(Failure::Io(message))
            }
        }
    }

    async fn connect(&mut self) -> Result<Live, Failure> {
        let shared = self.shared.clone();
        let n = shared.addrs.len();
        let mut errors = Vec::new();
        for i in 0..n {
            let index = (self.addr + i) % n;
            let addr = shared.addrs[index];
            let stream = match tokio::time::timeout(
                shared.connect_timeout,
                TcpStream::connect(addr),
            )
            .await
            {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    errors.push(format!("{addr}: {}", describe_io(&e)));
                    continue;
                }
                Err(_) => {
                    errors.push(format!("{addr}: connect timed out"));
                    continue;
                }
            };
            self.addr = index;
            self.connects += 1;
            let _ = stream.set_nodelay(true);
            let stream = match &shared.tls {
                None => Stream::Plain(stream),
                Some((connector, name)) => match connector.connect(name.clone(), stream).await {
                    Ok(tls) => Stream::Tls(Box::new(tls)),
                    Err(e) => {
                        return Err(Failure::Connect(format!(
                            "{addr}: TLS: {}",
                            describe_tls(&e)
                        )))
                    }
                },
            };
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| Failure::Connect(describe_hyper(&e)))?;
            return Ok(Live {
                sender,
                conn: Box::pin(conn),
            });
        }
        Err(Failure::Connect(errors.join("; ")))
    }
}

impl Live {
    /// Waits until the connection can take a request, driving it meanwhile; an error when it
    /// closed (the server ended a keep-alive connection, or sent `Connection: close`).
    async fn ready(&mut self) -> Result<(), String> {
        if self.sender.is_closed() {
            return Err("connection closed".into());
        }
        tokio::select! {
            biased;
            r = self.sender.ready() => r.map_err(|e| describe_hyper(&e)),
            _ = self.conn.as_mut() => Err("connection closed".into()),
        }
    }
}

fn describe_io(e: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        TimedOut => "timed out".into(),
        AddrNotAvailable => "address not available (out of local ports?)".into(),
        _ => e.to_string(),
    }
}

/// TLS failures told apart by cause: an untrusted certificate and a name mismatch need
/// different fixes (`--ca-cert` versus the right host name).
fn describe_tls(e: &std::io::Error) -> String {
    use rustls::CertificateError;
    match e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        Some(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)) => {
            "certificate not trusted (unknown issuer; self-signed or a private CA)".into()
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
        | Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            ..
        })) => "certificate not valid for this host name".into(),
        Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        | Some(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })) => {
            "certificate expired".into()
        }
        Some(other) => other.to_string(),
        None => describe_io(e),
    }
}

fn describe_hyper(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "connection closed before the response was complete".into()
    } else if e.is_parse() {
        "the response is not valid HTTP".into()
    } else if e.is_canceled() || e.is_closed() {
        "connection closed".into()
    } else {
        use std::error::Error;
        match e.source() {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        }
    }
}
