//! Alert sinks (MON-2): a webhook with a Slack-compatible payload (`text` plus `blocks`) and
//! email over SMTP (lettre on rustls with aws-lc). The admin API reads alerts from the store.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use portcullis_core::Secret;

use crate::alert::Alert;

/// A sink's failure.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The sink is misconfigured.
    #[error("alert sink {sink}: {detail}")]
    Config {
        /// The sink's name.
        sink: String,
        /// What is wrong.
        detail: String,
    },
    /// Delivery failed (it is retried).
    #[error("alert sink {sink} could not deliver alert {alert}: {detail}")]
    Delivery {
        /// The sink's name.
        sink: String,
        /// The alert id.
        alert: String,
        /// Why.
        detail: String,
    },
}

/// The future a sink returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SinkError>> + Send + 'a>>;

/// Where alerts go.
pub trait AlertSink: Send + Sync {
    /// A short name for metrics and logs, like `webhook` or `email`.
    fn name(&self) -> &str;
    /// Delivers one alert.
    fn send<'a>(&'a self, alert: &'a Alert) -> SinkFuture<'a>;
}

/// One line saying what happened, for chat and subject lines.
pub fn headline(a: &Alert) -> String {
    let who = a
        .principal
        .as_deref()
        .or(a.source.as_deref())
        .or(a.client.as_deref())
        .unwrap_or("unknown");
    format!(
        "[{}] {} ({who}): {}",
        a.severity.as_str(),
        a.kind,
        a.explanation
    )
}

/// The Slack-compatible webhook payload: `text` for plain clients, `blocks` for rich ones.
pub fn slack_payload(a: &Alert) -> serde_json::Value {
    let field = |k: &str, v: &Option<String>| format!("*{k}:* {}", v.as_deref().unwrap_or("-"));
    serde_json::json!({
        "text": headline(a),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": format!("Portcullis alert: {}", a.kind)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": a.explanation}},
            {"type": "section", "fields": [
                {"type": "mrkdwn", "text": format!("*severity:* {}", a.severity.as_str())},
                {"type": "mrkdwn", "text": field("principal", &a.principal)},
                {"type": "mrkdwn", "text": field("client", &a.client)},
                {"type": "mrkdwn", "text": field("source", &a.source)},
                {"type": "mrkdwn", "text": field("connector", &a.connector)},
            ]},
            {"type": "context", "elements": [
                {"type": "mrkdwn", "text": format!("alert {} · evidence: {}", a.id, a.correlation_ids.join(", "))}
            ]}
        ],
        "alert": a,
    })
}

/// Posts alerts as JSON to a URL (Slack incoming webhooks, or any receiver).
pub struct WebhookSink {
    name: String,
    url: Secret,
    client: reqwest::Client,
}

impl WebhookSink {
    /// A webhook sink; the URL is a secret (Slack's carry the credential in the path).
    pub fn new(name: &str, url: Secret, timeout: Duration) -> Result<Self, SinkError> {
        let cfg = |detail: String| SinkError::Config {
            sink: name.to_string(),
            detail,
        };
        let parsed = reqwest::Url::parse(url.expose())
            .map_err(|e| cfg(format!("the URL does not parse ({e})")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(cfg("the URL must be http or https".into()));
        }
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| cfg(format!("cannot build the HTTP client ({e})")))?;
        Ok(Self {
            name: name.to_string(),
            url,
            client,
        })
    }
}

impl AlertSink for WebhookSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let fail = |detail: String| SinkError::Delivery {
                sink: self.name.clone(),
                alert: alert.id.to_string(),
                detail,
            };
            let resp = self
                .client
                .post(self.url.expose())
                .json(&slack_payload(alert))
                .send()
                .await
                // Without the URL: it may hold the webhook's credential.
                .map_err(|e| fail(format!("request failed ({})", e.without_url())))?;
            if !resp.status().is_success() {
                return Err(fail(format!(
                    "the receiver answered HTTP {}",
                    resp.status().as_u16()
                )));
            }
            Ok(())
        })
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// TLS from the first byte (port 465).
    Implicit,
    /// STARTTLS, required (port 587).
    StartTls,
    /// None: only for a relay on loopback (tests, a local MTA).
    None,
}

/// SMTP settings of the email sink.
#[derive(Debug, Clone)]
pub struct EmailSettings {
    /// The relay host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Transport protection.
    pub tls: SmtpTls,
    /// User name and password, when the relay needs them.
    pub credentials: Option<(String, Secret)>,
    /// The sender address.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
    /// Per-message timeout.
    pub timeout: Duration,
}

/// Sends alerts by email.
pub struct EmailSink {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    to: Vec<Mailbox>,
}

impl EmailSink {
    /// An email sink; addresses are checked now. Plain SMTP is refused except to a loopback
    /// host, so credentials and alert contents never cross a network in clear.
    pub fn new(s: EmailSettings) -> Result<Self, SinkError> {
        let cfg = |detail: String| SinkError::Config {
            sink: "email".into(),
            detail,
        };
        let loopback = s.host == "localhost"
            || s.host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let mut b = match s.tls {
            SmtpTls::Implicit => AsyncSmtpTransport::<Tokio1Executor>::relay(&s.host)
                .map_err(|e| cfg(e.to_string()))?,
            SmtpTls::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| cfg(e.to_string()))?,
            SmtpTls::None if loopback => {
                AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
            }
            SmtpTls::None => {
                return Err(cfg(format!(
                    "plain SMTP to {} is refused; use tls: starttls or implicit",
                    s.host
                )));
            }
        };
        b = b.port(s.port).timeout(Some(s.timeout));
        if let Some((u, p)) = &s.credentials {
            b = b.credentials(Credentials::new(u.clone(), p.expose().to_string()));
        }
        let parse = |a: &str| {
            a.parse::<Mailbox>()
                .map_err(|e| cfg(format!("address {a:?} is invalid ({e})")))
        };
        if s.to.is_empty() {
            return Err(cfg(
                "no recipients; list at least one address in `to`".into()
            ));
        }
        Ok(Self {
            transport: b.build(),
            from: parse(&s.from)?,
            to: s.to.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
        })
    }
}

impl AlertSink for EmailSink {
    fn name(&self) -> &str {
        "email"
    }

    fn send<'a>(&'a self, alert: &'a Alert) -> SinkFuture<'a> {
        Box::pin(async move {
            let fail = |detail: String| SinkError::Delivery {
                sink: "email".into(),
                alert: alert.id.to_string(),
                detail,
            };
            let mut m = Message::builder().from(self.from.clone());
            for to in &self.to {
                m = m.to(to.clone());
            }
            let body = format!(
                "{}\n\nseverity: {}\nkind: {}\nprincipal: {}\nclient: {}\nsource: {}\nconnector: {}\nevidence (correlation ids): {}\nalert id: {}\n",
                alert.explanation,
                alert.severity.as_str(),
                alert.kind,
                alert.principal.as_deref().unwrap_or("-"),
                alert.client.as_deref().unwrap_or("-"),
                alert.source.as_deref().unwrap_or("-"),
                alert.connector.as_deref().unwrap_or("-"),
                alert.correlation_ids.join(", "),
                alert.id,
            );
            // Subjects are one line: strip anything that could inject a header.
            let subject: String = headline(alert)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            let msg = m
                .subject(subject)
                .body(body)
                .map_err(|e| fail(e.to_string()))?;
            self.transport
                .send(msg)
                .await
                .map_err(|e| fail(e.to_string()))?;
            Ok(())
        })
    }
}
