//! The resource-server side of the gateway (AUTH-3, AUTH-4, AUTH-5, AZ-3) over real HTTP on
//! loopback, with a table-driven verifier standing in for the authorization server (whose own
//! tests cover signatures and claims): challenges and their exact headers, protected resource
//! metadata, tokens bound to one endpoint, per-tool scopes on every call, filtered listings,
//! sessions bound to their owner, and events naming the caller.

use std::collections::HashMap;
use std::sync::Arc;

use portcullis_core::{
    EventKind, EventSink, MemorySink, Principal, SystemClock, TokenRejection, TokenVerifier,
    VerifyFuture,
};
use portcullis_gateway::{Gateway, GatewayAuth};
use serde_json::{Value, json};

/// Tokens by value; checks the audience the way a real verifier must (exact match).
struct TableVerifier(HashMap<String, Principal>);

impl TokenVerifier for TableVerifier {
    fn verify<'a>(&'a self, token: &'a str, resource: &'a str) -> VerifyFuture<'a> {
        Box::pin(async move {
            if token == "expired" {
                return Err(TokenRejection::Expired);
            }
            let p = self
                .0
                .get(token)
                .cloned()
                .ok_or_else(|| TokenRejection::Malformed("unknown test token".into()))?;
            if p.audience != resource {
                return Err(TokenRejection::WrongAudience(resource.to_string()));
            }
            Ok(p)
        })
    }
}

struct Running {
    base: String,
    sink: Arc<MemorySink>,
    client: reqwest::Client,
}

fn principal(base: &str, path: &str, subject: &str, scopes: &[&str]) -> Principal {
    Principal {
        subject: subject.into(),
        display_name: None,
        groups: vec![],
        roles: vec![],
        client_id: "client-1".into(),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        audience: format!("{base}{path}"),
        issuer: base.into(),
        token_id: format!("jti-{subject}"),
        expires_at: i64::MAX,
        environment: Some("dev".into()),
    }
}

async fn start() -> Running {
    let yaml = "connectors:\n  crm:\n    type: demo\n  crm2:\n    type: demo\n    scopes:\n      export_customers: crm2:bulk\n";
    let config = portcullis_config::load_str(yaml, "test.yaml").expect("valid test config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut tokens = HashMap::new();
    tokens.insert(
        "reader".to_string(),
        principal(&base, "/mcp/crm", "alice", &["crm:read"]),
    );
    tokens.insert(
        "reader-bob".to_string(),
        principal(&base, "/mcp/crm", "bob", &["crm:read"]),
    );
    tokens.insert(
        "admin".to_string(),
        principal(&base, "/mcp/crm", "alice", &["crm:admin"]),
    );
    tokens.insert(
        "federated-reader".to_string(),
        principal(&base, "/mcp", "alice", &["crm:read"]),
    );
    let mut prod = principal(&base, "/mcp/crm", "alice", &["crm:admin"]);
    prod.environment = Some("prod".into());
    tokens.insert("prod".to_string(), prod);
    let sink = Arc::new(MemorySink::default());
    let gateway =
        Gateway::new(config, sink.clone(), Arc::new(SystemClock)).with_auth(GatewayAuth {
            verifier: Arc::new(TableVerifier(tokens)),
            public_url: base.clone(),
            authorization_servers: vec![base.clone()],
            environment: "dev".into(),
        });
    let router = gateway.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    Running {
        base,
        sink,
        client: reqwest::Client::new(),
    }
}

struct Answer {
    status: u16,
    challenge: Option<String>,
    session: Option<String>,
    body: Value,
}

impl Running {
    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        session: Option<&str>,
        msg: Value,
    ) -> Answer {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(msg.to_string());
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        if let Some(s) = session {
            req = req.header("mcp-session-id", s);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let challenge = resp
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string());
        let session = resp
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_string());
        let text = resp.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else if let Some(last) = text.lines().rev().find_map(|l| l.strip_prefix("data: ")) {
            serde_json::from_str(last).unwrap()
        } else {
            serde_json::from_str(&text).unwrap()
        };
        Answer {
            status,
            challenge,
            session,
            body,
        }
    }

    async fn open(&self, path: &str, token: &str) -> String {
        let a = self
            .post(path, Some(token), None, json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
            .await;
        assert_eq!(a.status, 200, "{:?}", a.body);
        let sid = a.session.expect("a session id");
        let n = self
            .post(
                path,
                Some(token),
                Some(&sid),
                json!({"jsonrpc":"2.0","method":"notifications/initialized"}),
            )
            .await;
        assert_eq!(n.status, 202);
        sid
    }
}

