//! The `monitor:` section (MON-1, MON-2): detector thresholds, deduplication, automatic blocks,
//! rate limits, shared counters and alert sinks, as written and validated. Secrets (the webhook
//! URL, the Redis URL, the SMTP password) appear only by reference, never literally (AUTH-8).
//! `portcullis-monitor` turns a [`ValidMonitor`] into its `Settings` and sinks.

use std::collections::BTreeMap;
use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::credential::{SecretRefConfig, SecretSource};
use crate::validate::ConfigError;

/// The JSON Schema of a secret reference.
#[derive(JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)] // only its schema is used
pub(crate) enum SecretRefSchema {
    /// An environment variable holding the value.
    Env {
        /// Variable name.
        env: String,
    },
    /// A file holding the value.
    File {
        /// Path.
        file: String,
    },
}

/// "N events in a window".
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdConfig {
    /// Events that raise the alert (1 to 100000).
    #[schemars(with = "Option<u64>")]
    pub threshold: Option<Spanned<u64>>,
    /// The window in seconds (1 to 86400).
    #[schemars(with = "Option<u64>")]
    pub window_secs: Option<Spanned<u64>>,
}

/// Off-hours settings.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OffHoursConfig {
    /// First working hour, local (0-23; default 6).
    #[schemars(with = "Option<u64>")]
    pub start_hour: Option<Spanned<u64>>,
    /// End of working hours, local (1-24, after `start_hour`; default 21).
    #[schemars(with = "Option<u64>")]
    pub end_hour: Option<Spanned<u64>>,
    /// Weekends are off-hours (default true).
    pub weekends_off: Option<bool>,
    /// UTC offset of principals not listed, like `+02:00` (default `+00:00`).
    #[schemars(with = "Option<String>")]
    pub default_utc_offset: Option<Spanned<String>>,
    /// UTC offset per principal, like `alice: "-08:00"`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub utc_offsets: BTreeMap<String, Spanned<String>>,
    /// A principal still in the learning period (`min_history_days`) is reported only for a
    /// session of this many off-hours calls (1 to 1000; default 3)...
    #[schemars(with = "Option<u64>")]
    pub min_calls: Option<Spanned<u64>>,
    /// ...within this many seconds (60 to 86400; default 1800).
    #[schemars(with = "Option<u64>")]
    pub window_secs: Option<Spanned<u64>>,
}

/// An automatic block.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlockConfig {
    /// The alert kind that triggers it, like `auth.brute_force`.
    #[schemars(with = "String")]
    pub on: Spanned<String>,
    /// `principal`, `client` or `source`.
    #[schemars(with = "String")]
    pub target: Spanned<String>,
    /// How long, in minutes (1 to 10080).
    #[schemars(with = "u64")]
    pub minutes: Spanned<u64>,
}

/// A token bucket.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Tokens a minute (1 to 1000000).
    #[schemars(with = "u64")]
    pub per_minute: Spanned<u64>,
    /// Bucket size (1 to 1000000; default `per_minute`).
    #[schemars(with = "Option<u64>")]
    pub burst: Option<Spanned<u64>>,
}

/// Rate limits.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Per principal.
    pub per_principal: Option<QuotaConfig>,
    /// Per OAuth client.
    pub per_client: Option<QuotaConfig>,
    /// Per tool without its own entry.
    pub per_tool_default: Option<QuotaConfig>,
    /// Per tool, by `connector/tool`.
    #[serde(default)]
    pub per_tool: BTreeMap<String, QuotaConfig>,
}

/// The webhook sink.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The URL (a secret: Slack's carry their credential): `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "SecretRefSchema")]
    pub url: Spanned<SecretRefConfig>,
}

/// The email sink.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP relay host.
    #[schemars(with = "String")]
    pub host: Spanned<String>,
    /// Port (default 587 for starttls, 465 for implicit, 25 for none).
    pub port: Option<u16>,
    /// `starttls` (default), `implicit` or `none` (loopback relays only).
    #[schemars(with = "Option<String>")]
    pub tls: Option<Spanned<String>>,
    /// SMTP user name.
    pub username: Option<String>,
    /// SMTP password: `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "Option<SecretRefSchema>")]
    pub password: Option<Spanned<SecretRefConfig>>,
    /// Sender address.
    pub from: String,
    /// Recipients.
    #[schemars(with = "Vec<String>")]
    pub to: Spanned<Vec<String>>,
}

