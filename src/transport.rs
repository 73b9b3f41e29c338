//! The HTTP client, behind one small interface: a worker owns one `Connection` and sends the
//! body bytes it prepared once. Nothing outside this module knows which client sits here.
//!
//! It is a plain HTTP/1.1 client over one owned socket per worker, with `http1` (httparse)
//! framing the responses: a load generator wants one explicit connection per worker (exact
//! connection counts, no pool, no silent retries), and the request is bytes prepared once.
//! peers-measured.md shows reqwest costing about twice the CPU per request of hyper's
//! connection-level client; hyper's client in turn cost about a third more CPU per request
//! than this (its dispatcher task, channel, header map and body frames per request).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use hyper::Uri;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use crate::http1;
use crate::target::{Scheme, Target};

/// At most this much of a body is kept for classification; the rest is read and dropped so
/// that the connection stays usable. A token is 38 bytes; 64 KiB covers any error page.
const MAX_KEPT_BODY: usize = 64 * 1024;

/// At most this many redirects are followed for one login (with `follow_redirects`).
pub const MAX_REDIRECTS: usize = 5;

/// The headers after `Host` of every login request, up to `Content-Length`'s value.
const REQUEST_HEADERS: &[u8] =
    b"\r\nContent-Type: application/json\r\nAccept: application/json\r\nContent-Length: ";

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
    /// The `Location` header of a 3xx that was not followed.
    pub location: Option<String>,
}

/// How the connections of a run talk to the target: TLS trust, client certificate, redirects.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Timeout of one TCP connect (the request timeout also bounds it).
    pub connect_timeout: Duration,
    /// Skip certificate verification (self-signed test servers); the report records it.
    pub insecure: bool,
    /// Trust the certificates of this PEM file (a private CA) instead of the platform's roots.
    pub ca_cert: Option<PathBuf>,
    /// Present this certificate chain and key (PEM files) to servers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Follow 307/308 (method and body kept); 301/302/303 and https → http are reported.
    pub follow_redirects: bool,
}

/// A setting that cannot be used: a certificate or key file (exit 2), or the TLS stack itself.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    BadInput(String),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// What the connections of a run measured, merged from every connection when it is dropped:
/// TCP connect and TLS handshake times of each new connection (microseconds), and redirects.
#[derive(Clone, Debug)]
pub struct ConnectionStats {
    pub connect_us: Histogram<u64>,
    pub tls_handshake_us: Histogram<u64>,
    /// The TLS version of the first handshake that completed ("TLSv1.3"), if any.
    pub tls_version: Option<&'static str>,
    pub cipher_suite: Option<&'static str>,
    /// 307/308 hops followed.
    pub redirects_followed: u64,
    /// 301/302/303 not followed: they would have turned the POST into a GET.
    pub redirects_not_followed: u64,
    /// https → http redirects refused (the credentials would have gone in clear text).
    pub redirects_refused_insecure: u64,
    /// Chains cut at `MAX_REDIRECTS`.
    pub redirect_loops: u64,
}

impl Default for ConnectionStats {
    fn default() -> Self {
        ConnectionStats {
            connect_us: timing_histogram(),
            tls_handshake_us: timing_histogram(),
            tls_version: None,
            cipher_suite: None,
            redirects_followed: 0,
            redirects_not_followed: 0,
            redirects_refused_insecure: 0,
            redirect_loops: 0,
        }
    }
}

fn timing_histogram() -> Histogram<u64> {
    crate::recorder::new_histogram()
}

/// Settings shared read-only by every connection of a run.
#[derive(Clone)]
pub struct Transport {
    shared: Arc<Shared>,
}

struct Shared {
    target: Target,
    addrs: Vec<SocketAddr>,
    /// The target's TLS name (https targets only).
    server_name: Option<rustls::pki_types::ServerName<'static>>,
    /// Built for https targets, and for http ones that may be redirected to https.
    tls: Option<tokio_rustls::TlsConnector>,
    connect_timeout: Duration,
    follow_redirects: bool,
    /// The token request's head up to `Content-Length`'s value, built once per run.
    request_head: Vec<u8>,
    /// Written once per connection (when it is dropped), never per request.
    stats: Mutex<ConnectionStats>,
    tls_version: OnceLock<(&'static str, Option<&'static str>)>,
}

