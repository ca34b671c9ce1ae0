//! Federated login, the relying-party side (AUTH-6): Portcullis's login page offers "Sign in
//! with <name>", sends the browser to the provider with the authorization code flow, PKCE S256
//! and a nonce (OIDC Core §3.1), and at the callback validates the ID token (OIDC Core
//! §3.1.3.7) before mapping its claims to a [`FederatedIdentity`].

use std::sync::Arc;

use portcullis_core::{Clock, Secret, TokenRejection};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq as _;

use crate::claims::{self, str_claim};
use crate::http::{self, ClientAuth, SMALL_BODY_LIMIT};
use crate::jwks::JwksCache;
use crate::metadata::{self, ProviderMetadata};
use crate::random::{self, RandomSource};
use crate::{FederationError, HttpClient, jwt};

/// Default tolerance for clock differences with the provider, in seconds.
pub const DEFAULT_SKEW_SECS: i64 = 60;
/// How long a started login may take before its callback is refused, in seconds.
pub const DEFAULT_MAX_LOGIN_AGE_SECS: i64 = 600;
/// Longest authorization code accepted at the callback.
const MAX_CODE_LEN: usize = 4096;

/// What Portcullis needs to know about one upstream OpenID provider.
#[derive(Debug, Clone)]
pub struct OidcLoginSettings {
    /// Shown on the login button: "Sign in with {name}".
    pub name: String,
    /// The provider's issuer URL, exactly as its metadata states it.
    pub issuer: String,
    /// Portcullis's client id at the provider.
    pub client_id: String,
    /// The client secret (confidential client); `None` for a public client (PKCE only).
    pub client_secret: Option<Secret>,
    /// Scopes to ask for; `openid` is always sent, first.
    pub scopes: Vec<String>,
    /// The claim holding the user's groups (default `groups`).
    pub groups_claim: Option<String>,
    /// The claim holding the user name (default `preferred_username`).
    pub username_claim: Option<String>,
    /// Time source, for token expiry and login age.
    pub clock: Arc<dyn Clock>,
}

/// What the authorization server keeps, server-side, between [`OidcLogin::begin`] and the
/// callback. Never put it in a cookie the browser can read: it holds the PKCE verifier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the provider; the callback must bring it back.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier (RFC 7636).
    #[serde(with = "secret_string")]
    pub pkce_verifier: Secret,
    /// The redirect URI the login was started with; the token request repeats it.
    pub redirect_uri: String,
    /// When the login started, seconds since the Unix epoch.
    pub created_at: i64,
}

mod secret_string {
    //! `Secret` has no serde impls on purpose; the pending login is stored server-side.
    use portcullis_core::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &Secret, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Secret, D::Error> {
        String::deserialize(de).map(Secret::new)
    }
}

/// Who signed in at the provider. Its `Debug` hides the user name, email and name, so that
/// logging it does not write personal data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FederatedIdentity {
    /// The provider's issuer.
    pub issuer: String,
    /// The provider's `sub`: stable per user and issuer. Key local accounts on (issuer, subject).
    pub subject: String,
    /// From the configured username claim (default `preferred_username`).
    pub username: Option<String>,
    /// `email`, unless the provider marks it `email_verified: false` (then `None`, so an
    /// unverified address cannot be used to link accounts).
    pub email: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// From the configured groups claim (default `groups`), a string or an array.
    pub groups: Vec<String>,
}

fn redacted(v: &Option<String>) -> &'static str {
    if v.is_some() {
        "Some(<redacted>)"
    } else {
        "None"
    }
}

impl std::fmt::Debug for FederatedIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FederatedIdentity")
            .field("issuer", &self.issuer)
            .field("subject", &self.subject)
            .field("username", &redacted(&self.username))
            .field("email", &redacted(&self.email))
            .field("name", &redacted(&self.name))
            .field("groups", &self.groups)
            .finish()
    }
}

/// The provider's tokens from a completed login, for callers that need them (for example to
/// call the provider's APIs); [`OidcLogin::complete`] drops them. `Debug` shows neither the
/// tokens nor the claims.
#[derive(Clone)]
pub struct ProviderTokens {
    /// The access token the provider issued.
    pub access_token: Option<Secret>,
    /// The raw ID token (already validated).
    pub id_token: Secret,
    /// The ID token's claims, after merging userinfo.
    pub claims: Map<String, Value>,
}

impl std::fmt::Debug for ProviderTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTokens")
            .field("access_token", &self.access_token)
            .field("id_token", &self.id_token)
            .field("claims", &format_args!("<{} claims>", self.claims.len()))
            .finish()
    }
}

