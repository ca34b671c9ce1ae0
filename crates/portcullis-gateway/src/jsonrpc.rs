//! JSON-RPC 2.0 framing for MCP (IV-2): parsing and classifying client messages without
//! re-parsing their parameters, and the error answers the gateway itself gives.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

/// Standard JSON-RPC error codes, and the gateway's own in the server-error range.
pub mod code {
    /// Invalid JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// Not a valid JSON-RPC message.
    pub const INVALID_REQUEST: i64 = -32600;
    /// Unknown method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Invalid parameters.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Internal error.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// The connector did not answer in time.
    pub const UPSTREAM_TIMEOUT: i64 = -32001;
    /// The connector could not be reached.
    pub const UPSTREAM_UNAVAILABLE: i64 = -32002;
    /// The connector answered with something that is not MCP.
    pub const UPSTREAM_PROTOCOL: i64 = -32003;
    /// The session is unknown or closed.
    pub const SESSION: i64 = -32004;
    /// A limit was exceeded (body size, batch size, sessions).
    pub const LIMIT: i64 = -32005;
    /// The caller is not authenticated (HTTP 401 with a `WWW-Authenticate` challenge).
    pub const UNAUTHORIZED: i64 = -32006;
    /// The caller may not do this (HTTP 403: insufficient scope, or refused by policy).
    pub const FORBIDDEN: i64 = -32007;
}

/// A JSON-RPC id, kept as the raw JSON text so it is returned byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Id(pub Box<str>);

impl Id {
    /// The id as JSON text (`1`, `"abc"`).
    pub fn json(&self) -> &str {
        &self.0
    }

    /// `null`, for errors about messages whose id could not be read.
    pub fn null() -> Self {
        Id("null".into())
    }
}

/// What a message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A request: method and id.
    Request,
    /// A notification: method, no id.
    Notification,
    /// A response to a request the server sent (result or error, and id).
    Response,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<String>,
    #[serde(borrow)]
    params: Option<&'a RawValue>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// One client message, classified; `raw` is its exact JSON text.
#[derive(Debug, Clone)]
pub struct Message {
    /// What it is.
    pub kind: Kind,
    /// The id (requests and responses).
    pub id: Option<Id>,
    /// The method (requests and notifications).
    pub method: Option<String>,
    /// The params as raw JSON.
    pub params: Option<Box<RawValue>>,
    /// The message's JSON text, one line (newlines between tokens replaced by spaces).
    pub raw: Bytes,
}

/// Why a message was refused, with the id to answer to when it could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The id, or null.
    pub id: Id,
    /// JSON-RPC error code.
    pub code: i64,
    /// What was wrong.
    pub message: String,
}

/// A client body: one message or a batch.
#[derive(Debug)]
pub enum Body {
    /// One message.
    Single(Result<Message, Invalid>),
    /// A batch, in order.
    Batch(Vec<Result<Message, Invalid>>),
}