impl Transport {
    /// `addrs` are the target's resolved addresses, tried in order at every connect.
    pub fn new(
        target: Target,
        addrs: Vec<SocketAddr>,
        connect_timeout: Duration,
    ) -> anyhow::Result<Transport> {
        let options = Options {
            connect_timeout,
            ..Default::default()
        };
        Transport::with_options(target, addrs, &options).map_err(|e| match e {
            SetupError::BadInput(m) => anyhow::anyhow!(m),
            SetupError::Other(e) => e,
        })
    }

    pub fn with_options(
        target: Target,
        addrs: Vec<SocketAddr>,
        options: &Options,
    ) -> Result<Transport, SetupError> {
        let https = target.scheme == Scheme::Https;
        let tls = if https || options.follow_redirects {
            Some(tokio_rustls::TlsConnector::from(Arc::new(client_config(
                options,
            )?)))
        } else {
            None
        };
        let server_name = if https {
            Some(server_name(&target.host).map_err(SetupError::BadInput)?)
        } else {
            None
        };
        // Origin form (`POST /SD.WebAPI/api/authorization/token`) with the Host header, as
        // browsers and every HTTP/1.1 client send it.
        let path = target
            .token_uri
            .path_and_query()
            .map_or("/", |p| p.as_str());
        let mut request_head = format!("POST {path} HTTP/1.1\r\nHost: ").into_bytes();
        request_head.extend_from_slice(target.host_header.as_bytes());
        request_head.extend_from_slice(REQUEST_HEADERS);
        Ok(Transport {
            shared: Arc::new(Shared {
                request_head,
                target,
                addrs,
                server_name,
                tls,
                connect_timeout: options.connect_timeout,
                follow_redirects: options.follow_redirects,
                stats: Mutex::new(ConnectionStats::default()),
                tls_version: OnceLock::new(),
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
            stream: None,
            hop: None,
            busy: false,
            buffers: Buffers::default(),
            addr: 0,
            connects: 0,
            pending: Pending::default(),
        }
    }

    /// What the connections measured so far (complete once every connection is dropped).
    pub fn stats(&self) -> ConnectionStats {
        let mut stats = lock(&self.shared.stats).clone();
        if let Some((version, suite)) = self.shared.tls_version.get() {
            stats.tls_version = Some(version);
            stats.cipher_suite = *suite;
        }
        stats
    }
}

fn lock(m: &Mutex<ConnectionStats>) -> std::sync::MutexGuard<'_, ConnectionStats> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn server_name(host: &str) -> Result<rustls::pki_types::ServerName<'static>, String> {
    rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|e| format!("`{host}` is not a valid TLS server name: {e}"))
}

/// The rustls client configuration: the platform's verifier by default, a private CA's roots
/// with `ca_cert`, no verification at all with `insecure`; a client certificate when given.
fn client_config(options: &Options) -> Result<rustls::ClientConfig, SetupError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls_platform_verifier::BuilderVerifierExt;

    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| SetupError::Other(e.into()))?;
    let builder = if options.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
    } else if let Some(path) = &options.ca_cert {
        let bad = |m: String| SetupError::BadInput(format!("--ca-cert {}: {m}", path.display()));
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(pem_error(&e)))?;
        for cert in certs {
            let cert = cert.map_err(|e| bad(pem_error(&e)))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("not a usable CA certificate: {e}")))?;
        }
        if roots.is_empty() {
            return Err(bad("no PEM certificate in the file".into()));
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .with_platform_verifier()
            .map_err(|e| SetupError::Other(e.into()))?
    };
    let mut config = match &options.client_cert {
        None => builder.with_no_client_auth(),
        Some((cert_path, key_path)) => {
            let bad_cert = |m: String| {
                SetupError::BadInput(format!("--client-cert {}: {m}", cert_path.display()))
            };
            let certs = CertificateDer::pem_file_iter(cert_path)
                .map_err(|e| bad_cert(pem_error(&e)))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad_cert(pem_error(&e)))?;
            if certs.is_empty() {
                return Err(bad_cert("no PEM certificate in the file".into()));
            }
            let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
                SetupError::BadInput(format!(
                    "--client-key {}: {}",
                    key_path.display(),
                    pem_error(&e)
                ))
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                SetupError::BadInput(format!(
                    "--client-cert/--client-key: the key does not go with the certificate: {e}"
                ))
            })?
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// A PEM reading error in words (never the file's content: a key file is a secret).
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error;
    match e {
        Error::Io(e) => format!("cannot read: {e}"),
        Error::NoItemsFound => "no PEM item of the expected kind in the file".into(),
        _ => "not a valid PEM file".into(),
    }
}