struct Provider {
    settings: OidcLoginSettings,
    authorization_endpoint: Url,
    token_endpoint: Url,
    userinfo_endpoint: Option<Url>,
    jwks: JwksCache,
}

/// Federated login to one upstream OpenID provider. Cheap to clone; share one per provider.
#[derive(Clone)]
pub struct OidcLogin {
    provider: Arc<Provider>,
    http: HttpClient,
    auth: ClientAuth,
    skew: i64,
    max_login_age: i64,
    use_userinfo: bool,
    random: RandomSource,
}

impl std::fmt::Debug for OidcLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcLogin")
            .field("name", &self.provider.settings.name)
            .field("issuer", &self.provider.settings.issuer)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

fn require(value: &str, setting: &'static str) -> Result<(), FederationError> {
    if value.trim().is_empty() {
        return Err(FederationError::InvalidSetting {
            setting,
            detail: "must not be empty".into(),
        });
    }
    Ok(())
}

/// The client authentication to use: none for a public client, else `client_secret_basic`
/// when the provider supports it (the RFC 8414 default when it says nothing), else `_post`.
fn choose_auth(meta: &ProviderMetadata, has_secret: bool) -> Result<ClientAuth, FederationError> {
    if !has_secret {
        return Ok(ClientAuth::None);
    }
    let Some(methods) = &meta.token_endpoint_auth_methods_supported else {
        return Ok(ClientAuth::SecretBasic);
    };
    if methods.iter().any(|m| m == "client_secret_basic") {
        Ok(ClientAuth::SecretBasic)
    } else if methods.iter().any(|m| m == "client_secret_post") {
        Ok(ClientAuth::SecretPost)
    } else {
        Err(FederationError::InvalidSetting {
            setting: "client_secret",
            detail: format!(
                "the provider `{}` supports neither client_secret_basic nor client_secret_post at its token endpoint",
                meta.issuer
            ),
        })
    }
}

impl OidcLogin {
    /// Discovers the provider (`{issuer}/.well-known/openid-configuration`; the document's
    /// issuer must equal `issuer` exactly) and its JWKS.
    pub async fn discover(
        settings: OidcLoginSettings,
        http: HttpClient,
    ) -> Result<Self, FederationError> {
        require(&settings.name, "name")?;
        require(&settings.client_id, "client_id")?;
        let meta = metadata::discover_oidc(&http, &settings.issuer).await?;
        let issuer = &settings.issuer;
        let authorization_endpoint = metadata::endpoint(
            &meta.authorization_endpoint,
            "authorization_endpoint",
            issuer,
        )?;
        let token_endpoint = metadata::endpoint(&meta.token_endpoint, "token_endpoint", issuer)?;
        let jwks_uri = metadata::endpoint(&meta.jwks_uri, "jwks_uri", issuer)?;
        let userinfo_endpoint = match &meta.userinfo_endpoint {
            Some(u) => Some(http::checked_url(u)?),
            None => None,
        };
        if let Some(methods) = &meta.code_challenge_methods_supported
            && !methods.iter().any(|m| m == "S256")
        {
            return Err(FederationError::InvalidSetting {
                setting: "issuer",
                detail: format!(
                    "the provider `{issuer}` does not support PKCE S256, which Portcullis requires"
                ),
            });
        }
        let auth = choose_auth(&meta, settings.client_secret.is_some())?;
        let jwks = JwksCache::new(jwks_uri, http.clone(), settings.clock.clone());
        jwks.load().await?;
        Ok(Self {
            provider: Arc::new(Provider {
                settings,
                authorization_endpoint,
                token_endpoint,
                userinfo_endpoint,
                jwks,
            }),
            http,
            auth,
            skew: DEFAULT_SKEW_SECS,
            max_login_age: DEFAULT_MAX_LOGIN_AGE_SECS,
            use_userinfo: true,
            random: random::os_random(),
        })
    }

