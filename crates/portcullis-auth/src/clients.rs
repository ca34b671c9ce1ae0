//! OAuth clients: the [`Client`] model (registered through RFC 7591, or identified by a Client
//! ID Metadata Document URL), lookup, and client authentication at the token, revocation and
//! introspection endpoints (RFC 6749 §2.3.1).

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::Secret;
use portcullis_store::auth::ClientRow;

use crate::crypto::{ct_eq, sha256};
use crate::error::OAuthError;
use crate::state::Inner;

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// Public client: `client_id` only, PKCE protects the code.
    None,
    /// HTTP Basic.
    ClientSecretBasic,
    /// `client_secret` in the form body.
    ClientSecretPost,
}

impl AuthMethod {
    /// The RFC 7591 name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
        }
    }

    /// From the RFC 7591 name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            _ => None,
        }
    }
}

/// Where a client came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientKind {
    /// Dynamic client registration: its name is self-declared, so shown as unverified.
    Registered,
    /// A Client ID Metadata Document fetched from its https URL: identified by that host.
    MetadataDocument,
}

/// A client, whichever way it is known.
#[derive(Debug, Clone)]
pub struct Client {
    /// The client id.
    pub client_id: String,
    /// Declared name.
    pub client_name: Option<String>,
    /// Redirect URIs, compared exactly.
    pub redirect_uris: Vec<String>,
    /// Grant types it may use.
    pub grant_types: Vec<String>,
    /// Its token endpoint authentication.
    pub auth_method: AuthMethod,
    /// SHA-256 of its secret.
    pub secret_hash: Option<Vec<u8>>,
    /// Registered or metadata document.
    pub kind: ClientKind,
    /// Revoked by an administrator.
    pub revoked: bool,
}

impl Client {
    /// From a stored row.
    pub fn from_row(r: &ClientRow) -> Self {
        Self {
            client_id: r.client_id.clone(),
            client_name: r.client_name.clone(),
            redirect_uris: serde_json::from_str(&r.redirect_uris).unwrap_or_default(),
            grant_types: serde_json::from_str(&r.grant_types).unwrap_or_default(),
            // An unknown stored method fails closed: the client cannot authenticate.
            auth_method: AuthMethod::parse(&r.auth_method).unwrap_or(AuthMethod::ClientSecretBasic),
            secret_hash: r.secret_hash.clone(),
            kind: ClientKind::Registered,
            revoked: r.revoked_us.is_some(),
        }
    }

    /// Whether it may use `grant`.
    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

/// Finds a client: a registered one, or, for an https URL id, its metadata document. `Ok(None)`
/// for an unknown client; `Err` carries why a metadata document was refused.
pub async fn find_client(
    inner: &Inner,
    client_id: &str,
) -> Result<Option<Client>, ClientLookupError> {
    if client_id.is_empty() || client_id.len() > 2000 {
        return Ok(None);
    }
    if inner.settings.client_metadata_documents && inner.cimd.is_document_url(client_id) {
        return inner
            .cimd
            .resolve(client_id, inner.now_us())
            .await
            .map(Some)
            .map_err(ClientLookupError::Document);
    }
    let row = inner
        .store
        .auth_client(client_id)
        .await
        .map_err(ClientLookupError::Store)?;
    Ok(row.as_ref().map(Client::from_row))
}

/// Why a client could not be looked up.
#[derive(Debug)]
pub enum ClientLookupError {
    /// Its metadata document was refused (the reason, fit to show).
    Document(String),
    /// The store failed.
    Store(portcullis_store::StoreError),
}

/// The credentials a request presented.
#[derive(Debug)]
pub struct Presented {
    /// The client id.
    pub client_id: String,
    /// The secret, when one was sent.
    pub secret: Option<Secret>,
    /// How: Basic, post, or none.
    pub method: AuthMethod,
}

/// Reads client credentials from `Authorization: Basic` or the form (`client_id`,
/// `client_secret`). Both at once is `invalid_request` (RFC 6749 §2.3).
pub fn presented(
    headers: &HeaderMap,
    form_id: Option<&str>,
    form_secret: Option<&str>,
) -> Result<Presented, OAuthError> {
    if let Some(h) = headers.get(axum::http::header::AUTHORIZATION) {
        let h = h.to_str().unwrap_or_default();
        let Some(b64) = h
            .strip_prefix("Basic ")
            .or_else(|| h.strip_prefix("basic "))
        else {
            return Err(OAuthError::invalid_client(
                "use HTTP Basic client authentication or none",
                true,
            ));
        };
        if form_secret.is_some() {
            return Err(OAuthError::invalid_request(
                "the client authenticated twice (Basic and client_secret); use one method",
            ));
        }
        let bad = || {
            OAuthError::invalid_client(
                "the Basic credentials are not valid base64 of id:secret",
                true,
            )
        };
        let raw = STANDARD.decode(b64.trim()).map_err(|_| bad())?;
        let raw = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        let dec = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let (id, secret) = (dec(id), dec(secret));
        if form_id.is_some_and(|f| f != id) {
            return Err(OAuthError::invalid_request(
                "client_id in the body differs from the Basic credentials",
            ));
        }
        return Ok(Presented {
            client_id: id,
            secret: Some(Secret::new(secret)),
            method: AuthMethod::ClientSecretBasic,
        });
    }
    let id = form_id.filter(|s| !s.is_empty()).ok_or_else(|| {
        OAuthError::invalid_client(
            "client authentication is required: send client_id (and its secret, if it has one)",
            false,
        )
    })?;
    Ok(match form_secret {
        Some(s) => Presented {
            client_id: id.into(),
            secret: Some(Secret::new(s)),
            method: AuthMethod::ClientSecretPost,
        },
        None => Presented {
            client_id: id.into(),
            secret: None,
            method: AuthMethod::None,
        },
    })
}

/// Authenticates the presented credentials against the client's registered method.
pub async fn authenticate(inner: &Inner, p: &Presented) -> Result<Client, OAuthError> {
    let basic = p.method == AuthMethod::ClientSecretBasic;
    let unknown = || {
        OAuthError::invalid_client(
            "client authentication failed: unknown client or wrong secret",
            basic,
        )
    };
    let client = match find_client(inner, &p.client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return Err(unknown()),
        Err(ClientLookupError::Document(why)) => {
            return Err(OAuthError::invalid_client(
                format!("client metadata document refused: {why}"),
                basic,
            ));
        }
        Err(ClientLookupError::Store(e)) => return Err(e.into()),
    };
    if client.revoked {
        return Err(OAuthError::invalid_client(
            "this client has been revoked by an administrator",
            basic,
        ));
    }
    if client.auth_method != p.method {
        return Err(OAuthError::invalid_client(
            format!(
                "this client authenticates with {}, not {}",
                client.auth_method.as_str(),
                p.method.as_str()
            ),
            basic,
        ));
    }
    if client.auth_method != AuthMethod::None {
        let ok = match (&client.secret_hash, &p.secret) {
            (Some(h), Some(s)) => ct_eq(h, &sha256(s.expose().as_bytes())),
            _ => false,
        };
        if !ok {
            return Err(unknown());
        }
    }
    Ok(client)
}
