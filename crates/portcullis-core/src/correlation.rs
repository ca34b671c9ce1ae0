//! Correlation ids (AU-1): taken from the caller's W3C `traceparent` or `X-Request-Id` when they are
//! well formed, otherwise generated, so one id follows a call through the gateway, upstream and audit.

use std::fmt;

/// The longest `X-Request-Id` we accept verbatim; longer ones are replaced, not truncated, so an id is
/// never silently altered.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// A correlation id: a W3C trace id (32 lowercase hex digits) or a caller-supplied request id made
/// of safe characters only (it is echoed in headers and written to logs).
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CorrelationId(String);

impl CorrelationId {
    /// Generates a fresh id from the given random source (a 128-bit trace id).
    pub fn generate(rng: &mut impl rand::Rng) -> Self {
        let v: u128 = rng.random();
        // An all-zero trace id is invalid in W3C trace context.
        let v = if v == 0 { 1 } else { v };
        Self(format!("{v:032x}"))
    }

    /// The trace id of a W3C `traceparent` header (`00-<32 hex>-<16 hex>-<2 hex>`), when valid.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace = parts.next()?;
        let parent = parts.next()?;
        let flags = parts.next()?;
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if !hex(version, 2)
            || version == "ff"
            || !hex(trace, 32)
            || !hex(parent, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        if trace.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0') {
            return None;
        }
        Some(Self(trace.to_ascii_lowercase()))
    }

    /// A caller's `X-Request-Id`, when it is 1 to [`MAX_REQUEST_ID_LEN`] characters of
    /// `[A-Za-z0-9._:-]` (anything else could smuggle text into headers or logs).
    pub fn from_request_id(value: &str) -> Option<Self> {
        let v = value.trim();
        let ok = !v.is_empty()
            && v.len() <= MAX_REQUEST_ID_LEN
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
        ok.then(|| Self(v.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A `traceparent` value to send upstream: the trace id itself when it is one, otherwise a
    /// trace id derived from the request id, with a fresh parent span id.
    pub fn to_traceparent(&self, rng: &mut impl rand::Rng) -> String {
        let trace = if self.0.len() == 32 && self.0.bytes().all(|b| b.is_ascii_hexdigit()) {
            self.0.clone()
        } else {
            // FNV-1a over the request id: stable, so the same request id maps to the same trace.
            let mut h: u128 = 0x6c62272e07bb014262b821756295c58d;
            for b in self.0.bytes() {
                h ^= b as u128;
                h = h.wrapping_mul(0x0000000001000000000000000000013B);
            }
            format!("{:032x}", h.max(1))
        };
        let span: u64 = rng.random::<u64>().max(1);
        format!("00-{trace}-{span:016x}-01")
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn traceparent_is_parsed_and_validated() {
        let id = CorrelationId::from_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        );
        assert_eq!(id.unwrap().as_str(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert!(
            CorrelationId::from_traceparent(
                "00-00000000000000000000000000000000-00f067aa0ba902b7-01"
            )
            .is_none()
        );
        assert!(CorrelationId::from_traceparent("00-4bf92f35-00f067aa0ba902b7-01").is_none());
        assert!(CorrelationId::from_traceparent("garbage").is_none());
    }

    #[test]
    fn request_id_rejects_unsafe_characters() {
        assert_eq!(
            CorrelationId::from_request_id("abc-123").unwrap().as_str(),
            "abc-123"
        );
        assert!(CorrelationId::from_request_id("a b").is_none());
        assert!(CorrelationId::from_request_id("a\r\nX-Evil: 1").is_none());
        assert!(CorrelationId::from_request_id(&"a".repeat(129)).is_none());
    }

    #[test]
    fn generated_ids_are_trace_ids_and_round_trip_to_traceparent() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let id = CorrelationId::generate(&mut rng);
        assert_eq!(id.as_str().len(), 32);
        let tp = id.to_traceparent(&mut rng);
        assert_eq!(CorrelationId::from_traceparent(&tp).unwrap(), id);
        let rid = CorrelationId::from_request_id("req-1").unwrap();
        assert!(CorrelationId::from_traceparent(&rid.to_traceparent(&mut rng)).is_some());
    }
}