    /// Forces a client authentication method instead of the one chosen from the metadata.
    pub fn with_client_auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Whether to read the userinfo endpoint after the token exchange (default: when the
    /// provider has one). Its claims fill those the ID token lacks.
    pub fn with_userinfo(mut self, on: bool) -> Self {
        self.use_userinfo = on;
        self
    }

    /// Clock skew tolerated for `exp` and `iat`, in seconds (default 60).
    pub fn with_skew_secs(mut self, secs: i64) -> Self {
        self.skew = secs.max(0);
        self
    }

    /// How long a pending login stays valid, in seconds (default 600).
    pub fn with_max_login_age_secs(mut self, secs: i64) -> Self {
        self.max_login_age = secs.max(1);
        self
    }

    /// Replaces the random source (tests).
    pub fn with_random(mut self, random: RandomSource) -> Self {
        self.random = random;
        self
    }

    /// The provider's name, for "Sign in with {name}".
    pub fn display_name(&self) -> &str {
        &self.provider.settings.name
    }

    /// The provider's issuer.
    pub fn issuer(&self) -> &str {
        &self.provider.settings.issuer
    }

    /// The client authentication in use at the token endpoint.
    pub fn client_auth(&self) -> ClientAuth {
        self.auth
    }

    /// The URL to send the browser to, and what to keep (server-side) until the callback:
    /// state, nonce, PKCE S256 verifier.
    pub fn begin(&self, redirect_uri: &str) -> (String, PendingLogin) {
        self.begin_with(redirect_uri, &[])
    }

    /// Like [`OidcLogin::begin`], with extra authorization request parameters (for example
    /// `resource` (RFC 8707) or `prompt`). The protocol parameters cannot be overridden.
    pub fn begin_with(&self, redirect_uri: &str, extra: &[(&str, &str)]) -> (String, PendingLogin) {
        let settings = &self.provider.settings;
        let state = random::token(&self.random);
        let nonce = random::token(&self.random);
        let verifier = random::token(&self.random);
        let mut scopes = vec!["openid".to_string()];
        for s in &settings.scopes {
            if !scopes.contains(s) {
                scopes.push(s.clone());
            }
        }
        let mut url = self.provider.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            const RESERVED: [&str; 9] = [
                "response_type",
                "client_id",
                "redirect_uri",
                "scope",
                "state",
                "nonce",
                "code_challenge",
                "code_challenge_method",
                "response_mode",
            ];
            for (k, v) in extra.iter().filter(|(k, _)| !RESERVED.contains(k)) {
                q.append_pair(k, v);
            }
            q.append_pair("response_type", "code")
                .append_pair("client_id", &settings.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", &state)
                .append_pair("nonce", &nonce)
                .append_pair("code_challenge", &random::s256_challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
        }
        let pending = PendingLogin {
            state,
            nonce,
            pkce_verifier: Secret::new(verifier),
            redirect_uri: redirect_uri.to_string(),
            created_at: settings.clock.now().timestamp(),
        };
        (url.into(), pending)
    }

    /// Completes the login at the callback: checks state (constant time), exchanges the code,
    /// validates the ID token, reads userinfo when configured, and maps the claims.
    pub async fn complete(
        &self,
        pending: &PendingLogin,
        code: &str,
        state: &str,
    ) -> Result<FederatedIdentity, FederationError> {
        self.complete_with_tokens(pending, code, state)
            .await
            .map(|(identity, _)| identity)
    }

    /// Like [`OidcLogin::complete`], also returning the provider's tokens.
    pub async fn complete_with_tokens(
        &self,
        pending: &PendingLogin,
        code: &str,
        state: &str,
    ) -> Result<(FederatedIdentity, ProviderTokens), FederationError> {
        // CSRF defence (RFC 6749 §10.12), compared in constant time so the value cannot be
        // guessed byte by byte.
        if !bool::from(pending.state.as_bytes().ct_eq(state.as_bytes())) {
            return Err(FederationError::StateMismatch);
        }
        let now = self.provider.settings.clock.now().timestamp();
        if now - pending.created_at > self.max_login_age {
            return Err(FederationError::LoginExpired);
        }
        if code.is_empty() || code.len() > MAX_CODE_LEN {
            return Err(FederationError::InvalidResponse {
                url: pending.redirect_uri.clone(),
                detail: "the callback's authorization code is empty or too long".into(),
            });
        }
        let tokens = self.exchange(pending, code).await?;
        let id_token = tokens
            .get("id_token")
            .and_then(Value::as_str)
            .ok_or_else(|| FederationError::InvalidResponse {
                url: self.provider.token_endpoint.to_string(),
                detail: "the token response has no id_token; is the `openid` scope allowed for this client?".into(),
            })?
            .to_string();
        let access_token = tokens
            .get("access_token")
            .and_then(Value::as_str)
            .map(str::to_string);
        let mut claims = self.validate_id_token(&id_token, &pending.nonce).await?;
        if self.use_userinfo
            && let (Some(endpoint), Some(at)) = (&self.provider.userinfo_endpoint, &access_token)
        {
            self.merge_userinfo(endpoint, at, &mut claims).await?;
        }
        let identity = self.identity(&claims);
        Ok((
            identity,
            ProviderTokens {
                access_token: access_token.map(Secret::new),
                id_token: Secret::new(id_token),
                claims,
            },
        ))
    }

    async fn exchange(
        &self,
        pending: &PendingLogin,
        code: &str,
    ) -> Result<Map<String, Value>, FederationError> {
        let settings = &self.provider.settings;
        let url = &self.provider.token_endpoint;
        let form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", pending.redirect_uri.clone()),
            ("code_verifier", pending.pkce_verifier.expose().to_string()),
        ];
        let got = http::post_form(
            &self.http,
            url,
            form,
            self.auth,
            &settings.client_id,
            settings.client_secret.as_ref(),
        )
        .await?;
        if got.status != 200 {
            return Err(match http::oauth_error(&got.body) {
                Some((error, description)) => FederationError::TokenEndpoint { error, description },
                None => http::status_error(url, &got),
            });
        }
        http::parse_json(url, &got.body)
    }

    /// OIDC Core §3.1.3.7.
    async fn validate_id_token(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<Map<String, Value>, FederationError> {
        let settings = &self.provider.settings;
        let bad = FederationError::IdToken;
        let jws = jwt::parse(token).map_err(bad)?;
        let key = self
            .provider
            .jwks
            .key(jws.kid.as_deref(), jws.alg)
            .await
            .map_err(bad)?;
        jws.verify_with(&key).map_err(bad)?;
        let claims = jws.claims;
        if str_claim(&claims, "iss") != Some(settings.issuer.as_str()) {
            return Err(bad(TokenRejection::WrongIssuer));
        }
        let aud = claims::audiences(&claims);
        if !aud.contains(&settings.client_id) {
            return Err(bad(TokenRejection::WrongAudience(
                settings.client_id.clone(),
            )));
        }
        let azp = str_claim(&claims, "azp");
        if (aud.len() > 1 && azp.is_none()) || azp.is_some_and(|a| a != settings.client_id) {
            return Err(bad(TokenRejection::WrongAudience(
                settings.client_id.clone(),
            )));
        }
        if claims::time_claim(&claims, "iat").map_err(bad)?.is_none() {
            return Err(bad(TokenRejection::Malformed(
                "the ID token has no `iat`".into(),
            )));
        }
        let now = settings.clock.now().timestamp();
        claims::check_times(&claims, now, self.skew, true).map_err(bad)?;
        let got_nonce = str_claim(&claims, "nonce").unwrap_or("");
        if !bool::from(got_nonce.as_bytes().ct_eq(nonce.as_bytes())) {
            return Err(FederationError::NonceMismatch);
        }
        if str_claim(&claims, "sub").is_none_or(str::is_empty) {
            return Err(bad(TokenRejection::Malformed(
                "the ID token has no `sub`".into(),
            )));
        }
        Ok(claims)
    }

    /// OIDC Core §5.3: the claims the ID token lacks, from userinfo; its `sub` must match.
    async fn merge_userinfo(
        &self,
        url: &Url,
        access_token: &str,
        claims: &mut Map<String, Value>,
    ) -> Result<(), FederationError> {
        let info: Map<String, Value> =
            http::get_json(&self.http, url, SMALL_BODY_LIMIT, Some(access_token)).await?;
        if str_claim(&info, "sub") != str_claim(claims, "sub") {
            return Err(FederationError::UserinfoSubjectMismatch);
        }
        for (k, v) in info {
            claims.entry(k).or_insert(v);
        }
        Ok(())
    }

    fn identity(&self, claims: &Map<String, Value>) -> FederatedIdentity {
        let settings = &self.provider.settings;
        let username_claim = settings
            .username_claim
            .as_deref()
            .unwrap_or("preferred_username");
        let groups_claim = settings.groups_claim.as_deref().unwrap_or("groups");
        let text = |name: &str| {
            str_claim(claims, name)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        FederatedIdentity {
            issuer: settings.issuer.clone(),
            subject: text("sub").unwrap_or_default(),
            username: text(username_claim),
            // An address the provider says it has not verified must not be used to link
            // accounts: drop it rather than pass it on.
            email: text("email")
                .filter(|_| claims.get("email_verified") != Some(&Value::Bool(false))),
            name: text("name"),
            groups: claims::string_list(claims, groups_claim, false),
        }
    }
}
