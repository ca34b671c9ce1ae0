//! [`MonitorService`]: the asynchronous side. Events arrive on a bounded channel (the caller
//! never waits: a full queue drops the event and counts it), pass through [`Monitor::observe`],
//! and the alerts are stored and handed to each sink's own bounded queue, retried with backoff.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Event, EventSink};
use tokio::sync::{mpsc, oneshot};

use crate::alert::Alert;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::sinks::AlertSink;

/// Where alerts are stored.
pub trait AlertStore: Send + Sync {
    /// Stores one alert.
    fn store<'a>(
        &'a self,
        alert: &'a Alert,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;
}

impl AlertStore for portcullis_store::Store {
    fn store<'a>(
        &'a self,
        alert: &'a Alert,
    ) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>> {
        Box::pin(async move {
            self.insert_alert(&alert.to_row())
                .await
                .map_err(|e| e.to_string())
        })
    }
}

enum Msg {
    Event(Box<Event>),
    Flush(oneshot::Sender<()>),
}

/// Delivery attempts per alert and sink.
pub const SINK_ATTEMPTS: u32 = 4;

/// Submits events to the service; cheap to clone.
#[derive(Clone)]
pub struct MonitorHandle {
    tx: mpsc::Sender<Msg>,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for MonitorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MonitorHandle").finish_non_exhaustive()
    }
}

impl MonitorHandle {
    /// Queues an event; false (and counted) when the queue is full or the service stopped.
    pub fn submit(&self, ev: Event) -> bool {
        let ok = self.tx.try_send(Msg::Event(Box::new(ev))).is_ok();
        if !ok {
            self.metrics.dropped_events.inc();
        }
        ok
    }

    /// Waits until every event submitted before has been observed and its alerts stored and
    /// queued to the sinks.
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Msg::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

impl EventSink for MonitorHandle {
    fn record(&self, event: Event) {
        self.submit(event);
    }

    fn flush(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(MonitorHandle::flush(self))
    }
}

/// The service.
pub struct MonitorService;

impl MonitorService {
    /// Starts the service on the current runtime: a worker for events and one per sink, each
    /// queue holding `capacity` items. The worker ends when every handle is dropped.
    pub fn spawn(
        monitor: Arc<Monitor>,
        store: Option<Arc<dyn AlertStore>>,
        sinks: Vec<Arc<dyn AlertSink>>,
        capacity: usize,
    ) -> (MonitorHandle, tokio::task::JoinHandle<()>) {
        let capacity = capacity.max(1);
        let metrics = monitor.metrics().clone();
        let (tx, mut rx) = mpsc::channel::<Msg>(capacity);
        let mut sink_queues = Vec::new();
        for sink in sinks {
            let (stx, srx) = mpsc::channel::<Arc<Alert>>(capacity);
            tokio::spawn(deliver(sink.clone(), srx, metrics.clone()));
            sink_queues.push((sink.name().to_string(), stx));
        }
        let m = metrics.clone();
        let worker = tokio::spawn(async move {
            while let Some(msg) = rx.recv().await {
                match msg {
                    Msg::Flush(done) => {
                        let _ = done.send(());
                    }
                    Msg::Event(ev) => {
                        for alert in monitor.observe(&ev) {
                            if let Some(s) = &store
                                && let Err(e) = s.store(&alert).await
                            {
                                tracing::error!(alert = %alert.id, error = %e, "cannot store an alert");
                                m.store_errors.inc();
                            }
                            let alert = Arc::new(alert);
                            for (name, q) in &sink_queues {
                                if q.try_send(alert.clone()).is_err() {
                                    m.sink(name, "dropped");
                                }
                            }
                        }
                    }
                }
            }
        });
        (MonitorHandle { tx, metrics }, worker)
    }
}

async fn deliver(
    sink: Arc<dyn AlertSink>,
    mut rx: mpsc::Receiver<Arc<Alert>>,
    metrics: Arc<Metrics>,
) {
    while let Some(alert) = rx.recv().await {
        let mut backoff = Duration::from_millis(500);
        for attempt in 1..=SINK_ATTEMPTS {
            match sink.send(&alert).await {
                Ok(()) => {
                    metrics.sink(sink.name(), "ok");
                    break;
                }
                Err(e) if attempt < SINK_ATTEMPTS => {
                    tracing::warn!(error = %e, attempt, "alert delivery failed; retrying");
                    metrics.sink(sink.name(), "retry");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::error!(error = %e, "alert delivery failed; giving up");
                    metrics.sink(sink.name(), "failed");
                }
            }
        }
    }
}
