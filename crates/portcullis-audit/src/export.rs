//! Export for SIEMs (AU-6): JSON lines, OCSF (API Activity, class 6003) and CSV. The same
//! renderers feed the live sinks, so a file sink and an export produce the same lines.

use std::io::Write;

use portcullis_core::{Decision, Event, Outcome};
use portcullis_store::Store;
use portcullis_store::audit::EventQuery;
use serde_json::{Value, json};

use crate::canonical;
use crate::{AuditError, EventFilter};

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// One Portcullis event as JSON per line, with its `seq`.
    Jsonl,
    /// One OCSF API Activity event per line.
    Ocsf,
    /// Comma-separated values with a header row.
    Csv,
}

impl std::str::FromStr for Format {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self, AuditError> {
        match s {
            "jsonl" => Ok(Self::Jsonl),
            "ocsf" => Ok(Self::Ocsf),
            "csv" => Ok(Self::Csv),
            other => Err(AuditError::Config(format!(
                "unknown export format {other:?}; use jsonl, ocsf or csv"
            ))),
        }
    }
}

/// The OCSF schema version the `ocsf` format follows.
pub const OCSF_VERSION: &str = "1.5.0";
/// OCSF category "Application Activity".
pub const OCSF_CATEGORY_UID: u32 = 6;
/// OCSF class "API Activity".
pub const OCSF_CLASS_UID: u32 = 6003;

/// An event as one JSON object: the event's own fields plus `seq`.
pub fn to_json(seq: i64, e: &Event) -> Value {
    let mut v = serde_json::to_value(e).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("seq".into(), json!(seq));
    }
    v
}

fn activity_id(method: Option<&str>) -> u32 {
    // API Activity knows Create/Read/Update/Delete; MCP listing and reading are reads, a tool call
    // can be anything (99, Other), the rest is Unknown (0).
    match method {
        Some(m)
            if m.ends_with("/list")
                || m == "resources/read"
                || m == "prompts/get"
                || m == "initialize" =>
        {
            2
        }
        Some("tools/call") => 99,
        _ => 0,
    }
}

/// An event as an OCSF API Activity (class 6003) object.
pub fn to_ocsf(seq: i64, e: &Event) -> Value {
    let activity = activity_id(e.method.as_deref());
    let (status_id, status) = match &e.outcome {
        Outcome::Ok { tool_error: false } if e.decision != Decision::Deny => (1, "Success"),
        _ => (2, "Failure"),
    };
    let (disposition_id, disposition) = match e.decision {
        Decision::Allow => (1, "Allowed"),
        Decision::Redact => (15, "Modified"),
        Decision::Confirm => (9, "Delayed"),
        Decision::Deny => (2, "Blocked"),
    };
    let severity_id = match e.decision {
        Decision::Allow => 1,
        Decision::Redact | Decision::Confirm => 2,
        Decision::Deny => 3,
    };
    let mut response = serde_json::Map::new();
    match &e.outcome {
        Outcome::Ok { tool_error } => {
            response.insert("code".into(), json!(0));
            if *tool_error {
                response.insert("error".into(), json!("tool_error"));
            }
        }
        Outcome::Error { code, origin } => {
            response.insert("code".into(), json!(code));
            response.insert(
                "error".into(),
                json!(format!("jsonrpc_error from {origin}")),
            );
        }
        Outcome::HttpError { status } => {
            response.insert("code".into(), json!(status));
            response.insert("error".into(), json!("http_error"));
        }
        Outcome::Cancelled => {
            response.insert("error".into(), json!("cancelled"));
        }
    }
    response.insert("length".into(), json!(e.response_bytes));
    let mut actor = serde_json::Map::new();
    if let Some(p) = &e.principal {
        actor.insert("user".into(), json!({ "uid": p, "name": p }));
    }
    if let Some(c) = &e.client {
        actor.insert("app_name".into(), json!(c));
    }
    if let Some(s) = &e.session {
        actor.insert("session".into(), json!({ "uid": s }));
    }
    let mut src = serde_json::Map::new();
    if let Some(s) = &e.source {
        // The source is `ip` or `ip:port`; OCSF wants them apart.
        match s.parse::<std::net::SocketAddr>() {
            Ok(a) => {
                src.insert("ip".into(), json!(a.ip().to_string()));
                src.insert("port".into(), json!(a.port()));
            }
            Err(_) => {
                src.insert("ip".into(), json!(s));
            }
        }
    }
    let mut resources = Vec::new();
    if let Some(t) = &e.target {
        resources.push(json!({ "name": t, "type": "mcp_target", "group": { "name": e.connector.clone().unwrap_or_default() } }));
    }
    json!({
        "activity_id": activity,
        "activity_name": match activity { 2 => "Read", 99 => "Other", _ => "Unknown" },
        "category_uid": OCSF_CATEGORY_UID,
        "category_name": "Application Activity",
        "class_uid": OCSF_CLASS_UID,
        "class_name": "API Activity",
        "type_uid": OCSF_CLASS_UID * 100 + activity,
        "time": e.time.timestamp_millis(),
        "severity_id": severity_id,
        "status_id": status_id,
        "status": status,
        "disposition_id": disposition_id,
        "disposition": disposition,
        "duration": e.latency_us / 1000,
        "message": format!("{} {} {}", canonical::decision_str(e.decision), e.method.as_deref().unwrap_or("-"), e.target.as_deref().unwrap_or("-")),
        "metadata": {
            "version": OCSF_VERSION,
            "product": { "name": "Portcullis", "vendor_name": "Portcullis", "version": env!("CARGO_PKG_VERSION") },
            "uid": e.id.to_string(),
            "correlation_uid": e.correlation_id.as_str(),
            "sequence": seq,
            "log_name": "audit",
        },
        "actor": Value::Object(actor),
        "api": {
            "operation": e.method.clone().unwrap_or_else(|| canonical::kind_str(e.kind).to_string()),
            "service": { "name": e.connector.clone().unwrap_or_else(|| "portcullis".into()) },
            "request": { "uid": e.correlation_id.as_str() },
            "response": Value::Object(response),
        },
        "src_endpoint": Value::Object(src),
        "resources": resources,
        "http_response": e.upstream_status.map(|s| json!({ "code": s })),
        "unmapped": {
            "reasons": e.reasons,
            "findings": e.findings,
            "request_bytes": e.request_bytes,
        },
    })
}