/// Reasons a whole body is refused before any message is looked at.
#[derive(Debug, Clone, PartialEq)]
pub enum BodyError {
    /// Not JSON at all.
    Parse(String),
    /// An empty array.
    EmptyBatch,
    /// Too many messages in one batch.
    BatchTooLarge {
        /// How many were sent.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// JSON, but neither an object nor an array.
    NotAnObjectOrArray,
}

impl BodyError {
    /// The JSON-RPC error answering it.
    pub fn to_error(&self) -> (i64, String) {
        match self {
            BodyError::Parse(e) => (
                code::PARSE_ERROR,
                format!("the body is not valid JSON: {e}"),
            ),
            BodyError::EmptyBatch => (
                code::INVALID_REQUEST,
                "an empty batch is not a valid JSON-RPC request".into(),
            ),
            BodyError::BatchTooLarge { found, limit } => (
                code::INVALID_REQUEST,
                format!(
                    "a batch of {found} messages exceeds the limit of {limit}; send fewer messages per request"
                ),
            ),
            BodyError::NotAnObjectOrArray => (
                code::INVALID_REQUEST,
                "a JSON-RPC body must be an object (one message) or an array (a batch)".into(),
            ),
        }
    }
}

/// Replaces line breaks outside strings (the only place JSON allows raw ones) with spaces, so the
/// message is one line for newline-delimited transports.
fn one_line(raw: &str) -> Bytes {
    if !raw.bytes().any(|b| b == b'\n' || b == b'\r') {
        return Bytes::copy_from_slice(raw.as_bytes());
    }
    Bytes::from(raw.replace(['\n', '\r'], " "))
}

fn classify(raw: &RawValue) -> Result<Message, Invalid> {
    let env: Envelope = serde_json::from_str(raw.get()).map_err(|e| Invalid {
        id: Id::null(),
        code: code::INVALID_REQUEST,
        message: format!("not a JSON-RPC message: {e}"),
    })?;
    let id = match env.id {
        None => None,
        Some(v) => {
            let t = v.get();
            let ok = t.starts_with('"') || t.starts_with('-') || t.as_bytes()[0].is_ascii_digit();
            if !ok {
                return Err(Invalid {
                    id: Id::null(),
                    code: code::INVALID_REQUEST,
                    message: format!("`id` must be a string or a number, found {t}"),
                });
            }
            Some(Id(t.into()))
        }
    };
    let invalid = |message: String| Invalid {
        id: id.clone().unwrap_or_else(Id::null),
        code: code::INVALID_REQUEST,
        message,
    };
    if env.jsonrpc.map(|v| v.get()) != Some("\"2.0\"") {
        return Err(invalid("`jsonrpc` must be \"2.0\"".into()));
    }
    if let (Some(_), Some(Id(t))) = (&env.method, &id)
        && t.starts_with("\"portcullis:")
    {
        // Ids with this prefix are the gateway's own (requests it makes upstream).
        return Err(invalid(
            "ids starting with \"portcullis:\" are reserved by the gateway".into(),
        ));
    }
    let kind =
        match (
            &env.method,
            &id,
            env.result.is_some() || env.error.is_some(),
        ) {
            (Some(_), Some(_), false) => Kind::Request,
            (Some(_), None, false) => Kind::Notification,
            (None, Some(_), true) => Kind::Response,
            (Some(_), _, true) => {
                return Err(invalid(
                    "a message cannot have both `method` and `result`/`error`".into(),
                ));
            }
            (None, None, true) => {
                return Err(invalid(
                    "a response needs the `id` of the request it answers".into(),
                ));
            }
            (None, _, false) => return Err(invalid(
                "a message needs `method` (request or notification) or `result`/`error` (response)"
                    .into(),
            )),
        };
    if let Some(m) = &env.method
        && (m.is_empty() || m.len() > 128)
    {
        return Err(invalid("`method` must be 1 to 128 characters".into()));
    }
    if let Some(p) = env.params
        && !(p.get().starts_with('{') || p.get().starts_with('['))
    {
        return Err(Invalid {
            id: id.clone().unwrap_or_else(Id::null),
            code: code::INVALID_PARAMS,
            message: "`params` must be an object or an array".into(),
        });
    }
    Ok(Message {
        kind,
        id,
        method: env.method,
        params: env.params.map(|p| p.to_owned()),
        raw: one_line(raw.get()),
    })
}

/// Parses a POST body into messages, enforcing the batch limit.
pub fn parse_body(body: &[u8], max_batch: usize) -> Result<Body, BodyError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    match first {
        Some(b'[') => {
            let items: Vec<&RawValue> =
                serde_json::from_slice(body).map_err(|e| BodyError::Parse(e.to_string()))?;
            if items.is_empty() {
                return Err(BodyError::EmptyBatch);
            }
            if items.len() > max_batch {
                return Err(BodyError::BatchTooLarge {
                    found: items.len(),
                    limit: max_batch,
                });
            }
            Ok(Body::Batch(items.into_iter().map(classify).collect()))
        }
        Some(b'{') => {
            let raw: &RawValue =
                serde_json::from_slice(body).map_err(|e| BodyError::Parse(e.to_string()))?;
            Ok(Body::Single(classify(raw)))
        }
        None => Err(BodyError::Parse("the body is empty".into())),
        Some(_) => match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
            Ok(_) => Err(BodyError::NotAnObjectOrArray),
            Err(e) => Err(BodyError::Parse(e.to_string())),
        },
    }
}