/// The `monitor:` section as written.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MonitorConfig {
    /// Run anomaly detection (default true).
    pub enabled: Option<bool>,
    /// Alerts with the same key within this many seconds are one (default 900, 10 to 86400).
    #[schemars(with = "Option<u64>")]
    pub throttle_secs: Option<Spanned<u64>>,
    /// Shared counters for several replicas: the Redis URL, `{env: NAME}` or `{file: PATH}`.
    #[schemars(with = "Option<SecretRefSchema>")]
    pub redis_url: Option<Spanned<SecretRefConfig>>,
    /// Repeated failed authentication (default 20 in 300 s).
    pub auth_failures: Option<ThresholdConfig>,
    /// Repeated errors (default 30 in 300 s).
    pub errors: Option<ThresholdConfig>,
    /// Tools whose first use by a principal is flagged (`tool` or `connector/tool`).
    pub sensitive_tools: Option<Vec<String>>,
    /// Off-hours access.
    pub off_hours: Option<OffHoursConfig>,
    /// The learning period: earlier days with calls a principal needs before their habits
    /// (working hours, networks) are trusted (0 to 60; default 2). Until then a new network is
    /// learned without an alert and off-hours needs a session (`off_hours.min_calls`).
    #[schemars(with = "Option<u64>")]
    pub min_history_days: Option<Spanned<u64>>,
    /// Known networks (corporate offices, VPN egress) in CIDR notation, like `10.0.0.0/8` or
    /// `2001:db8::/32`: calls from them never count as a new network.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub trusted_networks: Vec<Spanned<String>>,
    /// Automatic blocks (default: `auth.brute_force` blocks the source for 15 minutes).
    pub block: Option<Vec<BlockConfig>>,
    /// Rate limits.
    #[serde(default)]
    pub rate_limits: RateLimitsConfig,
    /// Webhook sink (Slack-compatible).
    pub webhook: Option<WebhookConfig>,
    /// Email sink.
    pub email: Option<EmailConfig>,
    /// OpenTelemetry traces (MON-5): the OTLP/HTTP collector's base URL, like
    /// `http://127.0.0.1:4318` (spans go to `/v1/traces`). Without it the standard
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is used, when set.
    #[schemars(with = "Option<String>")]
    pub otlp_endpoint: Option<Spanned<String>>,
}

/// A validated threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidThreshold {
    /// Events that raise the alert.
    pub threshold: u32,
    /// The window.
    pub window: Duration,
}

/// Validated off-hours settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidOffHours {
    /// First working hour.
    pub start_hour: u32,
    /// End of working hours.
    pub end_hour: u32,
    /// Weekends are off-hours.
    pub weekends_off: bool,
    /// Default UTC offset, minutes.
    pub default_offset_minutes: i32,
    /// Per principal, minutes.
    pub offsets: BTreeMap<String, i32>,
    /// Off-hours calls that make a session, for a principal in the learning period.
    pub min_calls: u32,
    /// The window they are counted in.
    pub window: Duration,
}

/// A validated block rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidBlock {
    /// Alert kind.
    pub on: String,
    /// `principal`, `client` or `source`.
    pub target: String,
    /// Duration.
    pub duration: Duration,
}

/// A validated token bucket: (per minute, burst).
pub type ValidQuota = (u32, u32);

/// Validated SMTP settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidEmail {
    /// Relay host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// `starttls`, `implicit` or `none`.
    pub tls: String,
    /// User name and where the password is.
    pub credentials: Option<(String, SecretSource)>,
    /// Sender.
    pub from: String,
    /// Recipients.
    pub to: Vec<String>,
}

/// The `monitor:` section after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidMonitor {
    /// Whether detection runs.
    pub enabled: bool,
    /// Dedup window.
    pub throttle: Duration,
    /// Where the Redis URL is, for shared counters.
    pub redis_url: Option<SecretSource>,
    /// Failed authentication.
    pub auth_failures: ValidThreshold,
    /// Errors.
    pub errors: ValidThreshold,
    /// Sensitive tools.
    pub sensitive_tools: Vec<String>,
    /// Off-hours.
    pub off_hours: ValidOffHours,
    /// The learning period, in earlier active days.
    pub min_history_days: u32,
    /// Known networks: never a new network.
    pub trusted_networks: Vec<ipnet::IpNet>,
    /// Automatic blocks.
    pub blocks: Vec<ValidBlock>,
    /// Per principal quota.
    pub per_principal: Option<ValidQuota>,
    /// Per client quota.
    pub per_client: Option<ValidQuota>,
    /// Default per tool quota.
    pub per_tool_default: Option<ValidQuota>,
    /// Per tool quotas.
    pub per_tool: BTreeMap<String, ValidQuota>,
    /// Where the webhook URL is.
    pub webhook_url: Option<SecretSource>,
    /// Email sink.
    pub email: Option<ValidEmail>,
    /// The OTLP/HTTP traces URL (the configured base with `/v1/traces`).
    pub otlp_traces_url: Option<String>,
}