fn call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}})
}

#[tokio::test]
async fn requests_without_a_valid_token_get_the_rfc_6750_challenge() {
    let g = start().await;
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}});
    let metadata = format!("{}/.well-known/oauth-protected-resource/mcp/crm", g.base);

    // AUTH-3: no credentials: 401, resource_metadata, a scope hint, and no error code.
    let a = g.post("/mcp/crm", None, None, init.clone()).await;
    assert_eq!(a.status, 401);
    assert_eq!(
        a.challenge.as_deref(),
        Some(format!("Bearer resource_metadata=\"{metadata}\", scope=\"crm:read\"").as_str())
    );

    // AUTH-4: a bad, an expired and a wrong-audience token: invalid_token.
    for (token, description) in [
        ("garbage", "malformed access token"),
        ("expired", "access token has expired"),
        ("federated-reader", "access token is for another resource"),
    ] {
        let a = g.post("/mcp/crm", Some(token), None, init.clone()).await;
        assert_eq!(a.status, 401, "{token}");
        let c = a.challenge.unwrap();
        assert!(
            c.starts_with(&format!("Bearer resource_metadata=\"{metadata}\"")),
            "{c}"
        );
        assert!(c.contains("error=\"invalid_token\""), "{c}");
        assert!(c.contains(description), "{token}: {c}");
    }

    // A Basic header is not a bearer token.
    let resp = g
        .client
        .post(format!("{}/mcp/crm", g.base))
        .header("authorization", "Basic YTpi")
        .header("content-type", "application/json")
        .body(init.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    // AZ-4: a token of another environment.
    let a = g.post("/mcp/crm", Some("prod"), None, init.clone()).await;
    assert_eq!(a.status, 401);
    assert!(a.challenge.unwrap().contains("another environment"));

    // GET and DELETE are protected too.
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let resp = g
            .client
            .request(method.clone(), format!("{}/mcp/crm", g.base))
            .header("accept", "text/event-stream")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{method}");
        assert!(resp.headers().contains_key("www-authenticate"));
    }

    // Every refusal is an auth event, never holding the token.
    g.sink.flush().await;
    let events = g.sink.events();
    let auth: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Auth)
        .collect();
    assert!(auth.len() >= 7, "{auth:?}");
    assert!(auth.iter().any(|e| e.reasons == ["token_expired"]));
    assert!(auth.iter().any(|e| e.reasons == ["token_wrong_audience"]));
    let all = serde_json::to_string(&events).unwrap();
    assert!(!all.contains("garbage"), "a token reached the audit log");
}

