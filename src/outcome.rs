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

    /// Outcomes that point to a problem with the server under test (shown highlighted).
    pub fn is_problem(self) -> bool {
        self.is_error()
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
