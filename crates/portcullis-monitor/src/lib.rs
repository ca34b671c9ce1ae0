//! portcullis-monitor: real-time anomaly detection over the gateway's per-call events (MON-1),
//! alerts with context, deduplication, throttling, storage and sinks (MON-2), automatic
//! responses (a [`Blocklist`]), per-principal, client and tool rate limits ([`RateLimits`]),
//! users' leak reports as incidents (MON-4) and Prometheus metrics (MON-5).
//!
//! The hot path is [`Monitor::observe`] (synchronous, bounded memory) and
//! [`Monitor::check_rate`]; [`MonitorService`] runs the rest (storage, sinks) off the data path.

pub mod alert;
pub mod blocklist;
pub mod counters;
pub mod detectors;
pub mod incident;
pub mod metrics;
pub mod monitor;
pub mod ratelimit;
pub mod service;
pub mod settings;
pub mod sinks;

pub use alert::{Alert, Severity};
pub use blocklist::{BlockEntry, BlockTarget, Blocklist};
pub use counters::{Counters, CountersError, LocalCounters, RedisCounters};
pub use monitor::Monitor;
pub use ratelimit::{RateKey, RateLimits, RetryAfter};
pub use service::{AlertStore, MonitorHandle, MonitorService};
pub use settings::Settings;
pub use sinks::{AlertSink, EmailSink, SinkError, WebhookSink};
