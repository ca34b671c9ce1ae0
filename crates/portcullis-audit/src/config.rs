//! Audit log configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use portcullis_store::DatabaseUrl;

use crate::AuditError;

/// How the audit log is stored, signed and batched, and the data-class policy applied to events.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// `sqlite://<path>` or `postgres://...`.
    pub database: String,
    /// The Ed25519 checkpoint key, outside the database; created (0600) when the log is new.
    pub signing_key_path: PathBuf,
    /// Where the signed head record goes after each commit (catches a truncated tail, AU-3).
    /// `None` turns it off (several replicas without a shared directory).
    pub head_path: Option<PathBuf>,
    /// Events that may wait in memory; beyond it `record` drops and counts (never blocks).
    pub queue_capacity: usize,
    /// Most events in one transaction.
    pub max_batch: usize,
    /// Write a signed checkpoint into the database at least every this many events...
    pub checkpoint_every: u64,
    /// ... or when this much time (by the injected clock) has passed since the last one.
    pub checkpoint_interval: Duration,
    /// Data class of each connector (AU-4); events of other connectors get `default_class`.
    pub connector_classes: BTreeMap<String, String>,
    /// Data class of events whose connector has none configured.
    pub default_class: String,
    /// Connectors marked sensitive: no content is kept for them, only metadata (AU-7).
    pub memory_off_connectors: BTreeSet<String>,
    /// Data classes whose raw payloads are kept, encrypted per subject (AU-2). Empty by default:
    /// raw payloads are off.
    pub payload_classes: BTreeSet<String>,
    /// The key that wraps the per-subject payload keys; created (0600) when first needed.
    pub payload_key_path: PathBuf,
    /// Days events of each data class are kept (AU-4); classes not listed use
    /// `default_retention_days`.
    pub retention_days: BTreeMap<String, u32>,
    /// Days for classes without their own rule; `None` keeps them forever.
    pub default_retention_days: Option<u32>,
    /// How often the background retention job runs.
    pub retention_interval: Duration,
    /// Live sinks the committed events are copied to (AU-6).
    pub sinks: Vec<crate::sinks::SinkConfig>,
}

/// The audit part of the configuration file, as an operator writes it (YAML or JSON).
///
/// ```yaml
/// connector_classes: { crm: personal }
/// default_class: internal
/// retention_days: { personal: 30, internal: 365 }
/// default_retention_days: 400
/// payload_classes: [personal]
/// memory_off_connectors: [hr]
/// sinks:
///   - { type: file, path: /var/log/portcullis/audit.jsonl, max_bytes: 10000000, keep: 5 }
///   - { type: syslog, address: "127.0.0.1:514", transport: udp }
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditPolicy {
    /// Data class of each connector.
    #[serde(default)]
    pub connector_classes: BTreeMap<String, String>,
    /// Class of connectors without one.
    #[serde(default)]
    pub default_class: Option<String>,
    /// Days per class.
    #[serde(default)]
    pub retention_days: BTreeMap<String, u32>,
    /// Days for other classes (absent: forever).
    #[serde(default)]
    pub default_retention_days: Option<u32>,
    /// Classes whose payloads are kept, encrypted.
    #[serde(default)]
    pub payload_classes: BTreeSet<String>,
    /// Sensitive connectors: metadata only.
    #[serde(default)]
    pub memory_off_connectors: BTreeSet<String>,
    /// Live sinks.
    #[serde(default)]
    pub sinks: Vec<crate::sinks::SinkConfig>,
}

impl AuditPolicy {
    /// Parses a policy file; errors name the file, line and column.
    pub fn from_yaml(text: &str, path: &Path) -> Result<Self, AuditError> {
        serde_saphyr::from_str(text)
            .map_err(|e| AuditError::Config(format!("{}: {e}", path.display())))
    }

    /// Applies the policy onto `cfg`.
    pub fn apply(self, cfg: &mut AuditConfig) {
        cfg.connector_classes = self.connector_classes;
        if let Some(c) = self.default_class {
            cfg.default_class = c;
        }
        cfg.retention_days = self.retention_days;
        cfg.default_retention_days = self.default_retention_days;
        cfg.payload_classes = self.payload_classes;
        cfg.memory_off_connectors = self.memory_off_connectors;
        cfg.sinks = self.sinks;
    }
}

impl AuditConfig {
    /// The embedded default: SQLite at `<data_dir>/portcullis.db`, the key at
    /// `<data_dir>/audit-signing.key`, the head record at `<data_dir>/audit-head.json`.
    pub fn embedded(data_dir: &Path) -> Self {
        Self {
            database: format!("sqlite://{}", data_dir.join("portcullis.db").display()),
            signing_key_path: data_dir.join("audit-signing.key"),
            head_path: Some(data_dir.join("audit-head.json")),
            queue_capacity: 100_000,
            max_batch: 4096,
            checkpoint_every: 1000,
            checkpoint_interval: Duration::from_secs(1),
            connector_classes: BTreeMap::new(),
            default_class: "default".into(),
            memory_off_connectors: BTreeSet::new(),
            payload_classes: BTreeSet::new(),
            payload_key_path: data_dir.join("audit-payload.key"),
            retention_days: BTreeMap::new(),
            default_retention_days: None,
            retention_interval: Duration::from_secs(3600),
            sinks: Vec::new(),
        }
    }

    /// Days events of `class` are kept; `None` is forever.
    pub fn retention_for(&self, class: &str) -> Option<u32> {
        self.retention_days
            .get(class)
            .copied()
            .or(self.default_retention_days)
    }

    /// The parsed database URL.
    pub fn database_url(&self) -> Result<DatabaseUrl, AuditError> {
        Ok(self.database.parse()?)
    }

    /// Checks limits that would otherwise fail later and less clearly.
    pub fn validate(&self) -> Result<(), AuditError> {
        self.database_url()?;
        if self.queue_capacity == 0 || self.queue_capacity > 10_000_000 {
            return Err(AuditError::Config(format!(
                "queue_capacity is {}; it must be between 1 and 10000000",
                self.queue_capacity
            )));
        }
        if self.max_batch == 0 || self.max_batch > 100_000 {
            return Err(AuditError::Config(format!(
                "max_batch is {}; it must be between 1 and 100000",
                self.max_batch
            )));
        }
        if self.checkpoint_every == 0 {
            return Err(AuditError::Config(
                "checkpoint_every must be at least 1".into(),
            ));
        }
        for (class, days) in &self.retention_days {
            if *days == 0 {
                return Err(AuditError::Config(format!(
                    "retention_days for class {class:?} is 0; use at least 1 (events are removed once older than this)"
                )));
            }
        }
        if self.default_retention_days == Some(0) {
            return Err(AuditError::Config(
                "default_retention_days is 0; use at least 1, or leave it out to keep events"
                    .into(),
            ));
        }
        if self.retention_interval.is_zero() {
            return Err(AuditError::Config(
                "retention_interval must be positive".into(),
            ));
        }
        for s in &self.sinks {
            s.validate()?;
        }
        if self.default_class.trim().is_empty() {
            return Err(AuditError::Config("default_class must not be empty".into()));
        }
        Ok(())
    }

    /// The data class of events of `connector`.
    pub fn class_of(&self, connector: Option<&str>) -> &str {
        connector
            .and_then(|c| self.connector_classes.get(c))
            .map(String::as_str)
            .unwrap_or(&self.default_class)
    }
}
