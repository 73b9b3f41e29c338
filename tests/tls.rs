//! TLS: verified by default, `--insecure`, `--ca-cert`, client certificates, the failures
//! told apart, the version and the connect/handshake times in the report.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{assert_counts_add_up, run, serve_raw, Fixture, Reply};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use sdload::app::{self, Ran};
use sdload::cli::RunArgs;
use sdload::mock_server::TlsIdentity;

/// A private CA that signs server and client certificates.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate and key (PEM) for `names`, for a server or a client.
    fn sign(&self, names: &[&str], client: bool) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.extended_key_usages = vec![if client {
            ExtendedKeyUsagePurpose::ClientAuth
        } else {
            ExtendedKeyUsagePurpose::ServerAuth
        }];
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn tls_fixture(identity: TlsIdentity) -> Fixture {
    let fx = Fixture::start(move |c| c.tls = Some(identity)).await;
    assert!(fx.server.url().starts_with("https://"));
    fx
}

fn tls_args(fx: &Fixture) -> RunArgs {
    RunArgs {
        duration: Some(Duration::from_millis(600)),
        concurrency: Some(2),
        ..fx.args()
    }
}

async fn try_run(args: &RunArgs) -> Result<Ran, app::Fail> {
    app::execute(args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_self_signed_server_without_flags_fails_fast_with_one_cause() {
    let fx = tls_fixture(TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap()).await;
    let start = Instant::now();
    let ran = run(&RunArgs {
        duration: Some(Duration::from_secs(10)),
        ..tls_args(&fx)
    })
    .await;
    let took = start.elapsed();
    let r = &ran.report;
    assert_eq!(ran.code, 3);
    assert!(
        took < Duration::from_secs(6),
        "gave up within seconds: {took:?}"
    );
    assert_counts_add_up(r);
    assert_eq!(r.counts.connect_error, r.counts.total);
    assert_eq!(r.problems.len(), 1, "one error kind: {:?}", r.problems);
    let example = &r.problems["connect_error"].example;
    assert!(example.contains("certificate not trusted"), "{example}");
    assert!(example.contains("--ca-cert"), "{example}");
    // Nothing was ever handed over: the server saw no login.
    assert_eq!(fx.server.stats().token_posts, 0);
    let tls = r.tls.as_ref().expect("an https target has a tls section");
    assert_eq!(tls.version, None);
    assert!(!tls.insecure);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_prints_the_cause_once_and_exits_3() {
    let fx = tls_fixture(TlsIdentity::self_signed(&["localhost", "127.0.0.1"]).unwrap()).await;
    let args: Vec<String> = [
        "run",
        fx.path("empty.toml").to_str().unwrap(),
        "--target",
        &fx.server.url(),
        "--credentials",
        fx.path("users.csv").to_str().unwrap(),
        "-c",
        "2",
        "-d",
        "10s",
        "--no-progress",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let start = Instant::now();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_sdload"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(start.elapsed() < Duration::from_secs(8));
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    assert_eq!(
        stderr.matches("certificate not trusted").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stdout.matches("certificate not trusted").count(),
        1,
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_mismatch_is_told_apart_from_an_untrusted_certificate() {
    // Trusted (its own certificate is the CA), but for another name.
    let identity = TlsIdentity::self_signed(&["sdload.invalid"]).unwrap();
    let fx = tls_fixture(identity.clone()).await;
    std::fs::write(fx.path("ca.pem"), &identity.cert_pem).unwrap();
    let ran = run(&RunArgs {
        ca_cert: Some(fx.path("ca.pem")),
        ..tls_args(&fx)
    })
    .await;
    assert_eq!(ran.code, 3);
    assert_eq!(ran.report.problems.len(), 1);
    let example = &ran.report.problems["connect_error"].example;
    assert!(
        example.contains("not valid for this host name"),
        "{example}"
    );
    assert!(!example.contains("not trusted"), "{example}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_works_and_is_recorded() {
    let fx = tls_fixture(TlsIdentity::self_signed(&["localhost"]).unwrap()).await;
    let ran = run(&RunArgs {
        insecure: true,
        ..tls_args(&fx)
    })
    .await;
    let r = &ran.report;
    assert_eq!(ran.code, 0);
    assert_counts_add_up(r);
    assert!(r.counts.token_issued > 0);
    assert_eq!(
        r.counts.token_issued + r.counts.expected_403,
        r.counts.total
    );
    let tls = r.tls.as_ref().unwrap();
    assert!(tls.insecure);
    assert_eq!(tls.version.as_deref(), Some("TLSv1.3"));
    assert!(r.warnings.iter().any(|w| w.contains("--insecure")));
    // One new connection per worker: one connect and one handshake each.
    assert_eq!(r.connections_opened, 2);
    assert_eq!(r.connect_ms.count, 2);
    assert_eq!(r.tls_handshake_ms.count, 2);
    assert!(r.tls_handshake_ms.min.unwrap() > 0.0);
    for key in ["connect_ms", "tls_handshake_ms"] {
        let h = sdload::report::decode_histogram(&r.histograms[key]).expect(key);
        assert_eq!(h.len(), 2, "{key}");
    }
    let json: serde_json::Value = serde_json::from_slice(&sdload::export::json::render(r)).unwrap();
    assert_eq!(json["tls"]["insecure"], true);
    assert_eq!(json["tls"]["version"], "TLSv1.3");
    assert!(json["connect_ms"]["p50"].is_number());
    assert!(json["tls_handshake_ms"]["p99"].is_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_ca_is_trusted_with_ca_cert() {
    let ca = Ca::new("sdload test CA");
    let (cert_pem, key_pem) = ca.sign(&["localhost", "127.0.0.1"], false);
    let fx = tls_fixture(TlsIdentity {
        cert_pem,
        key_pem,
        client_ca_pem: None,
    })
    .await;
    std::fs::write(fx.path("ca.pem"), &ca.pem).unwrap();
    let ran = run(&RunArgs {
        ca_cert: Some(fx.path("ca.pem")),
        ..tls_args(&fx)
    })
    .await;
    assert_eq!(ran.code, 0);
    assert_counts_add_up(&ran.report);
    assert!(ran.report.counts.token_issued > 0);
    let tls = ran.report.tls.as_ref().unwrap();
    assert!(!tls.insecure);
    assert!(tls.ca_cert.as_deref().unwrap().ends_with("ca.pem"));

    // A file with no certificate is bad input (exit 2), naming the flag and the file.
    std::fs::write(fx.path("empty.pem"), "not a certificate\n").unwrap();
    let Err(app::Fail(code, message)) = try_run(&RunArgs {
        ca_cert: Some(fx.path("empty.pem")),
        ..tls_args(&fx)
    })
    .await
    else {
        panic!("an empty CA file is refused")
    };
    assert_eq!(code, 2);
    assert!(
        message.contains("--ca-cert") && message.contains("empty.pem"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_certificates_for_servers_that_want_one() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let (cert_pem, key_pem) = server_ca.sign(&["localhost", "127.0.0.1"], false);
    let fx = tls_fixture(TlsIdentity {
        cert_pem,
        key_pem,
        client_ca_pem: Some(client_ca.pem.clone()),
    })
    .await;
    std::fs::write(fx.path("ca.pem"), &server_ca.pem).unwrap();
    let (client_cert, client_key) = client_ca.sign(&["sdload-client"], true);
    std::fs::write(fx.path("client.pem"), client_cert).unwrap();
    std::fs::write(fx.path("client.key"), client_key).unwrap();
    let args = RunArgs {
        ca_cert: Some(fx.path("ca.pem")),
        ..tls_args(&fx)
    };

    // Without one, nothing gets through (the server refuses the handshake).
    let ran = run(&args).await;
    assert_counts_add_up(&ran.report);
    assert_eq!(ran.report.counts.token_issued, 0);
    assert_eq!(fx.server.stats().token_posts, 0);
    let problems = format!("{:?}", ran.report.problems);
    assert!(
        problems.contains("requires a client certificate"),
        "{problems}"
    );

    let ran = run(&RunArgs {
        client_cert: Some(fx.path("client.pem")),
        client_key: Some(fx.path("client.key")),
        ..args
    })
    .await;
    assert_eq!(ran.code, 0);
    assert_counts_add_up(&ran.report);
    assert!(ran.report.counts.token_issued > 0);
    assert!(ran.report.tls.as_ref().unwrap().client_cert);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_to_http_redirect_is_refused() {
    // A raw TLS server answering 307 to a plain-http URL.
    let identity = TlsIdentity::self_signed(&["localhost"]).unwrap();
    let config = server_config(&identity);
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let posts = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (p, s) = (posts.clone(), seen.clone());
    let answer = Arc::new(move |_: &common::RawRequest| {
        Reply::Bytes(
            format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://{addr}/plain/token\r\nContent-Length: 0\r\n\r\n"
            )
            .into_bytes(),
        )
    });
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, answer, p, s) = (acceptor.clone(), answer.clone(), p.clone(), s.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(stream).await {
                    serve_raw(tls, answer, p, s).await;
                }
            });
        }
    });
    let fx = Fixture::start(|_| {}).await;
    let r = run(&RunArgs {
        target: Some(format!("https://{addr}/")),
        insecure: true,
        follow_redirects: true,
        requests: Some(10),
        ..tls_args(&fx)
    })
    .await
    .report;
    assert_counts_add_up(&r);
    assert_eq!(r.counts.other_status, 10);
    assert_eq!(r.redirects.refused_insecure, 10);
    assert_eq!(r.redirects.followed, 0);
    assert_eq!(posts.load(std::sync::atomic::Ordering::SeqCst), 10);
    assert!(
        r.warnings.iter().any(|w| w.contains("clear text")),
        "{:?}",
        r.warnings
    );
}

fn server_config(identity: &TlsIdentity) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(identity.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    Arc::new(config)
}
