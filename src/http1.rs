//! HTTP/1.1 response framing for the load path: where a response's head ends, what its status
//! is, and where its body ends (RFC 9112 section 6.3). Pure functions over bytes, so that every
//! framing rule is unit-tested without a socket; `transport` does the reading.
//!
//! This sits under hyper rather than on it because hyper's client dispatcher (a second task per
//! connection, a channel per request, a `HeaderMap` and `Bytes` per response) measured as a
//! third of sdload's CPU per request against wrk at 64 connections. The parsing itself is
//! httparse, hyper's own parser.

use std::ops::Range;

/// Response heads longer than this are refused: a login answer's head is a few hundred bytes.
pub const MAX_HEAD: usize = 64 * 1024;

/// Headers beyond this many make the head invalid (hyper's default limit too).
const MAX_HEADERS: usize = 100;

/// How the body of a response is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: 204, 304 (and `Content-Length: 0`).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Everything until the server closes the connection.
    UntilClose,
}

/// A parsed response head.
#[derive(Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes the head took, including its blank line (and any 1xx heads before it).
    pub len: usize,
    pub framing: Framing,
    /// Whether the connection can carry another request after this response.
    pub keep_alive: bool,
    /// Where the `Location` header's value lies in the parsed bytes (3xx only).
    pub location: Option<Range<usize>>,
}

/// Why a response is not valid HTTP/1.x.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Invalid {
    #[error("the response is not valid HTTP ({0})")]
    Syntax(&'static str),
    #[error("the response is not valid HTTP (bad Content-Length)")]
    ContentLength,
    #[error("the response is not valid HTTP (101 Switching Protocols to a login)")]
    Upgrade,
    #[error("the response is not valid HTTP (head over 64 KiB)")]
    HeadTooLarge,
    #[error("the response is not valid HTTP (bad chunked encoding)")]
    Chunked,
}

fn syntax(e: httparse::Error) -> Invalid {
    Invalid::Syntax(match e {
        httparse::Error::HeaderName => "bad header name",
        httparse::Error::HeaderValue => "bad header value",
        httparse::Error::NewLine => "bad line ending",
        httparse::Error::Status => "bad status code",
        httparse::Error::Token => "bad token",
        httparse::Error::TooManyHeaders => "over 100 headers",
        httparse::Error::Version => "not an HTTP/1.x status line",
    })
}

/// Parses the response head at the start of `buf`: `Ok(None)` while it is incomplete. Interim
/// 1xx responses (100 Continue, 103 Early Hints) are skipped.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, Invalid> {
    let mut offset = 0;
    loop {
        // Uninitialized: zeroing 100 headers took about a third of a token answer's parse.
        let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
        let mut response = httparse::Response::new(&mut []);
        let len = match httparse::ParserConfig::default()
            .parse_response_with_uninit_headers(&mut response, &buf[offset..], &mut headers)
            .map_err(syntax)?
        {
            httparse::Status::Partial if buf.len() >= MAX_HEAD => {
                return Err(Invalid::HeadTooLarge)
            }
            httparse::Status::Partial => return Ok(None),
            httparse::Status::Complete(len) => len,
        };
        let status = response.code.expect("complete head has a status");
        if status == 101 {
            return Err(Invalid::Upgrade);
        }
        if (100..200).contains(&status) {
            offset += len;
            continue;
        }
        let http11 = response.version == Some(1);
        let mut keep_alive = http11;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut encoded = false;
        let mut location = None;
        for h in response.headers.iter() {
            let name = h.name;
            if name.eq_ignore_ascii_case("content-length") {
                let n = parse_length(h.value)?;
                if length.is_some_and(|l| l != n) {
                    return Err(Invalid::ContentLength);
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                encoded = true;
                // Chunked must be the last coding; anything else is delimited by the close.
                chunked = last_token(h.value).eq_ignore_ascii_case(b"chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                for token in h.value.split(|&b| b == b',') {
                    let token = token.trim_ascii();
                    if token.eq_ignore_ascii_case(b"close") {
                        keep_alive = false;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") && !http11 {
                        keep_alive = true;
                    }
                }
            } else if name.eq_ignore_ascii_case("location") && (300..400).contains(&status) {
                let start = h.value.as_ptr() as usize - buf.as_ptr() as usize;
                location = Some(start..start + h.value.len());
            }
        }
        let framing = if status == 204 || status == 304 {
            Framing::Empty
        } else if encoded {
            // Transfer-Encoding wins over Content-Length (RFC 9112 6.3, rule 3).
            if chunked {
                Framing::Chunked
            } else {
                Framing::UntilClose
            }
        } else {
            match length {
                Some(0) => Framing::Empty,
                Some(n) => Framing::Length(n),
                None => Framing::UntilClose,
            }
        };
        if framing == Framing::UntilClose {
            keep_alive = false;
        }
        return Ok(Some(Head {
            status,
            len: offset + len,
            framing,
            keep_alive,
            location,
        }));
    }
}

