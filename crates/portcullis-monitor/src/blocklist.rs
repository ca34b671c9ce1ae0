//! Automatic responses (MON-2): principals, clients and source addresses blocked until an expiry.
//! The gateway consults [`Blocklist::blocked`] before forwarding a call and refuses blocked ones.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use portcullis_core::Clock;
use serde::{Deserialize, Serialize};

/// What a block applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum BlockTarget {
    /// A principal (user id).
    Principal(String),
    /// An OAuth client id.
    Client(String),
    /// A source address.
    Source(String),
}

/// One block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockEntry {
    /// What is blocked.
    pub target: BlockTarget,
    /// Until when.
    pub until: DateTime<Utc>,
    /// Why (the alert kind, or an administrator's note).
    pub reason: String,
}

/// Most entries kept; past this, expired entries are swept and then the entry expiring soonest
/// gives way, so that memory stays bounded even under a flood of sources.
pub const MAX_BLOCKS: usize = 100_000;

/// The blocklist, with expiry on the injected clock.
#[derive(Debug)]
pub struct Blocklist {
    clock: Arc<dyn Clock>,
    entries: RwLock<HashMap<BlockTarget, BlockEntry>>,
}

impl Blocklist {
    /// An empty blocklist.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// Blocks `target` for `duration`; an existing longer block is kept.
    pub fn block(&self, target: BlockTarget, duration: std::time::Duration, reason: &str) {
        let now = self.clock.now();
        let until = now + chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX);
        let mut map = self.entries.write();
        if map.len() >= MAX_BLOCKS && !map.contains_key(&target) {
            map.retain(|_, e| e.until > now);
            if map.len() >= MAX_BLOCKS
                && let Some(k) = map
                    .iter()
                    .min_by_key(|(_, e)| e.until)
                    .map(|(k, _)| k.clone())
            {
                map.remove(&k);
            }
        }
        let e = map.entry(target.clone()).or_insert(BlockEntry {
            target,
            until,
            reason: reason.into(),
        });
        if e.until < until {
            e.until = until;
            e.reason = reason.into();
        }
    }

    /// Lifts a block; true when there was one.
    pub fn unblock(&self, target: &BlockTarget) -> bool {
        self.entries.write().remove(target).is_some()
    }

    /// The first live block that applies to a call from this principal, client and source.
    pub fn blocked(
        &self,
        principal: Option<&str>,
        client: Option<&str>,
        source: Option<&str>,
    ) -> Option<BlockEntry> {
        let now = self.clock.now();
        let map = self.entries.read();
        let candidates = [
            principal.map(|p| BlockTarget::Principal(p.into())),
            client.map(|c| BlockTarget::Client(c.into())),
            source.map(|s| BlockTarget::Source(s.into())),
        ];
        candidates
            .into_iter()
            .flatten()
            .filter_map(|t| map.get(&t))
            .find(|e| e.until > now)
            .cloned()
    }

    /// The live blocks.
    pub fn list(&self) -> Vec<BlockEntry> {
        let now = self.clock.now();
        self.entries
            .read()
            .values()
            .filter(|e| e.until > now)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::clock::ManualClock;
    use std::time::Duration;

    #[test]
    fn blocks_expire_on_the_clock() {
        // MON-2: a temporary block ends by itself.
        let clock = ManualClock::new(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let b = Blocklist::new(Arc::new(clock.clone()));
        b.block(
            BlockTarget::Source("203.0.113.7".into()),
            Duration::from_secs(900),
            "auth.brute_force",
        );
        assert!(b.blocked(None, None, Some("203.0.113.7")).is_some());
        assert!(
            b.blocked(Some("alice"), Some("c"), Some("198.51.100.1"))
                .is_none()
        );
        clock.advance(Duration::from_secs(899));
        assert!(b.blocked(None, None, Some("203.0.113.7")).is_some());
        clock.advance(Duration::from_secs(1));
        assert!(b.blocked(None, None, Some("203.0.113.7")).is_none());
        assert!(b.list().is_empty());
    }

    #[test]
    fn principal_and_client_blocks_apply_and_can_be_lifted() {
        let clock = ManualClock::new(DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let b = Blocklist::new(Arc::new(clock));
        b.block(
            BlockTarget::Principal("mallory".into()),
            Duration::from_secs(60),
            "x",
        );
        b.block(
            BlockTarget::Client("bad-client".into()),
            Duration::from_secs(60),
            "y",
        );
        assert_eq!(b.blocked(Some("mallory"), None, None).unwrap().reason, "x");
        assert_eq!(
            b.blocked(Some("alice"), Some("bad-client"), None)
                .unwrap()
                .reason,
            "y"
        );
        assert!(b.unblock(&BlockTarget::Principal("mallory".into())));
        assert!(b.blocked(Some("mallory"), None, None).is_none());
    }
}
