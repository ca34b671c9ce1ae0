//! Outbound HTTP to providers: only https (or http to a loopback address, for tests and
//! side-cars), no redirects, a timeout and a size cap on every response (AUTH-6, EG-2). Metadata
//! and keys decide who is trusted, so a redirect or an oversized body is refused, never followed.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use reqwest::Url;
use serde::de::DeserializeOwned;

use crate::FederationError;
use crate::HttpClient;

/// How long one request to a provider may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Cap on metadata, token, userinfo and introspection responses.
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;
/// Cap on JWKS documents (a few dozen keys with certificate chains fit).
pub const JWKS_BODY_LIMIT: usize = 512 * 1024;

/// A client fit for [`crate::OidcLogin::discover`] and [`crate::ExternalVerifier::new`]: no
/// redirects, connect and total timeouts, TLS verification on (rustls with aws-lc-rs).
pub fn default_http_client() -> Result<HttpClient, FederationError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| FederationError::InvalidSetting {
            setting: "http client",
            detail: format!("cannot build the HTTP client: {e}"),
        })
}

/// Parses `url` and checks it is https, or http to a loopback host.
pub(crate) fn checked_url(url: &str) -> Result<Url, FederationError> {
    let parsed = Url::parse(url).map_err(|_| FederationError::InsecureUrl {
        url: url.to_string(),
    })?;
    let ok = match parsed.scheme() {
        "https" => parsed.host_str().is_some(),
        "http" => is_loopback(&parsed),
        _ => false,
    };
    if !ok || !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(FederationError::InsecureUrl {
            url: url.to_string(),
        });
    }
    Ok(parsed)
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// A response read in full, within its cap.
pub(crate) struct Fetched {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

/// Sends `req` (already aimed at `url`), refusing redirects and bodies over `limit`.
pub(crate) async fn send(
    req: reqwest::RequestBuilder,
    url: &Url,
    limit: usize,
) -> Result<Fetched, FederationError> {
    let unreachable = |e: reqwest::Error| FederationError::Unreachable {
        url: url.to_string(),
        detail: if e.is_timeout() {
            format!("no answer within {}s", REQUEST_TIMEOUT.as_secs())
        } else {
            // reqwest's Display names the URL and the cause; no secret is part of it.
            e.to_string()
        },
    };
    let mut resp = req
        .timeout(REQUEST_TIMEOUT)
        .send()
        .await
        .map_err(unreachable)?;
    // A client built without our redirect policy may have followed one: refuse it all the same.
    if resp.status().is_redirection() || resp.url() != url {
        return Err(FederationError::Redirected {
            url: url.to_string(),
        });
    }
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(FederationError::TooLarge {
            url: url.to_string(),
            limit,
        });
    }
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > limit {
            return Err(FederationError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Fetched {
        status,
        content_type,
        body,
    })
}

/// GETs a JSON document that must come with 200.
pub(crate) async fn get_json<T: DeserializeOwned>(
    http: &HttpClient,
    url: &Url,
    limit: usize,
    bearer: Option<&str>,
) -> Result<T, FederationError> {
    let mut req = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    let got = send(req, url, limit).await?;
    if got.status != 200 {
        return Err(status_error(url, &got));
    }
    if got.content_type.starts_with("application/jwt") {
        return Err(FederationError::InvalidResponse {
            url: url.to_string(),
            detail: "signed or encrypted responses (application/jwt) are not supported; configure the provider to answer with JSON".into(),
        });
    }
    parse_json(url, &got.body)
}

/// Parses a JSON body, naming the URL on failure.
pub(crate) fn parse_json<T: DeserializeOwned>(
    url: &Url,
    body: &[u8],
) -> Result<T, FederationError> {
    serde_json::from_slice(body).map_err(|e| FederationError::InvalidResponse {
        url: url.to_string(),
        detail: format!("not the JSON document expected: {e}"),
    })
}

/// A [`FederationError::Status`] for a non-success answer, with the OAuth `error` and
/// `error_description` when the body carries them (RFC 6749 §5.2), never the raw body.
pub(crate) fn status_error(url: &Url, got: &Fetched) -> FederationError {
    let detail = oauth_error(&got.body)
        .map(|(e, d)| format!(": {e}{d}"))
        .unwrap_or_default();
    FederationError::Status {
        url: url.to_string(),
        status: got.status,
        detail,
    }
}

/// The `error` code and `: description` of an OAuth error body, cleaned for logs.
pub(crate) fn oauth_error(body: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let error = clean(v.get("error")?.as_str()?);
    let description = v
        .get("error_description")
        .and_then(|d| d.as_str())
        .map(|d| format!(": {}", clean(d)))
        .unwrap_or_default();
    Some((error, description))
}

/// Provider-supplied text, bounded and without control characters, so it can go into a log line.
fn clean(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// How a client authenticates to a token or introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-urlencoded id and secret (RFC 6749 §2.3.1).
    SecretBasic,
    /// `client_id` and `client_secret` in the form body.
    SecretPost,
    /// A public client: `client_id` in the form body, no secret.
    None,
}

/// POSTs a form with client authentication; the caller interprets the status.
pub(crate) async fn post_form(
    http: &HttpClient,
    url: &Url,
    mut form: Vec<(&str, String)>,
    auth: ClientAuth,
    client_id: &str,
    client_secret: Option<&portcullis_core::Secret>,
) -> Result<Fetched, FederationError> {
    let mut req = http
        .post(url.clone())
        .header(reqwest::header::ACCEPT, "application/json");
    match (auth, client_secret) {
        (ClientAuth::SecretBasic, Some(secret)) => {
            let pair = format!(
                "{}:{}",
                form_urlencode(client_id),
                form_urlencode(secret.expose())
            );
            let value = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            let mut header = reqwest::header::HeaderValue::from_str(&value).map_err(|_| {
                FederationError::InvalidSetting {
                    setting: "client_secret",
                    detail: "cannot be sent in an Authorization header".into(),
                }
            })?;
            header.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, header);
        }
        (ClientAuth::SecretPost, Some(secret)) => {
            form.push(("client_id", client_id.to_string()));
            form.push(("client_secret", secret.expose().to_string()));
        }
        _ => form.push(("client_id", client_id.to_string())),
    }
    send(req.form(&form), url, SMALL_BODY_LIMIT).await
}