/// `--insecure`: any certificate is accepted, but the handshake's signatures are still
/// checked (the peer must hold the key of the certificate it shows).
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Timings and redirect counts of one connection, handed to the transport's totals in a
/// batch (when full, and when the connection is dropped): no lock per request.
#[derive(Default)]
struct Pending {
    connect_us: Vec<u32>,
    tls_us: Vec<u32>,
    followed: u64,
    not_followed: u64,
    refused_insecure: u64,
    loops: u64,
}

const PENDING_BATCH: usize = 64;

/// A login answer is a few hundred bytes: 4 KiB of read buffer per connection keeps 10,000
/// connections small; a longer head grows it (up to `http1::MAX_HEAD`), a longer body streams
/// through it.
const READ_BUFFER: usize = 4096;

/// A connected socket, plain or TLS. An enum rather than a trait object: the plain case, the
/// one benchmarks run, stays a direct call.
enum Stream {
    Plain(TcpStream),
    /// Boxed: rustls' state is tens of kilobytes and most runs have none.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
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

impl Stream {
    /// False when the server closed the connection (or sent something unasked) while it was
    /// idle: a request written to it would be lost, so the worker connects anew instead.
    /// Costs no system call when the socket has nothing to read since the last one, and at most
    /// the one `recv` that finds nothing, which the first read after the write would otherwise
    /// make.
    fn still_open(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut probe = ReadBuf::new(&mut probe);
        Pin::new(self).poll_read(&mut cx, &mut probe).is_pending()
    }
}

/// An origin a redirect went to, with its own connection (the target's is reused when the
/// redirect stays on the target's origin).
struct Hop {
    scheme: Scheme,
    authority: String,
    stream: Stream,
}

/// The buffers of one connection, reused by every request: nothing is allocated per request.
#[derive(Default)]
struct Buffers {
    /// The request being sent: head and body, rewritten in place.
    out: Vec<u8>,
    /// Bytes read from the socket; `start..end` not consumed yet.
    read: Vec<u8>,
    start: usize,
    end: usize,
    /// The response body, up to `MAX_KEPT_BODY`.
    body: Vec<u8>,
}

/// What `Buffers::read_response` found, beside the body.
struct Answer {
    status: u16,
    keep_alive: bool,
    location: Option<String>,
}

impl Buffers {
    fn keep(body: &mut Vec<u8>, data: &[u8]) {
        let room = MAX_KEPT_BODY.saturating_sub(body.len());
        body.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Reads more bytes after `end`, growing the buffer when it is full. Zero means the
    /// server closed the connection.
    async fn fill(&mut self, stream: &mut Stream) -> Result<usize, Failure> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        if self.end == self.read.len() {
            if self.start > 0 {
                self.read.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else {
                let len = (self.read.len() * 2).clamp(READ_BUFFER, http1::MAX_HEAD);
                if len == self.read.len() {
                    return Err(Failure::Io(http1::Invalid::HeadTooLarge.to_string()));
                }
                self.read.resize(len, 0);
            }
        }
        let n = stream
            .read(&mut self.read[self.end..])
            .await
            .map_err(|e| Failure::Io(describe_read(&e)))?;
        self.end += n;
        Ok(n)
    }

    /// Reads one whole response: head, then the body as its framing says.
    async fn read_response(&mut self, stream: &mut Stream) -> Result<Answer, Failure> {
        const INCOMPLETE: &str = "connection closed before the response was complete";
        self.start = 0;
        self.end = 0;
        self.body.clear();
        let head = loop {
            match http1::parse_head(&self.read[..self.end]) {
                Ok(Some(head)) => break head,
                Ok(None) => {
                    if self.fill(stream).await? == 0 {
                        return Err(Failure::Io(
                            if self.end == 0 {
                                "connection closed before any response"
                            } else {
                                INCOMPLETE
                            }
                            .into(),
                        ));
                    }
                }
                Err(e) => return Err(Failure::Io(e.to_string())),
            }
        };
        let location = head
            .location
            .map(|r| String::from_utf8_lossy(&self.read[r]).into_owned());
        self.start = head.len;
        match head.framing {
            http1::Framing::Empty => {}
            http1::Framing::Length(mut left) => loop {
                let take = ((self.end - self.start) as u64).min(left) as usize;
                Buffers::keep(&mut self.body, &self.read[self.start..self.start + take]);
                self.start += take;
                left -= take as u64;
                if left == 0 {
                    break;
                }
                if self.fill(stream).await? == 0 {
                    return Err(Failure::Io(INCOMPLETE.into()));
                }
            },
            http1::Framing::Chunked => {
                let mut chunked = http1::Chunked::default();
                loop {
                    let body = &mut self.body;
                    let used = chunked
                        .feed(&self.read[self.start..self.end], |d| Buffers::keep(body, d))
                        .map_err(|e| Failure::Io(e.to_string()))?;
                    self.start += used;
                    if chunked.is_done() {
                        break;
                    }
                    if self.fill(stream).await? == 0 {
                        return Err(Failure::Io(INCOMPLETE.into()));
                    }
                }
            }
            http1::Framing::UntilClose => loop {
                Buffers::keep(&mut self.body, &self.read[self.start..self.end]);
                self.start = self.end;
                if self.fill(stream).await? == 0 {
                    break;
                }
            },
        }
        Ok(Answer {
            status: head.status,
            // Bytes after the response were not asked for: the connection's state is unknown.
            keep_alive: head.keep_alive && self.start == self.end,
            location,
        })
    }
}

/// One worker's connection. Reconnects when the server closed it, never resends a request
/// that reached the wire: a request goes out on a new connection only when the old one was
/// found closed before anything was written to it.
pub struct Connection {
    shared: Arc<Shared>,
    stream: Option<Stream>,
    /// The connection to another origin that a followed redirect went to.
    hop: Option<Hop>,
    /// Set while a request is in flight: if the caller dropped the send (timeout, end of run),
    /// the connection is in an unknown state and the next send starts a new one.
    busy: bool,
    buffers: Buffers,
    /// Index of the address that last worked, tried first next time.
    addr: usize,
    /// How many times this connection (re)connected.
    pub connects: u64,
    pending: Pending,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Where one request goes: the target itself, or an origin a redirect named.
enum Via {
    Target,
    Other {
        scheme: Scheme,
        authority: String,
        host: String,
        port: u16,
    },
}

impl Connection {
    /// Sends one POST of `body` to the token endpoint and reads the whole response; with
    /// `follow_redirects`, follows 307/308 (latency then covers every hop).
    pub async fn send(&mut self, body: &Bytes) -> Result<Response<'_>, Failure> {
        if std::mem::replace(&mut self.busy, true) {
            self.stream = None;
            self.hop = None;
        }
        let shared = self.shared.clone();
        let mut uri: Option<Uri> = None;
        let mut via = Via::Target;
        let mut hops = 0;
        loop {
            let answer = self.exchange(&via, uri.as_ref(), body).await?;
            let status = answer.status;
            let location = answer.location;
            let base = uri.as_ref().unwrap_or(&shared.target.token_uri);
            let next = match (&location, self.shared.follow_redirects) {
                (Some(location), true) => match status {
                    307 | 308 if hops == MAX_REDIRECTS => {
                        self.pending.loops += 1;
                        None
                    }
                    307 | 308 => match resolve(base, location) {
                        Some(next)
                            if base.scheme_str() == Some("https")
                                && next.scheme_str() != Some("https") =>
                        {
                            self.pending.refused_insecure += 1;
                            None
                        }
                        next => next,
                    },
                    301..=303 => {
                        self.pending.not_followed += 1;
                        None
                    }
                    _ => None,
                },
                _ => None,
            };
            let Some(next) = next else {
                self.busy = false;
                return Ok(Response {
                    status,
                    body: &self.buffers.body,
                    location,
                });
            };
            hops += 1;
            self.pending.followed += 1;
            via = self.via(&next);
            uri = Some(next);
        }
    }

