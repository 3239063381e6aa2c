//! etcd's simple tokens (`--auth-token simple`): opaque random strings this member hands out
//! on Authenticate and recognises until they go unused for `--auth-token-ttl` (each use
//! extends the token, as etcd's TTL keeper does). They are member-local and kept in memory
//! only, so a restart or another member asks the client to authenticate again ("invalid
//! auth token"), which etcd's clients do by themselves.

use crate::io::clock;
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

#[derive(Clone)]
pub struct SimpleTokens {
    ttl: Duration,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    tokens: HashMap<String, Entry>,
    issued: u64,
}

impl SimpleTokens {
    pub fn new(ttl: Duration) -> Self {
        SimpleTokens {
            ttl,
            state: Arc::default(),
        }
    }

    /// A new token for `info`.
    pub fn issue(&self, info: TokenInfo) -> String {
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
    pub fn lookup(&self, token: &str) -> Option<TokenInfo> {
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

    /// Forgets every token of `user` (deleted, or its password changed), as etcd does.
    pub fn invalidate_user(&self, user: &str) {
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
