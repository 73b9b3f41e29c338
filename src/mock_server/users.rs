//! Accounts: generated users, the password check and the lockout state.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::distr::Alphanumeric;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::User;

/// Generates `count` users named `{prefix}0001`, ... with random 16-character passwords.
pub fn generate_users(prefix: &str, count: usize) -> Vec<User> {
    generate_users_seeded(prefix, count, rand::rng().random())
}

/// `generate_users` with reproducible passwords: the same seed gives the same list.
pub fn generate_users_seeded(prefix: &str, count: usize, seed: u64) -> Vec<User> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (1..=count)
        .map(|i| {
            let password: String = (&mut rng)
                .sample_iter(Alphanumeric)
                .take(16)
                .map(char::from)
                .collect();
            User::new(format!("{prefix}{i:04}"), password)
        })
        .collect()
}

/// Failed logins in a row, and the end of the current lock.
#[derive(Debug, Default)]
struct LockState {
    failures: u32,
    locked_until: Option<Instant>,
}

struct Account {
    password: String,
    lock: Mutex<LockState>,
}

/// The result of one login attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    Refused,
    /// Refused because the account is locked (whatever the password).
    LockedOut,
}

/// The user table. Each account holds its own lockout state, so logins of different users never
/// wait on one another.
pub(crate) struct Accounts {
    by_name: HashMap<String, Account>,
}

impl Accounts {
    pub fn new(users: &[User]) -> Self {
        let by_name = users
            .iter()
            .map(|u| {
                (
                    u.username.clone(),
                    Account {
                        password: u.password.clone(),
                        lock: Mutex::default(),
                    },
                )
            })
            .collect();
        Accounts { by_name }
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Checks one login. With `lockout = Some((after, for))`, `after` failures in a row lock an
    /// existing account for `for`; a success resets the count. Unknown names keep no state.
    pub fn check(
        &self,
        username: &str,
        password: &str,
        lockout: Option<(u32, Duration)>,
        now: Instant,
    ) -> Verdict {
        let Some(account) = self.by_name.get(username) else {
            return Verdict::Refused;
        };
        let right = !password.is_empty() && same_bytes(password, &account.password);
        let Some((after, lock_for)) = lockout else {
            return if right {
                Verdict::Accepted
            } else {
                Verdict::Refused
            };
        };
        let mut state = account.lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(until) = state.locked_until {
            if now < until {
                return Verdict::LockedOut;
            }
            *state = LockState::default();
        }
        if right {
            state.failures = 0;
            Verdict::Accepted
        } else {
            state.failures += 1;
            if state.failures >= after {
                *state = LockState {
                    failures: 0,
                    locked_until: Some(now + lock_for),
                };
            }
            Verdict::Refused
        }
    }
}

/// Compares without stopping at the first difference (no timing hint about the password).
fn same_bytes(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Spends the CPU of a real password check: PBKDF2-HMAC-SHA256, salted with the user name.
pub(crate) fn hash_cost(username: &str, password: &str, iterations: u32) {
    let mut key = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password.as_bytes(),
        username.as_bytes(),
        iterations,
        &mut key,
    );
    std::hint::black_box(key);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_users_are_named_and_seeded() {
        let a = generate_users_seeded("user", 3, 7);
        let b = generate_users_seeded("user", 3, 7);
        assert_eq!(a, b);
        assert_eq!(a[0].username, "user0001");
        assert_eq!(a[2].username, "user0003");
        assert_eq!(a[0].password.len(), 16);
        assert_ne!(a[0].password, a[1].password);
        assert_ne!(generate_users("u", 1), generate_users("u", 1));
    }

    #[test]
    fn checks_passwords_exactly() {
        let accounts = Accounts::new(&[User::new("alice", "s3cret"), User::new("nopw", "")]);
        let now = Instant::now();
        assert_eq!(
            accounts.check("alice", "s3cret", None, now),
            Verdict::Accepted
        );
        assert_eq!(
            accounts.check("alice", "s3cret ", None, now),
            Verdict::Refused
        );
        assert_eq!(
            accounts.check("Alice", "s3cret", None, now),
            Verdict::Refused
        );
        assert_eq!(accounts.check("bob", "s3cret", None, now), Verdict::Refused);
        assert_eq!(accounts.check("nopw", "", None, now), Verdict::Refused);
    }

    #[test]
    fn lockout_after_failures_in_a_row_until_it_expires() {
        let accounts = Accounts::new(&[User::new("alice", "pw")]);
        let lock = Some((3, Duration::from_secs(60)));
        let t0 = Instant::now();
        // A success resets the count.
        for _ in 0..2 {
            assert_eq!(accounts.check("alice", "x", lock, t0), Verdict::Refused);
        }
        assert_eq!(accounts.check("alice", "pw", lock, t0), Verdict::Accepted);
        for _ in 0..3 {
            assert_eq!(accounts.check("alice", "x", lock, t0), Verdict::Refused);
        }
        assert_eq!(accounts.check("alice", "pw", lock, t0), Verdict::LockedOut);
        let later = t0 + Duration::from_secs(61);
        assert_eq!(
            accounts.check("alice", "pw", lock, later),
            Verdict::Accepted
        );
        // Unknown users never lock anything.
        for _ in 0..5 {
            assert_eq!(accounts.check("mallory", "x", lock, t0), Verdict::Refused);
        }
    }
}