    /// Which connection a URI goes to: the target's when it is the target's origin.
    fn via(&self, uri: &Uri) -> Via {
        let t = &self.shared.target;
        let scheme = match uri.scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        if scheme == t.scheme && host.eq_ignore_ascii_case(&t.host) && port == t.port {
            Via::Target
        } else {
            Via::Other {
                scheme,
                authority: authority.to_owned(),
                host,
                port,
            }
        }
    }

    /// One request and its response on the connection `via` names (`uri`: where a redirect
    /// sent it; `None` is the token endpoint), connecting when there is no open connection.
    async fn exchange(
        &mut self,
        via: &Via,
        uri: Option<&Uri>,
        body: &Bytes,
    ) -> Result<Answer, Failure> {
        let out = &mut self.buffers.out;
        out.clear();
        match (via, uri) {
            (Via::Target, None) => out.extend_from_slice(&self.shared.request_head),
            _ => {
                // A redirect: rare, so its head is built here. Origin form with the Host
                // header, as browsers and every HTTP/1.1 client send it.
                let uri = uri.unwrap_or(&self.shared.target.token_uri);
                let path = uri.path_and_query().map_or("/", |p| p.as_str());
                let host = match via {
                    Via::Target => self.shared.target.host_header.as_bytes(),
                    Via::Other { authority, .. } => authority.as_bytes(),
                };
                if host.iter().any(|&b| b < 0x21 || b == 0x7f) {
                    return Err(Failure::Io(format!(
                        "redirect to an invalid host `{}`",
                        String::from_utf8_lossy(host)
                    )));
                }
                out.extend_from_slice(b"POST ");
                out.extend_from_slice(path.as_bytes());
                out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
                out.extend_from_slice(host);
                out.extend_from_slice(REQUEST_HEADERS);
            }
        }
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body);

