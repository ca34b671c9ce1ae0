//! Live sinks against real listeners on loopback (AU-6): syslog over UDP and TCP, a webhook
//! receiver, an OTLP/HTTP collector stand-in, and the rotated file. The tests wait on what the
//! listeners receive, never on sleeps.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use portcullis_audit::sinks::{LineFormat, SinkConfig, SyslogTransport};
use portcullis_audit::{AuditConfig, AuditLog};
use portcullis_core::EventSink;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

/// A safety net against a hung test, not a synchronisation device.
const DEADLINE: Duration = Duration::from_secs(30);

async fn log_with(sinks: Vec<SinkConfig>) -> (tempfile::TempDir, std::sync::Arc<AuditLog>) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = AuditConfig::embedded(dir.path());
    cfg.sinks = sinks;
    let (_, clock) = clock();
    let log = AuditLog::open(cfg, clock).await.unwrap();
    (dir, log)
}

#[tokio::test]
async fn syslog_udp_listener_gets_rfc5424_messages() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let (_dir, log) = log_with(vec![SinkConfig::Syslog {
        address: addr.to_string(),
        transport: SyslogTransport::Udp,
        hostname: Some("gw-test".into()),
    }])
    .await;
    for i in 0..5 {
        log.record(event(i));
    }
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65_536];
    tokio::time::timeout(DEADLINE, async {
        while got.len() < 5 {
            let n = sock.recv(&mut buf).await.unwrap();
            got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
        }
    })
    .await
    .expect("syslog messages did not arrive");
    for (i, m) in got.iter().enumerate() {
        assert!(m.starts_with("<1"), "{m}");
        assert!(
            m.contains(">1 2025-"),
            "version 1 and an RFC 3339 timestamp: {m}"
        );
        assert!(m.contains(" gw-test portcullis "), "{m}");
        assert!(m.contains(&format!("seq=\"{}\"", i + 1)), "{m}");
        assert!(
            m.contains(&format!("\"correlation_id\":\"req-{i}\"")),
            "{m}"
        );
    }
    log.shutdown().await;
    assert_eq!(log.metrics().sink_events_sent.load(Ordering::Relaxed), 5);
}

#[tokio::test]
async fn syslog_tcp_listener_gets_octet_counted_frames() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (_dir, log) = log_with(vec![SinkConfig::Syslog {
        address: addr.to_string(),
        transport: SyslogTransport::Tcp,
        hostname: None,
    }])
    .await;
    for i in 0..3 {
        log.record(event(i));
    }
    let (stream, _) = tokio::time::timeout(DEADLINE, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut r = BufReader::new(stream);
    let mut frames = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while frames.len() < 3 {
            let mut len = Vec::new();
            r.read_until(b' ', &mut len).await.unwrap();
            let n: usize = std::str::from_utf8(&len[..len.len() - 1])
                .unwrap()
                .parse()
                .unwrap();
            let mut msg = vec![0u8; n];
            r.read_exact(&mut msg).await.unwrap();
            frames.push(String::from_utf8(msg).unwrap());
        }
    })
    .await
    .expect("syslog frames did not arrive");
    assert!(
        frames
            .iter()
            .all(|f| f.starts_with('<') && f.contains(" - portcullis ")),
        "{frames:?}"
    );
    log.shutdown().await;
}

/// A minimal HTTP/1.1 receiver: answers `status` to each request and hands the bodies over.
async fn http_receiver(
    status: u16,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, serde_json::Value)>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        r.read_line(&mut h).await.unwrap();
                        if h == "\r\n" {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).await.unwrap();
                    let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                    r.get_mut().write_all(reply.as_bytes()).await.unwrap();
                    let _ = tx.send((path, serde_json::from_slice(&body).unwrap()));
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn webhook_receiver_gets_every_event() {
    let (url, mut rx) = http_receiver(200).await;
    let (_dir, log) = log_with(vec![SinkConfig::Webhook {
        url: format!("{url}/hook"),
        timeout_ms: 5000,
    }])
    .await;
    for i in 0..20 {
        log.record(event(i));
    }
    let mut seqs = Vec::new();
    tokio::time::timeout(DEADLINE, async {
        while seqs.len() < 20 {
            let (path, body) = rx.recv().await.unwrap();
            assert_eq!(path, "/hook");
            for e in body.as_array().unwrap() {
                seqs.push(e["seq"].as_i64().unwrap());
            }
        }
    })
    .await
    .expect("webhook did not receive the events");
    assert_eq!(seqs, (1..=20).collect::<Vec<_>>());
    log.shutdown().await;
    assert_eq!(log.metrics().sink_failures.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn otlp_collector_gets_log_records() {
    let (url, mut rx) = http_receiver(200).await;
    let (_dir, log) = log_with(vec![SinkConfig::Otlp {
        endpoint: url,
        timeout_ms: 5000,
    }])
    .await;
    log.record(event(3));
    let (path, body) = tokio::time::timeout(DEADLINE, rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(path, "/v1/logs");
    let rec = &body["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
    assert_eq!(rec["severityText"], "INFO");
    assert!(
        rec["body"]["stringValue"]
            .as_str()
            .unwrap()
            .contains("req-3")
    );
    log.shutdown().await;
}

#[tokio::test]
async fn failing_webhook_is_retried_counted_and_never_blocks_the_log() {
    let (url, mut rx) = http_receiver(503).await;
    let (_dir, log) = log_with(vec![SinkConfig::Webhook {
        url,
        timeout_ms: 5000,
    }])
    .await;
    log.record(event(1));
    // The database commit does not wait for the sink.
    log.flush().await;
    assert_eq!(log.metrics().events_written.load(Ordering::Relaxed), 1);
    // The receiver sees the same batch again: the sink retries.
    tokio::time::timeout(DEADLINE, async {
        rx.recv().await.unwrap();
        rx.recv().await.unwrap();
    })
    .await
    .expect("no retry");
    assert!(log.metrics().sink_failures.load(Ordering::Relaxed) >= 1);
    assert_eq!(log.metrics().events_dropped.load(Ordering::Relaxed), 0);
}

#[tokio::test]
async fn file_sink_writes_ocsf_lines_and_rotates() {
    let out = tempfile::tempdir().unwrap();
    let path = out.path().join("audit.jsonl");
    let (_dir, log) = log_with(vec![SinkConfig::File {
        path: path.clone(),
        max_bytes: 4096,
        keep: 3,
        format: LineFormat::Ocsf,
    }])
    .await;
    for i in 0..40 {
        log.record(event(i));
        log.flush().await;
    }
    log.shutdown().await; // drains the sinks
    let mut lines = 0;
    for p in [
        path.clone(),
        portcullis_audit::sinks::rotated(&path, 1),
        portcullis_audit::sinks::rotated(&path, 2),
    ] {
        let text =
            std::fs::read_to_string(&p).unwrap_or_else(|_| panic!("{} missing", p.display()));
        assert!(text.len() <= 4096, "{} is over the limit", p.display());
        for l in text.lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["class_uid"], 6003);
            lines += 1;
        }
    }
    assert!(lines > 0 && lines < 40, "older files fell off the rotation");
    assert!(!portcullis_audit::sinks::rotated(&path, 4).exists());
}
