//! The approval queue's table on both backends (HC-2, HC-3): a decision happens once, only
//! while pending and unexpired; an approval is used once, only by the call it is bound to.

mod common;

use portcullis_store::Store;
use portcullis_store::approvals::ApprovalRow;

fn row(id: &str, expires_us: i64) -> ApprovalRow {
    ApprovalRow {
        id: id.into(),
        created_us: 1_000,
        expires_us,
        principal: "alice".into(),
        client: "client-1".into(),
        connector: "crm".into(),
        tool: "delete_customer".into(),
        call_hash: "hash-1".into(),
        summary: "delete_customer(id: \"cus_0001\")".into(),
        correlation_id: "corr-1".into(),
        status: "pending".into(),
        decided_by: None,
        decided_us: None,
        reason: None,
        used_us: None,
    }
}

async fn exercise(store: &Store) {
    store.insert_approval(&row("a", 10_000)).await.unwrap();
    store.insert_approval(&row("b", 10_000)).await.unwrap();
    store.insert_approval(&row("c", 2_000)).await.unwrap();
    assert_eq!(store.approvals(Some("pending"), 10).await.unwrap().len(), 3);

    // A decision happens once.
    assert!(
        store
            .decide_approval("a", "approved", "bob", None, 5_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .decide_approval("a", "denied", "carol", None, 5_001)
            .await
            .unwrap()
    );
    let a = store.approval("a").await.unwrap().unwrap();
    assert_eq!(
        (a.status.as_str(), a.decided_by.as_deref()),
        ("approved", Some("bob"))
    );

    // An expired entry cannot be decided, and the sweep marks it expired.
    assert!(
        !store
            .decide_approval("c", "approved", "bob", None, 5_000)
            .await
            .unwrap()
    );
    assert_eq!(store.expire_approvals(5_000).await.unwrap(), 1);
    assert_eq!(
        store.approval("c").await.unwrap().unwrap().status,
        "expired"
    );

    // An approval is used once, and only by the call it is bound to.
    assert!(
        !store
            .use_approval("a", "another-call", 6_000)
            .await
            .unwrap()
    );
    assert!(store.use_approval("a", "hash-1", 6_000).await.unwrap());
    assert!(!store.use_approval("a", "hash-1", 6_001).await.unwrap());
    // A denied one is never usable.
    assert!(
        store
            .decide_approval("b", "denied", "bob", Some("not today"), 5_000)
            .await
            .unwrap()
    );
    assert!(!store.use_approval("b", "hash-1", 6_000).await.unwrap());
    assert_eq!(store.approvals(None, 10).await.unwrap().len(), 3);
    assert!(store.approval("zzz").await.unwrap().is_none());
}

#[tokio::test]
async fn sqlite_approval_queue() {
    common::on_sqlite(async |s: &Store| exercise(s).await).await;
}

#[tokio::test]
async fn postgres_approval_queue() {
    common::on_postgres("approvals", async |s: &Store| exercise(s).await).await;
}
