//! The resource-server side of OAuth 2.1 for every MCP endpoint (AUTH-3, AUTH-4, AUTH-5):
//! bearer tokens checked on every request against the endpoint they are bound to, RFC 9728
//! protected resource metadata, `WWW-Authenticate` challenges that let a client discover the
//! authorization server and step up its scopes, and the per-tool scopes that are checked on
//! every call and filter every listing.
//!
//! Scopes are per connector, at three levels (`c:read` ⊆ `c:write` ⊆ `c:admin`, see
//! [`portcullis_core::scope_covers`]): a tool's default comes from its MCP annotations (read-only
//! tools need `c:read`, other tools `c:write`, destructive ones `c:admin`; per the MCP
//! specification a tool without annotations is presumed destructive), and the connector's
//! `scopes:` config overrides it per tool.

use std::sync::Arc;

use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, StatusCode, header};
use portcullis_core::{Principal, Secret, TokenRejection, TokenVerifier};

use crate::Inner;
use crate::session::Scope;

/// How the gateway authenticates callers.
#[derive(Clone)]
pub struct GatewayAuth {
    /// Checks bearer tokens.
    pub verifier: Arc<dyn TokenVerifier>,
    /// The base URL clients reach the gateway at (no trailing slash): resource URLs and metadata
    /// URLs derive from it.
    pub public_url: String,
    /// The authorization servers (issuers) that protected resource metadata names.
    pub authorization_servers: Vec<String>,
    /// The environment of the gateway (AZ-4); a token that names another is refused.
    pub environment: String,
}

/// Scope level a tool needs by default, from its annotations.
fn default_level(tool: &serde_json::Value) -> &'static str {
    let ann = tool.get("annotations");
    let flag = |k: &str| ann.and_then(|a| a.get(k)).and_then(|v| v.as_bool());
    if flag("readOnlyHint") == Some(true) {
        "read"
    } else if flag("destructiveHint") == Some(false) {
        "write"
    } else {
        // MCP: destructiveHint defaults to true for a tool that is not read-only.
        "admin"
    }
}

/// The scope each tool of a listing needs: the connector's override, else the default from the
/// annotations.
pub(crate) fn tool_scope(
    connector: &str,
    overrides: &std::collections::BTreeMap<String, String>,
    tool: &serde_json::Value,
) -> Option<(String, String)> {
    let name = tool.get("name")?.as_str()?;
    let scope = overrides
        .get(name)
        .cloned()
        .unwrap_or_else(|| format!("{connector}:{}", default_level(tool)));
    Some((name.to_string(), scope))
}

