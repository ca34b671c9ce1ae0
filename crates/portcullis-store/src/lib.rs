//! portcullis-store: the one storage interface Portcullis uses, with two implementations behind
//! it: SQLite (embedded, one file in the data directory, the default) and PostgreSQL (several
//! replicas). Both speak the same SQL through sqlx; each backend has its own migrations
//! (`migrations/sqlite`, `migrations/postgres`) because types and locking differ.
//!
//! The audit log's tables and queries live in [`audit`]; the hashing, signing and policy that
//! give them meaning live in `portcullis-audit`.

pub mod alerts;
pub mod approvals;
pub mod audit;
pub mod auth;
pub mod tools;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Errors of the storage layer. Every message names the database and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL could not be understood.
    #[error(
        "invalid database URL {url:?}: {why}; use sqlite://<path> (for example sqlite://./portcullis-data/portcullis.db) or postgres://user@host:port/database"
    )]
    BadUrl {
        /// The URL as given (with any password removed).
        url: String,
        /// What was wrong with it.
        why: String,
    },
    /// The SQLite file does not exist and the caller asked not to create it.
    #[error(
        "database file {0} does not exist; check --data-dir (or the database setting) points at the Portcullis data directory"
    )]
    Missing(PathBuf),
    /// The file exists but is not an SQLite database (corrupt or foreign file).
    #[error(
        "{location} is not a readable SQLite database ({detail}); it is corrupt or not a Portcullis database: restore it from a backup"
    )]
    Corrupt {
        /// The database location.
        location: String,
        /// The driver's message.
        detail: String,
    },
    /// The database holds tables that are not Portcullis's, or a schema from a newer version.
    #[error("{location} is not a Portcullis database: {detail}")]
    Foreign {
        /// The database location.
        location: String,
        /// What did not match.
        detail: String,
    },
    /// The database could not be reached.
    #[error(
        "cannot connect to {location}: {detail}; check that the server is running and the URL is right"
    )]
    Connect {
        /// The database location (password removed).
        location: String,
        /// The driver's message.
        detail: String,
    },
    /// A migration failed.
    #[error("cannot prepare the schema of {location}: {detail}")]
    Migrate {
        /// The database location.
        location: String,
        /// The driver's message.
        detail: String,
    },
    /// A query failed.
    #[error("database error on {location} while {doing}: {source}")]
    Query {
        /// The database location.
        location: String,
        /// What the store was doing.
        doing: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
}

/// Where the data lives: an SQLite file or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://` or `postgresql://`).
    Postgres(String),
}

impl DatabaseUrl {
    /// The URL of the embedded default: `<data_dir>/portcullis.db`.
    pub fn embedded(data_dir: &Path) -> Self {
        Self::Sqlite(data_dir.join("portcullis.db"))
    }

    /// A printable form with any password replaced, safe for logs and errors.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite://{}", p.display()),
            Self::Postgres(u) => redact_password(u),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    // Never print a password: the URL may carry one.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

fn redact_password(url: &str) -> String {
    // postgres://user:password@host/... -> postgres://user:***@host/...
    if let Some((scheme, rest)) = url.split_once("://")
        && let Some((auth, host)) = rest.split_once('@')
        && let Some((user, _)) = auth.split_once(':')
    {
        return format!("{scheme}://{user}:***@{host}");
    }
    url.to_string()
}

impl FromStr for DatabaseUrl {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| StoreError::BadUrl {
            url: redact_password(s),
            why: why.to_string(),
        };
        let s = s.trim();
        if let Some(path) = s.strip_prefix("sqlite://") {
            // Options after `?` (mode=...) would silently change durability; we set them ourselves.
            if path.is_empty() {
                return Err(bad("the SQLite path is empty"));
            }
            if path.contains('?') {
                return Err(bad("query options are not accepted on an SQLite URL"));
            }
            Ok(Self::Sqlite(PathBuf::from(path)))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            if PgConnectOptions::from_str(s).is_err() {
                return Err(bad("the PostgreSQL URL does not parse"));
            }
            Ok(Self::Postgres(s.to_string()))
        } else {
            Err(bad("unknown scheme"))
        }
    }
}

/// How to open a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenMode {
    /// Create the SQLite file (and run migrations) when missing: the server.
    CreateIfMissing,
    /// The database must exist already; migrations still run so an old file is upgraded. For
    /// CLI commands that change the log (retention, erasure).
    MustExist,
    /// The database must exist and is only read: nothing is created or migrated (verify, search).
    ReadOnly,
}

