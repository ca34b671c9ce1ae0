//! Several trusted issuers behind one [`TokenVerifier`]: a JWT goes to the verifier of its
//! (unverified) `iss`, which then checks everything, so an unknown issuer is refused without
//! any network call. Opaque tokens carry no issuer: they go only to the verifiers registered for
//! them, in order, because offering a token to another issuer's introspection endpoint would
//! hand it to a party that could replay it.

use std::sync::Arc;

use portcullis_core::{Principal, TokenRejection, TokenVerifier, VerifyFuture};

use crate::claims::str_claim;
use crate::{ExternalVerifier, jwt};

/// Routes tokens to the verifier of their issuer; implements [`TokenVerifier`].
#[derive(Clone, Default)]
pub struct VerifierChain {
    verifiers: Vec<(String, Arc<dyn TokenVerifier>)>,
    opaque: Vec<Arc<dyn TokenVerifier>>,
}

impl std::fmt::Debug for VerifierChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifierChain")
            .field(
                "issuers",
                &self.verifiers.iter().map(|(i, _)| i).collect::<Vec<_>>(),
            )
            .field("opaque_verifiers", &self.opaque.len())
            .finish()
    }
}

impl VerifierChain {
    /// A chain over `(issuer, verifier)` pairs; the first pair whose issuer equals a JWT's `iss`
    /// decides. Opaque tokens are refused until [`VerifierChain::with_opaque`] names who checks them.
    pub fn new(verifiers: Vec<(String, Arc<dyn TokenVerifier>)>) -> Self {
        Self {
            verifiers,
            opaque: Vec::new(),
        }
    }

    /// Offers opaque (non-JWT) tokens to the verifier of `issuer` (one of the chain's), after
    /// those registered before it. Unknown issuers are ignored and reported as `false`.
    pub fn with_opaque(mut self, issuer: &str) -> (Self, bool) {
        let found = self
            .verifiers
            .iter()
            .find(|(i, _)| i == issuer)
            .map(|(_, v)| v.clone());
        let ok = found.is_some();
        if let Some(v) = found {
            self.opaque.push(v);
        }
        (self, ok)
    }

    /// Adds an external issuer; when it introspects, opaque tokens are offered to it too.
    pub fn push_external(&mut self, verifier: Arc<ExternalVerifier>) {
        if verifier.introspects() {
            self.opaque.push(verifier.clone());
        }
        self.verifiers
            .push((verifier.issuer().to_string(), verifier));
    }

    async fn check(&self, token: &str, resource: &str) -> Result<Principal, TokenRejection> {
        if token.is_empty() {
            return Err(TokenRejection::Missing);
        }
        if jwt::looks_like_jwt(token) {
            let claims = jwt::unverified_claims(token)?;
            let iss = str_claim(&claims, "iss")
                .ok_or_else(|| TokenRejection::Malformed("the token has no `iss` claim".into()))?;
            return match self.verifiers.iter().find(|(i, _)| i == iss) {
                Some((_, v)) => v.verify(token, resource).await,
                None => Err(TokenRejection::WrongIssuer),
            };
        }
        let mut unavailable = None;
        let mut refusal = None;
        for v in &self.opaque {
            match v.verify(token, resource).await {
                Ok(p) => return Ok(p),
                Err(e @ TokenRejection::Unavailable(_)) => unavailable = unavailable.or(Some(e)),
                Err(TokenRejection::Malformed(_)) => {}
                Err(e) => refusal = refusal.or(Some(e)),
            }
        }
        // Fail closed without blaming the token when any issuer could not decide.
        Err(unavailable.or(refusal).unwrap_or_else(|| {
            TokenRejection::Malformed("not a JWT, and no trusted issuer recognises it".into())
        }))
    }
}

impl TokenVerifier for VerifierChain {
    fn verify<'a>(&'a self, token: &'a str, resource: &'a str) -> VerifyFuture<'a> {
        Box::pin(self.check(token, resource))
    }
}
