//! `token::parse` on every accepted and rejected shape of a 200 body, and against the obvious
//! reference (serde_json then uuid) on generated bodies.

use proptest::prelude::*;
use sdload::token::{self, Token, TokenError};

const SAMPLE: &str = "6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c";
const SAMPLE_BYTES: [u8; 16] = [
    0x6f, 0x1c, 0x0c, 0x3e, 0x0d, 0x1b, 0x4a, 0x53, 0x9a, 0x43, 0x1f, 0x1f, 0x0b, 0x8b, 0x5b, 0x2c,
];
const BOM: &[u8] = b"\xEF\xBB\xBF";

fn ok(body: &[u8]) -> Token {
    token::parse(body).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(body)))
}

#[test]
fn accepts_every_documented_form() {
    let bodies: &[&[u8]] = &[
        b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
        b"\"6F1C0C3E-0D1B-4A53-9A43-1F1F0B8B5B2C\"",
        b"\"6f1C0c3E-0D1b-4A53-9a43-1F1f0B8b5B2c\"",
        b"\"{6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c}\"",
        b"\"{6F1C0C3E-0D1B-4A53-9A43-1F1F0B8B5B2C}\"",
        b" \t\r\n\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\" \t\r\n",
        b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"\r\n",
        b"\"{6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c}\"\n",
        b"\xEF\xBB\xBF\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
        b"\xEF\xBB\xBF \r\n\"{6F1C0C3E-0D1B-4A53-9A43-1F1F0B8B5B2C}\"\r\n",
    ];
    for body in bodies {
        let t = ok(body);
        assert_eq!(
            t.as_bytes(),
            &SAMPLE_BYTES,
            "{:?}",
            String::from_utf8_lossy(body)
        );
        assert_eq!(t, Token::from_bytes(SAMPLE_BYTES));
        assert_eq!(t.to_string(), SAMPLE);
        assert!(!t.is_nil());
    }
}

#[test]
fn nil_guid_parses_and_is_nil() {
    let t = ok(b"\"00000000-0000-0000-0000-000000000000\"");
    assert!(t.is_nil());
    assert_eq!(t.as_bytes(), &[0; 16]);
    assert_eq!(t.to_string(), "00000000-0000-0000-0000-000000000000");
    let mut one = [0; 16];
    one[15] = 1;
    assert!(!Token::from_bytes(one).is_nil());
}

#[test]
fn prefix_and_debug_never_show_the_whole_token() {
    let t = ok(format!("\"{SAMPLE}\"").as_bytes());
    assert_eq!(t.prefix().to_string(), "6f1c0c3e…");
    let debug = format!("{t:?}");
    assert_eq!(debug, "Token(6f1c0c3e…)");
    assert!(!debug.contains("0d1b"));
    let upper = ok(b"\"ABCDEF01-0D1B-4A53-9A43-1F1F0B8B5B2C\"");
    assert_eq!(upper.prefix().to_string(), "abcdef01…");
}

