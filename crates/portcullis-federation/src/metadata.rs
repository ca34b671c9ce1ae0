//! Provider discovery: OpenID Connect Discovery 1.0 (`{issuer}/.well-known/openid-configuration`)
//! and OAuth authorization server metadata (RFC 8414,
//! `{origin}/.well-known/oauth-authorization-server{path}`). The document's `issuer` must equal
//! the configured issuer exactly, or an attacker-controlled document could redirect trust.

use reqwest::Url;
use serde::Deserialize;

use crate::http::{self, SMALL_BODY_LIMIT};
use crate::{FederationError, HttpClient};

/// The metadata fields Portcullis uses.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub userinfo_endpoint: Option<String>,
    pub jwks_uri: Option<String>,
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    pub code_challenge_methods_supported: Option<Vec<String>>,
}

/// Checks the configured issuer: an https (or loopback http) URL without query or fragment
/// (OIDC Discovery §2, RFC 8414 §2).
pub(crate) fn checked_issuer(issuer: &str) -> Result<Url, FederationError> {
    let url = http::checked_url(issuer)?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err(FederationError::InvalidSetting {
            setting: "issuer",
            detail: format!("`{issuer}` has a query or fragment; an issuer URL has neither"),
        });
    }
    Ok(url)
}

/// `{issuer}/.well-known/openid-configuration`, with a trailing `/` of the issuer removed first
/// (OIDC Discovery §4).
pub(crate) fn oidc_well_known(issuer: &str) -> Result<Url, FederationError> {
    checked_issuer(issuer)?;
    http::checked_url(&format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    ))
}

/// The RFC 8414 §3.1 URL: the well-known segment goes between the host and the issuer's path.
pub(crate) fn rfc8414_well_known(issuer: &str) -> Result<Url, FederationError> {
    let mut url = checked_issuer(issuer)?;
    let path = url.path().trim_end_matches('/').to_string();
    url.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    Ok(url)
}

/// Fetches one metadata document and checks its issuer.
pub(crate) async fn fetch(
    http: &HttpClient,
    url: &Url,
    expected_issuer: &str,
) -> Result<ProviderMetadata, FederationError> {
    let meta: ProviderMetadata = http::get_json(http, url, SMALL_BODY_LIMIT, None).await?;
    if meta.issuer != expected_issuer {
        return Err(FederationError::IssuerMismatch {
            expected: expected_issuer.to_string(),
            found: meta.issuer.chars().take(200).collect(),
        });
    }
    Ok(meta)
}

/// OpenID Connect discovery.
pub(crate) async fn discover_oidc(
    http: &HttpClient,
    issuer: &str,
) -> Result<ProviderMetadata, FederationError> {
    fetch(http, &oidc_well_known(issuer)?, issuer).await
}

/// RFC 8414 metadata, else OpenID Connect discovery (many authorization servers publish only
/// one of the two). An issuer mismatch in the first is final, never papered over by the second.
pub(crate) async fn discover_any(
    http: &HttpClient,
    issuer: &str,
) -> Result<ProviderMetadata, FederationError> {
    match fetch(http, &rfc8414_well_known(issuer)?, issuer).await {
        Ok(m) => Ok(m),
        Err(e @ FederationError::IssuerMismatch { .. }) => Err(e),
        Err(first) => discover_oidc(http, issuer)
            .await
            .map_err(|second| match second {
                FederationError::Status { status: 404, .. } => first,
                other => other,
            }),
    }
}

/// An endpoint from the metadata, checked like every other URL.
pub(crate) fn endpoint(
    value: &Option<String>,
    name: &'static str,
    issuer: &str,
) -> Result<Url, FederationError> {
    let raw = value
        .as_deref()
        .ok_or_else(|| FederationError::InvalidSetting {
            setting: name,
            detail: format!("the metadata of `{issuer}` has no `{name}`"),
        })?;
    http::checked_url(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_urls_follow_the_specs() {
        assert_eq!(
            oidc_well_known("https://idp.example.com/tenant/")
                .unwrap()
                .as_str(),
            "https://idp.example.com/tenant/.well-known/openid-configuration"
        );
        assert_eq!(
            rfc8414_well_known("https://as.example.com/tenant")
                .unwrap()
                .as_str(),
            "https://as.example.com/.well-known/oauth-authorization-server/tenant"
        );
        assert_eq!(
            rfc8414_well_known("https://as.example.com")
                .unwrap()
                .as_str(),
            "https://as.example.com/.well-known/oauth-authorization-server"
        );
        assert!(matches!(
            checked_issuer("https://as.example.com/?x=1"),
            Err(FederationError::InvalidSetting { .. })
        ));
        assert!(matches!(
            checked_issuer("http://as.example.com"),
            Err(FederationError::InsecureUrl { .. })
        ));
    }
}
