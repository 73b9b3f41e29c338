//! The target: an API root joined with the token path, and the addresses it resolves to.

use std::fmt;
use std::net::SocketAddr;

use hyper::header::HeaderValue;
use hyper::Uri;

/// The default token path under the API root (ServiceDesk 8.5).
pub const DEFAULT_TOKEN_PATH: &str = "api/authorization/token";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where the requests go, parsed once so that no worker parses a URL per request.
#[derive(Clone, Debug)]
pub struct Target {
    pub scheme: Scheme,
    /// Host as written (for SNI and for the messages); without IPv6 brackets.
    pub host: String,
    pub port: u16,
    /// The token endpoint's full URI (scheme, authority and path).
    pub token_uri: Uri,
    /// `Host` header value, as the URL's authority has it.
    pub host_header: HeaderValue,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("`{0}` is not a URL: {1}")]
    Malformed(String, String),
    #[error("`{0}` has no scheme: write http://{0} or https://{0}")]
    NoScheme(String),
    #[error("`{0}`: only http and https targets are supported")]
    Scheme(String),
    #[error("`{0}` has no host")]
    NoHost(String),
    #[error("`{0}`: the API root must not carry a query or fragment")]
    Query(String),
    /// The URL (shown with its user information masked) carries `user:password@`.
    #[error("`{0}`: the API root must not carry user:password@ (it would be sent as the Host header and shown in reports); give credentials with --credentials")]
    UserInfo(String),
}

impl Target {
    /// Joins the API root and the token path whether or not the root ends in `/` and whatever
    /// prefix it has: `http://h/SD.WebAPI` and `http://h/SD.WebAPI/` give the same endpoint.
    pub fn parse(root: &str, token_path: &str) -> Result<Target, TargetError> {
        let root = root.trim();
        if !root.contains("://") {
            return Err(TargetError::NoScheme(root.to_owned()));
        }
        if root.contains('?') || root.contains('#') {
            return Err(TargetError::Query(root.to_owned()));
        }
        if let Some(at) = userinfo_end(root) {
            let start = root.find("://").map(|i| i + 3).unwrap_or(0);
            return Err(TargetError::UserInfo(format!(
                "{}***@{}",
                &root[..start],
                &root[at + 1..]
            )));
        }
        let uri: Uri = root.parse().map_err(|e: hyper::http::uri::InvalidUri| {
            TargetError::Malformed(root.to_owned(), e.to_string())
        })?;
        let scheme = match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            _ => return Err(TargetError::Scheme(root.to_owned())),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| TargetError::NoHost(root.to_owned()))?
            .clone();
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if host.is_empty() {
            return Err(TargetError::NoHost(root.to_owned()));
        }
        let port = authority.port_u16().unwrap_or(match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        });
        let prefix = uri.path().trim_end_matches('/');
        let path = format!("{prefix}/{}", token_path.trim_start_matches('/'));
        let token_uri = Uri::builder()
            .scheme(uri.scheme_str().unwrap_or("http"))
            .authority(authority.as_str())
            .path_and_query(path.as_str())
            .build()
            .map_err(|e| TargetError::Malformed(root.to_owned(), e.to_string()))?;
        let host_header = HeaderValue::from_str(authority.as_str())
            .map_err(|e| TargetError::Malformed(root.to_owned(), e.to_string()))?;
        Ok(Target {
            scheme,
            host,
            port,
            token_uri,
            host_header,
        })
    }

    /// Resolves the host once, before the run: every worker connects to these addresses in order.
    pub async fn resolve(&self) -> std::io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .collect();
        if addrs.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the name resolved to no address",
            ));
        }
        Ok(addrs)
    }
}

/// The index of the `@` ending a URL's user information, if it has one.
fn userinfo_end(url: &str) -> Option<usize> {
    let start = url.find("://")? + 3;
    let end = url[start..]
        .find(['/', '?', '#'])
        .map(|i| start + i)
        .unwrap_or(url.len());
    url[start..end].rfind('@').map(|i| start + i)
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.token_uri)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(root: &str) -> String {
        Target::parse(root, DEFAULT_TOKEN_PATH)
            .unwrap()
            .token_uri
            .to_string()
    }

    #[test]
    fn joins_with_and_without_trailing_slash_and_prefix() {
        assert_eq!(
            url("http://h:8080"),
            "http://h:8080/api/authorization/token"
        );
        assert_eq!(
            url("http://h:8080/"),
            "http://h:8080/api/authorization/token"
        );
        assert_eq!(
            url("http://h/SD.WebAPI"),
            "http://h/SD.WebAPI/api/authorization/token"
        );
        assert_eq!(
            url("http://h/SD.WebAPI/"),
            "http://h/SD.WebAPI/api/authorization/token"
        );
        assert_eq!(
            Target::parse("http://h/x/", "/custom/token")
                .unwrap()
                .token_uri
                .to_string(),
            "http://h/x/custom/token"
        );
    }

    #[test]
    fn ports_hosts_and_schemes() {
        let t = Target::parse("https://sd.example.com/SD.WebAPI", DEFAULT_TOKEN_PATH).unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port),
            (Scheme::Https, "sd.example.com", 443)
        );
        let t = Target::parse("http://[::1]:9000/", DEFAULT_TOKEN_PATH).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.host_header.to_str().unwrap()),
            ("::1", 9000, "[::1]:9000")
        );
        assert_eq!(
            Target::parse("HTTP://h", DEFAULT_TOKEN_PATH).unwrap().port,
            80
        );
    }

    #[test]
    fn refuses_what_it_cannot_use() {
        assert_eq!(
            Target::parse("127.0.0.1:8080", DEFAULT_TOKEN_PATH).unwrap_err(),
            TargetError::NoScheme("127.0.0.1:8080".into())
        );
        assert!(matches!(
            Target::parse("ftp://h/", DEFAULT_TOKEN_PATH),
            Err(TargetError::Scheme(_))
        ));
        assert!(matches!(
            Target::parse("http://h/?a=1", DEFAULT_TOKEN_PATH),
            Err(TargetError::Query(_))
        ));
        assert!(matches!(
            Target::parse("http:// bad", DEFAULT_TOKEN_PATH),
            Err(TargetError::Malformed(..))
        ));
        // User information would be sent as the Host header and shown in reports.
        let err = Target::parse(
            "https://svc:S3cret@sd.example.com/SD.WebAPI/",
            DEFAULT_TOKEN_PATH,
        )
        .unwrap_err();
        assert_eq!(
            err,
            TargetError::UserInfo("https://***@sd.example.com/SD.WebAPI/".into())
        );
        assert!(!err.to_string().contains("S3cret"));
        // An @ in the path is no user information.
        assert!(Target::parse("http://h/a@b/", DEFAULT_TOKEN_PATH).is_ok());
    }
}
