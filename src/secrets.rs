//! Keeping passwords out of everything the tool prints or writes. Server bodies may echo the
//! request, so every text taken from the network is redacted before it reaches a report.

use base64::Engine as _;

use crate::credentials::Credential;

pub const MASK: &str = "***";

/// Every form in which a password may come back: as written, JSON-escaped, URL-encoded, and
/// base64 of `user:password` (HTTP Basic).
pub struct Redactor {
    forms: Vec<String>,
}

impl Redactor {
    pub fn new<'a>(credentials: impl IntoIterator<Item = &'a Credential>) -> Redactor {
        let mut forms = Vec::new();
        for c in credentials {
            if c.password.is_empty() {
                continue;
            }
            let json = serde_json::to_string(&c.password).expect("strings serialize");
            forms.push(c.password.clone());
            forms.push(json[1..json.len() - 1].to_owned());
            forms.push(url_encode(&c.password));
            forms.push(
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{}", c.username, c.password)),
            );
        }
        // Longest first, so that a form containing another is masked whole.
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        Redactor { forms }
    }

    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for form in &self.forms {
            if out.contains(form.as_str()) {
                out = out.replace(form.as_str(), MASK);
            }
        }
        out
    }
}

/// Percent-encoding of everything but RFC 3986's unreserved characters.
pub fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_form() {
        let c = Credential::new("EXAMPLE\\bob", "p\"w é/1");
        let r = Redactor::new([&c]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("EXAMPLE\\bob:p\"w é/1");
        for text in ["p\"w é/1", "p\\\"w é/1", "p%22w%20%C3%A9%2F1", b64.as_str()] {
            assert_eq!(
                r.redact(&format!("echo: {text} end")),
                "echo: *** end",
                "{text}"
            );
        }
    }
}