/// A JSON-RPC error response.
pub fn error_response(id: &Id, code: i64, message: &str) -> Bytes {
    let msg = serde_json::to_string(message).unwrap_or_else(|_| "\"error\"".into());
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{},"error":{{"code":{code},"message":{msg}}}}}"#,
        id.json()
    ))
}

/// A JSON-RPC result response with `result` given as JSON text.
pub fn result_response(id: &Id, result_json: &str) -> Bytes {
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":{},"result":{result_json}}}"#,
        id.json()
    ))
}

/// What the gateway needs to know of an upstream message.
#[derive(Debug, Clone, PartialEq)]
pub struct UpstreamHead {
    /// Request, notification or response.
    pub kind: Kind,
    /// Its id.
    pub id: Option<Id>,
    /// Its method.
    pub method: Option<String>,
    /// For error responses, the code.
    pub error_code: Option<i64>,
    /// For results, `isError: true` (a tool call that failed).
    pub tool_error: bool,
}

#[derive(Deserialize)]
struct ErrorCode {
    code: Option<i64>,
}

/// Reads the head of a message from an upstream; `None` when it is not a JSON-RPC message.
pub fn upstream_head(raw: &[u8]) -> Option<UpstreamHead> {
    // One pass over the message: large results are skipped once, not re-read per question.
    #[derive(Deserialize)]
    struct Head<'a> {
        #[serde(borrow)]
        id: Option<&'a RawValue>,
        method: Option<String>,
        result: Option<ResultHead>,
        error: Option<ErrorCode>,
    }
    #[derive(Deserialize)]
    struct ResultHead {
        #[serde(rename = "isError")]
        is_error: Option<bool>,
    }
    let h: Head = serde_json::from_slice(raw).ok()?;
    let tool_error = h.result.as_ref().and_then(|r| r.is_error).unwrap_or(false);
    let id =
        h.id.filter(|v| v.get() != "null")
            .map(|v| Id(v.get().into()));
    let kind = match (&h.method, &id) {
        (Some(_), Some(_)) => Kind::Request,
        (Some(_), None) => Kind::Notification,
        (None, _) if h.result.is_some() || h.error.is_some() => Kind::Response,
        _ => return None,
    };
    Some(UpstreamHead {
        kind,
        id,
        method: h.method,
        error_code: h.error.map(|e| e.code.unwrap_or(0)),
        tool_error,
    })
}

/// An upstream message read whole, once: its head and the message as a JSON object.
pub type ParsedMessage = (UpstreamHead, serde_json::Map<String, serde_json::Value>);

/// Reads an upstream message whole in one pass, for an answer whose result is inspected: the
/// inspection needs the whole value, and reading the head first (which has to skip over the
/// whole result) and then the value read a large result twice.
///
/// `None` whenever the message is not a plain JSON object whose members the head reads the way
/// [`upstream_head`] does (a duplicate member, a `result` or `error` that is not an object, a
/// `method` that is not a string, an `isError` that is not a boolean...): the caller then
/// reads the head with [`upstream_head`], so every such message is judged exactly as before
/// (IV-2: a malformed answer is still refused with a clear error, never half-read).
pub fn upstream_parsed(raw: &[u8]) -> Option<ParsedMessage> {
    use serde_json::Value;
    let Whole { id, map } = serde_json::from_slice(raw).ok()?;
    let method = match map.get("method") {
        None | Some(Value::Null) => None,
        Some(Value::String(m)) => Some(m.clone()),
        Some(_) => return None,
    };
    let tool_error = match map.get("result") {
        None | Some(Value::Null) => None,
        Some(Value::Object(r)) => match r.get("isError") {
            None | Some(Value::Null) => Some(false),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return None,
        },
        Some(_) => return None,
    };
    let error_code = match map.get("error") {
        None | Some(Value::Null) => None,
        Some(Value::Object(e)) => match e.get("code") {
            None | Some(Value::Null) => Some(0),
            Some(c) => Some(c.as_i64()?),
        },
        Some(_) => return None,
    };
    let id = id.filter(|v| v.get() != "null").map(|v| Id(v.get().into()));
    let kind = match (&method, &id) {
        (Some(_), Some(_)) => Kind::Request,
        (Some(_), None) => Kind::Notification,
        (None, _) if tool_error.is_some() || error_code.is_some() => Kind::Response,
        _ => return None,
    };
    let head = UpstreamHead {
        kind,
        id,
        method,
        error_code,
        tool_error: tool_error.unwrap_or(false),
    };
    Some((head, map))
}

