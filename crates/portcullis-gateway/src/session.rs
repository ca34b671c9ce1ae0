//! Client sessions. A session's durable part, [`SessionRecord`], lives behind the
//! [`SessionStore`] interface (in memory now; a shared store later lets a session survive being
//! routed to another replica). Its live part, [`LiveSession`], holds the upstream connections and
//! the client's open streams, and is rebuilt from the record when a replica meets a session it
//! does not hold (OPS-2).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::federation;
use crate::upstream::Upstream;

/// Which endpoint a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// `/mcp/{connector}`: one connector, its own names.
    Connector(String),
    /// `/mcp`: every connector, namespaced names.
    Federated,
}

/// What must survive a restart or a move to another replica.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The id given to the client (`Mcp-Session-Id`).
    pub id: String,
    /// The endpoint.
    pub scope: Scope,
    /// The protocol version agreed with the client.
    pub protocol_version: String,
    /// The client's `initialize` message, replayed to rebuild upstream sessions.
    pub initialize: String,
    /// Whether the client sent `notifications/initialized`.
    pub initialized: bool,
    /// Who opened the session (`subject` and client, see [`owner_of`]), when callers are
    /// authenticated: only they may use it, so a leaked session id is no credential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
}

/// The owner key of a session opened by `p`: the user and the client together.
pub fn owner_of(p: &portcullis_core::Principal) -> String {
    format!("{}\n{}", p.subject, p.client_id)
}

/// Where session records are kept.
pub trait SessionStore: Send + Sync {
    /// Saves or replaces a record.
    fn put(&self, record: SessionRecord) -> BoxFuture<'_, ()>;
    /// Looks a record up.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<SessionRecord>>;
    /// Deletes a record.
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()>;
    /// How many records there are.
    fn len(&self) -> usize;
    /// Whether other replicas use this store too: then every request checks that its session
    /// still exists (another replica may have ended it).
    fn shared(&self) -> bool {
        false
    }
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The in-memory session store of the embedded default.
#[derive(Debug, Default)]
pub struct MemorySessionStore {
    records: dashmap::DashMap<String, SessionRecord>,
    shared: bool,
}

impl MemorySessionStore {
    /// A store that several gateways in one process share (tests of multi-replica behaviour).
    pub fn shared() -> Self {
        Self {
            records: dashmap::DashMap::new(),
            shared: true,
        }
    }
}

impl SessionStore for MemorySessionStore {
    fn put(&self, record: SessionRecord) -> BoxFuture<'_, ()> {
        self.records.insert(record.id.clone(), record);
        Box::pin(async {})
    }
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<SessionRecord>> {
        let r = self.records.get(id).map(|r| r.clone());
        Box::pin(async move { r })
    }
    fn remove<'a>(&'a self, id: &'a str) -> BoxFuture<'a, ()> {
        self.records.remove(id);
        Box::pin(async {})
    }
    fn len(&self) -> usize {
        self.records.len()
    }
    fn shared(&self) -> bool {
        self.shared
    }
}

/// Most server requests waiting for the client's answer, per session.
const MAX_PENDING_SERVER_REQUESTS: u64 = 1000;

/// Most server messages held for a client that has no stream open to receive them.
const BACKLOG_LIMIT: usize = 1000;

#[derive(Default)]
struct ClientStreams {
    get: Option<mpsc::Sender<Bytes>>,
    posts: Vec<(u64, mpsc::Sender<Bytes>)>,
    backlog: VecDeque<Bytes>,
}

/// A session's live state on this replica.
pub struct LiveSession {
    /// The durable part.
    pub record: Mutex<SessionRecord>,
    /// Connector names, by index (the gateway's connector order).
    pub connector_names: Arc<Vec<String>>,
    /// Upstream sessions by connector index; `None` where the connector is not part of this
    /// session or failed to initialize.
    pub upstreams: Vec<Option<Arc<dyn Upstream>>>,
    streams: Mutex<ClientStreams>,
    next_stream: AtomicU64,
    /// Gateway id of a server request -> (connector index, the upstream's own id as JSON text).
    server_requests: Mutex<HashMap<String, (usize, Box<str>)>>,
    next_server_request: AtomicU64,
    /// Requests the gateway itself sent the client (confirmation by elicitation, HC-2), by
    /// gateway id, waiting for the client's answer.
    gateway_requests: Mutex<HashMap<String, tokio::sync::oneshot::Sender<serde_json::Value>>>,
    /// Client request id (JSON text) -> connector index, while in flight (for cancellation).
    inflight: Mutex<HashMap<Box<str>, usize>>,
    /// Last use, seconds since the gateway started.
    pub last_used: AtomicU64,
}

impl LiveSession {
    /// A live session over the given upstreams.
    pub fn new(
        record: SessionRecord,
        connector_names: Arc<Vec<String>>,
        upstreams: Vec<Option<Arc<dyn Upstream>>>,
    ) -> Self {
        Self {
            record: Mutex::new(record),
            connector_names,
            upstreams,
            streams: Mutex::new(ClientStreams::default()),
            next_stream: AtomicU64::new(1),
            server_requests: Mutex::new(HashMap::new()),
            next_server_request: AtomicU64::new(1),
            gateway_requests: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            last_used: AtomicU64::new(0),
        }
    }