impl Default for ValidMonitor {
    fn default() -> Self {
        validate_monitor(&MonitorConfig::default(), "<default>")
            .expect("the default monitor section is valid")
    }
}

fn at<T>(file: &str, span: &Spanned<T>, message: String) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        line: span.referenced.line(),
        column: span.referenced.column(),
        message,
    }
}

fn num(
    file: &str,
    v: &Option<Spanned<u64>>,
    name: &str,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    if v.value < min || v.value > max {
        return Err(at(
            file,
            v,
            format!(
                "`monitor.{name}` must be between {min} and {max}, found {}",
                v.value
            ),
        ));
    }
    Ok(v.value)
}

fn secret(
    file: &str,
    r: &Spanned<SecretRefConfig>,
    name: &str,
) -> Result<SecretSource, ConfigError> {
    match &r.value {
        // AUTH-8: no secret in plain text in the config file.
        SecretRefConfig::Literal => Err(at(
            file,
            r,
            format!(
                "`monitor.{name}` is written in the config file; secrets may not be (AUTH-8): use {{env: NAME}} or {{file: PATH}}"
            ),
        )),
        SecretRefConfig::Env(n) if n.is_empty() || n.contains(['=', '\0']) => Err(at(
            file,
            r,
            format!("`monitor.{name}` names an invalid environment variable {n:?}"),
        )),
        SecretRefConfig::Env(n) => Ok(SecretSource::Env(n.clone())),
        SecretRefConfig::File(p) if p.trim().is_empty() => Err(at(
            file,
            r,
            format!("`monitor.{name}.file` is empty: give the path"),
        )),
        SecretRefConfig::File(p) => Ok(SecretSource::File(p.into())),
    }
}

fn threshold(
    file: &str,
    t: &Option<ThresholdConfig>,
    name: &str,
    (th, w): (u64, u64),
) -> Result<ValidThreshold, ConfigError> {
    let t = t.clone().unwrap_or_default();
    Ok(ValidThreshold {
        threshold: num(
            file,
            &t.threshold,
            &format!("{name}.threshold"),
            th,
            (1, 100_000),
        )? as u32,
        window: Duration::from_secs(num(
            file,
            &t.window_secs,
            &format!("{name}.window_secs"),
            w,
            (1, 86_400),
        )?),
    })
}

/// Parses `+HH:MM` / `-HH:MM` into minutes.
fn offset(file: &str, v: &Spanned<String>, name: &str) -> Result<i32, ConfigError> {
    let s = v.value.trim();
    let bad = || {
        at(
            file,
            v,
            format!("`monitor.{name}` must be a UTC offset like +02:00 or -08:00, found {s:?}"),
        )
    };
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').ok_or_else(bad)?;
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) || h.to_string().len() > 2 {
        return Err(bad());
    }
    Ok(sign * (h * 60 + m))
}

/// The traces URL of an OTLP/HTTP collector's base URL: http or https, with a host, no
/// credentials in it (they would be logged and stored in the config file).
fn otlp_url(file: &str, v: &Spanned<String>) -> Result<String, ConfigError> {
    let text = v.value.trim();
    let bad = |why: &str| {
        at(
            file,
            v,
            format!(
                "`monitor.otlp_endpoint` {why}; write the collector's base URL like http://127.0.0.1:4318"
            ),
        )
    };
    let uri: http::Uri = text.parse().map_err(|_| bad("is not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(bad("must be http or https"));
    }
    let Some(authority) = uri.authority() else {
        return Err(bad("has no host"));
    };
    if authority.as_str().contains('@') {
        return Err(bad(
            "holds credentials, which may not be written in the config file (AUTH-8)",
        ));
    }
    if uri.query().is_some() {
        return Err(bad("has a query string"));
    }
    let base = text.trim_end_matches('/');
    Ok(if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    })
}

