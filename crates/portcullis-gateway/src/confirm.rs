//! Human confirmation of calls (HC-1, HC-2, HC-3). A call that policy lets through only once a
//! person confirms it is put to a human before it is forwarded: by MCP elicitation when the
//! client declared it can answer one (the person at the client sees the action and its
//! arguments in plain words), otherwise by parking it in the approval queue, where an approver
//! decides with `portcullis approvals approve|deny` (or a webhook tells them to) before it times
//! out, which denies it. A confirmation covers exactly one call: the tool and its arguments,
//! hashed, used once.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use portcullis_core::Clock;
use portcullis_store::Store;
use portcullis_store::approvals::ApprovalRow;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::session::LiveSession;

/// The exact call a confirmation is bound to (HC-3): SHA-256 over the connector, the tool and
/// the arguments in canonical JSON (keys sorted).
pub fn call_hash(connector: &str, tool: &str, arguments: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(connector.as_bytes());
    h.update([0]);
    h.update(tool.as_bytes());
    h.update([0]);
    // serde_json's map is ordered by key, so equal arguments serialise equally.
    h.update(arguments.to_string().as_bytes());
    hex::encode(h.finalize())
}

/// Longest shown value of one argument; the rest is elided so a summary stays readable.
const MAX_SHOWN_VALUE: usize = 200;

/// The call in plain words, for the person who confirms it: what, where, with which arguments.
pub fn describe_call(connector: &str, tool: &str, arguments: &serde_json::Value) -> String {
    let mut out = format!("Run the tool \"{tool}\" of the connector \"{connector}\"");
    match arguments.as_object() {
        Some(m) if !m.is_empty() => {
            out.push_str(" with ");
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| {
                    let mut shown = match v {
                        serde_json::Value::String(s) => format!("{s:?}"),
                        other => other.to_string(),
                    };
                    if shown.len() > MAX_SHOWN_VALUE {
                        let mut cut = MAX_SHOWN_VALUE;
                        while !shown.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        shown.truncate(cut);
                        shown.push('…');
                    }
                    format!("{k} = {shown}")
                })
                .collect();
            out.push_str(&parts.join(", "));
        }
        _ => out.push_str(" with no arguments"),
    }
    out
}

/// What became of a confirmation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Confirmation {
    /// A person confirmed; who, as far as the gateway knows.
    Confirmed {
        /// `elicitation:<subject>` or the approver's name.
        by: String,
    },
    /// A person refused.
    Refused {
        /// Who refused, and why when they said.
        detail: String,
    },
    /// Nobody decided in time (denied, HC-2).
    TimedOut,
    /// The confirmation could not be asked (denied: fail closed).
    Failed(String),
}

/// Asks the client's user by elicitation (form mode) and waits for the answer, at most `wait`.
/// `tx` is the call's SSE stream, on which the request goes out.
pub async fn elicit(
    session: &LiveSession,
    tx: &mpsc::Sender<Bytes>,
    subject: &str,
    description: &str,
    wait: Duration,
) -> Confirmation {
    let (id, answer) = session.ask_client();
    let request = serde_json::json!({
        "jsonrpc": "2.0",
        "id": id,
        "method": "elicitation/create",
        "params": {
            "mode": "form",
            "message": format!("Portcullis asks you to confirm this action before it runs:\n{description}\nIt may not be reversible."),
            "requestedSchema": {
                "type": "object",
                "properties": {
                    "confirm": {
                        "type": "boolean",
                        "title": "Run it",
                        "description": "Allow this one call, with exactly these arguments",
                    }
                },
                "required": ["confirm"],
            },
        },
    });
    if tx.send(Bytes::from(request.to_string())).await.is_err() {
        return Confirmation::Failed("the client closed the stream before it was asked".into());
    }
    let v = match tokio::time::timeout(wait, answer).await {
        Err(_) => return Confirmation::TimedOut,
        Ok(Err(_)) => return Confirmation::Failed("the confirmation request was dropped".into()),
        Ok(Ok(v)) => v,
    };
    if let Some(e) = v.get("error") {
        return Confirmation::Failed(format!("the client could not ask: {e}"));
    }
    let result = v.get("result").cloned().unwrap_or_default();
    let action = result.get("action").and_then(|a| a.as_str()).unwrap_or("");
    let confirmed = result
        .pointer("/content/confirm")
        .and_then(|c| c.as_bool())
        .unwrap_or(false);
    match (action, confirmed) {
        ("accept", true) => Confirmation::Confirmed {
            by: format!("elicitation:{subject}"),
        },
        ("accept", false) => Confirmation::Refused {
            detail: format!("{subject} answered no"),
        },
        ("decline", _) => Confirmation::Refused {
            detail: format!("{subject} declined"),
        },
        _ => Confirmation::Refused {
            detail: format!("{subject} cancelled the confirmation"),
        },
    }
}

