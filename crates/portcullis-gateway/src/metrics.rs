//! Prometheus metrics (MON-5): requests, errors and latency per connector, method and tool.
//! Label values are bounded: unknown methods become `other`, and past a fixed number of distinct
//! tool names new ones become `other`, so a client cannot blow up the series count.

use std::collections::HashSet;

use parking_lot::Mutex;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Most distinct tool label values.
const MAX_TOOL_LABELS: usize = 1000;

/// Labels of a request series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Connector name, or `federated`.
    pub connector: String,
    /// JSON-RPC method.
    pub method: String,
    /// Tool, prompt or resource, when the method names one.
    pub tool: String,
    /// `ok`, `tool_error` or `error`.
    pub outcome: String,
}

/// Labels of a latency series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Connector name, or `federated`.
    pub connector: String,
    /// JSON-RPC method.
    pub method: String,
    /// Tool, prompt or resource.
    pub tool: String,
}

/// The gateway's metrics.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<LatencyLabels, Histogram>,
    /// Open client sessions.
    pub sessions: Gauge,
    /// Requests refused before reaching a connector (bad input, limits).
    pub rejected: Counter,
    tools_seen: Mutex<HashSet<String>>,
}

fn latency_histogram() -> Histogram {
    // 50 µs to ~27 s.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.000_05, 2.0, 20,
    ))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("portcullis");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<LatencyLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let sessions = Gauge::default();
        let rejected = Counter::default();
        registry.register(
            "requests",
            "MCP requests handled, by connector, method, tool and outcome",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer an MCP request",
            latency.clone(),
        );
        registry.register("sessions", "Open client sessions", sessions.clone());
        registry.register(
            "rejected_requests",
            "HTTP requests refused before any connector was called",
            rejected.clone(),
        );
        Self {
            registry,
            requests,
            latency,
            sessions,
            rejected,
            tools_seen: Mutex::new(HashSet::new()),
        }
    }
}

/// MCP methods that are label values as themselves.
const KNOWN_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
    "server/discover",
    "tasks/get",
    "tasks/result",
    "tasks/list",
    "tasks/cancel",
];

impl Metrics {
    fn tool_label(&self, tool: Option<&str>) -> String {
        let Some(t) = tool else { return String::new() };
        let safe = t.len() <= 128 && t.bytes().all(|b| b.is_ascii_graphic());
        if !safe {
            return "other".into();
        }
        let mut seen = self.tools_seen.lock();
        if seen.contains(t) {
            return t.to_string();
        }
        if seen.len() < MAX_TOOL_LABELS {
            seen.insert(t.to_string());
            return t.to_string();
        }
        "other".into()
    }

    /// Counts one request and its latency.
    pub fn observe(
        &self,
        connector: &str,
        method: &str,
        tool: Option<&str>,
        outcome: &str,
        seconds: f64,
    ) {
        let method = if KNOWN_METHODS.contains(&method) {
            method
        } else {
            "other"
        };
        let tool = self.tool_label(tool);
        self.requests
            .get_or_create(&RequestLabels {
                connector: connector.to_string(),
                method: method.to_string(),
                tool: tool.clone(),
                outcome: outcome.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&LatencyLabels {
                connector: connector.to_string(),
                method: method.to_string(),
                tool,
            })
            .observe(seconds);
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.observe("crm", "tools/call", Some("search_customers"), "ok", 0.001);
        m.observe("crm", "bogus/method", None, "error", 0.001);
        let text = m.render();
        assert!(text.contains(r#"portcullis_requests_total{connector="crm",method="tools/call",tool="search_customers",outcome="ok"} 1"#), "{text}");
        assert!(text.contains(r#"method="other""#), "{text}");
        assert!(
            text.contains("portcullis_request_duration_seconds_bucket"),
            "{text}"
        );
    }

    #[test]
    fn tool_labels_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_TOOL_LABELS + 10 {
            m.observe("c", "tools/call", Some(&format!("t{i}")), "ok", 0.0);
        }
        assert!(m.render().contains(r#"tool="other""#));
        assert_eq!(m.tool_label(Some("bad label\n")), "other");
    }
}
