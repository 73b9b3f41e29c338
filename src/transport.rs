//! The HTTP client, behind one small interface: a worker owns one `Connection` and sends the
//! body bytes it prepared once. Nothing outside this module knows which client sits here.
//!
//! It is hyper's connection-level HTTP/1.1 client rather than reqwest: a load generator wants
//! one explicit connection per worker (exact connection counts, no pool, no silent retries),
//! and peers-measured.md shows reqwest costing about twice the CPU per request.

use std::net::SocketAddr;
use std::sync::Arc;
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
            sender: None,
            busy: false,
            body: Vec::new(),
            addr: 0,
            connects: 0,
        }
    }
}

/// One worker's connection. Reconnects when the server closed it, never resends a request.
pub struct Connection {
    shared: Arc<Shared>,
    sender: Option<SendRequest<Full<Bytes>>>,
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
            self.sender = None;
        }
        let ready = match self.sender.as_mut() {
            Some(sender) if !sender.is_closed() => sender.ready().await.is_ok(),
            _ => false,
        };
        if !ready {
            // Nothing was sent on the old connection: connecting anew is not a retry.
            self.sender = None;
            let mut sender = self.connect().await?;
            sender
                .ready()
                .await
                .map_err(|e| Failure::Io(describe_hyper(&e)))?;
            self.sender = Some(sender);
        }
        let sender = self.sender.as_mut().expect("connected above");
        let shared = &*self.shared;
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = shared.target.token_uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, shared.target.host_header.clone());
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        headers.insert(ACCEPT, APPLICATION_JSON);

        let response = match sender.send_request(request).await {
            Ok(r) => r,
            Err(e) => {
                self.sender = None;
                return Err(Failure::Io(describe_hyper(&e)));
            }
        };
        let status = response.status().as_u16();
        let location = if response.status().is_redirection() {
            response
                .headers()
                .get(LOCATION)
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        } else {
            None
        };
        self.body.clear();
        let mut incoming = response.into_body();
        while let Some(frame) = incoming.frame().await {
            match frame {
                Ok(frame) => {
                    if let Some(data) = frame.data_ref() {
                        let room = MAX_KEPT_BODY.saturating_sub(self.body.len());
                        self.body.extend_from_slice(&data[..data.len().min(room)]);
                    }
                }
                Err(e) => {
                    self.sender = None;
                    return Err(Failure::Io(describe_hyper(&e)));
                }
            }
        }
        self.busy = false;
        Ok(Response {
            status,
            body: &self.body,
            location,
        })
    }

    async fn connect(&mut self) -> Result<SendRequest<Full<Bytes>>, Failure> {
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
            return match &shared.tls {
                None => handshake(stream).await,
                Some((connector, name)) => match connector.connect(name.clone(), stream).await {
                    Ok(tls) => handshake(tls).await,
                    Err(e) => Err(Failure::Connect(format!(
                        "{addr}: TLS: {}",
                        describe_tls(&e)
                    ))),
                },
            };
        }
        Err(Failure::Connect(errors.join("; ")))
    }
}

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, Failure>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| Failure::Connect(describe_hyper(&e)))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
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
