//! End to end (MON-2, MON-4, OPS-2): 20 failed logins give one alert at a webhook receiver on
//! loopback and the source is blocked; the SMTP sink delivers to a loopback receiver; rate limits
//! answer with a correct Retry-After; Redis counters agree across two monitors; alerts and
//! incidents land in the store.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use portcullis_core::clock::ManualClock;
use portcullis_core::{Clock, CorrelationId, Event, EventKind, Outcome, Secret};
use portcullis_monitor::settings::RateQuota;
use portcullis_monitor::sinks::{EmailSettings, SmtpTls};
use portcullis_monitor::{
    AlertSink, AlertStore, EmailSink, LocalCounters, Monitor, MonitorService, RateKey,
    RedisCounters, Settings, WebhookSink,
};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

fn clock() -> ManualClock {
    ManualClock::new(Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 0).unwrap())
}

fn failed_login(clock: &ManualClock, n: u32) -> Event {
    let mut e = Event::new(
        clock.now(),
        CorrelationId::from_request_id(&format!("login-{n}")).unwrap(),
        EventKind::Auth,
    );
    e.source = Some("203.0.113.7".into());
    e.principal = Some(format!("user{}", n % 3));
    e.reasons = vec!["login_failed".into()];
    e.outcome = Outcome::HttpError { status: 401 };
    e
}

/// A minimal HTTP/1.1 receiver: every request body goes to the channel, answered 200.
async fn webhook_receiver() -> (String, mpsc::UnboundedReceiver<serde_json::Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut r = BufReader::new(sock);
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0u8; len];
                    r.read_exact(&mut body).await.unwrap();
                    let _ = tx.send(serde_json::from_slice(&body).unwrap());
                    r.get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .unwrap();
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test]
async fn twenty_failed_logins_one_webhook_alert_and_a_block() {
    let (url, mut rx) = webhook_receiver().await;
    let clock = clock();
    let monitor = Arc::new(Monitor::new(
        Settings::default(),
        Arc::new(clock.clone()),
        Arc::new(LocalCounters::new()),
    ));
    let dir = tempfile::tempdir().unwrap();
    let db: portcullis_store::DatabaseUrl =
        format!("sqlite://{}", dir.path().join("p.db").display())
            .parse()
            .unwrap();
    let store = portcullis_store::Store::open(&db, portcullis_store::OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let sink: Arc<dyn AlertSink> =
        Arc::new(WebhookSink::new("webhook", Secret::new(url), Duration::from_secs(5)).unwrap());
    let (handle, _worker) = MonitorService::spawn(
        monitor.clone(),
        Some(Arc::new(store.clone()) as Arc<dyn AlertStore>),
        vec![sink],
        1024,
    );
    for n in 0..25 {
        assert!(handle.submit(failed_login(&clock, n)));
        clock.advance(Duration::from_secs(1));
    }
    handle.flush().await;
    let got = rx.recv().await.unwrap();
    assert_eq!(got["alert"]["kind"], "auth.brute_force");
    assert!(got["text"].as_str().unwrap().contains("203.0.113.7"));
    assert!(got["blocks"].is_array());
    assert!(
        monitor
            .blocklist()
            .blocked(None, None, Some("203.0.113.7"))
            .is_some()
    );
    // Exactly one alert: stored once, nothing else arrives.
    let rows = store.alerts(None, 10).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].source.as_deref(), Some("203.0.113.7"));
    assert!(rx.try_recv().is_err());
    // The service's metrics include the sink.
    let m = monitor.render_prometheus();
    assert!(
        m.contains("portcullis_monitor_alerts_total{detector=\"auth.brute_force\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn full_queue_drops_and_counts_instead_of_blocking() {
    let clock = clock();
    let monitor = Arc::new(Monitor::new(
        Settings::default(),
        Arc::new(clock.clone()),
        Arc::new(LocalCounters::new()),
    ));
    // A current-thread runtime: the worker cannot run while we submit, so the queue fills.
    let (handle, _w) = MonitorService::spawn(monitor.clone(), None, vec![], 4);
    let accepted = (0..10)
        .filter(|n| handle.submit(failed_login(&clock, *n)))
        .count();
    assert_eq!(accepted, 4);
    assert!(
        monitor
            .render_prometheus()
            .contains("portcullis_monitor_dropped_events_total 6")
    );
}

/// A minimal SMTP receiver: collects one message's DATA.
async fn smtp_receiver() -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut r = BufReader::new(sock);
        r.get_mut()
            .write_all(b"220 localhost ESMTP test\r\n")
            .await
            .unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let cmd = line.to_ascii_uppercase();
            let reply: &[u8] = if cmd.starts_with("EHLO") || cmd.starts_with("HELO") {
                b"250-localhost\r\n250 8BITMIME\r\n"
            } else if cmd.starts_with("DATA") {
                r.get_mut().write_all(b"354 go ahead\r\n").await.unwrap();
                let mut data = String::new();
                loop {
                    let mut l = String::new();
                    r.read_line(&mut l).await.unwrap();
                    if l == ".\r\n" {
                        break;
                    }
                    data.push_str(&l);
                }
                let _ = tx.send(data);
                b"250 queued\r\n"
            } else if cmd.starts_with("QUIT") {
                let _ = r.get_mut().write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"250 ok\r\n"
            };
            r.get_mut().write_all(reply).await.unwrap();
        }
    });
    (port, rx)
}

