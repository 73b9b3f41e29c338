//! Issued tokens: a bounded set that forgets the oldest first, so a long load test cannot grow
//! the server's memory without bound. Large stores are split into shards (by the token's
//! random low bits) so concurrent logins rarely wait on the same lock.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

use uuid::Uuid;

/// Stores at least this large are split into `SHARDS` shards (each forgets its own oldest).
const SHARDED_FROM: usize = 64 * 1024;
const SHARDS: usize = 16;

#[derive(Debug)]
pub(crate) struct TokenStore {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

#[derive(Debug, Default)]
struct Shard {
    live: HashSet<u128>,
    order: VecDeque<u128>,
}

impl TokenStore {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let shards = if capacity >= SHARDED_FROM { SHARDS } else { 1 };
        TokenStore {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            per_shard: capacity.div_ceil(shards),
        }
    }

    fn shard(&self, token: u128) -> &Mutex<Shard> {
        // v4 GUIDs are random in their low bits; `len` is 1 or a power of two.
        &self.shards[(token as usize) & (self.shards.len() - 1)]
    }

    pub fn insert(&self, token: Uuid) {
        let token = token.as_u128();
        let mut shard = self.shard(token).lock().unwrap_or_else(|e| e.into_inner());
        if !shard.live.insert(token) {
            return;
        }
        shard.order.push_back(token);
        while shard.order.len() > self.per_shard {
            if let Some(oldest) = shard.order.pop_front() {
                shard.live.remove(&oldest);
            }
        }
    }

    pub fn contains(&self, token: &Uuid) -> bool {
        let token = token.as_u128();
        self.shard(token)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live
            .contains(&token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_the_oldest_beyond_capacity() {
        let store = TokenStore::new(2);
        let t: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
        store.insert(t[0]);
        store.insert(t[1]);
        assert!(store.contains(&t[0]) && store.contains(&t[1]));
        store.insert(t[2]);
        assert!(!store.contains(&t[0]));
        assert!(store.contains(&t[1]) && store.contains(&t[2]));
        assert!(!store.contains(&Uuid::new_v4()));
    }

    #[test]
    fn large_stores_are_sharded_and_bounded() {
        let store = TokenStore::new(SHARDED_FROM);
        assert_eq!(store.shards.len(), SHARDS);
        let tokens: Vec<Uuid> = (0..SHARDED_FROM + 4096).map(|_| Uuid::new_v4()).collect();
        for t in &tokens {
            store.insert(*t);
        }
        let held: usize = store
            .shards
            .iter()
            .map(|s| s.lock().unwrap().live.len())
            .sum();
        assert!(held <= SHARDED_FROM, "{held}");
        assert!(store.contains(tokens.last().unwrap()));
    }
}