/// Parses a CIDR network (`10.0.0.0/8`) or a single address (as its /32 or /128).
fn network(file: &str, v: &Spanned<String>) -> Result<ipnet::IpNet, ConfigError> {
    let text = v.value.trim();
    if let Ok(ip) = text.parse::<std::net::IpAddr>() {
        return Ok(ipnet::IpNet::from(ip));
    }
    let net: ipnet::IpNet = text.parse().map_err(|_| {
        at(
            file,
            v,
            format!(
                "`monitor.trusted_networks` entry {text:?} is not a network: write it in CIDR notation like 10.0.0.0/8 or 2001:db8::/32"
            ),
        )
    })?;
    // Host bits set (10.1.2.3/8) usually means a typo in the prefix length: say so.
    if net.trunc() != net {
        return Err(at(
            file,
            v,
            format!(
                "`monitor.trusted_networks` entry {text:?} has host bits set; did you mean {}?",
                net.trunc()
            ),
        ));
    }
    Ok(net)
}

fn quota(
    file: &str,
    q: &Option<QuotaConfig>,
    name: &str,
) -> Result<Option<ValidQuota>, ConfigError> {
    let Some(q) = q else { return Ok(None) };
    let pm = num(
        file,
        &Some(q.per_minute.clone()),
        &format!("{name}.per_minute"),
        0,
        (1, 1_000_000),
    )?;
    let burst = num(file, &q.burst, &format!("{name}.burst"), pm, (1, 1_000_000))?;
    Ok(Some((pm as u32, burst as u32)))
}

