//! Failed sign-in throttling: at most `attempts` failures per user name and `4 × attempts` per
//! source address (IPv6 by /64, since one host holds a whole /64) within a sliding window; past
//! that, every attempt under that name or from that source is refused, right password or not,
//! until old failures leave the window. The key count is bounded. Counters are per process: with
//! several replicas each enforces its own limit (Redis-backed counters are for OPS-2).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use parking_lot::Mutex;

/// Most keys tracked before stale ones are dropped.
const MAX_KEYS: usize = 100_000;

/// Sliding-window failure counters.
pub struct Throttle {
    attempts: u32,
    window_us: i64,
    map: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Throttle {
    /// `attempts` failures per `window_us` per user name (four times that per source).
    pub fn new(attempts: u32, window_us: i64) -> Self {
        Self {
            attempts,
            window_us,
            map: Mutex::default(),
        }
    }

    fn keys(&self, username: &str, source: Option<IpAddr>) -> Vec<(String, usize)> {
        let mut v = vec![(
            format!("u:{}", username.to_lowercase()),
            self.attempts as usize,
        )];
        if let Some(ip) = source {
            let k = match ip {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => {
                    let s = a.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            };
            v.push((format!("s:{k}"), self.attempts as usize * 4));
        }
        v
    }

    /// Whether attempts under this name or from this source are refused now.
    pub fn blocked(&self, username: &str, source: Option<IpAddr>, now_us: i64) -> bool {
        let mut map = self.map.lock();
        self.keys(username, source).iter().any(|(k, limit)| {
            map.get_mut(k).is_some_and(|q| {
                while q.front().is_some_and(|t| now_us - t >= self.window_us) {
                    q.pop_front();
                }
                q.len() >= *limit
            })
        })
    }

    /// Counts a failure.
    pub fn fail(&self, username: &str, source: Option<IpAddr>, now_us: i64) {
        let mut map = self.map.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, q| q.back().is_some_and(|t| now_us - t < self.window_us));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        for (k, limit) in self.keys(username, source) {
            let q = map.entry(k).or_default();
            q.push_back(now_us);
            while q.len() > limit {
                q.pop_front();
            }
        }
    }

    /// Forgets a user name's failures after a successful sign-in (the source's stay).
    pub fn succeed(&self, username: &str) {
        self.map
            .lock()
            .remove(&format!("u:{}", username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_attempts_and_recovers_after_the_window() {
        let t = Throttle::new(3, 1_000);
        let ip = Some("10.0.0.1".parse().unwrap());
        for i in 0..3 {
            assert!(!t.blocked("Alice", ip, i));
            t.fail("alice", ip, i);
        }
        assert!(
            t.blocked("ALICE", None, 10),
            "per user name, case-insensitive"
        );
        assert!(!t.blocked("bob", ip, 10), "the source has a larger budget");
        assert!(
            !t.blocked("alice", ip, 1_003),
            "old failures leave the window"
        );
    }

    #[test]
    fn a_source_spraying_names_is_blocked() {
        let t = Throttle::new(2, 1_000_000);
        let ip = Some("2001:db8::1".parse().unwrap());
        for i in 0..8 {
            t.fail(&format!("user{i}"), ip, i);
        }
        assert!(
            t.blocked("someone-else", Some("2001:db8::99".parse().unwrap()), 9),
            "same /64"
        );
        assert!(!t.blocked("someone-else", Some("10.1.1.1".parse().unwrap()), 9));
    }
}
