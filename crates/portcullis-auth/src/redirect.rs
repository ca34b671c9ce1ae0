//! Redirect URI rules (AUTH-2): https, or http on a loopback host with any port (RFC 8252 §7.3);
//! no fragment; no other scheme. At authorize time they are compared exactly (no prefix, no
//! normalisation), so an attacker cannot steer a code to a URI the client did not register.

/// Longest redirect URI accepted.
pub const MAX_URI_LEN: usize = 2000;

/// Checks one redirect URI; the error says what is wrong and what is allowed.
pub fn check_redirect_uri(raw: &str) -> Result<(), String> {
    if raw.is_empty() || raw.len() > MAX_URI_LEN {
        return Err(format!(
            "redirect URI must be 1 to {MAX_URI_LEN} characters"
        ));
    }
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("redirect URI must not contain spaces or control characters".into());
    }
    if raw.contains('#') {
        return Err(format!(
            "redirect URI {raw:?} must not contain a fragment (#)"
        ));
    }
    let url =
        url::Url::parse(raw).map_err(|_| format!("redirect URI {raw:?} is not an absolute URL"))?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "redirect URI {raw:?} must not contain user information"
        ));
    }
    match url.scheme() {
        "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        "http" if is_loopback_host(url.host_str().unwrap_or_default()) => Ok(()),
        "http" => Err(format!(
            "redirect URI {raw:?} uses http on a host that is not loopback; http is allowed only on 127.0.0.1, [::1] or localhost, otherwise use https"
        )),
        other => Err(format!(
            "redirect URI {raw:?} has scheme {other}:, which is not allowed; use https, or http on 127.0.0.1, [::1] or localhost (custom schemes, javascript: and data: are refused)"
        )),
    }
}

/// 127.0.0.1, [::1] or localhost.
pub fn is_loopback_host(h: &str) -> bool {
    matches!(h, "127.0.0.1" | "[::1]" | "localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    // AUTH-2
    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://app.example.com/cb",
            "http://127.0.0.1:33418/callback",
            "http://[::1]:8080/cb",
            "http://localhost/cb?x=1",
        ] {
            assert_eq!(check_redirect_uri(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn other_schemes_fragments_and_remote_http_are_refused() {
        let e = check_redirect_uri("javascript:alert(1)").unwrap_err();
        assert!(e.contains("scheme javascript:"), "{e}");
        let e = check_redirect_uri("data:text/html,hi").unwrap_err();
        assert!(e.contains("scheme data:"), "{e}");
        let e = check_redirect_uri("com.example.app:/cb").unwrap_err();
        assert!(e.contains("custom schemes"), "{e}");
        let e = check_redirect_uri("http://evil.example/cb").unwrap_err();
        assert!(e.contains("not loopback"), "{e}");
        let e = check_redirect_uri("https://app.example/cb#frag").unwrap_err();
        assert!(e.contains("fragment"), "{e}");
        assert!(check_redirect_uri("https://user:pw@app.example/cb").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri(&format!("https://a.example/{}", "x".repeat(2000))).is_err());
    }
}