        self.open(via).await?;
        let stream = match via {
            Via::Target => self.stream.as_mut(),
            Via::Other { .. } => self.hop.as_mut().map(|h| &mut h.stream),
        }
        .expect("opened above");
        let sent = async {
            stream.write_all(&self.buffers.out).await?;
            stream.flush().await
        };
        let result = match sent.await {
            Ok(()) => self.buffers.read_response(stream).await,
            Err(e) => Err(Failure::Io(describe_read(&e))),
        };
        if !result.as_ref().is_ok_and(|a| a.keep_alive) {
            match via {
                Via::Target => self.stream = None,
                Via::Other { .. } => self.hop = None,
            }
        }
        result
    }

    /// The open connection for `via`, connecting when there is none or the server closed it
    /// while it was idle (nothing was sent on it, so connecting anew is not a retry).
    async fn open(&mut self, via: &Via) -> Result<(), Failure> {
        match via {
            Via::Target => {
                if !self.stream.as_mut().is_some_and(Stream::still_open) {
                    self.stream = None;
                    let shared = self.shared.clone();
                    // Boxed: connecting is rare, and its TLS state would otherwise make every
                    // send's future kilobytes larger, copied on every request.
                    let stream =
                        Box::pin(self.connect(&shared.addrs, true, shared.server_name.clone()))
                            .await?;
                    self.stream = Some(stream);
                }
                Ok(())
            }
            Via::Other {
                scheme,
                authority,
                host,
                port,
            } => {
                let same = self
                    .hop
                    .as_ref()
                    .is_some_and(|h| h.scheme == *scheme && h.authority == *authority);
                if !same || !self.hop.as_mut().is_some_and(|h| h.stream.still_open()) {
                    self.hop = None;
                    let addrs: Vec<SocketAddr> =
                        match tokio::net::lookup_host((host.as_str(), *port)).await {
                            Ok(a) => a.collect(),
                            Err(e) => {
                                return Err(Failure::Connect(format!(
                                    "redirect to {authority}: cannot resolve: {e}"
                                )))
                            }
                        };
                    let name = match scheme {
                        Scheme::Http => None,
                        Scheme::Https => Some(server_name(host).map_err(Failure::Connect)?),
                    };
                    let stream = Box::pin(self.connect(&addrs, false, name)).await?;
                    self.hop = Some(Hop {
                        scheme: *scheme,
                        authority: authority.clone(),
                        stream,
                    });
                }
                Ok(())
            }
        }
    }

    /// Connects to the first address that answers; `target` says whether these are the
    /// target's addresses (the one that worked is tried first next time).
    async fn connect(
        &mut self,
        addrs: &[SocketAddr],
        target: bool,
        tls_name: Option<rustls::pki_types::ServerName<'static>>,
    ) -> Result<Stream, Failure> {
        let shared = self.shared.clone();
        let n = addrs.len();
        let first = if target { self.addr } else { 0 };
        let mut errors = Vec::new();
        for i in 0..n {
            let index = (first + i) % n;
            let addr = addrs[index];
            let started = Instant::now();
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
            self.note_timing(Timing::Connect, started);
            if target {
                self.addr = index;
            }
            self.connects += 1;
            let _ = stream.set_nodelay(true);
            if self.buffers.read.is_empty() {
                self.buffers.read = vec![0; READ_BUFFER];
            }
            return match (&shared.tls, tls_name) {
                (_, None) => Ok(Stream::Plain(stream)),
                (None, Some(_)) => Err(Failure::Connect(format!(
                    "{addr}: TLS is not set up for this run"
                ))),
                (Some(connector), Some(name)) => {
                    let started = Instant::now();
                    match connector.connect(name, stream).await {
                        Ok(tls) => {
                            self.note_timing(Timing::Tls, started);
                            let conn = tls.get_ref().1;
                            if let Some(version) = conn.protocol_version() {
                                let suite = conn
                                    .negotiated_cipher_suite()
                                    .and_then(|s| s.suite().as_str());
                                let _ = shared.tls_version.set((tls_version_name(version), suite));
                            }
                            Ok(Stream::Tls(Box::new(tls)))
                        }
                        Err(e) => Err(Failure::Connect(format!(
                            "{addr}: TLS: {}",
                            describe_tls(&e)
                        ))),
                    }
                }
            };
        }
        Err(Failure::Connect(errors.join("; ")))
    }

