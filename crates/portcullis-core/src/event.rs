//! The per-interaction event record (AU-1). The gateway emits one [`Event`] per MCP request it
//! handles (and, later, per admin action); sinks such as the SQLite recorder and the tamper-evident
//! audit log consume them. Fields hold metadata only: no raw arguments or results (AU-2).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::CorrelationId;

/// What kind of interaction an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// One JSON-RPC request from a client to an MCP endpoint (tools/call, tools/list, ...).
    McpRequest,
    /// A JSON-RPC notification from a client (nothing is answered).
    McpNotification,
    /// A request the upstream sent to the client (elicitation, sampling, roots) and its answer.
    ServerRequest,
    /// An HTTP-level event on an MCP endpoint that is not one JSON-RPC message (session open or
    /// close, a rejected body).
    Http,
    /// An administrative action (config change, approval, erasure...).
    Admin,
    /// An authentication event (login, token issued, token rejected).
    Auth,
}

/// The gateway's decision about a call; verdicts combine by most restrictive (deny, confirm,
/// redact, allow).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Forwarded unchanged.
    Allow,
    /// Forwarded; the result was altered (redacted, masked, wrapped).
    Redact,
    /// Held for human confirmation.
    Confirm,
    /// Refused.
    Deny,
}

/// How the interaction ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// A JSON-RPC result came back (a tool result with `isError: true` is still `Ok`, flagged).
    Ok {
        /// `isError` of a tool result.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        tool_error: bool,
    },
    /// A JSON-RPC error was returned, by the gateway or the upstream.
    Error {
        /// The JSON-RPC error code.
        code: i64,
        /// Who produced the error: `gateway` or `upstream`.
        origin: String,
    },
    /// An HTTP error status was returned without a JSON-RPC body.
    HttpError {
        /// The HTTP status code.
        status: u16,
    },
    /// The client went away or cancelled before an answer.
    Cancelled,
}

/// A finding, as recorded: never the matched text, only where and what (AU-2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingSummary {
    /// Detector id, e.g. `pii.email`, `secret.aws_access_key`.
    pub kind: String,
    /// `pii`, `secret`, `internal` or `injection`.
    pub category: String,
    /// `request` or `response`.
    pub direction: String,
    /// JSON pointer of the value the finding was in, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// What was done about it: `log`, `redact`, `mask`, `block`...
    pub action: String,
    /// How many times it was found there with that action: repeats are one entry with a count,
    /// so a text holding a hundred addresses makes one finding, not a hundred rows of the same.
    /// Left out when 1, so events recorded before counts existed keep their canonical form and
    /// their hashes (AU-3).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

fn is_one(n: &u32) -> bool {
    *n == 1
}

/// One interaction, as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Unique, time-ordered (UUIDv7) event id.
    pub id: uuid::Uuid,
    /// When the interaction started.
    pub time: DateTime<Utc>,
    /// The correlation id returned to the client and passed upstream.
    pub correlation_id: CorrelationId,
    /// What kind of interaction this is.
    pub kind: EventKind,
    /// Who called (user id or subject), once authentication exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The OAuth client, once authentication exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The client's source address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The gateway session id (`Mcp-Session-Id` as given to the client).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// The connector the call went to (none for federated listings spanning several).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// The JSON-RPC method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The tool, resource URI or prompt the method addressed, as the upstream names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The decision.
    pub decision: Decision,
    /// Why: one short machine-readable reason per stage that did not simply allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// What the detectors found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingSummary>,
    /// How it ended.
    pub outcome: Outcome,
    /// HTTP status of the upstream answer, when one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_status: Option<u16>,
    /// Bytes of the client's JSON-RPC message.
    pub request_bytes: u64,
    /// Bytes of the answer sent to the client.
    pub response_bytes: u64,
    /// Time from receiving the request to sending the answer, in microseconds.
    pub latency_us: u64,
}

impl Event {
    /// A new event with the required fields; the rest default to empty.
    pub fn new(time: DateTime<Utc>, correlation_id: CorrelationId, kind: EventKind) -> Self {
        let ts = uuid::Timestamp::from_unix(
            uuid::NoContext,
            time.timestamp().max(0) as u64,
            time.timestamp_subsec_nanos(),
        );
        Self {
            id: uuid::Uuid::new_v7(ts),
            time,
            correlation_id,
            kind,
            principal: None,
            client: None,
            source: None,
            session: None,
            connector: None,
            method: None,
            target: None,
            decision: Decision::Allow,
            reasons: Vec::new(),
            findings: Vec::new(),
            outcome: Outcome::Ok { tool_error: false },
            upstream_status: None,
            request_bytes: 0,
            response_bytes: 0,
            latency_us: 0,
        }
    }
}

/// Where events go. `record` must not block the data path: implementations queue the event and
/// write it in batches. `flush` waits until everything recorded so far is durable (graceful
/// shutdown, OPS-3).
pub trait EventSink: Send + Sync {
    /// Queues one event. Never blocks; a sink that must drop an event counts it (it must stay 0).
    fn record(&self, event: Event);

    /// Waits until every event recorded before this call is written, together with whatever
    /// the sink keeps beside the events (an audit log's signed head record): graceful shutdown,
    /// tests, administrative commands.
    fn flush(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>>;

    /// Waits until every event recorded before this call is committed to durable storage, and
    /// no longer: the per-call wait on the data path (an answer leaves only once its event is
    /// committed, AU-1). Unlike [`EventSink::flush`] it does not wait for records a sink
    /// refreshes in the background (an audit log's head record trails its commits by a few
    /// milliseconds). The default is `flush`, which waits at least as long.
    fn committed(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        self.flush()
    }
}

/// A sink that keeps events in memory; for tests.
#[derive(Debug, Default)]
pub struct MemorySink {
    events: std::sync::Mutex<Vec<Event>>,
}

impl MemorySink {
    /// Everything recorded so far.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl EventSink for MemorySink {
    fn record(&self, event: Event) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }

    fn flush(&self) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async {})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_serializes_without_empty_fields() {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut e = Event::new(
            t,
            CorrelationId::from_request_id("r1").unwrap(),
            EventKind::McpRequest,
        );
        e.method = Some("tools/call".into());
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["correlation_id"], "r1");
        assert_eq!(v["outcome"]["result"], "ok");
        assert!(v.get("principal").is_none());
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[test]
    fn decisions_order_by_restrictiveness() {
        assert!(Decision::Deny > Decision::Confirm);
        assert!(Decision::Confirm > Decision::Redact);
        assert!(Decision::Redact > Decision::Allow);
    }
}