#[test]
fn rejects_each_malformed_body_with_its_own_kind() {
    use TokenError::*;
    let cases: &[(&[u8], TokenError)] = &[
        (b"", Empty),
        (b" \t\r\n", Empty),
        (b"\xEF\xBB\xBF", Empty),
        (b"\xEF\xBB\xBF\r\n", Empty),
        // Not a JSON string at all.
        (b"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c", NotJsonString),
        (b"'6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c'", NotJsonString),
        (b"[\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"]", NotJsonString),
        (b"null", NotJsonString),
        (b"42", NotJsonString),
        (b"true", NotJsonString),
        (
            b"\x0C\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
            NotJsonString,
        ), // form feed is not JSON whitespace
        (
            b"\xC2\xA0\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
            NotJsonString,
        ), // nor is NBSP
        (
            b"\xEF\xBB\xBF\xEF\xBB\xBF\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
            NotJsonString,
        ),
        (
            b" \xEF\xBB\xBF\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
            NotJsonString,
        ), // BOM only first
        (
            b"<!DOCTYPE html><html><body>403 - Forbidden</body></html>",
            Html,
        ),
        (b"\r\n<html>", Html),
        (b"\xEF\xBB\xBF<html>", Html),
        (
            b"{\"token\":\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"}",
            JsonObject,
        ),
        (b" {}", JsonObject),
        (b"{6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c}", JsonObject), // braced GUID, no quotes
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2\"", WrongLength),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2cc\"", WrongLength),
        (b"\"{6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2}\"", WrongLength),
        (b"\"6f1c0c3e0d1b4a539a431f1f0b8b5b2c\"", WrongLength),
        (
            b"\"urn:uuid:6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
            WrongLength,
        ),
        (b"\" 6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"", WrongLength),
        (b"\"\"", WrongLength),
        (b"\"{}\"", WrongLength),
        (b"\"6f1c0c3g-0d1b-4a53-9a43-1f1f0b8b5b2c\"", NonHexDigit),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2\xC3\"", NonHexDigit),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2 \"", NonHexDigit),
        (b"\"6f1c0c3e0-d1b-4a53-9a43-1f1f0b8b5b2c\"", MisplacedHyphen),
        (b"\"6f1c0c3e-0d1b-4a53-9a431-f1f0b8b5b2c\"", MisplacedHyphen),
        (b"\"6f1c0c3e00d1b04a5309a4301f1f0b8b5b2c\"", MisplacedHyphen),
        (b"\"6f1c-0c3e-0d1b-4a53-9a431f1f0b8b5b2c\"", MisplacedHyphen),
        (
            b"\"{6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
            UnbalancedBrace,
        ),
        (
            b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c}\"",
            UnbalancedBrace,
        ),
        (b"\"{\"", UnbalancedBrace),
        (
            b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2\\u0063\"",
            EscapeInString,
        ),
        (
            b"\"\\\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\\\"\"",
            EscapeInString,
        ),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\\", EscapeInString),
        (b"\"", Unterminated),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c", Unterminated),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\r\n", Unterminated),
        (b"\"{6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c}", Unterminated),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"x", TrailingData),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"\"", TrailingData),
        (b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\",", TrailingData),
        (
            b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\" \x00",
            TrailingData,
        ),
        (
            b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\" \"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"",
            TrailingData,
        ),
        // Outside in: the string's frame is checked before its content.
        (b"\"short\" x", TrailingData),
        (b"\"short\\n\"", EscapeInString),
    ];
    for &(body, want) in cases {
        assert_eq!(
            token::parse(body),
            Err(want),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
    // Every kind is reachable from some body: none is dead weight in the report.
    for kind in TokenError::ALL {
        assert!(
            cases.iter().any(|&(_, k)| k == kind),
            "no case for {kind:?}"
        );
    }
}

#[test]
fn error_names_are_stable_snake_case_and_distinct() {
    let names: Vec<&str> = TokenError::ALL.iter().map(|e| e.name()).collect();
    assert_eq!(
        names,
        [
            "empty",
            "html",
            "json_object",
            "not_json_string",
            "wrong_length",
            "non_hex_digit",
            "misplaced_hyphen",
            "unbalanced_brace",
            "escape_in_string",
            "unterminated",
            "trailing_data",
        ]
    );
    let mut phrases: Vec<String> = TokenError::ALL.iter().map(|e| e.to_string()).collect();
    phrases.sort();
    phrases.dedup();
    assert_eq!(phrases.len(), TokenError::ALL.len(), "{phrases:?}");
}

/// The obvious way, restricted to the forms the endpoint is documented to send (uuid also reads
/// the 32-digit and `urn:uuid:` forms). serde_json knows nothing of a BOM, so it is stripped first.
fn reference(body: &[u8]) -> Option<[u8; 16]> {
    let body = body.strip_prefix(BOM).unwrap_or(body);
    let s: String = serde_json::from_slice(body).ok()?;
    if s.len() != 36 && s.len() != 38 {
        return None;
    }
    uuid::Uuid::parse_str(&s).ok().map(|u| *u.as_bytes())
}

const WS: &str = "[ \t\r\n]{0,4}";

/// A valid body in any accepted shape, with the 16 bytes it holds.
fn valid_body() -> impl Strategy<Value = (Vec<u8>, [u8; 16])> {
    (
        any::<[u8; 16]>(),
        0..3u8,
        any::<u64>(),
        any::<bool>(),
        any::<bool>(),
        WS,
        WS,
    )
        .prop_map(|(bytes, case, mask, braced, bom, before, after)| {
            let guid: String = uuid::Uuid::from_bytes(bytes)
                .hyphenated()
                .to_string()
                .chars()
                .enumerate()
                .map(|(i, c)| match case {
                    0 => c,
                    1 => c.to_ascii_uppercase(),
                    _ if mask >> (i % 64) & 1 == 1 => c.to_ascii_uppercase(),
                    _ => c,
                })
                .collect();
            let guid = if braced { format!("{{{guid}}}") } else { guid };
            let mut body = if bom { BOM.to_vec() } else { Vec::new() };
            body.extend_from_slice(format!("{before}\"{guid}\"{after}").as_bytes());
            (body, bytes)
        })
}

proptest! {
    #[test]
    fn every_accepted_shape_round_trips((body, bytes) in valid_body()) {
        let t = token::parse(&body);
        prop_assert_eq!(t, Ok(Token::from_bytes(bytes)));
        let t = t.unwrap();
        prop_assert_eq!(t.as_bytes(), &bytes);
        prop_assert_eq!(t.to_string(), uuid::Uuid::from_bytes(bytes).hyphenated().to_string());
        prop_assert_eq!(reference(&body), Some(bytes));
    }

    /// Any bytes: no panic, and never a token the reference would not read the same way.
    /// The second strategy keeps to the characters that matter, to reach the deeper checks.
    #[test]
    fn arbitrary_bytes_never_panic(
        body in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..64),
            "\"?[0-9a-fA-F{}\"\\\\ -]{0,42}\"?[ x]?".prop_map(String::into_bytes),
        ]
    ) {
        if let Ok(t) = token::parse(&body) {
            prop_assert_eq!(reference(&body), Some(*t.as_bytes()));
        }
    }

    /// One byte changed anywhere in a valid body: accepted exactly when the reference accepts,
    /// and then with the same value.
    #[test]
    fn agrees_with_reference_on_one_byte_mutations(
        (body, _) in valid_body(), at: prop::sample::Index, byte: u8
    ) {
        let mut body = body;
        let i = at.index(body.len());
        body[i] = byte;
        let ours = token::parse(&body).map(|t| *t.as_bytes()).ok();
        prop_assert_eq!(ours, reference(&body), "{:?}", String::from_utf8_lossy(&body));
    }

    /// A body cut short (a connection that closed early) is never a token.
    #[test]
    fn truncated_body_is_rejected((body, _) in valid_body(), at: prop::sample::Index) {
        let end = body.iter().rposition(|&b| b == b'"').unwrap();
        let cut = &body[..at.index(end + 1)];
        let want = match cut.iter().position(|&b| b == b'"') {
            Some(_) => TokenError::Unterminated,
            // Part of a BOM is not a BOM, and not JSON.
            None if !cut.is_empty() && cut.len() < BOM.len() && BOM.starts_with(cut) => {
                TokenError::NotJsonString
            }
            None => TokenError::Empty,
        };
        prop_assert_eq!(token::parse(cut), Err(want), "{:?}", String::from_utf8_lossy(cut));
    }
}
