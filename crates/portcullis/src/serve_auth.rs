//! OAuth 2.1 for `portcullis serve` (issue 3): the built-in authorization server on the gateway's
//! own origin, one protected resource per MCP endpoint (RFC 8707), and the resource-server
//! settings the gateway checks every request with.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use portcullis_auth::AuthEvent;
use portcullis_auth::{AuthServer, AuthSettings, ProtectedResource, ScopeInfo, ScopeLevel};
use portcullis_config::ValidConfig;
use portcullis_core::{Clock, CorrelationId, Decision, Event, EventKind, EventSink, Outcome};
use portcullis_gateway::{GatewayAuth, connector_scopes};

/// What `serve` mounts when authentication is on.
pub struct ServeAuth {
    /// The authorization server's routes (metadata, registration, authorize, token, ...).
    pub router: axum::Router,
    /// What the gateway checks bearer tokens with.
    pub gateway_auth: GatewayAuth,
}

/// How a scope reads on the consent page.
fn scope_info(connector: &str, scope: &str) -> ScopeInfo {
    let word = scope.rsplit_once(':').map(|(_, w)| w).unwrap_or(scope);
    let (level, description) = match word {
        "read" => (
            ScopeLevel::Read,
            format!("Read data through {connector}: its read-only tools, resources and prompts"),
        ),
        "write" => (
            ScopeLevel::Write,
            format!("Change data through {connector}: its tools that create or update"),
        ),
        "admin" => (
            ScopeLevel::Admin,
            format!(
                "Delete or irreversibly change data through {connector}: its destructive tools"
            ),
        ),
        other => (
            ScopeLevel::Write,
            format!("Use the {connector} tools that need the {other:?} permission"),
        ),
    };
    ScopeInfo {
        name: scope.to_string(),
        description,
        level,
    }
}

/// The protected resources: each connector's endpoint, and the federated `/mcp` with every
/// connector's scopes.
pub fn protected_resources(config: &ValidConfig, public_url: &str) -> Vec<ProtectedResource> {
    let mut all = Vec::new();
    let mut out = Vec::new();
    for c in &config.connectors {
        let scopes: Vec<ScopeInfo> = connector_scopes(c)
            .iter()
            .map(|s| scope_info(&c.name, s))
            .collect();
        all.extend(scopes.iter().cloned());
        out.push(ProtectedResource {
            url: format!("{public_url}/mcp/{}", c.name),
            name: format!("the {} connector", c.name),
            scopes,
        });
    }
    out.push(ProtectedResource {
        url: format!("{public_url}/mcp"),
        name: "all connectors (federated)".to_string(),
        scopes: all,
    });
    out
}

/// Opens the authorization server on `database` and prepares the gateway's side.
pub async fn start(
    config: &ValidConfig,
    database: &str,
    public_url: &str,
    clock: Arc<dyn Clock>,
    embedded: bool,
    sink: Arc<dyn EventSink>,
) -> anyhow::Result<ServeAuth> {
    let url: portcullis_store::DatabaseUrl = database.parse()?;
    let store = portcullis_store::Store::open(&url, portcullis_store::OpenMode::CreateIfMissing)
        .await
        .with_context(|| format!("cannot open the database {} for OAuth", url.redacted()))?;
    let settings = AuthSettings::from_config(&config.auth);
    let clock_for_events = clock.clone();
    let server = AuthServer::open(
        settings,
        store,
        &config.data_dir,
        public_url.to_string(),
        protected_resources(config, public_url),
        clock,
    )
    .await
    .context("cannot start the authorization server")?
    .with_event_sink(audit_events(sink, clock_for_events));
    if embedded {
        let file = config.data_dir.join("demo-password");
        if server.ensure_demo_user().await?.is_some() {
            tracing::info!("created the demo user `demo`");
        }
        tracing::info!(
            "sign in as `demo` with the password in {} when a client opens the login page",
            file.display()
        );
    }
    // AUTH-9: signing keys rotate in the background, with an overlap in the JWKS; the same
    // job picks up revocations made with the CLI (users disable, consents and clients revoke),
    // so it runs every minute.
    let rotating = server.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = rotating.rotate_keys_if_due().await {
                tracing::error!("signing-key rotation failed: {e}");
            }
        }
    });
    let gateway_auth = GatewayAuth {
        verifier: verifiers(config, &server).await?,
        public_url: public_url.to_string(),
        authorization_servers: vec![server.issuer().to_string()],
        environment: config.environment.as_str().to_string(),
    };
    Ok(ServeAuth {
        router: server.router(),
        gateway_auth,
    })
}

