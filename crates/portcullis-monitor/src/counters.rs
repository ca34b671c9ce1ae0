//! Counters that several replicas agree on (OPS-2): sliding-window counts for the detectors and
//! GCRA token buckets for rate limits. [`LocalCounters`] is the in-process default of the
//! embedded mode; [`RedisCounters`] shares them through Redis when configured.
//!
//! Both take the time from the caller (the injected clock), so tests are deterministic and
//! replicas need synchronised clocks (NTP) to agree on windows.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use parking_lot::Mutex;

/// Errors of a counter backend.
#[derive(Debug, thiserror::Error)]
pub enum CountersError {
    /// Redis could not be reached or answered an error.
    #[error(
        "shared counters at {location} failed while {doing}: {detail}; check that Redis is running and reachable"
    )]
    Redis {
        /// The Redis address (no password).
        location: String,
        /// What was being done.
        doing: &'static str,
        /// The client's message.
        detail: String,
    },
}

/// A counter backend.
pub trait Counters: Send + Sync + std::fmt::Debug {
    /// Adds one event to `key`'s window of length `window` at `now` and returns the count of
    /// events in the sliding window ending now (two fixed buckets, the older one weighted by how
    /// much of it still overlaps the window).
    fn window_add(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<f64, CountersError>;

    /// GCRA: one token from `key`'s bucket, refilled one token per `emission`, holding `burst`
    /// tokens. `Ok(None)` when allowed, `Ok(Some(wait))` when the caller must wait `wait`.
    fn gcra(
        &self,
        key: &str,
        emission: Duration,
        burst: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, CountersError>;

    /// Whether the counters are shared with other replicas.
    fn shared(&self) -> bool;
}

fn bucket_of(now_us: i64, window: Duration) -> (i64, f64) {
    let w = (window.as_micros() as i64).max(1);
    let bucket = now_us.div_euclid(w);
    let into = now_us.rem_euclid(w) as f64 / w as f64;
    (bucket, into)
}

/// Most keys kept by [`LocalCounters`]; past it the map is cleared of stale keys, then emptied
/// (counts restart, which errs towards fewer alerts but never unbounded memory).
pub const MAX_LOCAL_KEYS: usize = 200_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    bucket: i64,
    cur: u64,
    prev: u64,
}

/// In-process counters.
#[derive(Debug, Default)]
pub struct LocalCounters {
    windows: Mutex<HashMap<String, Window>>,
    tats: Mutex<HashMap<String, i64>>,
}

impl LocalCounters {
    /// Empty counters.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Counters for LocalCounters {
    fn window_add(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<f64, CountersError> {
        let (bucket, into) = bucket_of(now.timestamp_micros(), window);
        let mut map = self.windows.lock();
        if map.len() >= MAX_LOCAL_KEYS && !map.contains_key(key) {
            map.retain(|_, w| w.bucket >= bucket - 1);
            if map.len() >= MAX_LOCAL_KEYS {
                map.clear();
            }
        }
        let w = map.entry(key.to_string()).or_insert(Window {
            bucket,
            cur: 0,
            prev: 0,
        });
        if w.bucket != bucket {
            w.prev = if w.bucket == bucket - 1 { w.cur } else { 0 };
            w.cur = 0;
            w.bucket = bucket;
        }
        w.cur += 1;
        Ok(w.cur as f64 + w.prev as f64 * (1.0 - into))
    }

    fn gcra(
        &self,
        key: &str,
        emission: Duration,
        burst: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, CountersError> {
        let now_us = now.timestamp_micros();
        let em = emission.as_micros() as i64;
        let mut map = self.tats.lock();
        if map.len() >= MAX_LOCAL_KEYS && !map.contains_key(key) {
            map.retain(|_, tat| *tat > now_us);
            if map.len() >= MAX_LOCAL_KEYS {
                map.clear();
            }
        }
        let tat = map.get(key).copied().unwrap_or(now_us).max(now_us);
        let new_tat = tat + em;
        let allow_at = new_tat - em * i64::from(burst.max(1));
        if allow_at > now_us {
            return Ok(Some(Duration::from_micros((allow_at - now_us) as u64)));
        }
        map.insert(key.to_string(), new_tat);
        Ok(None)
    }

    fn shared(&self) -> bool {
        false
    }
}

/// GCRA in one atomic step on the Redis server; returns 0 when allowed, else the wait in
/// microseconds. The key expires once its bucket is full again.
const GCRA_LUA: &str = r#"
local now = tonumber(ARGV[1])
local em = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + em
local allow_at = new_tat - em * burst
if allow_at > now then return allow_at - now end
redis.call('SET', KEYS[1], new_tat, 'PX', math.floor((new_tat - now) / 1000) + 1)
return 0
"#;

/// Sliding-window add: INCR the current bucket, keep it two windows, read the previous one.
const WINDOW_LUA: &str = r#"
local cur = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local prev = tonumber(redis.call('GET', KEYS[2]) or '0')
return {cur, prev}
"#;

/// Counters in Redis, shared by every replica pointing at the same server and prefix.
pub struct RedisCounters {
    client: redis::Client,
    location: String,
    prefix: String,
    conn: Mutex<Option<redis::Connection>>,
    gcra: redis::Script,
    window: redis::Script,
    timeout: Duration,
}

impl std::fmt::Debug for RedisCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCounters")
            .field("location", &self.location)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisCounters {
    /// Counters at `url` (`redis://host:port/db`), keys under `prefix` (like `portcullis:`).
    /// Connects lazily; each command waits at most `timeout`.
    pub fn new(url: &str, prefix: &str, timeout: Duration) -> Result<Self, CountersError> {
        let location = match url.rsplit_once('@') {
            Some((_, host)) => format!("redis://***@{host}"),
            None => url.to_string(),
        };
        let client = redis::Client::open(url).map_err(|e| CountersError::Redis {
            location: location.clone(),
            doing: "parsing the URL",
            detail: e.to_string(),
        })?;
        Ok(Self {
            client,
            location,
            prefix: prefix.to_string(),
            conn: Mutex::new(None),
            gcra: redis::Script::new(GCRA_LUA),
            window: redis::Script::new(WINDOW_LUA),
            timeout,
        })
    }

    fn with_conn<T>(
        &self,
        doing: &'static str,
        f: impl FnOnce(&mut redis::Connection) -> redis::RedisResult<T>,
    ) -> Result<T, CountersError> {
        let err = |e: redis::RedisError| CountersError::Redis {
            location: self.location.clone(),
            doing,
            detail: e.to_string(),
        };
        let mut guard = self.conn.lock();
        if guard.is_none() {
            let c = self
                .client
                .get_connection_with_timeout(self.timeout)
                .map_err(err)?;
            c.set_read_timeout(Some(self.timeout)).map_err(err)?;
            c.set_write_timeout(Some(self.timeout)).map_err(err)?;
            *guard = Some(c);
        }
        let Some(conn) = guard.as_mut() else {
            unreachable!("connected above")
        };
        match f(conn) {
            Ok(v) => Ok(v),
            Err(e) => {
                // A broken connection is dropped so the next call reconnects.
                *guard = None;
                Err(err(e))
            }
        }
    }
}

impl Counters for RedisCounters {
    fn window_add(
        &self,
        key: &str,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<f64, CountersError> {
        let (bucket, into) = bucket_of(now.timestamp_micros(), window);
        let cur = format!("{}w:{key}:{bucket}", self.prefix);
        let prev = format!("{}w:{key}:{}", self.prefix, bucket - 1);
        let ttl_ms = (window.as_millis() as u64).max(1) * 2;
        let (c, p): (u64, u64) = self.with_conn("counting in a window", |conn| {
            self.window.key(&cur).key(&prev).arg(ttl_ms).invoke(conn)
        })?;
        Ok(c as f64 + p as f64 * (1.0 - into))
    }

    fn gcra(
        &self,
        key: &str,
        emission: Duration,
        burst: u32,
        now: DateTime<Utc>,
    ) -> Result<Option<Duration>, CountersError> {
        let k = format!("{}r:{key}", self.prefix);
        let wait: i64 = self.with_conn("checking a rate limit", |conn| {
            self.gcra
                .key(&k)
                .arg(now.timestamp_micros())
                .arg(emission.as_micros() as i64)
                .arg(burst.max(1))
                .invoke(conn)
        })?;
        Ok((wait > 0).then(|| Duration::from_micros(wait as u64)))
    }

    fn shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn sliding_window_weights_the_previous_bucket() {
        let c = LocalCounters::new();
        let w = Duration::from_secs(60);
        // 1_700_000_000 is 20 s into a minute bucket.
        for _ in 0..9 {
            c.window_add("k", w, t(0)).unwrap();
        }
        assert_eq!(c.window_add("k", w, t(0)).unwrap(), 10.0);
        // 40 s on: a new bucket starts; the old one overlaps by (60-0)/60 at its very start.
        let v = c.window_add("k", w, t(40)).unwrap();
        assert!((v - 11.0).abs() < 1e-9, "{v}");
        // Two windows on, everything has gone.
        assert_eq!(c.window_add("k", w, t(200)).unwrap(), 1.0);
    }

    #[test]
    fn gcra_allows_a_burst_then_paces() {
        let c = LocalCounters::new();
        let em = Duration::from_secs(1);
        for _ in 0..3 {
            assert_eq!(c.gcra("k", em, 3, t(0)).unwrap(), None);
        }
        assert_eq!(
            c.gcra("k", em, 3, t(0)).unwrap(),
            Some(Duration::from_secs(1))
        );
        assert_eq!(c.gcra("k", em, 3, t(1)).unwrap(), None);
    }
}