#[tokio::test]
async fn email_sink_delivers_over_smtp() {
    let (port, mut rx) = smtp_receiver().await;
    let sink = EmailSink::new(EmailSettings {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        credentials: None,
        from: "portcullis@example.com".into(),
        to: vec!["soc@example.com".into()],
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    let clock = clock();
    let monitor = Monitor::new(
        Settings::default(),
        Arc::new(clock.clone()),
        Arc::new(LocalCounters::new()),
    );
    let mut alerts = Vec::new();
    for n in 0..20 {
        alerts.extend(monitor.observe(&failed_login(&clock, n)));
    }
    assert_eq!(alerts.len(), 1);
    sink.send(&alerts[0]).await.unwrap();
    let data = rx.recv().await.unwrap();
    assert!(data.contains("Subject: [high] auth.brute_force"), "{data}");
    assert!(data.contains("login-19"), "evidence ids are in the body");
}

#[test]
fn plain_smtp_off_loopback_is_refused() {
    let e = EmailSink::new(EmailSettings {
        host: "mail.example.com".into(),
        port: 25,
        tls: SmtpTls::None,
        credentials: None,
        from: "a@example.com".into(),
        to: vec!["b@example.com".into()],
        timeout: Duration::from_secs(5),
    })
    .err()
    .unwrap();
    assert!(e.to_string().contains("plain SMTP"), "{e}");
}

fn limited() -> Settings {
    let mut s = Settings::default();
    s.rate_limits.per_principal = Some(RateQuota {
        per_minute: 6,
        burst: 3,
    });
    s.rate_limits.per_tool.insert(
        "crm/export_customers".into(),
        RateQuota {
            per_minute: 1,
            burst: 1,
        },
    );
    s
}

#[test]
fn rate_limit_refuses_with_retry_after() {
    let clock = clock();
    let m = Monitor::new(
        limited(),
        Arc::new(clock.clone()),
        Arc::new(LocalCounters::new()),
    );
    let alice = RateKey::Principal("alice".into());
    for _ in 0..3 {
        m.check_rate(&alice).unwrap();
    }
    let r = m.check_rate(&alice).unwrap_err();
    // 6 a minute: one token every 10 s.
    assert_eq!(r.wait, Duration::from_secs(10));
    assert_eq!(r.header_value(), "10");
    assert_eq!(r.scope, "principal");
    // Others are not affected; a tool has its own bucket.
    m.check_rate(&RateKey::Principal("bob".into())).unwrap();
    m.check_rate(&RateKey::Tool("crm/export_customers".into()))
        .unwrap();
    assert_eq!(
        m.check_rate(&RateKey::Tool("crm/export_customers".into()))
            .unwrap_err()
            .header_value(),
        "60"
    );
    // Unconfigured scopes are unlimited.
    for _ in 0..100 {
        m.check_rate(&RateKey::Client("c".into())).unwrap();
    }
    clock.advance(Duration::from_millis(9_500));
    assert_eq!(
        m.check_rate(&alice).unwrap_err().header_value(),
        "1",
        "rounded up, never 0"
    );
    clock.advance(Duration::from_millis(500));
    m.check_rate(&alice).unwrap();
    assert!(
        m.render_prometheus()
            .contains("portcullis_monitor_rate_limited_total{scope=\"principal\"} 2")
    );
}

fn redis(prefix: &str) -> Arc<RedisCounters> {
    Arc::new(RedisCounters::new("redis://127.0.0.1:6379/", prefix, Duration::from_secs(2)).unwrap())
}

#[test]
fn redis_counters_agree_across_two_monitors() {
    // OPS-2: two replicas share the failed-login window and the rate limit bucket.
    let prefix = format!(
        "portcullis-test-{}-{}:",
        std::process::id(),
        Utc::now().timestamp_micros()
    );
    let clock = clock();
    let a = Monitor::new(limited(), Arc::new(clock.clone()), redis(&prefix));
    let b = Monitor::new(limited(), Arc::new(clock.clone()), redis(&prefix));
    let mut alerts = Vec::new();
    for n in 0..20 {
        let m = if n % 2 == 0 { &a } else { &b };
        alerts.extend(m.observe(&failed_login(&clock, n)));
    }
    assert_eq!(
        alerts.len(),
        1,
        "10 failures on each replica make 20 in the shared window"
    );
    let alice = RateKey::Principal("alice".into());
    a.check_rate(&alice).unwrap();
    b.check_rate(&alice).unwrap();
    a.check_rate(&alice).unwrap();
    assert_eq!(b.check_rate(&alice).unwrap_err().header_value(), "10");
}

#[test]
fn unreachable_redis_fails_closed() {
    let clock = clock();
    let dead = Arc::new(
        RedisCounters::new("redis://127.0.0.1:1/", "x:", Duration::from_millis(200)).unwrap(),
    );
    let m = Monitor::new(limited(), Arc::new(clock), dead);
    let e = m
        .check_rate(&RateKey::Principal("alice".into()))
        .unwrap_err();
    assert_eq!(e.header_value(), "1");
    assert!(
        m.render_prometheus()
            .contains("portcullis_monitor_counter_errors_total 1")
    );
}

#[tokio::test]
async fn leak_report_becomes_an_incident() {
    use portcullis_monitor::incident::{LeakReport, report_leak};
    let dir = tempfile::tempdir().unwrap();
    let db: portcullis_store::DatabaseUrl =
        format!("sqlite://{}", dir.path().join("p.db").display())
            .parse()
            .unwrap();
    let store = portcullis_store::Store::open(&db, portcullis_store::OpenMode::CreateIfMissing)
        .await
        .unwrap();
    let bad = LeakReport {
        reported_by: "alice".into(),
        description: "x".into(),
        ..Default::default()
    };
    assert!(
        report_leak(&store, &bad, "i0".into(), 1)
            .await
            .unwrap_err()
            .to_string()
            .contains("correlation id")
    );
    let r = LeakReport {
        reported_by: "alice".into(),
        principal: Some("alice".into()),
        correlation_ids: vec!["corr-9".into()],
        description: "a card number showed up in a summary".into(),
        ..Default::default()
    };
    let inc = report_leak(&store, &r, "i1".into(), 5).await.unwrap();
    assert_eq!(store.incident("i1").await.unwrap().unwrap(), inc);
    // No audit events exist in this fresh database, so nothing is linked.
    assert_eq!(inc.correlation_ids, "[]");
}
