//! The token parser on any body: never panics, and whatever it accepts is a JSON string that
//! serde_json reads and uuid parses to the same 16 bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(token) = sdload::token::parse(body) {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let text: String = serde_json::from_slice(body).expect("an accepted body is a JSON string");
        let uuid = uuid::Uuid::parse_str(&text).expect("an accepted body holds a GUID");
        assert_eq!(uuid.as_bytes(), token.as_bytes());
    }
});
