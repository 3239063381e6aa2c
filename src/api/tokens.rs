//! The tokens Authenticate hands out (`--auth-token`). etcd's simple tokens: opaque random
//! strings this member recognises until they go unused for `--auth-token-ttl` (each use
//! extends the token, as etcd's TTL keeper does), member-local and in memory only, so a
//! restart or another member asks the client to authenticate again ("invalid auth token"),
//! which etcd's clients do by themselves. Or etcd's JWT tokens (`io::jwt`), which every
//! member holding the same keys accepts until they expire.

use crate::io::clock;
use crate::io::jwt::JwtKeys;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most tokens a member holds; past it the one closest to expiry is dropped, so no
/// client can grow the table without bound by authenticating in a loop.
pub const TOKENS_MAX: usize = 65_536;
/// Random letters in a token (etcd: 16), before `.` and a per-member counter.
const TOKEN_LETTERS: usize = 32;

/// Who a token speaks for: the user, and the auth revision it was issued at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub user: String,
    pub auth_revision: u64,
}

struct Entry {
    info: TokenInfo,
    expires_at_ms: u64,
}

/// This member's token provider.
#[derive(Clone)]
pub struct Tokens(Arc<Provider>);

enum Provider {
    Simple(SimpleTokens),
    Jwt(JwtKeys),
}

impl Tokens {
    pub fn simple(ttl: Duration) -> Tokens {
        Tokens(Arc::new(Provider::Simple(SimpleTokens::new(ttl))))
    }

    pub fn jwt(keys: JwtKeys) -> Tokens {
        Tokens(Arc::new(Provider::Jwt(keys)))
    }

    /// A new token for `info`; fails only for a JWT member holding no private key.
    pub fn issue(&self, info: TokenInfo) -> Result<String, String> {
        match &*self.0 {
            Provider::Simple(simple) => Ok(simple.issue(info)),
            Provider::Jwt(keys) => keys.sign(&info.user, info.auth_revision),
        }
    }

    /// Who `token` speaks for; None for a token that is unknown, forged or expired.
    pub fn lookup(&self, token: &str) -> Option<TokenInfo> {
        match &*self.0 {
            Provider::Simple(simple) => simple.lookup(token),
            Provider::Jwt(keys) => keys.verify(token).map(|(user, auth_revision)| TokenInfo {
                user,
                auth_revision,
            }),
        }
    }

    /// Forgets the simple tokens of `user` (deleted, or its password changed), as etcd
    /// does. A JWT cannot be recalled; the change moved the auth revision past it.
    pub fn invalidate_user(&self, user: &str) {
        if let Provider::Simple(simple) = &*self.0 {
            simple.invalidate_user(user);
        }
    }
}

struct SimpleTokens {
    ttl: Duration,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Entry>,
    issued: u64,
}

impl SimpleTokens {
    fn new(ttl: Duration) -> Self {
        SimpleTokens {
            ttl,
            state: Arc::default(),
        }
    }

    /// A new token for `info`.
    fn issue(&self, info: TokenInfo) -> String {
        let now_ms = clock::monotonic_ms();
        let mut state = self.state.lock().unwrap();
        state.issued += 1;
        let token = format!("{}.{}", random_letters(), state.issued);
        if state.tokens.len() >= TOKENS_MAX {
            state.tokens.retain(|_, entry| entry.expires_at_ms > now_ms);
        }
        if state.tokens.len() >= TOKENS_MAX {
            let soonest = state
                .tokens
                .iter()
                .min_by_key(|(_, entry)| entry.expires_at_ms)
                .map(|(token, _)| token.clone());
            if let Some(soonest) = soonest {
                state.tokens.remove(&soonest);
            }
        }
        let expires_at_ms = now_ms + self.ttl.as_millis() as u64;
        state.tokens.insert(
            token.clone(),
            Entry {
                info,
                expires_at_ms,
            },
        );
        token
    }

    /// Who `token` speaks for, extending it; None for a token this member never issued or
    /// that expired.
    fn lookup(&self, token: &str) -> Option<TokenInfo> {
        let now_ms = clock::monotonic_ms();
        let mut state = self.state.lock().unwrap();
        let entry = state.tokens.get_mut(token)?;
        if entry.expires_at_ms <= now_ms {
            state.tokens.remove(token);
            return None;
        }
        entry.expires_at_ms = now_ms + self.ttl.as_millis() as u64;
        Some(entry.info.clone())
    }

    fn invalidate_user(&self, user: &str) {
        let mut state = self.state.lock().unwrap();
        state.tokens.retain(|_, entry| entry.info.user != user);
    }
}

fn random_letters() -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    crate::io::runtime::random_bytes::<TOKEN_LETTERS>()
        .iter()
        // 256 = 4 × 52 + 48: the first 208 values map evenly; the rest are rare enough
        // (and still unpredictable) that the slight bias costs no real entropy.
        .map(|byte| LETTERS[*byte as usize % LETTERS.len()] as char)
        .collect()
}