/// The authorization server's events as audit events (AU-1): logins, tokens issued, reuse
/// detected, revocations, registrations, consents. Users are named by id, tokens by id or
/// family; no secret is in any of them.
fn audit_events(sink: Arc<dyn EventSink>, clock: Arc<dyn Clock>) -> portcullis_auth::AuthEventSink {
    Arc::new(move |e: AuthEvent| {
        let mut ev = Event::new(
            clock.now(),
            CorrelationId::generate(&mut rand::rng()),
            EventKind::Auth,
        );
        let (principal, client, source, decision, reason, target) = match e {
            AuthEvent::LoginSucceeded { user_id, source } => (
                Some(user_id),
                None,
                source,
                Decision::Allow,
                "login".to_string(),
                None,
            ),
            AuthEvent::LoginFailed {
                user_id,
                source,
                reason,
            } => (
                user_id,
                None,
                source,
                Decision::Deny,
                format!("login_failed:{reason}"),
                None,
            ),
            AuthEvent::TokenIssued {
                user_id,
                client_id,
                resource,
                grant,
                ..
            } => (
                Some(user_id),
                Some(client_id),
                None,
                Decision::Allow,
                format!("token_issued:{grant}"),
                Some(resource),
            ),
            AuthEvent::ReuseDetected {
                family,
                client_id,
                what,
            } => (
                None,
                Some(client_id),
                None,
                Decision::Deny,
                format!("reuse_detected:{what}"),
                Some(family),
            ),
            AuthEvent::TokenRevoked {
                client_id,
                what,
                id,
            } => (
                None,
                Some(client_id),
                None,
                Decision::Deny,
                format!("token_revoked:{what}"),
                Some(id),
            ),
            AuthEvent::ClientRegistered { client_id, .. } => (
                None,
                Some(client_id),
                None,
                Decision::Allow,
                "client_registered".to_string(),
                None,
            ),
            AuthEvent::ClientRevoked { client_id } => (
                None,
                Some(client_id),
                None,
                Decision::Deny,
                "client_revoked".to_string(),
                None,
            ),
            AuthEvent::ConsentGiven {
                user_id,
                client_id,
                resource,
                ..
            } => (
                Some(user_id),
                Some(client_id),
                None,
                Decision::Allow,
                "consent_given".to_string(),
                Some(resource),
            ),
            AuthEvent::ConsentDenied { user_id, client_id } => (
                Some(user_id),
                Some(client_id),
                None,
                Decision::Deny,
                "consent_denied".to_string(),
                None,
            ),
            AuthEvent::ConsentRevoked { user_id, client_id } => (
                Some(user_id),
                Some(client_id),
                None,
                Decision::Deny,
                "consent_revoked".to_string(),
                None,
            ),
            AuthEvent::UserChanged { user_id, disabled } => (
                Some(user_id),
                None,
                None,
                Decision::Allow,
                if disabled {
                    "user_disabled"
                } else {
                    "user_enabled"
                }
                .to_string(),
                None,
            ),
            AuthEvent::KeyRotated { kid } => (
                None,
                None,
                None,
                Decision::Allow,
                "signing_key_rotated".to_string(),
                Some(kid),
            ),
        };
        ev.principal = principal;
        ev.client = client;
        ev.source = source;
        ev.decision = decision;
        ev.target = target;
        ev.method = Some("oauth".into());
        if decision == Decision::Deny {
            ev.outcome = Outcome::Error {
                code: 0,
                origin: "gateway".into(),
            };
        }
        ev.reasons.push(reason);
        sink.record(ev);
    })
}

/// The built-in server's verifier, and one per configured external issuer (AUTH-6): a token
/// is checked by the verifier of the issuer it names.
async fn verifiers(
    config: &ValidConfig,
    server: &AuthServer,
) -> anyhow::Result<Arc<dyn portcullis_core::TokenVerifier>> {
    if config.auth.external.is_empty() {
        return Ok(server.verifier());
    }
    let mut chain = portcullis_federation::VerifierChain::new(vec![(
        server.issuer().to_string(),
        server.verifier(),
    )]);
    let http = portcullis_federation::default_http_client()
        .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for external issuers: {e}"))?;
    for e in &config.auth.external {
        let secret = e
            .resolve_introspection_secret()
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        let settings = portcullis_federation::ExternalIssuerSettings {
            issuer: e.issuer.clone(),
            jwks_uri: e.jwks_uri.clone(),
            introspection: match (&e.introspection, secret) {
                (Some(i), Some(client_secret)) => {
                    Some(portcullis_federation::IntrospectionSettings {
                        endpoint: i.endpoint.clone(),
                        client_id: i.client_id.clone(),
                        client_secret,
                    })
                }
                _ => None,
            },
            audiences: e.audiences.clone(),
            scope_claim: e.scope_claim.clone(),
            groups_claim: e.groups_claim.clone(),
            roles_claim: e.roles_claim.clone(),
            clock: Arc::new(portcullis_core::SystemClock),
        };
        let v = portcullis_federation::ExternalVerifier::new(settings, http.clone())
            .await
            .with_context(|| format!("cannot set up the external issuer {}", e.issuer))?;
        tracing::info!("accepting tokens of the external issuer {}", e.issuer);
        chain.push_external(Arc::new(v));
    }
    Ok(Arc::new(chain))
}