/// A connection pool on one of the two backends. Cheap to clone.
#[derive(Clone, Debug)]
pub enum Db {
    /// SQLite, embedded.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the concrete pool of whichever backend `$db` is. Each arm is
/// type-checked on its own, so one query text serves both backends (`$1` placeholders work on
/// both).
#[macro_export]
macro_rules! dispatch {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// An open database: the pool and where it is, for error messages.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    location: String,
    /// SQLite, writable: the audit log's group commits run on this thread's own connection
    /// (see `audit::sqlite_writer`); `None` on PostgreSQL, read-only, or if no thread could start.
    audit_writer: Option<std::sync::Arc<audit::sqlite_writer::SqliteWriter>>,
}

impl Store {
    /// Opens (and, unless read-only, migrates) the database at `url`.
    pub async fn open(url: &DatabaseUrl, mode: OpenMode) -> Result<Self, StoreError> {
        let location = url.redacted();
        let db = match url {
            DatabaseUrl::Sqlite(path) => {
                if mode != OpenMode::CreateIfMissing && !path.exists() {
                    return Err(StoreError::Missing(path.clone()));
                }
                if let Some(parent) = path.parent()
                    && !parent.as_os_str().is_empty()
                    && mode == OpenMode::CreateIfMissing
                {
                    std::fs::create_dir_all(parent).map_err(|e| StoreError::Connect {
                        location: location.clone(),
                        detail: format!("cannot create directory {}: {e}", parent.display()),
                    })?;
                }
                // WAL + synchronous=NORMAL: a committed transaction survives a process crash
                // (kill -9); only an OS crash can lose the last commits.
                let mut opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(mode == OpenMode::CreateIfMissing)
                    .read_only(mode == OpenMode::ReadOnly)
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .foreign_keys(true);
                if mode != OpenMode::ReadOnly {
                    opts = opts.journal_mode(SqliteJournalMode::Wal);
                }
                let pool = SqlitePoolOptions::new()
                    .max_connections(4)
                    .connect_with(opts)
                    .await
                    .map_err(|e| classify_sqlite_error(&location, e))?;
                // A non-database file often opens fine and fails at the first read.
                sqlx::query("SELECT count(*) FROM sqlite_master")
                    .fetch_one(&pool)
                    .await
                    .map_err(|e| classify_sqlite_error(&location, e))?;
                Db::Sqlite(pool)
            }
            DatabaseUrl::Postgres(u) => {
                let opts = PgConnectOptions::from_str(u).map_err(|e| StoreError::BadUrl {
                    url: location.clone(),
                    why: e.to_string(),
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(opts)
                    .await
                    .map_err(|e| StoreError::Connect {
                        location: location.clone(),
                        detail: e.to_string(),
                    })?;
                Db::Postgres(pool)
            }
        };
        let audit_writer = match (url, mode) {
            (DatabaseUrl::Sqlite(path), OpenMode::CreateIfMissing | OpenMode::MustExist) => {
                audit::sqlite_writer::SqliteWriter::start(path.clone())
                    .inspect_err(|e| tracing::warn!(error = %e, "cannot start the audit writer thread; audit commits go through the pool"))
                    .ok()
                    .map(std::sync::Arc::new)
            }
            _ => None,
        };
        let store = Self {
            db,
            location,
            audit_writer,
        };
        if mode == OpenMode::ReadOnly {
            store.check_schema().await?;
        } else {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// The pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Where the database is (password removed), for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Which backend this is, in words.
    pub fn backend(&self) -> &'static str {
        match self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// Wraps a driver error with where and what.
    pub fn err(&self, doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |source| match (&self.db, &source) {
            (Db::Sqlite(_), sqlx::Error::Database(d)) if is_sqlite_corruption(d.message()) => {
                StoreError::Corrupt {
                    location: self.location.clone(),
                    detail: d.message().to_string(),
                }
            }
            _ => StoreError::Query {
                location: self.location.clone(),
                doing,
                source,
            },
        }
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // A table name of our own, so other components' migrations in the same database do not
        // collide with ours.
        let map = |e: sqlx::migrate::MigrateError| StoreError::Migrate {
            location: self.location.clone(),
            detail: e.to_string(),
        };
        match &self.db {
            Db::Sqlite(pool) => {
                let mut m = sqlx::migrate!("./migrations/sqlite");
                m.dangerous_set_table_name("_portcullis_store_migrations");
                m.run(pool).await.map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(d))
                        if is_sqlite_corruption(d.message()) =>
                    {
                        StoreError::Corrupt { location: self.location.clone(), detail: d.message().to_string() }
                    }
                    sqlx::migrate::MigrateError::Execute(sqlx::Error::Database(d))
                        if d.message().contains("already exists") =>
                    {
                        StoreError::Foreign {
                            location: self.location.clone(),
                            detail: format!(
                                "it already holds a table our schema defines ({}); point Portcullis at its own database",
                                d.message()
                            ),
                        }
                    }
                    sqlx::migrate::MigrateError::VersionMissing(v) => StoreError::Foreign {
                        location: self.location.clone(),
                        detail: format!(
                            "its schema is at migration {v}, which this version of Portcullis does not know (written by a newer version?)"
                        ),
                    },
                    other => map(other),
                })
            }
            Db::Postgres(pool) => {
                let mut m = sqlx::migrate!("./migrations/postgres");
                m.dangerous_set_table_name("_portcullis_store_migrations");
                m.run(pool).await.map_err(map)
            }
        }
    }

    /// For read-only opens: the audit tables must be there, or this is not our database.
    async fn check_schema(&self) -> Result<(), StoreError> {
        let found: Result<i64, sqlx::Error> = dispatch!(&self.db, pool =>
            sqlx::query_scalar("SELECT count(*) FROM audit_meta").fetch_one(pool).await);
        match found {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(d)) if is_sqlite_corruption(d.message()) => {
                Err(StoreError::Corrupt {
                    location: self.location.clone(),
                    detail: d.message().to_string(),
                })
            }
            Err(sqlx::Error::Database(d)) => Err(StoreError::Foreign {
                location: self.location.clone(),
                detail: format!("it has no Portcullis audit tables ({})", d.message()),
            }),
            Err(e) => Err(StoreError::Query {
                location: self.location.clone(),
                doing: "checking the schema",
                source: e,
            }),
        }
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        if let Some(w) = &self.audit_writer {
            w.stop();
        }
        dispatch!(&self.db, pool => pool.close().await)
    }
}

fn is_sqlite_corruption(msg: &str) -> bool {
    msg.contains("file is not a database") || msg.contains("malformed") || msg.contains("corrupt")
}

fn classify_sqlite_error(location: &str, e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(d) if is_sqlite_corruption(d.message()) => StoreError::Corrupt {
            location: location.to_string(),
            detail: d.message().to_string(),
        },
        _ => StoreError::Connect {
            location: location.to_string(),
            detail: e.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sqlite_and_postgres_urls() {
        assert_eq!(
            "sqlite:///tmp/x.db".parse::<DatabaseUrl>().unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        let pg: DatabaseUrl = "postgres://u:secret@127.0.0.1:5432/db".parse().unwrap();
        assert!(matches!(pg, DatabaseUrl::Postgres(_)));
        assert!(!format!("{pg:?}").contains("secret"));
        assert!(!pg.redacted().contains("secret"));
    }

    #[test]
    fn rejects_unknown_and_empty_urls() {
        for bad in ["mysql://x", "sqlite://", "file.db", "sqlite://x.db?mode=ro"] {
            let e = bad.parse::<DatabaseUrl>().unwrap_err();
            assert!(e.to_string().contains("sqlite://<path>"), "{e}");
        }
    }

    #[tokio::test]
    async fn garbage_file_is_reported_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.db");
        std::fs::write(&path, vec![0x42u8; 8192]).unwrap();
        let e = Store::open(&DatabaseUrl::Sqlite(path), OpenMode::MustExist)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { .. }), "{e}");
        assert!(e.to_string().contains("not a readable SQLite database"));
    }

    #[tokio::test]
    async fn foreign_sqlite_database_is_refused_read_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.db");
        {
            let s = Store::open(
                &DatabaseUrl::Sqlite(path.clone()),
                OpenMode::CreateIfMissing,
            )
            .await
            .unwrap();
            dispatch!(s.db(), pool => sqlx::query("DROP TABLE audit_meta").execute(pool).await.map(|_| ())).unwrap();
            s.close().await;
        }
        let e = Store::open(&DatabaseUrl::Sqlite(path), OpenMode::ReadOnly)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Foreign { .. }), "{e}");
    }

    #[tokio::test]
    async fn missing_file_is_not_created_unless_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("none.db");
        let e = Store::open(&DatabaseUrl::Sqlite(path.clone()), OpenMode::ReadOnly)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Missing(_)));
        assert!(!path.exists());
    }
}