/// The scopes a connector's tokens can carry: the three levels and any custom ones of its
/// per-tool overrides.
pub fn connector_scopes(c: &portcullis_config::Connector) -> Vec<String> {
    let mut out: Vec<String> = ["read", "write", "admin"]
        .iter()
        .map(|l| format!("{}:{l}", c.name))
        .collect();
    for s in c.tool_scopes.values() {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

impl GatewayAuth {
    /// The resource URL (token audience) of an endpoint.
    pub fn resource_url(&self, scope: &Scope) -> String {
        match scope {
            Scope::Connector(c) => format!("{}/mcp/{c}", self.public_url),
            Scope::Federated => format!("{}/mcp", self.public_url),
        }
    }

    /// Where the endpoint's protected resource metadata is (RFC 9728 §3.1: the well-known
    /// segment inserted before the resource's path).
    pub fn metadata_url(&self, scope: &Scope) -> String {
        match scope {
            Scope::Connector(c) => {
                format!(
                    "{}/.well-known/oauth-protected-resource/mcp/{c}",
                    self.public_url
                )
            }
            Scope::Federated => {
                format!(
                    "{}/.well-known/oauth-protected-resource/mcp",
                    self.public_url
                )
            }
        }
    }
}

/// A refusal with its HTTP status and `WWW-Authenticate` challenge (RFC 6750 §3).
pub(crate) struct Challenge {
    pub status: StatusCode,
    pub www_authenticate: String,
    pub message: String,
    pub reason: &'static str,
}

/// Quotes a value for an auth-param (RFC 9110 quoted-string): backslash-escapes `"` and `\`,
/// drops control characters.
fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Challenge {
    /// 401 for a missing or invalid token. A request without credentials gets no error code
    /// (RFC 6750 §3.1); one with a bad token gets `invalid_token`. `scope` hints what to ask for.
    pub fn unauthorized(
        auth: &GatewayAuth,
        endpoint: &Scope,
        rejection: &TokenRejection,
        scope_hint: &str,
    ) -> Self {
        let mut h = format!(
            "Bearer resource_metadata={}",
            quoted(&auth.metadata_url(endpoint))
        );
        if !scope_hint.is_empty() {
            h.push_str(&format!(", scope={}", quoted(scope_hint)));
        }
        let status = match rejection {
            TokenRejection::Missing => StatusCode::UNAUTHORIZED,
            TokenRejection::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => {
                h.push_str(&format!(
                    ", error=\"invalid_token\", error_description={}",
                    quoted(&rejection.to_string())
                ));
                StatusCode::UNAUTHORIZED
            }
        };
        Self {
            status,
            www_authenticate: h,
            message: rejection.to_string(),
            reason: rejection.reason(),
        }
    }

    /// 403 `insufficient_scope` naming the scopes to ask for: what the token already has plus
    /// what this request needs, so that a client that re-authorizes with exactly that keeps what
    /// it could do before (step-up).
    pub fn insufficient_scope(
        auth: &GatewayAuth,
        endpoint: &Scope,
        principal: &Principal,
        needed: &str,
        what: &str,
    ) -> Self {
        let mut scopes: Vec<&str> = principal.scopes.iter().map(String::as_str).collect();
        if !scopes.contains(&needed) {
            scopes.push(needed);
        }
        let message = format!("{what} needs the scope {needed:?}, which the access token lacks");
        let h = format!(
            "Bearer error=\"insufficient_scope\", scope={}, resource_metadata={}, error_description={}",
            quoted(&scopes.join(" ")),
            quoted(&auth.metadata_url(endpoint)),
            quoted(&message)
        );
        Self {
            status: StatusCode::FORBIDDEN,
            www_authenticate: h,
            message,
            reason: "insufficient_scope",
        }
    }
}

/// The bearer token of a request: `None` when there is no `Authorization` header,
/// `Err` when there is one that is not a bearer token.
pub(crate) fn bearer_of(headers: &HeaderMap) -> Result<Option<Secret>, TokenRejection> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| TokenRejection::Malformed("the Authorization header is not ASCII".into()))?;
    let (scheme, token) = v.split_once(' ').ok_or_else(|| {
        TokenRejection::Malformed("the Authorization header must be `Bearer <token>`".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenRejection::Malformed(format!(
            "the Authorization scheme must be Bearer, found {scheme:?}"
        )));
    }
    let token = token.trim();
    if token.is_empty() || token.len() > 16 * 1024 {
        return Err(TokenRejection::Malformed(
            "the bearer token is empty or too long".into(),
        ));
    }
    Ok(Some(Secret::new(token)))
}

/// The read scopes of an endpoint, as the hint of a 401 challenge.
pub(crate) fn scope_hint(inner: &Inner, endpoint: &Scope) -> String {
    match endpoint {
        Scope::Connector(c) => format!("{c}:read"),
        Scope::Federated => inner
            .connector_names
            .iter()
            .map(|c| format!("{c}:read"))
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// RFC 9728 protected resource metadata of one endpoint.
pub(crate) fn resource_metadata(inner: &Inner, auth: &GatewayAuth, endpoint: &Scope) -> Response {
    let scopes: Vec<String> = inner
        .config
        .connectors
        .iter()
        .filter(|c| match endpoint {
            Scope::Connector(n) => *n == c.name,
            Scope::Federated => true,
        })
        .flat_map(connector_scopes)
        .collect();
    let name = match endpoint {
        Scope::Connector(c) => format!("Portcullis MCP endpoint for connector {c}"),
        Scope::Federated => "Portcullis federated MCP endpoint".to_string(),
    };
    let body = serde_json::json!({
        "resource": auth.resource_url(endpoint),
        "authorization_servers": auth.authorization_servers,
        "scopes_supported": scopes,
        "bearer_methods_supported": ["header"],
        "resource_name": name,
    });
    let mut r = axum::Json(body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=300"),
    );
    r
}

/// Automatic responses and rate limits (MON-2), consulted before a call is forwarded: the
/// anomaly monitor implements it.
pub trait CallGuard: Send + Sync {
    /// Why this caller is blocked right now, if it is.
    fn blocked(
        &self,
        principal: Option<&str>,
        client: Option<&str>,
        source: Option<&str>,
    ) -> Option<String>;
    /// Takes one call from the caller's, the client's and the tool's budgets (`tool` is
    /// `connector/tool`, or empty for other methods); `Err((scope, retry_after_secs))` when one
    /// is spent.
    fn admit(&self, principal: &str, client: &str, tool: &str) -> Result<(), (String, String)>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn default_scopes_follow_the_annotations_and_fail_closed() {
        let o = Default::default();
        let read = json!({"name": "a", "annotations": {"readOnlyHint": true}});
        let write = json!({"name": "b", "annotations": {"destructiveHint": false}});
        let destructive = json!({"name": "c", "annotations": {"destructiveHint": true}});
        let bare = json!({"name": "d"});
        assert_eq!(tool_scope("crm", &o, &read).unwrap().1, "crm:read");
        assert_eq!(tool_scope("crm", &o, &write).unwrap().1, "crm:write");
        assert_eq!(tool_scope("crm", &o, &destructive).unwrap().1, "crm:admin");
        assert_eq!(tool_scope("crm", &o, &bare).unwrap().1, "crm:admin");
        let mut o = std::collections::BTreeMap::new();
        o.insert("d".to_string(), "crm:reports".to_string());
        assert_eq!(tool_scope("crm", &o, &bare).unwrap().1, "crm:reports");
    }

    #[test]
    fn challenge_values_are_quoted_strings() {
        assert_eq!(quoted(r#"a "b" \c"#), r#""a \"b\" \\c""#);
        assert_eq!(quoted("x\r\ny"), "\"xy\"");
    }

    #[test]
    fn bearer_header_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer_of(&h), Ok(None));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer abc"),
        );
        assert_eq!(bearer_of(&h).unwrap().unwrap().expose(), "abc");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(matches!(bearer_of(&h), Err(TokenRejection::Malformed(_))));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert!(matches!(bearer_of(&h), Err(TokenRejection::Malformed(_))));
    }
}
