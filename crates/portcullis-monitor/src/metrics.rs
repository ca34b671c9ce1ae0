//! Prometheus metrics of every detector, the rate limits and every sink (MON-5), in the text
//! exposition format.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// `detector` label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DetectorLabel {
    /// The detector id.
    pub detector: String,
}

/// `scope` label of rate limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScopeLabel {
    /// `principal`, `client` or `tool`.
    pub scope: String,
}

/// `sink` and `result` labels.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SinkLabel {
    /// The sink's name.
    pub sink: String,
    /// `ok`, `retry`, `failed` or `dropped`.
    pub result: String,
}

/// The monitor's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events observed.
    pub events: Counter,
    /// Alerts raised, per detector.
    pub alerts: Family<DetectorLabel, Counter>,
    /// Alerts suppressed by deduplication, per detector.
    pub suppressed: Family<DetectorLabel, Counter>,
    /// Automatic blocks applied.
    pub blocks: Counter,
    /// Calls refused by a rate limit, per scope.
    pub rate_limited: Family<ScopeLabel, Counter>,
    /// Shared-counter failures (the call was refused or counted locally).
    pub counter_errors: Counter,
    /// Events dropped because the service's queue was full.
    pub dropped_events: Counter,
    /// Alert deliveries per sink and result.
    pub sink_deliveries: Family<SinkLabel, Counter>,
    /// Alerts that could not be stored.
    pub store_errors: Counter,
    /// Keys the detectors hold state for.
    pub tracked_keys: Gauge,
}

impl Metrics {
    /// Renders every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut r = Registry::with_prefix("portcullis_monitor");
        r.register(
            "events",
            "Events observed by the monitor",
            self.events.clone(),
        );
        r.register("alerts", "Alerts raised, per detector", self.alerts.clone());
        r.register(
            "alerts_suppressed",
            "Alerts suppressed by deduplication, per detector",
            self.suppressed.clone(),
        );
        r.register("blocks", "Automatic blocks applied", self.blocks.clone());
        r.register(
            "rate_limited",
            "Calls refused by a rate limit, per scope",
            self.rate_limited.clone(),
        );
        r.register(
            "counter_errors",
            "Shared counter failures",
            self.counter_errors.clone(),
        );
        r.register(
            "dropped_events",
            "Events dropped because the monitor queue was full",
            self.dropped_events.clone(),
        );
        r.register(
            "sink_deliveries",
            "Alert deliveries per sink and result",
            self.sink_deliveries.clone(),
        );
        r.register(
            "store_errors",
            "Alerts that could not be stored",
            self.store_errors.clone(),
        );
        r.register(
            "tracked_keys",
            "Keys the detectors hold state for",
            self.tracked_keys.clone(),
        );
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }

    /// Counts one delivery result of a sink.
    pub fn sink(&self, sink: &str, result: &str) {
        self.sink_deliveries
            .get_or_create(&SinkLabel {
                sink: sink.into(),
                result: result.into(),
            })
            .inc();
    }
}
