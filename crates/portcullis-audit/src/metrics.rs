//! Counters of the audit pipeline (MON-5, AU-6), plain atomics the gateway renders in its
//! Prometheus endpoint with [`AuditMetrics::render_prometheus`] or reads one by one.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// Audit counters. All monotonic except `queue_depth`.
#[derive(Debug, Default)]
pub struct AuditMetrics {
    /// Events committed to the database.
    pub events_written: AtomicU64,
    /// Events lost: queue full, log shut down, or a batch that could not be written after all
    /// retries. Must stay 0.
    pub events_dropped: AtomicU64,
    /// Group commits done.
    pub batches_written: AtomicU64,
    /// Failed attempts to commit a batch (each is retried).
    pub write_failures: AtomicU64,
    /// Signed checkpoints written.
    pub checkpoints_written: AtomicU64,
    /// Events delivered to live sinks (file, syslog, webhook, OTLP), summed over sinks.
    pub sink_events_sent: AtomicU64,
    /// Failed deliveries to live sinks (each is retried from the sink's buffer).
    pub sink_failures: AtomicU64,
    /// Events a live sink had to drop because its buffer was full or retries ran out.
    pub sink_events_dropped: AtomicU64,
    /// Payloads not kept because the connector is memory-off (AU-7) or the class keeps none (AU-2).
    pub payloads_suppressed: AtomicU64,
    /// Events waiting in the queue now.
    pub queue_depth: AtomicU64,
}

impl AuditMetrics {
    /// Adds `n` to a counter.
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }

    /// The counters in the Prometheus text exposition format, each prefixed `portcullis_audit_`.
    pub fn render_prometheus(&self) -> String {
        let mut out = String::new();
        let rows: [(&str, &str, &str, &AtomicU64); 10] = [
            (
                "events_written_total",
                "counter",
                "Audit events committed to the log.",
                &self.events_written,
            ),
            (
                "events_dropped_total",
                "counter",
                "Audit events lost (must stay 0).",
                &self.events_dropped,
            ),
            (
                "batches_written_total",
                "counter",
                "Group commits of audit events.",
                &self.batches_written,
            ),
            (
                "write_failures_total",
                "counter",
                "Failed attempts to commit an audit batch.",
                &self.write_failures,
            ),
            (
                "checkpoints_written_total",
                "counter",
                "Signed audit checkpoints written.",
                &self.checkpoints_written,
            ),
            (
                "sink_events_sent_total",
                "counter",
                "Audit events delivered to live sinks.",
                &self.sink_events_sent,
            ),
            (
                "sink_failures_total",
                "counter",
                "Failed deliveries to live audit sinks.",
                &self.sink_failures,
            ),
            (
                "sink_events_dropped_total",
                "counter",
                "Audit events a live sink dropped.",
                &self.sink_events_dropped,
            ),
            (
                "payloads_suppressed_total",
                "counter",
                "Payloads not kept by policy.",
                &self.payloads_suppressed,
            ),
            (
                "queue_depth",
                "gauge",
                "Audit events waiting to be written.",
                &self.queue_depth,
            ),
        ];
        for (name, kind, help, v) in rows {
            let _ = writeln!(out, "# HELP portcullis_audit_{name} {help}");
            let _ = writeln!(out, "# TYPE portcullis_audit_{name} {kind}");
            let _ = writeln!(out, "portcullis_audit_{name} {}", Self::get(v));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_counter() {
        let m = AuditMetrics::default();
        AuditMetrics::add(&m.events_written, 3);
        let t = m.render_prometheus();
        assert!(t.contains("portcullis_audit_events_written_total 3\n"));
        assert!(t.contains("portcullis_audit_events_dropped_total 0\n"));
        assert!(t.contains("# TYPE portcullis_audit_queue_depth gauge"));
    }
}