/// The approval queue (HC-2): calls parked in the store until an approver decides.
#[derive(Clone)]
pub struct ApprovalQueue {
    /// Where entries are kept (the gateway's database, shared with the CLI and other replicas).
    pub store: Store,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// How long a call waits before it is denied.
    pub timeout: Duration,
    /// How often the store is checked for a decision while a call waits.
    pub poll: Duration,
    /// Told of each parked call (JSON POST), when set.
    pub webhook: Option<http::Uri>,
}

/// A call to park.
pub struct ParkedCall<'a> {
    /// Who made it.
    pub principal: &'a str,
    /// Through which client.
    pub client: &'a str,
    /// Connector.
    pub connector: &'a str,
    /// Tool.
    pub tool: &'a str,
    /// [`call_hash`] of it.
    pub call_hash: &'a str,
    /// [`describe_call`] of it.
    pub summary: &'a str,
    /// The call's correlation id.
    pub correlation_id: &'a str,
}

impl ApprovalQueue {
    fn now_us(&self) -> i64 {
        self.clock.now().timestamp_micros()
    }

    /// Parks a call; returns its approval id.
    pub async fn park(&self, call: &ParkedCall<'_>) -> Result<String, String> {
        let id = format!("apr_{:032x}", rand::random::<u128>());
        let now = self.now_us();
        let row = ApprovalRow {
            id: id.clone(),
            created_us: now,
            expires_us: now + self.timeout.as_micros() as i64,
            principal: call.principal.into(),
            client: call.client.into(),
            connector: call.connector.into(),
            tool: call.tool.into(),
            call_hash: call.call_hash.into(),
            summary: call.summary.into(),
            correlation_id: call.correlation_id.into(),
            status: "pending".into(),
            decided_by: None,
            decided_us: None,
            reason: None,
            used_us: None,
        };
        self.store
            .insert_approval(&row)
            .await
            .map_err(|e| e.to_string())?;
        Ok(id)
    }

    /// Waits for a decision on `id` (at most the queue's timeout, then the entry expires); an
    /// approval is used for exactly the call it is bound to, once.
    pub async fn wait(&self, id: &str, call_hash: &str) -> Confirmation {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut tick = tokio::time::interval(self.poll);
        loop {
            tick.tick().await;
            let row = match self.store.approval(id).await {
                Ok(Some(r)) => r,
                Ok(None) => return Confirmation::Failed(format!("approval {id} vanished")),
                Err(e) => return Confirmation::Failed(e.to_string()),
            };
            match row.status.as_str() {
                "approved" => {
                    return match self.store.use_approval(id, call_hash, self.now_us()).await {
                        Ok(true) => Confirmation::Confirmed {
                            by: row.decided_by.unwrap_or_default(),
                        },
                        Ok(false) => Confirmation::Failed(format!(
                            "approval {id} does not match this call or was used already"
                        )),
                        Err(e) => Confirmation::Failed(e.to_string()),
                    };
                }
                "denied" => {
                    let mut detail = format!("denied by {}", row.decided_by.unwrap_or_default());
                    if let Some(r) = row.reason {
                        detail.push_str(&format!(": {r}"));
                    }
                    return Confirmation::Refused { detail };
                }
                "expired" => return Confirmation::TimedOut,
                _ => {}
            }
            if tokio::time::Instant::now() >= deadline || row.expires_us <= self.now_us() {
                let _ = self.store.expire_approvals(self.now_us()).await;
                return Confirmation::TimedOut;
            }
        }
    }
}