    /// The session id.
    pub fn id(&self) -> String {
        self.record.lock().id.clone()
    }

    /// Whether this is a federated session.
    pub fn federated(&self) -> bool {
        self.record.lock().scope == Scope::Federated
    }

    /// The upstream at a connector index.
    pub fn upstream(&self, index: usize) -> Option<&Arc<dyn Upstream>> {
        self.upstreams.get(index).and_then(|u| u.as_ref())
    }

    /// Marks a client request in flight; `false` when a request with the same id already is
    /// (JSON-RPC ids must be unique among a session's requests in flight).
    pub fn begin(&self, id: &str, index: usize) -> bool {
        let mut inflight = self.inflight.lock();
        if inflight.contains_key(id) {
            return false;
        }
        inflight.insert(id.into(), index);
        true
    }

    /// Clears a client request from the in-flight table.
    pub fn end(&self, id: &str) {
        self.inflight.lock().remove(id);
    }

    /// The connector a client request is in flight on.
    pub fn inflight_connector(&self, id: &str) -> Option<usize> {
        self.inflight.lock().get(id).copied()
    }

    /// Registers a POST response stream that may also carry unrelated server messages while no
    /// GET stream is open. Returns its key for [`Self::unregister_post`].
    pub fn register_post(&self, tx: mpsc::Sender<Bytes>) -> u64 {
        let key = self.next_stream.fetch_add(1, Ordering::Relaxed);
        self.streams.lock().posts.push((key, tx));
        key
    }

    /// Removes a POST stream.
    pub fn unregister_post(&self, key: u64) {
        self.streams.lock().posts.retain(|(k, _)| *k != key);
    }

    /// Opens the client's GET stream (replacing an earlier one) and hands it the backlog.
    pub fn open_get(&self, tx: mpsc::Sender<Bytes>) {
        let mut s = self.streams.lock();
        while let Some(m) = s.backlog.pop_front() {
            if let Err(mpsc::error::TrySendError::Full(m)) = tx.try_send(m) {
                s.backlog.push_front(m);
                break;
            }
        }
        s.get = Some(tx);
    }

