//! Reading a token out of a 200 response body: the hot path the benches cover.
//!
//! A load generator parses one body per request, so this must cost far less than the request
//! itself: no allocation, no serde, no UTF-8 pass. Two paths share the work. The fast one checks
//! the two usual shapes (`"GUID"` and `"{GUID}"`) at fixed offsets and decodes the digits on the
//! way. Whatever it does not accept goes to `parse_slow`, the readable grammar and the only place
//! an error is chosen: a rejected body costs a little more, and gets exactly one precise reason.

use std::fmt;

/// A ServiceDesk token: a GUID, kept as its 16 bytes (cheap to copy, compare and hash).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Token([u8; 16]);

impl Token {
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Token(bytes)
    }
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
    /// The all-zero GUID of the API documentation's sample response: a server that hands it to
    /// everyone is broken, so the report counts it apart.
    pub fn is_nil(&self) -> bool {
        self.0 == [0; 16]
    }
    /// The first 8 hex digits and an ellipsis: enough to tell tokens apart in a report, not
    /// enough to use one (a token is a bearer credential).
    pub fn prefix(&self) -> TokenPrefix {
        TokenPrefix([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
}

/// The canonical lower-case hyphenated form, as the `Authentication` header wants it.
impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&uuid::Uuid::from_bytes(self.0).hyphenated(), f)
    }
}

/// Only the prefix: `{:?}` ends up in logs and panic messages, where a whole token must not.
impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({})", self.prefix())
    }
}

/// What [`Token::prefix`] returns: displays as `6f1c0c3e…`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenPrefix([u8; 4]);

impl fmt::Display for TokenPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d] = self.0;
        write!(f, "{a:02x}{b:02x}{c:02x}{d:02x}…")
    }
}

/// Why a body is not a token. Each kind is counted apart, so that a report can tell a server
/// answering an HTML error page from one answering a JSON object or a truncated body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TokenError {
    #[error("empty body")]
    Empty,
    #[error("HTML page instead of a JSON string")]
    Html,
    #[error("JSON object instead of a JSON string")]
    JsonObject,
    #[error("not a JSON string")]
    NotJsonString,
    #[error("string is not a GUID: wrong length")]
    WrongLength,
    #[error("non-hex digit in the GUID")]
    NonHexDigit,
    #[error("GUID hyphens not in 8-4-4-4-12 places")]
    MisplacedHyphen,
    #[error("GUID brace on one side only")]
    UnbalancedBrace,
    #[error("escape sequence in the string")]
    EscapeInString,
    #[error("unterminated string")]
    Unterminated,
    #[error("data after the closing quote")]
    TrailingData,
}

impl TokenError {
    /// Every kind, in a stable order, so a report can list the kinds that did not occur too.
    pub const ALL: [TokenError; 11] = [
        TokenError::Empty,
        TokenError::Html,
        TokenError::JsonObject,
        TokenError::NotJsonString,
        TokenError::WrongLength,
        TokenError::NonHexDigit,
        TokenError::MisplacedHyphen,
        TokenError::UnbalancedBrace,
        TokenError::EscapeInString,
        TokenError::Unterminated,
        TokenError::TrailingData,
    ];

    /// Stable snake_case name used as a report key: renaming one breaks users' baselines.
    pub fn name(&self) -> &'static str {
        match self {
            TokenError::Empty => "empty",
            TokenError::Html => "html",
            TokenError::JsonObject => "json_object",
            TokenError::NotJsonString => "not_json_string",
            TokenError::WrongLength => "wrong_length",
            TokenError::NonHexDigit => "non_hex_digit",
            TokenError::MisplacedHyphen => "misplaced_hyphen",
            TokenError::UnbalancedBrace => "unbalanced_brace",
            TokenError::EscapeInString => "escape_in_string",
            TokenError::Unterminated => "unterminated",
            TokenError::TrailingData => "trailing_data",
        }
    }
}

/// Reads a 200 body: a JSON string holding a GUID, hyphenated or braced, any case, with JSON
/// whitespace around it and an optional UTF-8 BOM first. Escapes are refused rather than decoded:
/// a GUID never needs one, and a server that sends one is worth a look.
pub fn parse(body: &[u8]) -> Result<Token, TokenError> {
    let s = skip_whitespace(body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body));
    match parse_fast(s) {
        Some(token) => Ok(token),
        None => parse_slow(s),
    }
}

/// Accepts only valid bodies, never chooses an error: `parse_slow` must agree on every body it
/// accepts (a unit test checks this), so it cannot make `parse` wrong, only faster.
#[inline]
fn parse_fast(s: &[u8]) -> Option<Token> {
    let (braced, s) = match s {
        [b'"', b'{', s @ ..] => (true, s),
        [b'"', s @ ..] => (false, s),
        _ => return None,
    };
    let (guid, s) = s.split_first_chunk::<36>()?;
    let rest = match (braced, s) {
        (true, [b'}', b'"', rest @ ..]) | (false, [b'"', rest @ ..]) => rest,
        _ => return None,
    };
    if !rest.iter().all(|&b| is_whitespace(b)) {
        return None;
    }
    decode(guid).map(Token)
}

