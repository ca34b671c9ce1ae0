//! portcullis-audit: the tamper-evident audit log (AU-1 to AU-7).
//!
//! [`AuditLog`] is an [`portcullis_core::EventSink`]: `record` queues an event without blocking,
//! a background task writes queued events in batches (one transaction per batch, group commit),
//! chains each to the one before by SHA-256 and signs checkpoints of the chain with an Ed25519
//! key kept in a file outside the database. [`verify::verify`] proves the log intact or names the
//! first bad event.

pub mod admin;
pub mod canonical;
pub mod config;
pub mod export;
mod head;
pub mod keys;
pub mod log;
pub mod metrics;
pub mod payload;
pub mod retention;
pub mod sinks;
pub mod verify;

pub use config::{AuditConfig, AuditPolicy};
pub use log::{AuditLog, EventFilter};
pub use metrics::AuditMetrics;
pub use verify::{VerifyOptions, VerifyReport};

use std::path::PathBuf;

/// Errors of the audit log. Each says what was wrong, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The storage layer failed.
    #[error(transparent)]
    Store(#[from] portcullis_store::StoreError),
    /// The configuration is invalid.
    #[error("invalid audit configuration: {0}")]
    Config(String),
    /// The signing key file is missing.
    #[error(
        "the audit signing key {path} is missing; restore it from your backup (a new key cannot vouch for checkpoints signed by the lost one)"
    )]
    KeyMissing {
        /// Where it was expected.
        path: PathBuf,
    },
    /// The signing key file could not be read or written.
    #[error("audit signing key {path}: {detail}")]
    KeyIo {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The key file is readable by others.
    #[error(
        "the audit signing key {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyPermissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The database belongs to another log or was signed by another key.
    #[error("{location} is not this Portcullis audit log: {detail}")]
    Foreign {
        /// The database.
        location: String,
        /// What did not match.
        detail: String,
    },
    /// The log was found tampered with or damaged where it must be intact to continue.
    #[error(
        "the audit log in {location} is damaged at seq {seq}: {detail}; run `portcullis audit verify` and restore from a backup"
    )]
    Damaged {
        /// The database.
        location: String,
        /// The first bad event.
        seq: i64,
        /// What is wrong.
        detail: String,
    },
    /// A time range was malformed or backwards.
    #[error("bad time range: {0}")]
    BadTimeRange(String),
    /// The log was shut down.
    #[error("the audit log is shut down")]
    Closed,
    /// An event whose caller waited for it could not be committed (the database kept failing).
    #[error(
        "the audit event could not be committed to {location} after repeated attempts; check that the database is reachable and writable, then retry"
    )]
    NotCommitted {
        /// The database.
        location: String,
    },
}
