//! Response framing on any bytes: a head is found, asked more of, or refused, and a chunked
//! body is decoded or refused, never a panic; fed in two pieces, the chunked decoder gives the
//! same body as fed whole.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sdload::http1::{parse_head, Chunked};

fn decode(pieces: &[&[u8]]) -> Option<(Vec<u8>, bool)> {
    let mut c = Chunked::default();
    let mut body = Vec::new();
    let mut pending = Vec::new();
    for p in pieces {
        pending.extend_from_slice(p);
        let used = c.feed(&pending, |d| body.extend_from_slice(d)).ok()?;
        assert!(used <= pending.len());
        pending.drain(..used);
    }
    Some((body, c.is_done()))
}

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = parse_head(data) {
        assert!(head.len <= data.len());
        if let Some(r) = head.location {
            assert!(r.end <= head.len);
        }
    }
    let whole = decode(&[data]);
    let (a, b) = data.split_at(data.len() / 2);
    if let (Some(whole), Some(split)) = (&whole, decode(&[a, b])) {
        assert_eq!(whole, &split);
    }
});