fn parse_length(value: &[u8]) -> Result<u64, Invalid> {
    let value = value.trim_ascii();
    if value.is_empty() || value.len() > 19 || !value.iter().all(u8::is_ascii_digit) {
        return Err(Invalid::ContentLength);
    }
    Ok(value
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0')))
}

fn last_token(value: &[u8]) -> &[u8] {
    value
        .rsplit(|&b| b == b',')
        .next()
        .unwrap_or_default()
        .trim_ascii()
}

/// Decodes a chunked body fed in pieces as they arrive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Chunked {
    state: ChunkState,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer lines until a blank one.
    Trailers,
    Done,
}

impl Chunked {
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Consumes what it can of `input`, handing body data to `data`; returns how many bytes it
    /// consumed. Fewer than `input.len()` means it needs more bytes (or is done).
    pub fn feed(&mut self, input: &[u8], mut data: impl FnMut(&[u8])) -> Result<usize, Invalid> {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.state {
                ChunkState::Done => return Ok(at),
                ChunkState::Size => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((used, size))) => {
                        at += used;
                        self.state = if size == 0 {
                            ChunkState::Trailers
                        } else {
                            ChunkState::Data(size)
                        };
                    }
                    Ok(httparse::Status::Partial) => return Ok(at),
                    Err(_) => return Err(Invalid::Chunked),
                },
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(at);
                    }
                    let n = (rest.len() as u64).min(left) as usize;
                    data(&rest[..n]);
                    at += n;
                    self.state = if left == n as u64 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - n as u64)
                    };
                }
                ChunkState::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        at += 2;
                        self.state = ChunkState::Size;
                    }
                    [b'\n', ..] => {
                        at += 1;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok(at),
                    _ => return Err(Invalid::Chunked),
                },
                ChunkState::Trailers => match rest.iter().position(|&b| b == b'\n') {
                    None if rest.len() >= MAX_HEAD => return Err(Invalid::Chunked),
                    None => return Ok(at),
                    Some(end) => {
                        let line = &rest[..end];
                        at += end + 1;
                        if line.is_empty() || line == b"\r" {
                            self.state = ChunkState::Done;
                        }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn a_token_answer_is_length_delimited_and_keeps_the_connection() {
        let text =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 38\r\n\r\n";
        let h = head(&format!("{text}\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\""));
        assert_eq!(h.status, 200);
        assert_eq!(h.len, text.len());
        assert_eq!(h.framing, Framing::Length(38));
        assert!(h.keep_alive);
        assert_eq!(h.location, None);
    }

    #[test]
    fn an_incomplete_head_asks_for_more_at_every_cut() {
        let text = "HTTP/1.1 403 Forbidden\r\nContent-Length: 5\r\n\r\n";
        for cut in 0..text.len() {
            assert_eq!(
                parse_head(&text.as_bytes()[..cut]),
                Ok(None),
                "cut at {cut}"
            );
        }
        assert_eq!(head(text).framing, Framing::Length(5));
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let f = |h: &str| head(&format!("HTTP/1.1 {h}\r\n\r\n")).framing;
        assert_eq!(f("204 No Content\r\nContent-Length: 10"), Framing::Empty);
        assert_eq!(f("304 Not Modified"), Framing::Empty);
        assert_eq!(f("200 OK\r\nContent-Length: 0"), Framing::Empty);
        assert_eq!(f("200 OK\r\ncontent-length:  7 "), Framing::Length(7));
        assert_eq!(f("200 OK\r\nTransfer-Encoding: chunked"), Framing::Chunked);
        assert_eq!(
            f("200 OK\r\nTransfer-Encoding: gzip, Chunked"),
            Framing::Chunked
        );
        assert_eq!(
            f("200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"),
            Framing::Chunked
        );
        assert_eq!(f("200 OK\r\nTransfer-Encoding: gzip"), Framing::UntilClose);
        assert_eq!(f("200 OK"), Framing::UntilClose);
        assert_eq!(
            f("200 OK\r\nContent-Length: 4\r\nContent-Length: 4"),
            Framing::Length(4)
        );
    }

    #[test]
    fn keep_alive_by_version_and_connection_header() {
        let k = |h: &str| head(&format!("{h}\r\nContent-Length: 1\r\n\r\n")).keep_alive;
        assert!(k("HTTP/1.1 200 OK"));
        assert!(!k("HTTP/1.1 200 OK\r\nConnection: close"));
        assert!(!k("HTTP/1.1 200 OK\r\nConnection: Upgrade, Close"));
        assert!(!k("HTTP/1.0 200 OK"));
        assert!(k("HTTP/1.0 200 OK\r\nConnection: keep-alive"));
        // A body delimited by the close leaves nothing to keep.
        assert!(!head("HTTP/1.1 200 OK\r\n\r\n").keep_alive);
    }

    #[test]
    fn interim_responses_are_skipped() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
                    HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        let h = head(text);
        assert_eq!((h.status, h.len), (200, text.len()));
        assert_eq!(
            parse_head(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 2"),
            Ok(None)
        );
        assert_eq!(
            parse_head(b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
            Err(Invalid::Upgrade)
        );
    }

    #[test]
    fn location_is_kept_for_redirects_only() {
        let text =
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: /v2/token\r\nContent-Length: 0\r\n\r\n";
        let h = head(text);
        assert_eq!(&text[h.location.unwrap()], "/v2/token");
        assert_eq!(
            head("HTTP/1.1 200 OK\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n").location,
            None
        );
    }

    #[test]
    fn invalid_heads_are_refused_with_a_reason() {
        let bad = |t: &[u8]| parse_head(t).unwrap_err();
        assert_eq!(
            bad(b"<html>hello</html>\r\n\r\n"),
            Invalid::Syntax("not an HTTP/1.x status line")
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"),
            Invalid::ContentLength
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n"),
            Invalid::ContentLength
        );
        assert_eq!(
            bad(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\n"),
            Invalid::ContentLength
        );
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..101 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(bad(&many), Invalid::Syntax("over 100 headers"));
        let mut long = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        long.resize(MAX_HEAD, b'a');
        assert_eq!(bad(&long), Invalid::HeadTooLarge);
        assert!(Invalid::ContentLength
            .to_string()
            .contains("not valid HTTP"));
    }

    fn decode(pieces: &[&[u8]]) -> Result<(Vec<u8>, bool, usize), Invalid> {
        let mut c = Chunked::default();
        let mut body = Vec::new();
        let mut pending = Vec::new();
        let mut left = 0;
        for p in pieces {
            pending.extend_from_slice(p);
            let used = c.feed(&pending, |d| body.extend_from_slice(d))?;
            pending.drain(..used);
            left = pending.len();
        }
        Ok((body, c.is_done(), left))
    }

    const CHUNKED: &[u8] =
        b"4\r\nWiki\r\n6;ext=1\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\nX-Trailer: 1\r\n\r\n";

    #[test]
    fn chunked_bodies_decode_whole_and_in_every_split() {
        let whole = decode(&[CHUNKED]).unwrap();
        assert_eq!(whole, (b"Wikipedia in \r\n\r\nchunks.".to_vec(), true, 0));
        for cut in 0..CHUNKED.len() {
            let (a, b) = CHUNKED.split_at(cut);
            assert_eq!(decode(&[a, b]).unwrap(), whole, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = CHUNKED.chunks(1).collect();
        assert_eq!(decode(&bytes).unwrap(), whole);
    }

    #[test]
    fn chunked_stops_at_its_end_and_leaves_what_follows() {
        let mut text = b"2\r\nok\r\n0\r\n\r\n".to_vec();
        text.extend_from_slice(b"HTTP/1.1");
        assert_eq!(decode(&[&text]).unwrap(), (b"ok".to_vec(), true, 8));
    }

    #[test]
    fn bad_chunked_encoding_is_refused() {
        assert_eq!(decode(&[b"zz\r\n"]), Err(Invalid::Chunked));
        assert_eq!(decode(&[b"2\r\nokX\r\n"]), Err(Invalid::Chunked));
        assert_eq!(decode(&[b"2\r\nok\r"]).unwrap(), (b"ok".to_vec(), false, 1));
    }
}
