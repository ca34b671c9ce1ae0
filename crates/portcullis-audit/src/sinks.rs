//! Live sinks (AU-6): committed events are copied to a rotated JSON-lines file, syslog (RFC 5424
//! over UDP or TCP with octet counting, RFC 6587), a webhook, or OpenTelemetry logs (OTLP/HTTP,
//! JSON encoding). Each sink has its own bounded buffer and task: a slow or dead sink retries
//! from its buffer, drops (and counts) only when the buffer is full, and never blocks the writer.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_core::{Decision, Event};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::export::{self, Format};
use crate::{AuditError, AuditMetrics};

/// Events a sink may hold while its destination is slow or down.
pub const SINK_BUFFER: usize = 10_000;
/// Attempts to deliver one batch before it is dropped and counted.
const SINK_ATTEMPTS: u32 = 5;
/// Most events per delivery.
const SINK_BATCH: usize = 500;

/// Transport for syslog.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyslogTransport {
    /// One datagram per message.
    #[default]
    Udp,
    /// A TCP stream, messages framed by octet counting (RFC 6587).
    Tcp,
}

/// Line format of the file sink.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineFormat {
    /// Portcullis JSON.
    #[default]
    Jsonl,
    /// OCSF API Activity JSON.
    Ocsf,
}

/// One live sink.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkConfig {
    /// JSON lines appended to a file, rotated by size.
    File {
        /// The file.
        path: PathBuf,
        /// Rotate when the file would grow past this.
        #[serde(default = "default_max_bytes")]
        max_bytes: u64,
        /// Rotated files kept (`path.1` newest ... `path.N`).
        #[serde(default = "default_keep")]
        keep: u32,
        /// Line format.
        #[serde(default)]
        format: LineFormat,
    },
    /// Syslog, RFC 5424.
    Syslog {
        /// `host:port`.
        address: String,
        /// UDP or TCP.
        #[serde(default)]
        transport: SyslogTransport,
        /// HOSTNAME field; `-` when unset.
        #[serde(default)]
        hostname: Option<String>,
    },
    /// HTTP POST of a JSON array of events.
    Webhook {
        /// `http://` or `https://` URL.
        url: String,
        /// Per-request timeout in milliseconds.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
    /// OpenTelemetry logs over OTLP/HTTP (JSON encoding), POSTed to `<endpoint>/v1/logs`.
    Otlp {
        /// Collector base URL, such as `http://127.0.0.1:4318`.
        endpoint: String,
        /// Per-request timeout in milliseconds.
        #[serde(default = "default_timeout_ms")]
        timeout_ms: u64,
    },
}

fn default_max_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_keep() -> u32 {
    5
}
fn default_timeout_ms() -> u64 {
    5000
}

impl SinkConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), AuditError> {
        let bad = |m: String| Err(AuditError::Config(m));
        match self {
            Self::File {
                path,
                max_bytes,
                keep,
                ..
            } => {
                if path.as_os_str().is_empty() {
                    return bad("file sink: path is empty".into());
                }
                if *max_bytes < 1024 {
                    return bad(format!(
                        "file sink {}: max_bytes {max_bytes} is below 1024",
                        path.display()
                    ));
                }
                if *keep == 0 || *keep > 1000 {
                    return bad(format!(
                        "file sink {}: keep must be 1 to 1000",
                        path.display()
                    ));
                }
            }
            Self::Syslog { address, .. } => {
                if address.parse::<std::net::SocketAddr>().is_err() && !address.contains(':') {
                    return bad(format!("syslog sink: address {address:?} is not host:port"));
                }
            }
            Self::Webhook { url, timeout_ms }
            | Self::Otlp {
                endpoint: url,
                timeout_ms,
            } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return bad(format!(
                        "sink URL {url:?} must start with http:// or https://"
                    ));
                }
                if *timeout_ms == 0 {
                    return bad(format!("sink {url}: timeout_ms must be positive"));
                }
            }
        }
        Ok(())
    }

    fn name(&self) -> String {
        match self {
            Self::File { path, .. } => format!("file:{}", path.display()),
            Self::Syslog {
                address, transport, ..
            } => format!("syslog:{transport:?}:{address}"),
            Self::Webhook { url, .. } => format!("webhook:{}", strip_credentials(url)),
            Self::Otlp { endpoint, .. } => format!("otlp:{}", strip_credentials(endpoint)),
        }
    }
}

