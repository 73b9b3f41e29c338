//! Keeping passwords out of everything the tool prints or writes. Server bodies may echo the
//! request, so every text taken from the network is redacted before it reaches a report.

use base64::Engine as _;

use crate::credentials::Credential;

pub const MASK: &str = "***";

/// A partial password at the end of a cut snippet is masked from this many characters on.
const MIN_PARTIAL: usize = 4;

/// Every form in which a password may come back: as written, JSON-escaped (as serde_json and
/// as .NET escape it), URL-encoded, HTML-escaped, base64 of `user:password` (HTTP Basic), and
/// with its whitespace collapsed as report snippets show bodies.
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
            forms.extend(forms_of(&c.username, &c.password));
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
        // A snippet cut in the middle of a password ends with its first characters.
        if let Some(body) = out.strip_suffix('…') {
            let cut = self
                .forms
                .iter()
                .filter_map(|form| partial_at_end(body, form))
                .max();
            if let Some(n) = cut {
                out = format!("{}{MASK}…", &body[..body.len() - n]);
            }
        }
        shorten_guids(&out)
    }
}

/// The forms of one password.
fn forms_of(username: &str, password: &str) -> Vec<String> {
    let json = serde_json::to_string(password).expect("strings serialize");
    let mut forms = vec![
        password.to_owned(),
        json[1..json.len() - 1].to_owned(),
        json_ascii_escaped(password, false),
        json_ascii_escaped(password, true),
        url_encode(password),
        url_encode(password).to_lowercase_hex(),
        url_encode(password).replace("%20", "+"),
        html_escape(password),
        collapse_whitespace(password),
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
        base64::engine::general_purpose::URL_SAFE.encode(format!("{username}:{password}")),
    ];
    forms.retain(|f| !f.is_empty());
    forms
}

/// The length in bytes of the longest end of `text` that starts `form` (at least
/// `MIN_PARTIAL` characters, and not the whole form, which `redact` masked already).
fn partial_at_end(text: &str, form: &str) -> Option<usize> {
    let mut best = None;
    for (i, _) in form.char_indices().skip(MIN_PARTIAL) {
        if text.ends_with(&form[..i]) {
            best = Some(i);
        }
    }
    best
}

trait LowerHex {
    fn to_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    /// `%2F` → `%2f`, the rest unchanged.
    fn to_lowercase_hex(&self) -> String {
        let mut out = String::new();
        let mut hex = 0;
        for c in self.chars() {
            if c == '%' {
                hex = 2;
                out.push(c);
            } else if hex > 0 {
                hex -= 1;
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

/// JSON escaping of everything but ASCII letters and digits as `\uXXXX` (how .NET's default
/// encoder writes `"`, `<`, `+`, `'` and non-ASCII).
fn json_ascii_escaped(text: &str, upper: bool) -> String {
    let mut out = String::new();
    for unit in text.encode_utf16() {
        let c = char::from_u32(u32::from(unit));
        if c.is_some_and(|c| c.is_ascii_alphanumeric() || c == ' ') {
            out.push(c.expect("checked"));
        } else if upper {
            out.push_str(&format!("\\u{unit:04X}"));
        } else {
            out.push_str(&format!("\\u{unit:04x}"));
        }
    }
    out
}

fn html_escape(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Runs of whitespace and control characters as one space, as `recorder::snippet` shows a body.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::new();
    let mut last_space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// Issued tokens are never shown whole: a GUID in a text keeps its first 8 hex digits.
pub fn shorten_guids(text: &str) -> String {
    let b = text.as_bytes();
    if b.len() < 36 {
        return text.to_owned();
    }
    let is_guid = |s: &[u8]| {
        s.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
    };
    let mut out = String::new();
    let mut i = 0;
    let mut copied = 0;
    while i + 36 <= b.len() {
        if is_guid(&b[i..i + 36]) {
            out.push_str(&text[copied..i + 8]);
            out.push('…');
            i += 36;
            copied = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&text[copied..]);
    out
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
    fn masks_the_other_forms_a_server_may_echo() {
        let c = Credential::new("bob", "a<b> & \"c\"\t\t+é");
        let r = Redactor::new([&c]);
        for text in [
            "a&lt;b&gt; &amp; &quot;c&quot;\t\t+é",
            "a<b> & \"c\" +é",
            "a\\u003Cb\\u003E \\u0026 \\u0022c\\u0022\\u0009\\u0009\\u002B\\u00E9",
            "a%3cb%3e%20%26%20%22c%22%09%09%2b%c3%a9",
        ] {
            assert_eq!(r.redact(&format!("[{text}]")), "[***]", "{text}");
        }
    }

    #[test]
    fn a_password_cut_at_the_end_of_a_snippet_is_masked() {
        let c = Credential::new("bob", "Zq7#longpassword");
        let r = Redactor::new([&c]);
        assert_eq!(r.redact("echo: Zq7#long…"), "echo: ***…");
        // A few characters alone are not taken for a password.
        assert_eq!(r.redact("echo: Zq7…"), "echo: Zq7…");
        assert_eq!(r.redact("echo: Zq7#long"), "echo: Zq7#long");
    }

    #[test]
    fn guids_keep_a_prefix_only() {
        assert_eq!(
            shorten_guids("token \"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\" twice 6F1C0C3E-0D1B-4A53-9A43-1F1F0B8B5B2C"),
            "token \"6f1c0c3e…\" twice 6F1C0C3E…"
        );
        assert_eq!(shorten_guids("short é"), "short é");
    }

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