    fn note_timing(&mut self, which: Timing, started: Instant) {
        let us = started.elapsed().as_micros().min(u32::MAX as u128) as u32;
        let list = match which {
            Timing::Connect => &mut self.pending.connect_us,
            Timing::Tls => &mut self.pending.tls_us,
        };
        list.push(us);
        if list.len() >= PENDING_BATCH {
            self.flush();
        }
    }

    /// Hands this connection's timings and counts to the transport's totals.
    fn flush(&mut self) {
        let p = std::mem::take(&mut self.pending);
        let mut stats = lock(&self.shared.stats);
        for us in p.connect_us {
            let _ = stats.connect_us.record(u64::from(us).max(1));
        }
        for us in p.tls_us {
            let _ = stats.tls_handshake_us.record(u64::from(us).max(1));
        }
        stats.redirects_followed += p.followed;
        stats.redirects_not_followed += p.not_followed;
        stats.redirects_refused_insecure += p.refused_insecure;
        stats.redirect_loops += p.loops;
    }
}

#[derive(Clone, Copy)]
enum Timing {
    Connect,
    Tls,
}

fn tls_version_name(v: rustls::ProtocolVersion) -> &'static str {
    match v {
        rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
        rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
        rustls::ProtocolVersion::TLSv1_1 => "TLSv1.1",
        rustls::ProtocolVersion::TLSv1_0 => "TLSv1.0",
        _ => "unknown",
    }
}

/// The URI a `Location` names, resolved against the URI it answered (absolute, `//host/...`,
/// `/path` or a relative path). `None` when it is not a usable http(s) URI.
pub fn resolve(base: &Uri, location: &str) -> Option<Uri> {
    let location = location.trim();
    let scheme = base.scheme_str()?;
    let authority = base.authority()?.as_str();
    let text = if location.contains("://") {
        location.to_owned()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{authority}{location}")
    } else {
        let path = base.path();
        let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
        format!("{scheme}://{authority}{dir}{location}")
    };
    let uri: Uri = text.parse().ok()?;
    match uri.scheme_str() {
        Some("http") | Some("https") if uri.authority().is_some() => Some(uri),
        _ => None,
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
            "certificate not trusted (unknown issuer: self-signed or a private CA; \
             trust it with --ca-cert FILE, or skip checks with --insecure)"
                .into()
        }
        Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForName))
        | Some(rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext {
            ..
        })) => "certificate not valid for this host name (name mismatch: use the host name \
                the certificate is for)"
            .into(),
        Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        | Some(rustls::Error::InvalidCertificate(CertificateError::ExpiredContext { .. })) => {
            "certificate expired".into()
        }
        Some(rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired)) => {
            "the server requires a client certificate (--client-cert FILE --client-key FILE)"
                .into()
        }
        Some(rustls::Error::AlertReceived(
            alert @ (rustls::AlertDescription::BadCertificate
            | rustls::AlertDescription::UnknownCA
            | rustls::AlertDescription::CertificateUnknown
            | rustls::AlertDescription::DecryptError),
        )) => format!("the server refused the handshake ({alert:?}): a client certificate it does not accept?"),
        Some(other) => other.to_string(),
        None => describe_io(e),
    }
}

/// A read or write failure in words; a TLS alert after the handshake (TLS 1.3 servers refuse
/// a client certificate there) is told apart from the socket's own errors.
fn describe_read(e: &std::io::Error) -> String {
    if e.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
        return format!("TLS: {}", describe_tls(e));
    }
    match e.kind() {
        std::io::ErrorKind::UnexpectedEof => {
            "connection closed before the response was complete".into()
        }
        std::io::ErrorKind::BrokenPipe => "connection closed".into(),
        _ => describe_io(e),
    }
}
