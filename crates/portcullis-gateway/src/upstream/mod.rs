//! Connections to connectors. One [`Upstream`] is one MCP session with one connector: over
//! Streamable HTTP ([`http`]), or newline-delimited JSON-RPC with a supervised child process or
//! the in-process demo ([`lines`]).

pub mod credentials;
pub mod http;
pub mod lines;
pub mod resilience;

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::sync::mpsc;

/// Why an upstream could not answer. Each says which connector and what to do.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Connection refused, process could not start, transport closed.
    #[error("connector '{connector}' is unavailable: {detail}")]
    Unavailable {
        /// Connector name.
        connector: String,
        /// What happened.
        detail: String,
    },
    /// No answer in time.
    #[error("connector '{connector}' did not answer within {} ms", .after.as_millis())]
    Timeout {
        /// Connector name.
        connector: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The answer was not MCP (wrong content type, not JSON-RPC, HTTP error).
    #[error("connector '{connector}' answered with something that is not MCP: {detail}")]
    Protocol {
        /// Connector name.
        connector: String,
        /// What was wrong.
        detail: String,
        /// HTTP status, when there was one.
        status: Option<u16>,
        /// The answer's `Retry-After`, when it had one in seconds (EG-2: a retry of a
        /// read-only request waits that long, up to a limit).
        retry_after: Option<Duration>,
    },
    /// The gateway would not talk to the connector: its address is link-local or a cloud
    /// metadata address (EG-1), or its TLS certificate does not verify (EG-2). Told to the
    /// client as the connector being unavailable, with the reason; never retried (the same
    /// check fails again) and not counted by the circuit breaker (so the reason stays visible).
    #[error("connector '{connector}' is unavailable: {detail}")]
    Blocked {
        /// Connector name.
        connector: String,
        /// What was refused, why, and what to do.
        detail: String,
    },
    /// The upstream no longer knows the session.
    #[error("connector '{connector}' no longer knows this session; initialize again")]
    SessionGone {
        /// Connector name.
        connector: String,
    },
    /// The gateway could not obtain its own credential for the connector (AUTH-8): a secret
    /// unreadable, a token endpoint down or refusing, no caller token to exchange. The
    /// connector is not called without it (fail closed).
    #[error("could not obtain a credential for connector '{connector}': {detail}")]
    Credential {
        /// Connector name.
        connector: String,
        /// What went wrong and what to fix.
        detail: String,
    },
}

impl UpstreamError {
    /// The JSON-RPC error code the client gets.
    pub fn code(&self) -> i64 {
        use crate::jsonrpc::code;
        match self {
            UpstreamError::Unavailable { .. }
            | UpstreamError::Blocked { .. }
            | UpstreamError::Credential { .. } => code::UPSTREAM_UNAVAILABLE,
            UpstreamError::Timeout { .. } => code::UPSTREAM_TIMEOUT,
            UpstreamError::Protocol { .. } => code::UPSTREAM_PROTOCOL,
            UpstreamError::SessionGone { .. } => code::SESSION,
        }
    }

    /// HTTP status of the upstream's answer, if any.
    pub fn status(&self) -> Option<u16> {
        match self {
            UpstreamError::Protocol { status, .. } => *status,
            _ => None,
        }
    }
}

/// Per-request context passed upstream.
#[derive(Debug, Clone, Default)]
pub struct RequestCtx {
    /// `traceparent` to send (AU-1).
    pub traceparent: Option<String>,
    /// The correlation id, sent as `X-Request-Id`.
    pub request_id: Option<String>,
    /// Headers of the client's request that the protocol defines and that must reach the
    /// upstream unchanged (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`).
    pub protocol_headers: Vec<(::http::HeaderName, ::http::HeaderValue)>,
    /// How long to wait for the answer.
    pub timeout: Duration,
    /// This request is the client's `initialize` (the upstream learns its session from the answer).
    pub initialize: bool,
    /// The caller's verified access token, for connectors whose credential is a token exchange
    /// (RFC 8693, AUTH-8): it goes to the connector's token service only, never to the
    /// connector. None: token exchange fails closed.
    pub subject_token: Option<portcullis_core::Secret>,
    /// When `subject_token` expires (seconds since the Unix epoch, the principal's
    /// `expires_at`); bounds how long an exchanged token is cached.
    pub subject_expires_at: Option<i64>,
    /// The answer's result will be inspected: read a JSON answer whole where it arrives (see
    /// [`crate::jsonrpc::upstream_parsed`]), so that it is parsed once.
    pub parse_result: bool,
}

/// The messages an upstream sends in answer to one request: any related server messages
/// (progress, elicitation...) and, last, the response. The channel closes after the response or
/// with an error.
pub type Exchange = mpsc::Receiver<Result<UpMsg, UpstreamError>>;

/// One message from an upstream with its head, read once where it arrived.
#[derive(Debug, Clone)]
pub struct UpMsg {
    /// The message's JSON text.
    pub bytes: Bytes,
    /// What it is.
    pub head: crate::jsonrpc::UpstreamHead,
    /// The message read whole, when the request asked for it ([`RequestCtx::parse_result`])
    /// and the message reads plainly: the result inspection takes it instead of parsing
    /// `bytes` again.
    pub parsed: Option<Box<serde_json::Map<String, serde_json::Value>>>,
}

impl UpMsg {
    /// A message whose head was read alone (nothing parsed whole).
    pub fn new(bytes: Bytes, head: crate::jsonrpc::UpstreamHead) -> Self {
        Self {
            bytes,
            head,
            parsed: None,
        }
    }
}

/// Server-initiated messages that are not tied to a request (or whose relation cannot be known)
/// go to the session's inbox, tagged with the connector's index.
pub type Inbox = mpsc::Sender<(usize, Bytes)>;

/// One MCP session with one connector.
pub trait Upstream: Send + Sync {
    /// Sends a request (`id` is its JSON id text) and returns what comes back.
    fn request<'a>(
        &'a self,
        id: &'a str,
        message: Bytes,
        ctx: &'a RequestCtx,
    ) -> BoxFuture<'a, Result<Exchange, UpstreamError>>;

    /// Sends a notification, or a response to a request the server made.
    fn send<'a>(
        &'a self,
        message: Bytes,
        ctx: &'a RequestCtx,
    ) -> BoxFuture<'a, Result<(), UpstreamError>>;

    /// Called once the client's `notifications/initialized` went through: open the server's
    /// message stream if the transport has one.
    fn initialized(&self) {}

    /// Records the protocol version this upstream negotiated, for transports that send it with
    /// every request.
    fn set_protocol_version(&self, _version: &str) {}

    /// Drops the bookkeeping of a request whose answer is no longer wanted (timed out).
    fn forget(&self, _id: &str) {}

    /// Ends the session (HTTP DELETE, or stop the child process).
    fn close(&self) -> BoxFuture<'_, ()>;
}