/// Validates the `monitor:` section.
pub(crate) fn validate_monitor(
    raw: &MonitorConfig,
    file: &str,
) -> Result<ValidMonitor, ConfigError> {
    let oh = raw.off_hours.clone().unwrap_or_default();
    let start_hour = num(file, &oh.start_hour, "off_hours.start_hour", 6, (0, 23))? as u32;
    let end_hour = num(file, &oh.end_hour, "off_hours.end_hour", 21, (1, 24))? as u32;
    if end_hour <= start_hour
        && let Some(e) = &oh.end_hour
    {
        return Err(at(
            file,
            e,
            format!(
                "`monitor.off_hours.end_hour` ({end_hour}) must be after `start_hour` ({start_hour})"
            ),
        ));
    }
    let mut offsets = BTreeMap::new();
    for (p, v) in &oh.utc_offsets {
        offsets.insert(
            p.clone(),
            offset(file, v, &format!("off_hours.utc_offsets.{p}"))?,
        );
    }
    let default_offset_minutes = match &oh.default_utc_offset {
        Some(v) => offset(file, v, "off_hours.default_utc_offset")?,
        None => 0,
    };
    let min_calls = num(file, &oh.min_calls, "off_hours.min_calls", 3, (1, 1_000))? as u32;
    let off_window = Duration::from_secs(num(
        file,
        &oh.window_secs,
        "off_hours.window_secs",
        1_800,
        (60, 86_400),
    )?);
    let min_history_days = num(file, &raw.min_history_days, "min_history_days", 2, (0, 60))? as u32;
    let mut trusted_networks = Vec::new();
    for n in &raw.trusted_networks {
        trusted_networks.push(network(file, n)?);
    }
    let mut blocks = Vec::new();
    match &raw.block {
        None => blocks.push(ValidBlock {
            on: "auth.brute_force".into(),
            target: "source".into(),
            duration: Duration::from_secs(900),
        }),
        Some(list) => {
            for b in list {
                if !matches!(b.target.value.as_str(), "principal" | "client" | "source") {
                    return Err(at(
                        file,
                        &b.target,
                        format!(
                            "`monitor.block.target` must be principal, client or source, found {:?}",
                            b.target.value
                        ),
                    ));
                }
                if b.on.value.trim().is_empty() {
                    return Err(at(
                        file,
                        &b.on,
                        "`monitor.block.on` is empty: name an alert kind like auth.brute_force"
                            .into(),
                    ));
                }
                let minutes = num(
                    file,
                    &Some(b.minutes.clone()),
                    "block.minutes",
                    0,
                    (1, 10_080),
                )?;
                blocks.push(ValidBlock {
                    on: b.on.value.clone(),
                    target: b.target.value.clone(),
                    duration: Duration::from_secs(minutes * 60),
                });
            }
        }
    }
    let mut per_tool = BTreeMap::new();
    for (tool, q) in &raw.rate_limits.per_tool {
        if let Some(v) = quota(
            file,
            &Some(q.clone()),
            &format!("rate_limits.per_tool.{tool}"),
        )? {
            per_tool.insert(tool.clone(), v);
        }
    }
    let email = match &raw.email {
        None => None,
        Some(e) => {
            let tls = e
                .tls
                .as_ref()
                .map(|t| t.value.clone())
                .unwrap_or_else(|| "starttls".into());
            if let Some(t) = &e.tls
                && !matches!(t.value.as_str(), "starttls" | "implicit" | "none")
            {
                return Err(at(
                    file,
                    t,
                    format!(
                        "`monitor.email.tls` must be starttls, implicit or none, found {:?}",
                        t.value
                    ),
                ));
            }
            if e.to.value.is_empty() {
                return Err(at(
                    file,
                    &e.to,
                    "`monitor.email.to` is empty: list at least one recipient".into(),
                ));
            }
            let port = e.port.unwrap_or(match tls.as_str() {
                "implicit" => 465,
                "none" => 25,
                _ => 587,
            });
            let credentials = match (&e.username, &e.password) {
                (Some(u), Some(p)) => Some((u.clone(), secret(file, p, "email.password")?)),
                (None, None) => None,
                _ => {
                    return Err(at(
                        file,
                        &e.host,
                        "`monitor.email` needs both `username` and `password`, or neither".into(),
                    ));
                }
            };
            Some(ValidEmail {
                host: e.host.value.clone(),
                port,
                tls,
                credentials,
                from: e.from.clone(),
                to: e.to.value.clone(),
            })
        }
    };
    let otlp_traces_url = raw
        .otlp_endpoint
        .as_ref()
        .map(|v| otlp_url(file, v))
        .transpose()?;
    Ok(ValidMonitor {
        otlp_traces_url,
        enabled: raw.enabled.unwrap_or(true),
        throttle: Duration::from_secs(num(
            file,
            &raw.throttle_secs,
            "throttle_secs",
            900,
            (10, 86_400),
        )?),
        redis_url: raw
            .redis_url
            .as_ref()
            .map(|r| secret(file, r, "redis_url"))
            .transpose()?,
        auth_failures: threshold(file, &raw.auth_failures, "auth_failures", (20, 300))?,
        errors: threshold(file, &raw.errors, "errors", (30, 300))?,
        sensitive_tools: raw
            .sensitive_tools
            .clone()
            .unwrap_or_else(|| vec!["delete_customer".into(), "export_customers".into()]),
        off_hours: ValidOffHours {
            start_hour,
            end_hour,
            weekends_off: oh.weekends_off.unwrap_or(true),
            default_offset_minutes,
            offsets,
            min_calls,
            window: off_window,
        },
        min_history_days,
        trusted_networks,
        blocks,
        per_principal: quota(
            file,
            &raw.rate_limits.per_principal,
            "rate_limits.per_principal",
        )?,
        per_client: quota(file, &raw.rate_limits.per_client, "rate_limits.per_client")?,
        per_tool_default: quota(
            file,
            &raw.rate_limits.per_tool_default,
            "rate_limits.per_tool_default",
        )?,
        per_tool,
        webhook_url: raw
            .webhook
            .as_ref()
            .map(|w| secret(file, &w.url, "webhook.url"))
            .transpose()?,
        email,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Result<ValidMonitor, ConfigError> {
        let raw: MonitorConfig =
            serde_saphyr::from_str(yaml).map_err(|e| ConfigError::from_yaml("t.yaml", &e))?;
        validate_monitor(&raw, "t.yaml")
    }

    #[test]
    fn defaults_and_a_full_section() {
        let d = ValidMonitor::default();
        assert_eq!(d.auth_failures.threshold, 20);
        assert_eq!(d.blocks[0].on, "auth.brute_force");
        let v = parse(
            "throttle_secs: 60\nauth_failures: {threshold: 5, window_secs: 60}\noff_hours:\n  utc_offsets: {alice: \"-08:00\"}\nblock:\n  - {on: auth.brute_force, target: source, minutes: 30}\nrate_limits:\n  per_principal: {per_minute: 60, burst: 10}\n  per_tool:\n    crm/export_customers: {per_minute: 1}\nwebhook: {url: {env: SLACK_URL}}\nemail: {host: 127.0.0.1, tls: none, from: a@example.com, to: [b@example.com]}\n",
        )
        .unwrap();
        assert_eq!(v.throttle, Duration::from_secs(60));
        assert_eq!(v.auth_failures.threshold, 5);
        assert_eq!(v.off_hours.offsets["alice"], -480);
        assert_eq!(v.blocks[0].duration, Duration::from_secs(1800));
        assert_eq!(v.per_principal, Some((60, 10)));
        assert_eq!(v.per_tool["crm/export_customers"], (1, 1));
        assert_eq!(v.webhook_url, Some(SecretSource::Env("SLACK_URL".into())));
        assert_eq!(v.email.unwrap().port, 25);
    }

    #[test]
    fn errors_have_positions_and_refuse_literal_secrets() {
        let e = parse("auth_failures: {threshold: 0}\n").unwrap_err();
        assert!(
            e.message.contains("auth_failures.threshold") && e.line == 1,
            "{e}"
        );
        let e = parse("webhook: {url: https://hooks.example/x}\n").unwrap_err();
        assert!(e.message.contains("AUTH-8"), "{e}");
        let e = parse("off_hours:\n  utc_offsets: {bob: \"8h\"}\n").unwrap_err();
        assert!(e.message.contains("UTC offset") && e.line == 2, "{e}");
        let e = parse("block:\n  - {on: x, target: everyone, minutes: 5}\n").unwrap_err();
        assert!(e.message.contains("principal, client or source"), "{e}");
    }

    #[test]
    fn learning_period_and_trusted_networks() {
        // MON-1: the defaults the replay evaluation ran with (EVAL.md).
        let d = ValidMonitor::default();
        assert_eq!(d.min_history_days, 2);
        assert_eq!(d.off_hours.min_calls, 3);
        assert_eq!(d.off_hours.window, Duration::from_secs(1800));
        assert!(d.trusted_networks.is_empty());
        let v = parse(
            "min_history_days: 5\noff_hours: {min_calls: 2, window_secs: 600}\ntrusted_networks:\n  - 10.0.0.0/8\n  - 2001:db8::/32\n  - 192.0.2.7\n",
        )
        .unwrap();
        assert_eq!(v.min_history_days, 5);
        assert_eq!(v.off_hours.min_calls, 2);
        assert_eq!(v.off_hours.window, Duration::from_secs(600));
        let nets: Vec<String> = v.trusted_networks.iter().map(|n| n.to_string()).collect();
        assert_eq!(nets, ["10.0.0.0/8", "2001:db8::/32", "192.0.2.7/32"]);
        let e = parse("trusted_networks:\n  - 10.1.2.3/8\n").unwrap_err();
        assert!(
            e.message.contains("host bits") && e.message.contains("10.0.0.0/8") && e.line == 2,
            "{e}"
        );
        let e = parse("trusted_networks: [corp-vpn]\n").unwrap_err();
        assert!(e.message.contains("CIDR") && e.line == 1, "{e}");
        let e = parse("min_history_days: 61\n").unwrap_err();
        assert!(e.message.contains("min_history_days"), "{e}");
        let e = parse("off_hours: {min_calls: 0}\n").unwrap_err();
        assert!(e.message.contains("off_hours.min_calls"), "{e}");
    }

    #[test]
    fn otlp_endpoint_is_a_collector_base_url() {
        // MON-5.
        assert_eq!(ValidMonitor::default().otlp_traces_url, None);
        let v = parse("otlp_endpoint: http://127.0.0.1:4318\n").unwrap();
        assert_eq!(
            v.otlp_traces_url.as_deref(),
            Some("http://127.0.0.1:4318/v1/traces")
        );
        let v = parse("otlp_endpoint: https://otel.example/v1/traces/\n").unwrap();
        assert_eq!(
            v.otlp_traces_url.as_deref(),
            Some("https://otel.example/v1/traces")
        );
        for (bad, why) in [
            ("ftp://otel.example", "http or https"),
            ("otel.example:4318", "http or https"),
            ("http://user:pw@otel.example", "credentials"),
        ] {
            let e = parse(&format!("otlp_endpoint: \"{bad}\"\n")).unwrap_err();
            assert!(e.message.contains(why) && e.line == 1, "{bad}: {e}");
        }
    }
}