    /// Delivers a server message that is not tied to a client request: to the GET stream, else
    /// to a POST stream in flight, else into a bounded backlog.
    pub fn deliver(&self, msg: Bytes) {
        let mut s = self.streams.lock();
        if let Some(get) = &s.get {
            match get.try_send(msg) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(m))
                | Err(mpsc::error::TrySendError::Closed(m)) => {
                    if get.is_closed() {
                        s.get = None;
                    }
                    return self.deliver_fallback(&mut s, m);
                }
            }
        }
        self.deliver_fallback(&mut s, msg)
    }

    fn deliver_fallback(&self, s: &mut ClientStreams, msg: Bytes) {
        s.posts.retain(|(_, tx)| !tx.is_closed());
        if let Some((_, tx)) = s.posts.last()
            && tx.try_send(msg.clone()).is_ok()
        {
            return;
        }
        if s.backlog.len() >= BACKLOG_LIMIT {
            s.backlog.pop_front();
            tracing::warn!("session backlog full: the oldest server message was dropped");
        }
        s.backlog.push_back(msg);
    }

    /// Rewrites a message from connector `index` for the client: server requests get a gateway
    /// id (so requests from several connectors cannot collide), and on the federated endpoint
    /// resource URIs are namespaced.
    pub fn to_client(&self, index: usize, msg: Bytes) -> Bytes {
        let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&msg) else {
            return msg;
        };
        let Some(obj) = v.as_object_mut() else {
            return msg;
        };
        let is_request = obj.contains_key("method") && obj.get("id").is_some_and(|i| !i.is_null());
        let mut changed = false;
        if is_request {
            let n = self.next_server_request.fetch_add(1, Ordering::Relaxed);
            let gid = format!("portcullis:s{n}");
            let orig = obj.get("id").map(|i| i.to_string()).unwrap_or_default();
            let mut pending = self.server_requests.lock();
            pending.insert(gid.clone(), (index, orig.into()));
            // A connector cannot grow this without bound: past the limit, the oldest unanswered
            // request is forgotten (an answer to it is refused as unknown).
            if n >= MAX_PENDING_SERVER_REQUESTS {
                pending.remove(&format!("portcullis:s{}", n - MAX_PENDING_SERVER_REQUESTS));
            }
            drop(pending);
            obj.insert("id".into(), serde_json::Value::String(gid));
            changed = true;
        }
        if self.federated()
            && obj.get("method").and_then(|m| m.as_str()) == Some("notifications/resources/updated")
            && let Some(uri) = obj.get_mut("params").and_then(|p| p.get_mut("uri"))
            && let Some(s) = uri.as_str()
        {
            let name = self
                .connector_names
                .get(index)
                .map(String::as_str)
                .unwrap_or("");
            *uri = serde_json::Value::String(federation::namespace_uri(name, s));
            changed = true;
        }
        if changed {
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        } else {
            msg
        }
    }

    /// Maps a client's response to a server request back to its connector and original id.
    pub fn take_server_request(&self, gateway_id_json: &str) -> Option<(usize, Box<str>)> {
        let gid: String = serde_json::from_str(gateway_id_json).ok()?;
        self.server_requests.lock().remove(&gid)
    }

    /// Registers a request of the gateway's own to the client: its id (a JSON string, never
    /// one a connector's requests use) and where the client's answer will arrive.
    pub fn ask_client(&self) -> (String, tokio::sync::oneshot::Receiver<serde_json::Value>) {
        let n = self.next_server_request.fetch_add(1, Ordering::Relaxed);
        let id = format!("portcullis:g{n}-{:016x}", rand::random::<u64>());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let mut pending = self.gateway_requests.lock();
        // Bounded like the connectors' requests: a client that never answers cannot grow it.
        if pending.len() as u64 >= MAX_PENDING_SERVER_REQUESTS {
            pending.retain(|_, tx| !tx.is_closed());
        }
        pending.insert(id.clone(), tx);
        (id, rx)
    }

    /// Delivers the client's answer (the whole JSON-RPC response) to a gateway request; false
    /// when no such request is waiting.
    pub fn answer_gateway_request(&self, id_json: &str, answer: serde_json::Value) -> bool {
        let Ok(id) = serde_json::from_str::<String>(id_json) else {
            return false;
        };
        match self.gateway_requests.lock().remove(&id) {
            Some(tx) => tx.send(answer).is_ok(),
            None => false,
        }
    }

    /// Whether the client declared it can answer elicitation requests in form mode.
    pub fn client_can_elicit(&self) -> bool {
        let init = self.record.lock().initialize.clone();
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&init) else {
            return false;
        };
        match v.pointer("/params/capabilities/elicitation") {
            Some(serde_json::Value::Object(m)) => m.is_empty() || m.contains_key("form"),
            _ => false,
        }
    }

    /// Closes every upstream session.
    pub async fn close(&self) {
        let closes = self.upstreams.iter().flatten().map(|u| u.close());
        futures::future::join_all(closes).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(scope: Scope) -> LiveSession {
        let record = SessionRecord {
            id: "s".into(),
            scope,
            protocol_version: "2025-11-25".into(),
            initialize: String::new(),
            initialized: true,
            owner: None,
        };
        LiveSession::new(
            record,
            Arc::new(vec!["a".into(), "b".into()]),
            vec![None, None],
        )
    }

    #[test]
    fn server_requests_get_gateway_ids_and_map_back() {
        let s = session(Scope::Federated);
        let m = s.to_client(
            1,
            Bytes::from_static(
                br#"{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{}}"#,
            ),
        );
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        let gid = v["id"].as_str().unwrap().to_string();
        assert!(gid.starts_with("portcullis:s"));
        let (conn, orig) = s.take_server_request(&format!("\"{gid}\"")).unwrap();
        assert_eq!((conn, &*orig), (1, "0"));
        // Answered once only.
        assert!(s.take_server_request(&format!("\"{gid}\"")).is_none());
    }

    #[test]
    fn unanswered_server_requests_are_bounded() {
        let s = session(Scope::Connector("a".into()));
        let mut ids = Vec::new();
        for i in 0..MAX_PENDING_SERVER_REQUESTS + 5 {
            let m = s.to_client(
                0,
                Bytes::from(format!(
                    r#"{{"jsonrpc":"2.0","id":{i},"method":"roots/list"}}"#
                )),
            );
            let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
            ids.push(v["id"].as_str().unwrap().to_string());
        }
        assert_eq!(
            s.server_requests.lock().len() as u64,
            MAX_PENDING_SERVER_REQUESTS
        );
        assert!(s.take_server_request(&format!("\"{}\"", ids[0])).is_none());
        assert!(
            s.take_server_request(&format!("\"{}\"", ids.last().unwrap()))
                .is_some()
        );
    }

    #[test]
    fn federated_resource_updates_are_namespaced() {
        let s = session(Scope::Federated);
        let m = s.to_client(1, Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/resources/updated","params":{"uri":"x://y"}}"#));
        let v: serde_json::Value = serde_json::from_slice(&m).unwrap();
        assert_eq!(v["params"]["uri"], "b+x://y");
    }

    #[test]
    fn backlog_holds_messages_until_a_stream_opens() {
        let s = session(Scope::Connector("a".into()));
        s.deliver(Bytes::from_static(b"1"));
        s.deliver(Bytes::from_static(b"2"));
        let (tx, mut rx) = mpsc::channel(8);
        s.open_get(tx);
        assert_eq!(rx.try_recv().unwrap(), Bytes::from_static(b"1"));
        assert_eq!(rx.try_recv().unwrap(), Bytes::from_static(b"2"));
        s.deliver(Bytes::from_static(b"3"));
        assert_eq!(rx.try_recv().unwrap(), Bytes::from_static(b"3"));
    }
}