/// `application/x-www-form-urlencoded` encoding of one value, as RFC 6749 §2.3.1 asks for the
/// Basic credentials.
fn form_urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_allowed() {
        assert!(checked_url("https://idp.example.com/x").is_ok());
        assert!(checked_url("http://127.0.0.1:8080/x").is_ok());
        assert!(checked_url("http://[::1]:8080/x").is_ok());
        assert!(checked_url("http://localhost/x").is_ok());
        for bad in [
            "http://idp.example.com/x",
            "http://10.0.0.1/x",
            "ftp://idp.example.com/",
            "file:///etc/passwd",
            "https://user:pw@idp.example.com/",
            "not a url",
        ] {
            assert!(
                matches!(checked_url(bad), Err(FederationError::InsecureUrl { .. })),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn oauth_errors_are_cleaned_and_bounded() {
        let body = br#"{"error":"invalid_grant","error_description":"code\nused"}"#;
        assert_eq!(
            oauth_error(body),
            Some(("invalid_grant".into(), ": codeused".into()))
        );
        assert_eq!(oauth_error(b"<html>"), None);
        let long = format!(r#"{{"error":"{}"}}"#, "x".repeat(1000));
        assert_eq!(oauth_error(long.as_bytes()).unwrap().0.len(), 200);
    }

    #[test]
    fn basic_credentials_are_form_urlencoded() {
        assert_eq!(form_urlencode("a b:c/é"), "a+b%3Ac%2F%C3%A9");
    }
}
