//! Shared set-up for the store's integration tests: a fresh SQLite file, or a uniquely named
//! PostgreSQL database (127.0.0.1:5432, trust auth) that is dropped afterwards.
#![allow(dead_code)]

use portcullis_store::{DatabaseUrl, OpenMode, Store};

/// The PostgreSQL server the tests use.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// Runs `exercise` on a new SQLite database.
pub async fn on_sqlite<F: AsyncFnOnce(&Store)>(exercise: F) {
    let dir = tempfile::tempdir().unwrap();
    let url: DatabaseUrl = format!("sqlite://{}", dir.path().join("p.db").display())
        .parse()
        .unwrap();
    let store = Store::open(&url, OpenMode::CreateIfMissing).await.unwrap();
    exercise(&store).await;
}

/// Runs `exercise` on a new PostgreSQL database named after `label`; fails (never skips) when
/// the server is unreachable.
pub async fn on_postgres<F: AsyncFnOnce(&Store)>(label: &str, exercise: F) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(PG_ADMIN_URL)
        .await
        .unwrap_or_else(|e| {
            panic!("PostgreSQL is required for this test but {PG_ADMIN_URL} is unreachable ({e})")
        });
    let name = format!("portcullis_{label}_{}", std::process::id());
    let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
    let _ = sqlx::query(sqlx::AssertSqlSafe(drop.clone()))
        .execute(&mut conn)
        .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let url: DatabaseUrl = format!("postgres://postgres@127.0.0.1:5432/{name}")
        .parse()
        .unwrap();
    let store = Store::open(&url, OpenMode::CreateIfMissing).await.unwrap();
    exercise(&store).await;
    store.close().await;
    sqlx::query(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .unwrap();
}