/// The grammar, written for clarity rather than speed: it only runs on bodies the fast path did
/// not accept, and its checks run outside in, so the error names the first thing wrong.
#[cold]
fn parse_slow(s: &[u8]) -> Result<Token, TokenError> {
    let (&first, rest) = s.split_first().ok_or(TokenError::Empty)?;
    match first {
        b'"' => {}
        b'<' => return Err(TokenError::Html),
        b'{' => return Err(TokenError::JsonObject),
        _ => return Err(TokenError::NotJsonString),
    }
    let end = rest
        .iter()
        .position(|&b| b == b'"' || b == b'\\')
        .ok_or(TokenError::Unterminated)?;
    if rest[end] == b'\\' {
        return Err(TokenError::EscapeInString);
    }
    let (content, after) = (&rest[..end], &rest[end + 1..]);
    if !after.iter().all(|&b| is_whitespace(b)) {
        return Err(TokenError::TrailingData);
    }
    let guid = match content {
        [b'{', inner @ .., b'}'] => inner,
        [b'{', ..] | [.., b'}'] => return Err(TokenError::UnbalancedBrace),
        _ => content,
    };
    let guid: &[u8; 36] = guid.try_into().map_err(|_| TokenError::WrongLength)?;
    decode(guid).map(Token).ok_or_else(|| first_bad_digit(guid))
}

/// Decodes the 8-4-4-4-12 text. Plain branch-free arithmetic over the 32 digits rather than a
/// lookup table: the compiler turns these loops into a few SIMD instructions (SSE2, so any
/// x86-64), which measured about twice as fast as two table lookups per byte, and the loops stay
/// correct where it does not.
#[inline(always)]
fn decode(g: &[u8; 36]) -> Option<[u8; 16]> {
    let mut digits = [0u8; 32];
    digits[..8].copy_from_slice(&g[..8]);
    digits[8..12].copy_from_slice(&g[9..13]);
    digits[12..16].copy_from_slice(&g[14..18]);
    digits[16..20].copy_from_slice(&g[19..23]);
    digits[20..].copy_from_slice(&g[24..]);
    let mut bad = false;
    for d in &mut digits {
        let decimal = d.wrapping_sub(b'0');
        let letter = (*d | 0x20).wrapping_sub(b'a'); // `| 0x20` folds A-F onto a-f
        bad |= (decimal >= 10) & (letter >= 6);
        *d = if decimal < 10 {
            decimal
        } else {
            letter.wrapping_add(10)
        }; // junk if bad
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    let hyphens = [g[8], g[13], g[18], g[23]] == [b'-'; 4];
    (hyphens && !bad).then_some(out)
}

/// Names the first wrong character of a GUID that `decode` refused (so there is one).
fn first_bad_digit(g: &[u8; 36]) -> TokenError {
    g.iter()
        .enumerate()
        .find_map(|(i, &b)| match (matches!(i, 8 | 13 | 18 | 23), b) {
            (true, b'-') => None,
            (true, _) | (false, b'-') => Some(TokenError::MisplacedHyphen),
            (false, b) if !b.is_ascii_hexdigit() => Some(TokenError::NonHexDigit),
            _ => None,
        })
        .unwrap_or(TokenError::NonHexDigit)
}

/// JSON whitespace only: a form feed or a non-breaking space before the string is an error in
/// JSON, and so here.
fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn skip_whitespace(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_whitespace(b)).unwrap_or(s.len());
    &s[start..]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn body(bytes: [u8; 16], upper: bool, braced: bool, trailing: &str) -> String {
        let g = uuid::Uuid::from_bytes(bytes).hyphenated().to_string();
        let g = if upper { g.to_uppercase() } else { g };
        let g = if braced { format!("{{{g}}}") } else { g };
        format!("\"{g}\"{trailing}")
    }

    proptest! {
        /// The fast path must take every usual shape (or `parse` is correct but slow) and agree
        /// with the grammar on them.
        #[test]
        fn fast_path_takes_usual_shapes(
            bytes: [u8; 16], upper: bool, braced: bool, trailing in "[ \t\r\n]{0,3}"
        ) {
            let s = body(bytes, upper, braced, &trailing);
            prop_assert_eq!(parse_fast(s.as_bytes()), Some(Token(bytes)));
            prop_assert_eq!(parse_slow(s.as_bytes()), Ok(Token(bytes)));
        }

        /// The fast path never accepts what the grammar refuses, nor reads another value.
        #[test]
        fn fast_path_never_overrides_the_grammar(
            bytes: [u8; 16], braced: bool, at: prop::sample::Index, byte: u8
        ) {
            let mut s = body(bytes, false, braced, "\r\n").into_bytes();
            let i = at.index(s.len());
            s[i] = byte;
            if let Some(token) = parse_fast(&s) {
                prop_assert_eq!(parse_slow(&s), Ok(token));
            }
        }
    }

    /// Every byte value at every place, against uuid's own parser.
    #[test]
    fn decode_agrees_with_uuid_on_every_one_byte_change() {
        for sample in [
            *b"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c",
            *b"AbCdEf09-8765-4321-FEDC-ba0123456789",
        ] {
            for at in 0..36 {
                for b in 0..=255 {
                    let mut g = sample;
                    g[at] = b;
                    let want = uuid::Uuid::try_parse_ascii(&g).ok().map(|u| *u.as_bytes());
                    assert_eq!(decode(&g), want, "{:?}", String::from_utf8_lossy(&g));
                }
            }
        }
    }
}
