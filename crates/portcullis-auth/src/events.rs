//! What the authorization server reports for the audit log. No secret (password, code, token,
//! client secret) and no raw personal data is ever in an event: users are named by their id,
//! tokens by their id or family.

use std::sync::Arc;

/// One auditable action of the authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthEvent {
    /// A user signed in.
    LoginSucceeded {
        /// The user's id.
        user_id: String,
        /// The peer address, when known.
        source: Option<String>,
    },
    /// A sign-in failed (wrong name or password, disabled user, or throttled).
    LoginFailed {
        /// The user's id when the name exists (never the name typed).
        user_id: Option<String>,
        /// The peer address, when known.
        source: Option<String>,
        /// `bad_credentials`, `disabled` or `throttled`.
        reason: &'static str,
    },
    /// Tokens were issued.
    TokenIssued {
        /// The user.
        user_id: String,
        /// The client.
        client_id: String,
        /// The resource (audience).
        resource: String,
        /// Granted scopes.
        scopes: Vec<String>,
        /// The refresh family.
        family: String,
        /// The access token's id.
        jti: String,
        /// `authorization_code` or `refresh_token`.
        grant: &'static str,
    },
    /// A rotated refresh token, or a redeemed code, was presented again: the family is revoked.
    ReuseDetected {
        /// The family revoked.
        family: String,
        /// The client that presented it.
        client_id: String,
        /// `refresh_token` or `authorization_code`.
        what: &'static str,
    },
    /// A token was revoked by its client (RFC 7009).
    TokenRevoked {
        /// The client.
        client_id: String,
        /// `refresh_token` (family) or `access_token` (jti).
        what: &'static str,
        /// The family or jti.
        id: String,
    },
    /// A client was registered (RFC 7591).
    ClientRegistered {
        /// The new client id.
        client_id: String,
        /// Its declared name.
        client_name: Option<String>,
    },
    /// An administrator revoked a client.
    ClientRevoked {
        /// The client.
        client_id: String,
    },
    /// A user consented.
    ConsentGiven {
        /// The user.
        user_id: String,
        /// The client.
        client_id: String,
        /// The resource.
        resource: String,
        /// Scopes.
        scopes: Vec<String>,
    },
    /// A user denied consent.
    ConsentDenied {
        /// The user.
        user_id: String,
        /// The client.
        client_id: String,
    },
    /// A consent was revoked (and its refresh families with it).
    ConsentRevoked {
        /// The user.
        user_id: String,
        /// The client.
        client_id: String,
    },
    /// A user was disabled or enabled.
    UserChanged {
        /// The user.
        user_id: String,
        /// Whether now disabled.
        disabled: bool,
    },
    /// A new signing key took over.
    KeyRotated {
        /// The new key id.
        kid: String,
    },
}

/// Where events go: the gateway maps them to audit events.
pub type AuthEventSink = Arc<dyn Fn(AuthEvent) + Send + Sync>;
