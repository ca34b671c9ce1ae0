//! The auth tables on both backends: users, consents, clients and lapsed-record purging through
//! the admin operations (AUTH-2, AUTH-7).

mod common;

use common::*;
use portcullis_auth::{AuthAdmin, NewUser};
use portcullis_core::Secret;

async fn admin_operations(b: Backend) {
    let env = Env::new(b).await;
    let admin = AuthAdmin::open(
        env.store.clone(),
        env.dir.path(),
        std::sync::Arc::new(env.clock.clone()),
    )
    .await
    .unwrap();
    let bob = admin
        .add_user(NewUser {
            username: "bob".into(),
            display_name: None,
            groups: vec!["ops".into()],
            roles: vec!["it_admin".into()],
            password: Secret::new("a long enough password"),
        })
        .await
        .unwrap();
    assert_eq!(bob.groups, vec!["ops"]);
    let e = admin
        .add_user(NewUser {
            username: "bob".into(),
            display_name: None,
            groups: vec![],
            roles: vec![],
            password: Secret::new("a long enough password"),
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let e = admin
        .add_user(NewUser {
            username: "carol".into(),
            display_name: None,
            groups: vec![],
            roles: vec![],
            password: Secret::new("short"),
        })
        .await
        .unwrap_err();
    assert!(e.to_string().contains("at least 12"), "{e}");
    assert!(
        admin
            .add_user(NewUser {
                username: "bad name".into(),
                display_name: None,
                groups: vec![],
                roles: vec![],
                password: Secret::new("a long enough password")
            })
            .await
            .is_err()
    );
    let names: Vec<String> = admin
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, vec!["alice", "bob"]);
    assert!(admin.set_user_disabled("bob", true).await.unwrap().disabled);
    assert!(
        !admin
            .set_user_disabled("bob", false)
            .await
            .unwrap()
            .disabled
    );
    assert!(admin.set_user_disabled("nobody", true).await.is_err());

    let (client, _) = full_grant(&env, "crm:read crm:write").await;
    let c = admin.consents(None).await.unwrap();
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].username.as_deref(), Some("alice"));
    assert_eq!(c[0].scopes, vec!["crm:read", "crm:write"]);
    assert!(admin.consents(Some("bob")).await.unwrap().is_empty());
    assert_eq!(admin.clients().await.unwrap()[0].client_id, client);
    assert!(admin.revoke_consent("alice", "pc-unknown").await.is_err());
    assert_eq!(admin.revoke_consent("alice", &client).await.unwrap(), 1);
    assert!(admin.consents(None).await.unwrap().is_empty());
    admin.revoke_client(&client).await.unwrap();
    assert!(
        admin.revoke_client(&client).await.is_err(),
        "already revoked"
    );

    // Purging lapsed records keeps what is still needed.
    env.advance(31 * 86_400);
    env.server.rotate_keys_if_due().await.unwrap();
    env.finish().await;
}

#[tokio::test]
async fn admin_operations_on_sqlite() {
    admin_operations(Backend::Sqlite).await;
}

#[tokio::test]
async fn admin_operations_on_postgres() {
    admin_operations(Backend::Postgres).await;
}

async fn concurrent_key_creation_leaves_one_live_key(b: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let (store, pg) = open_store(b, dir.path()).await;
    let row = |kid: &str| portcullis_store::auth::KeyRow {
        kid: kid.into(),
        alg: "ES256".into(),
        public_key: vec![4; 65],
        nonce: vec![0; 12],
        sealed: vec![1; 8],
        created_us: 1000,
        retired_us: None,
    };
    // Two replicas insert at the same instant, then each retires what is older than its own.
    store.auth_insert_key(&row("k-a")).await.unwrap();
    store.auth_insert_key(&row("k-b")).await.unwrap();
    store
        .auth_retire_keys_older_than("k-a", 1000, 1000)
        .await
        .unwrap();
    store
        .auth_retire_keys_older_than("k-b", 1000, 1000)
        .await
        .unwrap();
    let keys = store.auth_keys().await.unwrap();
    let live: Vec<&str> = keys
        .iter()
        .filter(|k| k.retired_us.is_none())
        .map(|k| k.kid.as_str())
        .collect();
    assert_eq!(live, vec!["k-b"]);
    assert_eq!(keys[0].kid, "k-b", "the live key sorts first");
    store.close().await;
    if let Some(name) = pg {
        pg_drop(&name).await;
    }
}

#[tokio::test]
async fn concurrent_key_creation_on_sqlite() {
    concurrent_key_creation_leaves_one_live_key(Backend::Sqlite).await;
}

#[tokio::test]
async fn concurrent_key_creation_on_postgres() {
    concurrent_key_creation_leaves_one_live_key(Backend::Postgres).await;
}

#[tokio::test]
async fn minted_tokens_verify_and_die_with_the_user() {
    let env = Env::new(Backend::Sqlite).await;
    let admin = AuthAdmin::open(
        env.store.clone(),
        env.dir.path(),
        std::sync::Arc::new(env.clock.clone()),
    )
    .await
    .unwrap();
    let mint = |ago: i64, ttl: u64| portcullis_auth::MintToken {
        username: "alice".into(),
        client_id: "e2e".into(),
        issuer: ISSUER.into(),
        resource: CRM.into(),
        scopes: vec!["crm:read".into()],
        environment: "dev".into(),
        issued_at: start() - chrono::Duration::seconds(ago),
        ttl: std::time::Duration::from_secs(ttl),
    };
    let expired = admin.mint_access_token(mint(7200, 3600)).await.unwrap();
    assert_eq!(
        env.verify(&expired, CRM).await.unwrap_err(),
        portcullis_core::TokenRejection::Expired
    );
    let live = admin.mint_access_token(mint(0, 600)).await.unwrap();
    assert_eq!(env.verify(&live, CRM).await.unwrap().client_id, "e2e");
    assert!(
        admin.mint_access_token(mint(0, 100_000)).await.is_err(),
        "at most a day"
    );
    admin.set_user_disabled("alice", true).await.unwrap();
    env.server.rotate_keys_if_due().await.unwrap();
    assert_eq!(
        env.verify(&live, CRM).await.unwrap_err(),
        portcullis_core::TokenRejection::Revoked,
        "the server syncs revocations made by the CLI"
    );
}
