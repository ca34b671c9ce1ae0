//! The monitor's settings: one optional block per detector (absent means off), the
//! deduplication window, automatic responses and rate limits. `portcullis-config`'s `monitor:`
//! section is validated into these. [`Settings::default`] is what the embedded default runs.

use std::collections::HashMap;
use std::time::Duration;

use crate::alert::Severity;

/// "N events in a window" (MON-1).
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    /// Events that raise the alert.
    pub threshold: u32,
    /// The sliding window they are counted in.
    pub window: Duration,
    /// The alert's severity.
    pub severity: Severity,
}

/// Request rate against each principal's own baseline (EWMA over active buckets).
#[derive(Debug, Clone, PartialEq)]
pub struct RateSpikeRule {
    /// Bucket length (default one minute).
    pub bucket: Duration,
    /// EWMA weight of the newest bucket, 0 to 1.
    pub alpha: f64,
    /// Active buckets seen before the baseline is trusted (warm-up).
    pub warmup_buckets: u32,
    /// A bucket above `factor` times the baseline is a spike...
    pub factor: f64,
    /// ...when it also holds at least this many calls.
    pub min_calls: u32,
}

/// Excessive data extraction: bytes and records returned to a principal.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractionRule {
    /// The window bytes and records are summed in.
    pub window: Duration,
    /// Absolute cap on response bytes per window.
    pub max_bytes: u64,
    /// Absolute cap on records per window (records from the `records=N` reason).
    pub max_records: u64,
    /// Absolute cap on response bytes per principal per UTC day (slow exfiltration).
    pub daily_max_bytes: u64,
    /// A window above `baseline_factor` times the principal's EWMA of windows...
    pub baseline_factor: f64,
    /// ...and above this many bytes is excessive.
    pub baseline_min_bytes: u64,
    /// Windows seen before the baseline is trusted.
    pub warmup_windows: u32,
}

/// Off-hours access, in each principal's time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct OffHoursRule {
    /// Working hours start (local hour, 0-23, inclusive).
    pub start_hour: u32,
    /// Working hours end (local hour, 1-24, exclusive).
    pub end_hour: u32,
    /// Saturdays and Sundays are off-hours.
    pub weekends_off: bool,
    /// UTC offset in minutes of principals not listed in `offsets`.
    pub default_offset_minutes: i32,
    /// UTC offset in minutes per principal (fixed offsets: daylight saving is not modelled).
    pub offsets: HashMap<String, i32>,
    /// A principal still in the learning period (see [`Settings::min_history_days`]) is
    /// reported only for a session: this many off-hours calls...
    pub min_calls: u32,
    /// ...within this window.
    pub window: Duration,
}

/// A token used from a new network, or from two networks at once.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkRule {
    /// Corporate, VPN and other known egress ranges: never a new network.
    pub trusted: Vec<ipnet::IpNet>,
    /// One client's calls going back and forth between two networks (A, B, A, B) within this
    /// window means its token is in two places (`token.concurrent_networks`).
    pub concurrent_window: Duration,
}

/// What an automatic response blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockWhat {
    /// The alert's principal.
    Principal,
    /// The alert's client.
    Client,
    /// The alert's source address.
    Source,
}

/// An automatic response: alerts of `kind` block `what` for `duration` (MON-2).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseRule {
    /// The alert kind (detector id), like `auth.brute_force`.
    pub kind: String,
    /// What to block.
    pub what: BlockWhat,
    /// For how long.
    pub duration: Duration,
}

/// A token bucket: `per_minute` tokens a minute, holding at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateQuota {
    /// Refill rate.
    pub per_minute: u32,
    /// Bucket size.
    pub burst: u32,
}

/// Rate limits (absent means unlimited).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RateLimitSettings {
    /// Per principal.
    pub per_principal: Option<RateQuota>,
    /// Per OAuth client.
    pub per_client: Option<RateQuota>,
    /// Per tool (`connector/tool`) without its own entry.
    pub per_tool_default: Option<RateQuota>,
    /// Per tool, by `connector/tool`.
    pub per_tool: HashMap<String, RateQuota>,
    /// Most keys tracked per limiter in process.
    pub max_keys: usize,
}

