//! Outcomes (DESIGN.md section 4): every request sent ends in exactly one. A pure
//! classification with no networking, so that it is unit-tested on plain values.

use crate::token::{self, TokenError};

/// The kind of credential a request carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CredKind {
    Good,
    /// An existing user name (a decoy, or a good user with `--lockout-test`) with a wrong password.
    WrongPassword,
    UnknownUser,
    /// Empty user name and password.
    Empty,
}

impl CredKind {
    pub const ALL: [CredKind; 4] = [
        CredKind::Good,
        CredKind::WrongPassword,
        CredKind::UnknownUser,
        CredKind::Empty,
    ];
    pub const BAD: [CredKind; 3] = [
        CredKind::WrongPassword,
        CredKind::UnknownUser,
        CredKind::Empty,
    ];

    pub fn is_bad(self) -> bool {
        self != CredKind::Good
    }
    pub fn name(self) -> &'static str {
        match self {
            CredKind::Good => "good",
            CredKind::WrongPassword => "wrong_password",
            CredKind::UnknownUser => "unknown_user",
            CredKind::Empty => "empty",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    TokenIssued,
    Expected403,
    False403,
    BadAccepted,
    InvalidToken,
    OtherStatus,
    Timeout,
    ConnectError,
    IoError,
    Unfinished,
}

impl Outcome {
    pub const COUNT: usize = 10;
    pub const ALL: [Outcome; Outcome::COUNT] = [
        Outcome::TokenIssued,
        Outcome::Expected403,
        Outcome::False403,
        Outcome::BadAccepted,
        Outcome::InvalidToken,
        Outcome::OtherStatus,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::IoError,
        Outcome::Unfinished,
    ];

    /// The contract's snake_case name (JSON keys, threshold metrics).
    pub fn name(self) -> &'static str {
        match self {
            Outcome::TokenIssued => "token_issued",
            Outcome::Expected403 => "expected_403",
            Outcome::False403 => "false_403",
            Outcome::BadAccepted => "bad_accepted",
            Outcome::InvalidToken => "invalid_token",
            Outcome::OtherStatus => "other_status",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::IoError => "io_error",
            Outcome::Unfinished => "unfinished",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The `error` rate counts every outcome but the two a healthy server gives.
    pub fn is_error(self) -> bool {
        !matches!(self, Outcome::TokenIssued | Outcome::Expected403)
    }
}

/// What a response was classified as, with the details the recorder counts apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classified {
    pub outcome: Outcome,
    /// A token that parsed as the all-zero GUID (counted in `nil_token` beside the outcome).
    pub nil_token: bool,
    /// Why a 200 to a good credential was not a token.
    pub token_error: Option<TokenError>,
}

/// Classifies a complete response. `reject_status` is the status the server is expected to
/// answer to bad credentials (403 unless the scenario says otherwise).
pub fn classify(kind: CredKind, status: u16, body: &[u8], reject_status: u16) -> Classified {
    let plain = |outcome| Classified {
        outcome,
        nil_token: false,
        token_error: None,
    };
    match (status, kind.is_bad()) {
        (200, false) => match token::parse(body) {
            Ok(t) => Classified {
                outcome: Outcome::TokenIssued,
                nil_token: t.is_nil(),
                token_error: None,
            },
            Err(e) => Classified {
                outcome: Outcome::InvalidToken,
                nil_token: false,
                token_error: Some(e),
            },
        },
        (200, true) => plain(Outcome::BadAccepted),
        (s, false) if s == reject_status => plain(Outcome::False403),
        (s, true) if s == reject_status => plain(Outcome::Expected403),
        _ => plain(Outcome::OtherStatus),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &[u8] = b"\"6f1c0c3e-0d1b-4a53-9a43-1f1f0b8b5b2c\"";
    const NIL: &[u8] = b"\"00000000-0000-0000-0000-000000000000\"";

    #[test]
    fn every_cell_of_the_outcome_table() {
        let o = |kind, status, body: &[u8]| classify(kind, status, body, 403).outcome;
        assert_eq!(o(CredKind::Good, 200, TOKEN), Outcome::TokenIssued);
        assert_eq!(
            o(CredKind::Good, 200, b"<html>ok</html>"),
            Outcome::InvalidToken
        );
        assert_eq!(o(CredKind::Good, 403, b""), Outcome::False403);
        assert_eq!(
            o(CredKind::UnknownUser, 403, b"<html>"),
            Outcome::Expected403
        );
        assert_eq!(o(CredKind::Empty, 200, TOKEN), Outcome::BadAccepted);
        assert_eq!(
            o(CredKind::WrongPassword, 200, b"garbage"),
            Outcome::BadAccepted
        );
        for status in [401, 429, 500, 503, 302, 404] {
            assert_eq!(
                o(CredKind::Good, status, b""),
                Outcome::OtherStatus,
                "{status}"
            );
            assert_eq!(
                o(CredKind::UnknownUser, status, b""),
                Outcome::OtherStatus,
                "{status}"
            );
        }
    }

    #[test]
    fn a_configured_401_rejection_is_expected_and_403_then_is_other() {
        assert_eq!(
            classify(CredKind::UnknownUser, 401, b"", 401).outcome,
            Outcome::Expected403
        );
        assert_eq!(
            classify(CredKind::Good, 401, b"", 401).outcome,
            Outcome::False403
        );
        assert_eq!(
            classify(CredKind::UnknownUser, 403, b"", 401).outcome,
            Outcome::OtherStatus
        );
    }

    #[test]
    fn nil_tokens_and_token_errors_are_kept() {
        let c = classify(CredKind::Good, 200, NIL, 403);
        assert_eq!((c.outcome, c.nil_token), (Outcome::TokenIssued, true));
        let c = classify(CredKind::Good, 200, b"{\"token\":\"x\"}", 403);
        assert_eq!(c.outcome, Outcome::InvalidToken);
        assert_eq!(c.token_error, Some(TokenError::JsonObject));
    }

    #[test]
    fn only_token_issued_and_expected_403_are_not_errors() {
        let ok: Vec<_> = Outcome::ALL.into_iter().filter(|o| !o.is_error()).collect();
        assert_eq!(ok, vec![Outcome::TokenIssued, Outcome::Expected403]);
    }
}
