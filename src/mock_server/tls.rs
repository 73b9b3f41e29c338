//! TLS for the mock server: a certificate and key (PEM), self-signed by rcgen or read from
//! files, and optionally a CA whose client certificates the server requires.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// What the server presents. `Debug` never shows the key.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate chain, PEM (leaf first).
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
    /// When set, clients must present a certificate signed by one of these (PEM).
    pub client_ca_pem: Option<String>,
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("cert_pem", &format!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"<redacted>")
            .field("client_ca", &self.client_ca_pem.is_some())
            .finish()
    }
}

impl TlsIdentity {
    /// A new self-signed certificate for `names` (DNS names or IP addresses).
    pub fn self_signed(names: &[&str]) -> Result<TlsIdentity, String> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let certified = rcgen::generate_simple_self_signed(names)
            .map_err(|e| format!("cannot make a self-signed certificate: {e}"))?;
        Ok(TlsIdentity {
            cert_pem: certified.cert.pem(),
            key_pem: certified.signing_key.serialize_pem(),
            client_ca_pem: None,
        })
    }

    /// Reads a certificate chain and its key from PEM files.
    pub fn from_files(cert: &Path, key: &Path) -> Result<TlsIdentity, String> {
        let read = |flag: &str, p: &Path| {
            std::fs::read_to_string(p)
                .map_err(|e| format!("{flag} {}: cannot read: {e}", p.display()))
        };
        Ok(TlsIdentity {
            cert_pem: read("--tls-cert", cert)?,
            key_pem: read("--tls-key", key)?,
            client_ca_pem: None,
        })
    }

    /// The rustls server configuration (HTTP/1.1 only); errors name the switch.
    pub(crate) fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, String> {
        let certs = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "--tls-cert: not a valid PEM certificate file".to_owned())?;
        if certs.is_empty() {
            return Err("--tls-cert: no certificate in the file".into());
        }
        let key = PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes())
            .map_err(|_| "--tls-key: no usable PEM private key in the file".to_owned())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &self.client_ca_pem {
            None => builder.with_no_client_auth(),
            Some(pem) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                    let cert = cert.map_err(|_| "--tls-client-ca: not a valid PEM file")?;
                    roots
                        .add(cert)
                        .map_err(|e| format!("--tls-client-ca: not a usable CA: {e}"))?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| format!("--tls-client-ca: {e}"))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut config = builder
            .with_single_cert(certs, key)
            .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}