#[tokio::test]
async fn protected_resource_metadata_describes_each_endpoint() {
    let g = start().await;
    let get = |path: String| {
        let c = g.client.clone();
        async move {
            let r = c.get(path).send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (s, v) = get(format!(
        "{}/.well-known/oauth-protected-resource/mcp/crm",
        g.base
    ))
    .await;
    assert_eq!(s, 200);
    assert_eq!(v["resource"], format!("{}/mcp/crm", g.base));
    assert_eq!(v["authorization_servers"], json!([g.base]));
    assert_eq!(
        v["scopes_supported"],
        json!(["crm:read", "crm:write", "crm:admin"])
    );
    assert_eq!(v["bearer_methods_supported"], json!(["header"]));
    let (_, v) = get(format!(
        "{}/.well-known/oauth-protected-resource/mcp/crm2",
        g.base
    ))
    .await;
    assert_eq!(
        v["scopes_supported"],
        json!(["crm2:read", "crm2:write", "crm2:admin", "crm2:bulk"])
    );
    let (_, v) = get(format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        g.base
    ))
    .await;
    assert_eq!(v["resource"], format!("{}/mcp", g.base));
    assert_eq!(v["scopes_supported"].as_array().unwrap().len(), 7);
    let (s, _) = get(format!(
        "{}/.well-known/oauth-protected-resource/mcp/nope",
        g.base
    ))
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn scopes_are_checked_on_every_call_and_filter_listings() {
    let g = start().await;
    let sid = g.open("/mcp/crm", "reader").await;

    // AZ-3: crm:read lists the four read-only tools, not delete_customer (crm:admin).
    let a = g
        .post(
            "/mcp/crm",
            Some("reader"),
            Some(&sid),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    let names: Vec<&str> = a.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"search_customers"), "{names:?}");
    assert!(!names.contains(&"delete_customer"), "{names:?}");

    // A read-only tool is allowed.
    let a = g
        .post(
            "/mcp/crm",
            Some("reader"),
            Some(&sid),
            call(2, "get_customer", json!({"id": "cus_0001"})),
        )
        .await;
    assert_eq!(a.status, 200);
    assert!(a.body.get("result").is_some(), "{}", a.body);

    // AUTH-5: the destructive tool needs crm:admin: 403 with the step-up challenge naming
    // what the token has plus what the call needs.
    let a = g
        .post(
            "/mcp/crm",
            Some("reader"),
            Some(&sid),
            call(3, "delete_customer", json!({"id": "cus_0001"})),
        )
        .await;
    assert_eq!(a.status, 403);
    assert_eq!(
        a.challenge.as_deref(),
        Some(format!(
            "Bearer error=\"insufficient_scope\", scope=\"crm:read crm:admin\", resource_metadata=\"{}/.well-known/oauth-protected-resource/mcp/crm\", error_description=\"the tool \\\"delete_customer\\\" of connector \\\"crm\\\" needs the scope \\\"crm:admin\\\", which the access token lacks\"",
            g.base
        ).as_str())
    );
    assert_eq!(a.body["error"]["code"], -32007);
    assert_eq!(a.body["id"], 3);

    // An unknown tool needs the admin scope (fail closed), and is then the connector's to refuse.
    let a = g
        .post(
            "/mcp/crm",
            Some("reader"),
            Some(&sid),
            call(4, "no_such_tool", json!({})),
        )
        .await;
    assert_eq!(a.status, 403);

    // With crm:admin (step-up done), the call goes through, in a session of its own.
    let sid2 = g.open("/mcp/crm", "admin").await;
    let a = g
        .post(
            "/mcp/crm",
            Some("admin"),
            Some(&sid2),
            call(5, "delete_customer", json!({"id": "cus_0002"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.body.get("result").is_some(), "{}", a.body);

    // The events name the caller and the refusal.
    g.sink.flush().await;
    let events = g.sink.events();
    let refused = events
        .iter()
        .find(|e| {
            e.target.as_deref() == Some("delete_customer") && e.reasons == ["insufficient_scope"]
        })
        .expect("the refused call is recorded");
    assert_eq!(refused.principal.as_deref(), Some("alice"));
    assert_eq!(refused.client.as_deref(), Some("client-1"));
}

#[tokio::test]
async fn a_tool_called_before_any_listing_still_needs_its_scope() {
    let g = start().await;
    let sid = g.open("/mcp/crm", "reader").await;
    // No tools/list first: the gateway lists the tools itself to learn the scope.
    let a = g
        .post(
            "/mcp/crm",
            Some("reader"),
            Some(&sid),
            call(1, "delete_customer", json!({"id": "cus_0001"})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    let a = g
        .post(
            "/mcp/crm",
            Some("reader"),
            Some(&sid),
            call(2, "search_customers", json!({"query": "a"})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
}

#[tokio::test]
async fn a_session_belongs_to_whoever_opened_it() {
    let g = start().await;
    let sid = g.open("/mcp/crm", "reader").await;
    let a = g
        .post(
            "/mcp/crm",
            Some("reader-bob"),
            Some(&sid),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.body);
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another user")
    );
}

#[tokio::test]
async fn the_federated_endpoint_lists_only_what_the_scopes_allow() {
    let g = start().await;
    let sid = g.open("/mcp", "federated-reader").await;
    let a = g
        .post(
            "/mcp",
            Some("federated-reader"),
            Some(&sid),
            json!({"jsonrpc":"2.0","id":1,"method":"tools/list"}),
        )
        .await;
    let names: Vec<&str> = a.body["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"crm__search_customers"), "{names:?}");
    assert!(!names.contains(&"crm__delete_customer"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("crm2__")), "{names:?}");
    let a = g
        .post(
            "/mcp",
            Some("federated-reader"),
            Some(&sid),
            json!({"jsonrpc":"2.0","id":2,"method":"resources/list"}),
        )
        .await;
    let uris: Vec<&str> = a.body["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(uris.iter().all(|u| u.starts_with("crm+")), "{uris:?}");
    let a = g
        .post(
            "/mcp",
            Some("federated-reader"),
            Some(&sid),
            call(3, "crm2__search_customers", json!({"query": "a"})),
        )
        .await;
    assert_eq!(a.status, 403);
    assert!(
        a.challenge
            .unwrap()
            .contains("scope=\"crm:read crm2:read\"")
    );
}
