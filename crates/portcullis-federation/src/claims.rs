//! Reading claims (JWT payloads, introspection and userinfo responses): strings or arrays,
//! audiences, and the time checks with the injected clock and a small skew (AUTH-4).

use portcullis_core::TokenRejection;
use serde_json::{Map, Value};

/// A string claim, when present and a string.
pub(crate) fn str_claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    claims.get(name).and_then(Value::as_str)
}

/// A claim that may be a string or an array of strings. A string is split on whitespace when
/// `split` (OAuth `scope`), else taken whole (a single group name may hold spaces).
pub(crate) fn string_list(claims: &Map<String, Value>, name: &str, split: bool) -> Vec<String> {
    match claims.get(name) {
        Some(Value::String(s)) if split => s.split_whitespace().map(str::to_string).collect(),
        Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}

/// The `aud` claim as a list (RFC 7519 §4.1.3: a string or an array).
pub(crate) fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    string_list(claims, "aud", false)
}

/// A NumericDate claim; a present claim of another type is malformed.
pub(crate) fn time_claim(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<i64>, TokenRejection> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            .map(Some)
            .ok_or_else(|| TokenRejection::Malformed(format!("the `{name}` claim is not a time"))),
        Some(_) => Err(TokenRejection::Malformed(format!(
            "the `{name}` claim is not a number"
        ))),
    }
}

/// Checks `exp` (required when `require_exp`), `nbf` and `iat` against `now` with `skew`
/// seconds of tolerance; returns `exp`.
pub(crate) fn check_times(
    claims: &Map<String, Value>,
    now: i64,
    skew: i64,
    require_exp: bool,
) -> Result<Option<i64>, TokenRejection> {
    let exp = time_claim(claims, "exp")?;
    match exp {
        None if require_exp => {
            return Err(TokenRejection::Malformed(
                "the token has no `exp` claim".into(),
            ));
        }
        Some(exp) if now >= exp.saturating_add(skew) => return Err(TokenRejection::Expired),
        _ => {}
    }
    if let Some(nbf) = time_claim(claims, "nbf")?
        && now.saturating_add(skew) < nbf
    {
        return Err(TokenRejection::NotYetValid);
    }
    if let Some(iat) = time_claim(claims, "iat")?
        && now.saturating_add(skew) < iat
    {
        return Err(TokenRejection::NotYetValid);
    }
    Ok(exp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn lists_accept_strings_and_arrays() {
        let c = m(json!({"scope": "a b  c", "scp": ["x", "y", 3], "g": "team one", "aud": "r"}));
        assert_eq!(string_list(&c, "scope", true), ["a", "b", "c"]);
        assert_eq!(string_list(&c, "scp", true), ["x", "y"]);
        assert_eq!(string_list(&c, "g", false), ["team one"]);
        assert_eq!(audiences(&c), ["r"]);
        assert!(string_list(&c, "missing", false).is_empty());
    }

    #[test]
    fn times_are_checked_with_skew() {
        let now = 1_000;
        let c = m(json!({"exp": 1_010, "nbf": 990, "iat": 990}));
        assert_eq!(check_times(&c, now, 0, true), Ok(Some(1_010)));
        assert_eq!(
            check_times(&c, 1_010, 0, true),
            Err(TokenRejection::Expired)
        );
        assert_eq!(check_times(&c, 1_010, 5, true), Ok(Some(1_010)));
        assert_eq!(
            check_times(&c, 980, 0, true),
            Err(TokenRejection::NotYetValid)
        );
        assert_eq!(check_times(&c, 980, 10, true), Ok(Some(1_010)));
        let future_iat = m(json!({"exp": 2_000, "iat": 1_100}));
        assert_eq!(
            check_times(&future_iat, now, 30, true),
            Err(TokenRejection::NotYetValid)
        );
        assert!(matches!(
            check_times(&m(json!({})), now, 0, true),
            Err(TokenRejection::Malformed(_))
        ));
        assert_eq!(check_times(&m(json!({})), now, 0, false), Ok(None));
        assert!(matches!(
            check_times(&m(json!({"exp": "soon"})), now, 0, true),
            Err(TokenRejection::Malformed(_))
        ));
    }
}
