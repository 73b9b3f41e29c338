//! The HTTP client, behind one small interface: a worker owns one `Connection` and sends the
//! body bytes it prepared once. Nothing outside this module knows which client sits here.
//!
//! It is hyper's connection-level HTTP/1.1 client rather than reqwest: a load generator wants
//! one explicit connection per worker (exact connection counts, no pool, no silent retries),
//! and peers-measured.md shows reqwest costing about twice the CPU per request.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE, HOST, LOCATION};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::target::{Scheme, Target};

/// At most this much of a body is kept for classification; the rest is read and dropped so
/// that the connection stays usable. A token is 38 bytes; 64 KiB covers any error page.
const MAX_KEPT_BODY: usize = 64 * 1024;

/// At most this many redirects are followed for one login (with `follow_redirects`).
pub const MAX_REDIRECTS: usize = 5;

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
        Ok(Transport {
            shared: Arc::new(Shared {
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
            sender: None,
            hop: None,
            busy: false,
            body: Vec::new(),
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

/// An origin a redirect went to, with its own connection (the target's is reused when the
/// redirect stays on the target's origin).
struct Hop {
    scheme: Scheme,
    authority: String,
    sender: SendRequest<Full<Bytes>>,
}

/// One worker's connection. Reconnects when the server closed it, never resends a request
/// that reached the wire: only a request hyper hands back unsent goes out on a new connection.
pub struct Connection {
    shared: Arc<Shared>,
    sender: Option<SendRequest<Full<Bytes>>>,
    /// The connection to another origin that a followed redirect went to.
    hop: Option<Hop>,
    /// Set while a request is in flight: if the caller dropped the send (timeout, end of run),
    /// the connection is in an unknown state and the next send starts a new one.
    busy: bool,
    body: Vec<u8>,
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
            self.sender = None;
            self.hop = None;
        }
        let mut uri = self.shared.target.token_uri.clone();
        let mut via = Via::Target;
        let mut hops = 0;
        loop {
            let response = self.exchange(&via, &uri, body).await?;
            let status = response.status().as_u16();
            let location = if response.status().is_redirection() {
                response
                    .headers()
                    .get(LOCATION)
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            } else {
                None
            };
            self.read_body(response).await?;
            let next = match (&location, self.shared.follow_redirects) {
                (Some(location), true) => match status {
                    307 | 308 if hops == MAX_REDIRECTS => {
                        self.pending.loops += 1;
                        None
                    }
                    307 | 308 => match resolve(&uri, location) {
                        Some(next)
                            if uri.scheme_str() == Some("https")
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
                    body: &self.body,
                    location,
                });
            };
            hops += 1;
            self.pending.followed += 1;
            via = self.via(&next);
            uri = next;
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

    /// One request on the connection `via` names, connecting when it has none. A request that
    /// hyper hands back unsent (the connection closed before it was written) goes out once on
    /// a new connection: the server never saw it, so that is not a retry.
    async fn exchange(
        &mut self,
        via: &Via,
        uri: &Uri,
        body: &Bytes,
    ) -> Result<hyper::Response<hyper::body::Incoming>, Failure> {
        let mut request = Request::new(Full::new(body.clone()));
        *request.method_mut() = Method::POST;
        // Origin form (`POST /SD.WebAPI/api/authorization/token`) with the Host header, as
        // browsers and every HTTP/1.1 client send it; `uri` stays absolute for redirects.
        *request.uri_mut() = Uri::from(
            uri.path_and_query()
                .cloned()
                .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/")),
        );
        let host = match via {
            Via::Target => self.shared.target.host_header.clone(),
            Via::Other { authority, .. } => HeaderValue::from_str(authority)
                .map_err(|_| Failure::Io(format!("redirect to an invalid host `{authority}`")))?,
        };
        let headers = request.headers_mut();
        headers.insert(HOST, host);
        headers.insert(CONTENT_TYPE, APPLICATION_JSON);
        headers.insert(ACCEPT, APPLICATION_JSON);

        let mut fresh = false;
        loop {
            let sender = self.ready_sender(via, &mut fresh).await?;
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(response),
                Err(mut e) => {
                    self.drop_sender(via);
                    match e.take_message() {
                        Some(unsent) if !fresh => request = unsent,
                        _ => return Err(Failure::Io(describe_hyper(e.error()))),
                    }
                }
            }
        }
    }

    fn drop_sender(&mut self, via: &Via) {
        match via {
            Via::Target => self.sender = None,
            Via::Other { .. } => self.hop = None,
        }
    }

    /// The sender for `via`, ready for a request; `fresh` is set when it had to connect.
    async fn ready_sender(
        &mut self,
        via: &Via,
        fresh: &mut bool,
    ) -> Result<&mut SendRequest<Full<Bytes>>, Failure> {
        match via {
            Via::Target => {
                if !usable(self.sender.as_mut()).await {
                    // Nothing was sent on the old connection: connecting anew is not a retry.
                    self.sender = None;
                    let shared = self.shared.clone();
                    // Boxed: connecting is rare, and its TLS state would otherwise make every
                    // send's future kilobytes larger, copied on every request.
                    let mut sender =
                        Box::pin(self.connect(&shared.addrs, true, shared.server_name.clone()))
                            .await?;
                    sender
                        .ready()
                        .await
                        .map_err(|e| Failure::Io(describe_hyper(&e)))?;
                    self.sender = Some(sender);
                    *fresh = true;
                }
                Ok(self.sender.as_mut().expect("connected above"))
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
                if !same || !usable(self.hop.as_mut().map(|h| &mut h.sender)).await {
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
                    // Boxed: connecting is rare, and its TLS state would otherwise make every
                    // send's future kilobytes larger, copied on every request.
                    let mut sender = Box::pin(self.connect(&addrs, false, name)).await?;
                    sender
                        .ready()
                        .await
                        .map_err(|e| Failure::Io(describe_hyper(&e)))?;
                    self.hop = Some(Hop {
                        scheme: *scheme,
                        authority: authority.clone(),
                        sender,
                    });
                    *fresh = true;
                }
                Ok(&mut self.hop.as_mut().expect("connected above").sender)
            }
        }
    }

    async fn read_body(
        &mut self,
        response: hyper::Response<hyper::body::Incoming>,
    ) -> Result<(), Failure> {
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
                    self.hop = None;
                    return Err(Failure::Io(describe_hyper(&e)));
                }
            }
        }
        Ok(())
    }

    /// Connects to the first address that answers; `target` says whether these are the
    /// target's addresses (the one that worked is tried first next time).
    async fn connect(
        &mut self,
        addrs: &[SocketAddr],
        target: bool,
        tls_name: Option<rustls::pki_types::ServerName<'static>>,
    ) -> Result<SendRequest<Full<Bytes>>, Failure> {
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
            return match (&shared.tls, tls_name) {
                (_, None) => handshake(stream).await,
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
                            handshake(tls).await
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

/// True when the connection is open and ready for a request.
async fn usable(sender: Option<&mut SendRequest<Full<Bytes>>>) -> bool {
    match sender {
        Some(s) if !s.is_closed() => s.ready().await.is_ok(),
        _ => false,
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

async fn handshake<T>(io: T) -> Result<SendRequest<Full<Bytes>>, Failure>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // A login answer is a few hundred bytes: a fixed 4 KiB read buffer (hyper starts at 8 KiB
    // and may grow it) keeps 10,000 connections' memory small; longer heads still parse, in
    // more reads.
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .read_buf_exact_size(Some(4096))
        .handshake(TokioIo::new(io))
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

fn describe_hyper(e: &hyper::Error) -> String {
    // A TLS alert after the handshake (TLS 1.3 servers refuse a client certificate there).
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return format!("TLS: {}", describe_tls(io));
            }
        }
        source = s.source();
    }
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
