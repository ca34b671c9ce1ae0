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
        }
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