/// All settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Failed authentications per source, client and principal (`auth.brute_force`).
    pub auth_failures: Option<ThresholdRule>,
    /// Distinct user names failing from one source (`auth.credential_stuffing`).
    pub credential_stuffing: Option<ThresholdRule>,
    /// Calls that ended in an error, per principal (`errors.repeated`).
    pub errors: Option<ThresholdRule>,
    /// Rate against baseline (`rate.spike`).
    pub rate_spike: Option<RateSpikeRule>,
    /// Data extraction (`extraction.bytes`, `extraction.records`, `extraction.daily`,
    /// `extraction.baseline`).
    pub extraction: Option<ExtractionRule>,
    /// Injection findings (`detect.injection`).
    pub injection: bool,
    /// Secrets or unredacted personal data in traffic (`detect.leak`).
    pub leaks: bool,
    /// Tools (`connector/tool` or `tool`) whose first use by a principal is flagged
    /// (`tool.first_use`).
    pub sensitive_tools: Vec<String>,
    /// Off-hours access (`access.off_hours`).
    pub off_hours: Option<OffHoursRule>,
    /// A principal's token used from a network (IPv4 /24, IPv6 /48) not seen before
    /// (`token.new_network`, after the learning period), or one client's token from two
    /// networks at once (`token.concurrent_networks`).
    pub new_network: Option<NetworkRule>,
    /// The learning period: earlier active days (local days with calls) a principal needs
    /// before their habits (hours, networks) are trusted, so that what they have not done
    /// before is news. Until then a new network is learned silently and off-hours needs a
    /// session (`OffHoursRule::min_calls`).
    pub min_history_days: u32,
    /// Calls to domains outside the allow-lists (`egress.unapproved_domain`).
    pub unapproved_domains: bool,
    /// Tool-definition drift (`tool.drift`, MON-3).
    pub drift: bool,
    /// Alerts with the same dedup key within this window are suppressed (MON-2).
    pub throttle: Duration,
    /// Automatic responses.
    pub responses: Vec<ResponseRule>,
    /// Rate limits.
    pub rate_limits: RateLimitSettings,
    /// Most keys each detector keeps state for (bounded memory; the stalest go first).
    pub max_keys: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auth_failures: Some(ThresholdRule {
                threshold: 20,
                window: Duration::from_secs(300),
                severity: Severity::High,
            }),
            credential_stuffing: Some(ThresholdRule {
                threshold: 10,
                window: Duration::from_secs(600),
                severity: Severity::High,
            }),
            errors: Some(ThresholdRule {
                threshold: 30,
                window: Duration::from_secs(300),
                severity: Severity::Medium,
            }),
            rate_spike: Some(RateSpikeRule {
                bucket: Duration::from_secs(60),
                alpha: 0.1,
                warmup_buckets: 10,
                factor: 8.0,
                min_calls: 40,
            }),
            extraction: Some(ExtractionRule {
                window: Duration::from_secs(600),
                max_bytes: 20 * 1024 * 1024,
                max_records: 5_000,
                daily_max_bytes: 50 * 1024 * 1024,
                baseline_factor: 10.0,
                baseline_min_bytes: 5 * 1024 * 1024,
                warmup_windows: 6,
            }),
            injection: true,
            leaks: true,
            sensitive_tools: vec!["delete_customer".into(), "export_customers".into()],
            off_hours: Some(OffHoursRule {
                start_hour: 6,
                end_hour: 21,
                weekends_off: true,
                default_offset_minutes: 0,
                offsets: HashMap::new(),
                min_calls: 3,
                window: Duration::from_secs(1800),
            }),
            new_network: Some(NetworkRule {
                trusted: Vec::new(),
                concurrent_window: Duration::from_secs(3600),
            }),
            min_history_days: 2,
            unapproved_domains: true,
            drift: true,
            throttle: Duration::from_secs(900),
            responses: vec![ResponseRule {
                kind: "auth.brute_force".into(),
                what: BlockWhat::Source,
                duration: Duration::from_secs(900),
            }],
            rate_limits: RateLimitSettings {
                max_keys: 100_000,
                ..Default::default()
            },
            max_keys: 100_000,
        }
    }
}

impl Settings {
    /// Settings from the validated `monitor:` config section; detectors the section does not
    /// configure keep their defaults. Sinks and Redis are built by the caller from the same
    /// section (`webhook_url`, `email`, `redis_url`).
    pub fn from_config(v: &portcullis_config::ValidMonitor) -> Self {
        let d = Self::default();
        let quota =
            |q: Option<(u32, u32)>| q.map(|(per_minute, burst)| RateQuota { per_minute, burst });
        Self {
            auth_failures: Some(ThresholdRule {
                threshold: v.auth_failures.threshold,
                window: v.auth_failures.window,
                severity: Severity::High,
            }),
            errors: Some(ThresholdRule {
                threshold: v.errors.threshold,
                window: v.errors.window,
                severity: Severity::Medium,
            }),
            sensitive_tools: v.sensitive_tools.clone(),
            off_hours: Some(OffHoursRule {
                start_hour: v.off_hours.start_hour,
                end_hour: v.off_hours.end_hour,
                weekends_off: v.off_hours.weekends_off,
                default_offset_minutes: v.off_hours.default_offset_minutes,
                offsets: v
                    .off_hours
                    .offsets
                    .iter()
                    .map(|(k, o)| (k.clone(), *o))
                    .collect(),
                min_calls: v.off_hours.min_calls,
                window: v.off_hours.window,
            }),
            new_network: d.new_network.clone().map(|n| NetworkRule {
                trusted: v.trusted_networks.clone(),
                ..n
            }),
            min_history_days: v.min_history_days,
            throttle: v.throttle,
            responses: v
                .blocks
                .iter()
                .map(|b| ResponseRule {
                    kind: b.on.clone(),
                    what: match b.target.as_str() {
                        "principal" => BlockWhat::Principal,
                        "client" => BlockWhat::Client,
                        _ => BlockWhat::Source,
                    },
                    duration: b.duration,
                })
                .collect(),
            rate_limits: RateLimitSettings {
                per_principal: quota(v.per_principal),
                per_client: quota(v.per_client),
                per_tool_default: quota(v.per_tool_default),
                per_tool: v
                    .per_tool
                    .iter()
                    .map(|(k, q)| {
                        (
                            k.clone(),
                            RateQuota {
                                per_minute: q.0,
                                burst: q.1,
                            },
                        )
                    })
                    .collect(),
                max_keys: d.rate_limits.max_keys,
            },
            ..d
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_match_settings_defaults() {
        // The embedded default config and `Settings::default()` must describe the same monitor.
        assert_eq!(
            Settings::from_config(&portcullis_config::ValidMonitor::default()),
            Settings::default()
        );
    }
}