/// A JSON object read into a map, with the raw text of its `id` kept (an id is returned byte
/// for byte); a member given twice is refused, as the head's own reading refuses it.
struct Whole<'a> {
    id: Option<&'a RawValue>,
    map: serde_json::Map<String, serde_json::Value>,
}

impl<'de> Deserialize<'de> for Whole<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Whole<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON-RPC message object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut a: A,
            ) -> Result<Whole<'de>, A::Error> {
                use serde::de::Error;
                let mut id: Option<&'de RawValue> = None;
                let mut map = serde_json::Map::new();
                while let Some(key) = a.next_key::<String>()? {
                    if map.contains_key(&key) {
                        return Err(A::Error::custom(format_args!("duplicate member `{key}`")));
                    }
                    let value = if key == "id" {
                        let raw: &'de RawValue = a.next_value()?;
                        id = Some(raw);
                        serde_json::from_str(raw.get()).map_err(A::Error::custom)?
                    } else {
                        a.next_value()?
                    };
                    map.insert(key, value);
                }
                Ok(Whole { id, map })
            }
        }
        d.deserialize_map(Members)
    }
}

/// Whether a `tools/call` result has `isError: true`.
pub fn tool_result_is_error(raw: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct R {
        result: Option<IsError>,
    }
    #[derive(Deserialize)]
    struct IsError {
        #[serde(rename = "isError")]
        is_error: Option<bool>,
    }
    serde_json::from_slice::<R>(raw)
        .ok()
        .and_then(|r| r.result)
        .and_then(|r| r.is_error)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(s: &str) -> Result<Message, Invalid> {
        match parse_body(s.as_bytes(), 10).unwrap() {
            Body::Single(m) => m,
            Body::Batch(_) => panic!("batch"),
        }
    }

    #[test]
    fn classifies_requests_notifications_and_responses() {
        let m = single(r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#).unwrap();
        assert_eq!(
            (m.kind, m.id.unwrap().json().to_string()),
            (Kind::Request, "7".to_string())
        );
        let m = single(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).unwrap();
        assert_eq!(m.kind, Kind::Notification);
        let m = single(r#"{"jsonrpc":"2.0","id":"a","result":{}}"#).unwrap();
        assert_eq!(m.kind, Kind::Response);
    }

    #[test]
    fn malformed_json_is_a_parse_error() {
        assert!(matches!(
            parse_body(b"{\"jsonrpc\":", 10),
            Err(BodyError::Parse(_))
        ));
        assert!(matches!(parse_body(b"", 10), Err(BodyError::Parse(_))));
        assert_eq!(
            parse_body(b"42", 10).unwrap_err(),
            BodyError::NotAnObjectOrArray
        );
    }

    #[test]
    fn invalid_json_rpc_is_named() {
        let e = single(r#"{"id":1,"method":"x"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_REQUEST);
        assert!(e.message.contains("jsonrpc"));
        assert_eq!(e.id.json(), "1");
        let e = single(r#"{"jsonrpc":"2.0","id":{},"method":"x"}"#).unwrap_err();
        assert!(e.message.contains("`id` must be"));
        let e = single(r#"{"jsonrpc":"2.0","id":1}"#).unwrap_err();
        assert!(e.message.contains("needs `method`"));
        let e = single(r#"{"jsonrpc":"2.0","id":1,"method":"x","params":3}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_PARAMS);
        let e = single(r#"{"jsonrpc":"2.0","id":"portcullis:1","method":"x"}"#).unwrap_err();
        assert!(e.message.contains("reserved"));
    }

    #[test]
    fn batches_are_limited() {
        assert_eq!(parse_body(b"[]", 10).unwrap_err(), BodyError::EmptyBatch);
        let big = format!("[{}]", [r#"{"jsonrpc":"2.0","method":"x"}"#; 11].join(","));
        assert_eq!(
            parse_body(big.as_bytes(), 10).unwrap_err(),
            BodyError::BatchTooLarge {
                found: 11,
                limit: 10
            }
        );
        let ok = format!("[{}]", [r#"{"jsonrpc":"2.0","method":"x"}"#; 3].join(","));
        assert!(matches!(parse_body(ok.as_bytes(), 10).unwrap(), Body::Batch(v) if v.len() == 3));
    }

    #[test]
    fn raw_is_one_line() {
        let m = single("{\"jsonrpc\":\"2.0\",\n\"id\":1,\r\n\"method\":\"ping\"}").unwrap();
        assert!(!m.raw.contains(&b'\n'));
        assert!(serde_json::from_slice::<serde_json::Value>(&m.raw).is_ok());
    }

    /// The one-pass reading gives the head [`upstream_head`] gives, and the message as a full
    /// parse reads it; whatever it does not read plainly is left to `upstream_head` (`None`).
    #[test]
    fn a_message_read_whole_has_the_head_read_alone() {
        let plain = [
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"a \"quoted\" word"}]}}"#,
            r#"{"jsonrpc":"2.0","id":"a\u0041","result":{"isError":true,"content":[]}}"#,
            r#"{"result":{"isError":false},"id":7,"jsonrpc":"2.0"}"#,
            r#"{"jsonrpc":"2.0","id":2,"result":{"isError":null}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"message":"no code"}}"#,
            r#"{"jsonrpc":"2.0","id":3,"error":{"code":null}}"#,
            r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"sampling/createMessage","params":{}}"#,
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":5,"result":{},"extra":[1,2]}"#,
            r#" { "id" : 1.0 , "result" : { } } "#,
        ];
        for raw in plain {
            let (head, map) = upstream_parsed(raw.as_bytes()).unwrap_or_else(|| panic!("{raw}"));
            assert_eq!(Some(head), upstream_head(raw.as_bytes()), "{raw}");
            let whole: serde_json::Value = serde_json::from_str(raw).unwrap();
            assert_eq!(serde_json::Value::Object(map), whole, "{raw}");
        }
        // Not read plainly: the caller falls back to `upstream_head`, whatever it says.
        let odd = [
            r#"{"jsonrpc":"2.0","id":1,"result":{},"result":{"isError":true}}"#,
            r#"{"jsonrpc":"2.0","id":1,"id":2,"result":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":[true]}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{"isError":"yes"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":[5]}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":1.5}}"#,
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":18446744073709551615}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":5}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            r#"[1,null,{},null]"#,
            r#"{"jsonrpc":"2.0","id":1,"result":{}} trailing"#,
            "garbage",
        ];
        for raw in odd {
            assert!(upstream_parsed(raw.as_bytes()).is_none(), "{raw}");
        }
    }

    #[test]
    fn upstream_heads_and_tool_errors() {
        let h = upstream_head(br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"x"}}"#)
            .unwrap();
        assert_eq!((h.kind, h.error_code), (Kind::Response, Some(-32601)));
        let h = upstream_head(
            br#"{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{}}"#,
        )
        .unwrap();
        assert_eq!(h.kind, Kind::Request);
        assert!(upstream_head(b"garbage").is_none());
        assert!(tool_result_is_error(
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"isError":true}}"#
        ));
        assert!(!tool_result_is_error(
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[]}}"#
        ));
    }

    #[test]
    fn error_response_escapes_the_message() {
        let r = error_response(&Id("1".into()), -1, "bad \"thing\"\n");
        let v: serde_json::Value = serde_json::from_slice(&r).unwrap();
        assert_eq!(v["error"]["message"], "bad \"thing\"\n");
    }
}