fn strip_credentials(url: &str) -> String {
    match (url.split_once("://"), url.split_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_string(),
    }
}

/// A committed event as sinks receive it.
pub(crate) type Committed = Arc<(i64, Event)>;

/// The running sinks: one bounded queue and task each.
pub(crate) struct Sinks {
    senders: Vec<(String, mpsc::Sender<Committed>)>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    metrics: Arc<AuditMetrics>,
}

impl Sinks {
    pub(crate) fn start(configs: &[SinkConfig], metrics: Arc<AuditMetrics>) -> Self {
        let mut senders = Vec::new();
        let mut tasks = Vec::new();
        for c in configs {
            let (tx, rx) = mpsc::channel(SINK_BUFFER);
            senders.push((c.name(), tx));
            tasks.push(tokio::spawn(run_sink(c.clone(), rx, metrics.clone())));
        }
        Self {
            senders,
            tasks,
            metrics,
        }
    }

    /// Hands committed events to every sink without waiting.
    pub(crate) fn send(&self, events: &[Committed]) {
        for (name, tx) in &self.senders {
            for e in events {
                if tx.try_send(e.clone()).is_err() {
                    AuditMetrics::add(&self.metrics.sink_events_dropped, 1);
                    tracing::warn!(sink = %name, "audit sink buffer full; event dropped for this sink");
                }
            }
        }
    }

    /// Closes the queues and waits (bounded) for the sinks to deliver what they hold.
    pub(crate) async fn close(self) {
        drop(self.senders);
        for t in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), t)
                .await
                .is_err()
            {
                tracing::warn!("an audit sink did not drain within 10 s at shutdown");
            }
        }
    }
}

enum Conn {
    None,
    File(Option<std::fs::File>),
    Udp(Option<tokio::net::UdpSocket>),
    Tcp(Option<tokio::net::TcpStream>),
    Http(reqwest::Client),
}