/// The CSV header.
pub const CSV_HEADER: &str = "seq,time,id,correlation_id,kind,principal,client,source,session,connector,method,target,decision,reasons,finding_kinds,outcome,upstream_status,request_bytes,response_bytes,latency_us";

fn csv_cell(out: &mut String, s: &str) {
    // A cell a spreadsheet would run as a formula is prefixed with a quote (CSV injection:
    // principals and tool names come from outside).
    let guarded = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&guarded.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&guarded);
    }
}

/// An event as one CSV line (no newline).
pub fn to_csv(seq: i64, e: &Event) -> String {
    let kinds: Vec<&str> = e.findings.iter().map(|f| f.kind.as_str()).collect();
    let cells: [String; 20] = [
        seq.to_string(),
        e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        e.id.to_string(),
        e.correlation_id.as_str().to_string(),
        canonical::kind_str(e.kind).to_string(),
        e.principal.clone().unwrap_or_default(),
        e.client.clone().unwrap_or_default(),
        e.source.clone().unwrap_or_default(),
        e.session.clone().unwrap_or_default(),
        e.connector.clone().unwrap_or_default(),
        e.method.clone().unwrap_or_default(),
        e.target.clone().unwrap_or_default(),
        canonical::decision_str(e.decision).to_string(),
        e.reasons.join(" "),
        kinds.join(" "),
        serde_json::to_string(&e.outcome).unwrap_or_default(),
        e.upstream_status.map(|s| s.to_string()).unwrap_or_default(),
        e.request_bytes.to_string(),
        e.response_bytes.to_string(),
        e.latency_us.to_string(),
    ];
    let mut out = String::with_capacity(256);
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_cell(&mut out, c);
    }
    out
}

/// One line of `format` for an event.
pub fn render(format: Format, seq: i64, e: &Event) -> String {
    match format {
        Format::Jsonl => to_json(seq, e).to_string(),
        Format::Ocsf => to_ocsf(seq, e).to_string(),
        Format::Csv => to_csv(seq, e),
    }
}

/// Streams every event matching `filter` to `out` in `format`, page by page (the log may be
/// larger than memory). Returns the number of events written.
pub async fn export(
    store: &Store,
    filter: &EventFilter,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64, AuditError> {
    let io = |e: std::io::Error| AuditError::Config(format!("cannot write the export: {e}"));
    let base: EventQuery = filter.to_query()?;
    let total_limit = base.limit;
    if format == Format::Csv {
        writeln!(out, "{CSV_HEADER}").map_err(io)?;
    }
    let mut after = None;
    let mut n: u64 = 0;
    loop {
        let page = 10_000i64.min(total_limit.map(|l| l - n as i64).unwrap_or(i64::MAX));
        if page <= 0 {
            break;
        }
        let q = EventQuery {
            after_seq: after,
            limit: Some(page),
            ..base.clone()
        };
        let rows = store.search_events(&q).await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            let e = canonical::from_row(r).map_err(|detail| AuditError::Damaged {
                location: store.location().to_string(),
                seq: r.seq,
                detail,
            })?;
            writeln!(out, "{}", render(format, r.seq, &e)).map_err(io)?;
            n += 1;
        }
        after = rows.last().map(|r| r.seq);
    }
    out.flush().map_err(io)?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::{CorrelationId, EventKind};

    fn ev() -> Event {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 5_000_000).unwrap();
        let mut e = Event::new(
            t,
            CorrelationId::from_request_id("r-1").unwrap(),
            EventKind::McpRequest,
        );
        e.principal = Some("=cmd|' /C calc'!A0".into());
        e.target = Some("search, \"quoted\"".into());
        e.method = Some("tools/call".into());
        e.source = Some("127.0.0.1:5000".into());
        e
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let line = to_csv(1, &ev());
        assert!(line.contains("'=cmd|' /C calc'!A0"), "{line}");
        assert!(line.contains("\"search, \"\"quoted\"\"\""), "{line}");
        assert_eq!(CSV_HEADER.split(',').count(), 20);
    }

    #[test]
    fn ocsf_has_the_api_activity_required_fields() {
        let v = to_ocsf(7, &ev());
        for f in [
            "activity_id",
            "category_uid",
            "class_uid",
            "type_uid",
            "time",
            "severity_id",
            "metadata",
            "actor",
            "api",
            "src_endpoint",
        ] {
            assert!(v.get(f).is_some(), "missing {f}");
        }
        assert_eq!(v["class_uid"], 6003);
        assert_eq!(
            v["type_uid"],
            6003 * 100 + v["activity_id"].as_u64().unwrap()
        );
        assert_eq!(v["src_endpoint"]["ip"], "127.0.0.1");
        assert_eq!(v["src_endpoint"]["port"], 5000);
        assert_eq!(v["time"], 1_700_000_000_005i64);
    }
}