async fn run_sink(cfg: SinkConfig, mut rx: mpsc::Receiver<Committed>, metrics: Arc<AuditMetrics>) {
    let name = cfg.name();
    let mut conn = match &cfg {
        SinkConfig::File { .. } => Conn::File(None),
        SinkConfig::Syslog {
            transport: SyslogTransport::Udp,
            ..
        } => Conn::Udp(None),
        SinkConfig::Syslog {
            transport: SyslogTransport::Tcp,
            ..
        } => Conn::Tcp(None),
        SinkConfig::Webhook { timeout_ms, .. } | SinkConfig::Otlp { timeout_ms, .. } => {
            match reqwest::Client::builder()
                .timeout(Duration::from_millis(*timeout_ms))
                .build()
            {
                Ok(c) => Conn::Http(c),
                Err(e) => {
                    tracing::error!(sink = %name, error = %e, "cannot build the HTTP client of an audit sink");
                    Conn::None
                }
            }
        }
    };
    let mut batch = Vec::with_capacity(SINK_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < SINK_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let mut delay = Duration::from_millis(100);
        let mut delivered = false;
        for attempt in 1..=SINK_ATTEMPTS {
            match deliver(&cfg, &mut conn, &batch).await {
                Ok(()) => {
                    delivered = true;
                    break;
                }
                Err(e) => {
                    AuditMetrics::add(&metrics.sink_failures, 1);
                    tracing::warn!(sink = %name, attempt, error = %e, "audit sink delivery failed; retrying");
                    if attempt < SINK_ATTEMPTS {
                        tokio::time::sleep(delay).await;
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        if delivered {
            AuditMetrics::add(&metrics.sink_events_sent, batch.len() as u64);
        } else {
            AuditMetrics::add(&metrics.sink_events_dropped, batch.len() as u64);
            tracing::error!(sink = %name, count = batch.len(), "audit sink gave up on a batch");
        }
        batch.clear();
    }
}

async fn deliver(cfg: &SinkConfig, conn: &mut Conn, batch: &[Committed]) -> Result<(), String> {
    match (cfg, conn) {
        (
            SinkConfig::File {
                path,
                max_bytes,
                keep,
                format,
            },
            Conn::File(file),
        ) => {
            let fmt = match format {
                LineFormat::Jsonl => Format::Jsonl,
                LineFormat::Ocsf => Format::Ocsf,
            };
            let mut text = String::new();
            for c in batch {
                text.push_str(&export::render(fmt, c.0, &c.1));
                text.push('\n');
            }
            let (path, max, keep) = (path.clone(), *max_bytes, *keep);
            let f = file.take();
            let r = tokio::task::spawn_blocking(move || {
                write_rotating(f, &path, max, keep, text.as_bytes())
            })
            .await
            .map_err(|e| e.to_string())?;
            match r {
                Ok(f) => {
                    *file = Some(f);
                    Ok(())
                }
                Err(e) => Err(e.to_string()),
            }
        }
        (
            SinkConfig::Syslog {
                address, hostname, ..
            },
            Conn::Udp(sock),
        ) => {
            if sock.is_none() {
                let target: std::net::SocketAddr = tokio::net::lookup_host(address)
                    .await
                    .map_err(|e| e.to_string())?
                    .next()
                    .ok_or("no address")?;
                let bind = if target.is_ipv4() {
                    "0.0.0.0:0"
                } else {
                    "[::]:0"
                };
                let s = tokio::net::UdpSocket::bind(bind)
                    .await
                    .map_err(|e| e.to_string())?;
                s.connect(target).await.map_err(|e| e.to_string())?;
                *sock = Some(s);
            }
            let s = sock.as_ref().ok_or("no socket")?;
            for c in batch {
                let m = syslog_message(c.0, &c.1, hostname.as_deref());
                if let Err(e) = s.send(m.as_bytes()).await {
                    *sock = None;
                    return Err(e.to_string());
                }
            }
            Ok(())
        }
        (
            SinkConfig::Syslog {
                address, hostname, ..
            },
            Conn::Tcp(stream),
        ) => {
            if stream.is_none() {
                *stream = Some(
                    tokio::net::TcpStream::connect(address)
                        .await
                        .map_err(|e| e.to_string())?,
                );
            }
            let mut buf = Vec::new();
            for c in batch {
                let m = syslog_message(c.0, &c.1, hostname.as_deref());
                buf.extend_from_slice(format!("{} ", m.len()).as_bytes());
                buf.extend_from_slice(m.as_bytes());
            }
            let s = stream.as_mut().ok_or("no stream")?;
            if let Err(e) = s.write_all(&buf).await {
                *stream = None;
                return Err(e.to_string());
            }
            Ok(())
        }
        (SinkConfig::Webhook { url, .. }, Conn::Http(client)) => {
            let body: Vec<serde_json::Value> =
                batch.iter().map(|c| export::to_json(c.0, &c.1)).collect();
            let r = client
                .post(url)
                .json(&body)
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", r.status()))
            }
        }
        (SinkConfig::Otlp { endpoint, .. }, Conn::Http(client)) => {
            let url = format!("{}/v1/logs", endpoint.trim_end_matches('/'));
            let r = client
                .post(url)
                .json(&otlp_body(batch))
                .send()
                .await
                .map_err(|e| e.without_url().to_string())?;
            if r.status().is_success() {
                Ok(())
            } else {
                Err(format!("HTTP {}", r.status()))
            }
        }
        _ => Err("the sink could not be set up (see the earlier error)".into()),
    }
}

fn write_rotating(
    file: Option<std::fs::File>,
    path: &Path,
    max_bytes: u64,
    keep: u32,
    data: &[u8],
) -> std::io::Result<std::fs::File> {
    use std::io::Write;
    let open = || {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    };
    let mut f = match file {
        Some(f) => f,
        None => {
            if let Some(d) = path.parent()
                && !d.as_os_str().is_empty()
            {
                std::fs::create_dir_all(d)?;
            }
            open()?
        }
    };
    let len = f.metadata()?.len();
    if len > 0 && len + data.len() as u64 > max_bytes {
        drop(f);
        // path.(keep-1) -> path.keep, ..., path -> path.1; the oldest falls off.
        for i in (1..keep).rev() {
            let from = rotated(path, i);
            if from.exists() {
                std::fs::rename(&from, rotated(path, i + 1))?;
            }
        }
        std::fs::rename(path, rotated(path, 1))?;
        f = open()?;
    }
    f.write_all(data)?;
    f.flush()?;
    Ok(f)
}

/// The name of the `i`-th rotated file.
pub fn rotated(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

fn sd_escape(s: &str) -> String {
    // RFC 5424 section 6.3.3: escape '"', '\' and ']' in parameter values.
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        if matches!(ch, '"' | '\\' | ']') {
            o.push('\\');
        }
        o.push(ch);
    }
    o
}

fn header_token(s: Option<&str>, max: usize) -> String {
    // HOSTNAME and APP-NAME are PRINTUSASCII without spaces; anything else becomes '-'.
    match s {
        Some(v)
            if !v.is_empty() && v.len() <= max && v.bytes().all(|b| (33..=126).contains(&b)) =>
        {
            v.to_string()
        }
        _ => "-".into(),
    }
}

/// One RFC 5424 message: facility 13 (log audit), severity by decision, structured data with the
/// key fields, and the event as JSON for the message.
pub fn syslog_message(seq: i64, e: &Event, hostname: Option<&str>) -> String {
    let severity = match e.decision {
        Decision::Allow => 6,
        Decision::Redact | Decision::Confirm => 5,
        Decision::Deny => 4,
    };
    let pri = 13 * 8 + severity;
    let ts = e.time.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut sd = format!(
        "[portcullis@32473 seq=\"{seq}\" decision=\"{}\" correlation_id=\"{}\"",
        crate::canonical::decision_str(e.decision),
        sd_escape(e.correlation_id.as_str())
    );
    for (k, v) in [
        ("principal", &e.principal),
        ("connector", &e.connector),
        ("target", &e.target),
    ] {
        if let Some(v) = v {
            sd.push_str(&format!(" {k}=\"{}\"", sd_escape(v)));
        }
    }
    sd.push(']');
    format!(
        "<{pri}>1 {ts} {} portcullis {} audit {sd} {}",
        header_token(hostname, 255),
        std::process::id(),
        export::to_json(seq, e)
    )
}

fn otlp_body(batch: &[Committed]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = batch
        .iter()
        .map(|c| {
            let (seq, e) = (c.0, &c.1);
            let (num, text) = match e.decision {
                Decision::Allow => (9, "INFO"),
                Decision::Redact | Decision::Confirm => (10, "INFO2"),
                Decision::Deny => (13, "WARN"),
            };
            let mut attrs = vec![
                serde_json::json!({"key": "portcullis.seq", "value": {"intValue": seq.to_string()}}),
                serde_json::json!({"key": "portcullis.decision", "value": {"stringValue": crate::canonical::decision_str(e.decision)}}),
                serde_json::json!({"key": "portcullis.correlation_id", "value": {"stringValue": e.correlation_id.as_str()}}),
            ];
            for (k, v) in [("enduser.id", &e.principal), ("portcullis.connector", &e.connector), ("portcullis.target", &e.target)] {
                if let Some(v) = v {
                    attrs.push(serde_json::json!({"key": k, "value": {"stringValue": v}}));
                }
            }
            serde_json::json!({
                "timeUnixNano": crate::canonical::time_ns(&e.time).to_string(),
                "severityNumber": num,
                "severityText": text,
                "body": {"stringValue": export::to_json(seq, e).to_string()},
                "attributes": attrs,
            })
        })
        .collect();
    serde_json::json!({
        "resourceLogs": [{
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "portcullis"}}]},
            "scopeLogs": [{"scope": {"name": "portcullis.audit"}, "logRecords": records}]
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::{CorrelationId, EventKind};

    #[test]
    fn syslog_message_is_rfc5424_shaped() {
        let t = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let mut e = Event::new(
            t,
            CorrelationId::from_request_id("r1").unwrap(),
            EventKind::McpRequest,
        );
        e.principal = Some("a\"]b".into());
        e.decision = Decision::Deny;
        let m = syslog_message(3, &e, Some("gw-1"));
        assert!(
            m.starts_with("<108>1 2023-11-14T22:13:20.000000Z gw-1 portcullis "),
            "{m}"
        );
        assert!(m.contains("principal=\"a\\\"\\]b\""), "{m}");
        assert!(m.contains(" audit [portcullis@32473 seq=\"3\""));
        assert_eq!(header_token(Some("has space"), 255), "-");
    }

    #[test]
    fn sink_config_parses_and_validates() {
        let p: Vec<SinkConfig> =
            serde_saphyr::from_str("- { type: syslog, address: \"127.0.0.1:514\", transport: tcp }\n- { type: webhook, url: \"ftp://x\" }\n")
                .unwrap();
        assert!(p[0].validate().is_ok());
        assert!(p[1].validate().unwrap_err().to_string().contains("http://"));
    }

    #[test]
    fn file_rotation_keeps_n_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        let mut f = None;
        for i in 0..10 {
            f = Some(write_rotating(f, &path, 1024, 2, format!("{i:0>600}\n").as_bytes()).unwrap());
        }
        assert!(path.exists() && rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists());
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .starts_with("000000")
        );
    }
}
