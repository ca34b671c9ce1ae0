//! Server-rendered pages: sign-in, consent (AUTH-7) and errors. Every interpolated value is
//! HTML-escaped; no external assets; strict security headers on every page. The forms follow
//! the contract test clients rely on: POST to `/oauth/login` and `/oauth/consent` with hidden
//! `request_id` and `csrf`, `username`/`password` on sign-in, `decision=allow|deny` on consent;
//! with federated sign-in configured (AUTH-6), the sign-in page also has a link
//! `id="federated-login"` to `/oauth/federated/start?request_id=...`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use html_escape::{encode_double_quoted_attribute as attr, encode_text as text};

use crate::settings::ScopeLevel;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#fff;color:#111;max-width:34rem;margin:2rem auto;padding:0 1rem;line-height:1.5}\
h1{font-size:1.5rem}label{display:block;margin-top:1rem;font-weight:600}\
input[type=text],input[type=password]{width:100%;padding:.5rem;font-size:1rem;border:2px solid #555;border-radius:4px;box-sizing:border-box}\
button{margin-top:1.25rem;margin-right:.75rem;padding:.6rem 1.2rem;font-size:1rem;border-radius:4px;border:2px solid #1a1a1a;cursor:pointer}\
button.primary{background:#0b4f9c;color:#fff;border-color:#0b4f9c}button.secondary{background:#fff;color:#111}\
button:focus,input:focus{outline:3px solid #c25e00;outline-offset:2px}\
.error{background:#fde8e8;color:#7a0000;border:2px solid #7a0000;padding:.75rem;border-radius:4px}\
.write{color:#7a4a00;font-weight:700}.admin{color:#fff;background:#9b0000;padding:0 .35rem;border-radius:3px;font-weight:700}\
ul.scopes li{margin:.5rem 0}.muted{color:#444}\
a.button{display:inline-block;margin-top:1rem;padding:.6rem 1.2rem;font-size:1rem;border-radius:4px;text-decoration:none}\
a.button.primary{background:#0b4f9c;color:#fff;border:2px solid #0b4f9c}a.button:focus{outline:3px solid #c25e00;outline-offset:2px}";

/// Headers every page carries: no framing, no caching, no referrer, nothing external.
pub fn secure(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{} – Portcullis</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        text(title)
    );
    let mut r = (status, html).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    secure(r)
}

/// An error page that never redirects (a bad client or redirect URI must not become an open
/// redirect).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    page(
        status,
        title,
        &format!(
            "<h1>{}</h1><p class=\"error\" role=\"alert\">{}</p><p class=\"muted\">Close this window and start again from the application.</p>",
            text(title),
            text(message)
        ),
    )
}

/// Who is asking, as shown on the pages.
pub struct ClientView<'a> {
    /// Declared name, if any.
    pub name: Option<&'a str>,
    /// The client id.
    pub client_id: &'a str,
    /// Registered through DCR (its name is self-declared).
    pub unverified: bool,
    /// Host of the redirect URI.
    pub redirect_host: String,
}

impl ClientView<'_> {
    fn html(&self) -> String {
        let name = self.name.unwrap_or(self.client_id);
        // DCR names are self-declared; a metadata document client is at least bound to the
        // host that serves its document, so that host is what we can vouch for.
        let mark = if self.unverified {
            " <span class=\"write\">(unverified)</span>".to_string()
        } else {
            url::Url::parse(self.client_id)
                .ok()
                .and_then(|u| {
                    u.host_str().map(|h| {
                        format!(" <span class=\"muted\">(identified by {})</span>", text(h))
                    })
                })
                .unwrap_or_default()
        };
        format!("<strong>{}</strong>{mark}", text(name))
    }
}

/// The sign-in page: the local form, and beside it, when federated sign-in is configured
/// (AUTH-6), a "Sign in with {federated}" link to `/oauth/federated/start?request_id=...`.
pub fn login_page(
    request_id: &str,
    csrf: &str,
    client: &ClientView<'_>,
    federated: Option<&str>,
    error: Option<&str>,
    status: StatusCode,
) -> Response {
    // A link, not a form: `form-action 'self'` in our CSP also covers where a form submission
    // is redirected, so a form could not go on to the provider. A GET changes nothing until the
    // provider sends the browser back with a code bound to this browser's cookie.
    let federated = federated.map_or(String::new(), |name| {
        format!(
            "<p><a class=\"button primary\" id=\"federated-login\" href=\"/oauth/federated/start?request_id={}\">Sign in with {}</a></p><p class=\"muted\">or with a local account:</p>",
            attr(&url_component(request_id)),
            text(name)
        )
    });
    let err = error.map_or(String::new(), |e| {
        format!(
            "<p class=\"error\" role=\"alert\" id=\"login-error\">{}</p>",
            text(e)
        )
    });
    let described = if error.is_some() {
        " aria-describedby=\"login-error\""
    } else {
        ""
    };
    page(
        status,
        "Sign in",
        &format!(
            "<h1>Sign in to Portcullis</h1><p>{} wants to access tools on your behalf. Sign in to continue.</p>{err}{federated}\
<form method=\"post\" action=\"/oauth/login\"{described}>\
<input type=\"hidden\" name=\"request_id\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<label for=\"username\">User name</label><input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus maxlength=\"128\">\
<label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required maxlength=\"1024\">\
<button type=\"submit\" class=\"primary\">Sign in</button></form>",
            client.html(),
            attr(request_id),
            attr(csrf)
        ),
    )
}

/// Percent-encodes a query value (request ids are base64url already; this keeps the link
/// well-formed whatever they hold).
fn url_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One scope line on the consent page.
pub struct ScopeView<'a> {
    /// The scope.
    pub name: &'a str,
    /// Plain words.
    pub description: &'a str,
    /// Level.
    pub level: ScopeLevel,
}

/// The consent page (AUTH-7): names the client, its redirect host and each scope in plain
/// words; write access is marked, destructive (admin) access prominently.
pub fn consent_page(
    request_id: &str,
    csrf: &str,
    client: &ClientView<'_>,
    resource_name: &str,
    user: &str,
    scopes: &[ScopeView<'_>],
) -> Response {
    let items: String = scopes
        .iter()
        .map(|s| {
            let mark = match s.level {
                ScopeLevel::Read => String::new(),
                ScopeLevel::Write => " <span class=\"write\">Can change data</span>".into(),
                ScopeLevel::Admin => {
                    " <span class=\"admin\">Destructive: can delete data</span>".into()
                }
            };
            format!(
                "<li>{}{mark} <span class=\"muted\">({})</span></li>",
                text(s.description),
                text(s.name)
            )
        })
        .collect();
    let warning = if client.unverified {
        "<p class=\"muted\">This application registered itself; its name is not verified. Allow only if you started this sign-in.</p>"
    } else {
        ""
    };
    page(
        StatusCode::OK,
        "Allow access?",
        &format!(
            "<h1>Allow access?</h1><p>Signed in as <strong>{}</strong>.</p>\
<p>{} wants access to <strong>{}</strong>. After you decide, you will be sent to <strong>{}</strong>.</p>{warning}\
<h2>It will be able to</h2><ul class=\"scopes\">{items}</ul>\
<form method=\"post\" action=\"/oauth/consent\">\
<input type=\"hidden\" name=\"request_id\" value=\"{}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
<button type=\"submit\" name=\"decision\" value=\"allow\" class=\"primary\">Allow</button>\
<button type=\"submit\" name=\"decision\" value=\"deny\" class=\"secondary\">Deny</button></form>",
            text(user),
            client.html(),
            text(resource_name),
            text(&client.redirect_host),
            attr(request_id),
            attr(csrf)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn values_are_escaped_and_headers_set() {
        let c = ClientView {
            name: Some("<script>x</script>"),
            client_id: "c",
            unverified: true,
            redirect_host: "a\"b".into(),
        };
        let scopes = [ScopeView {
            name: "crm:admin",
            description: "delete <b>all</b>",
            level: ScopeLevel::Admin,
        }];
        let r = consent_page("id\"><x", "t", &c, "CRM", "u", &scopes);
        assert_eq!(r.headers()["x-frame-options"], "DENY");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert_eq!(r.headers()["referrer-policy"], "no-referrer");
        assert!(
            r.headers()["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            !body.contains("<script>") && body.contains("&lt;script&gt;"),
            "{body}"
        );
        assert!(!body.contains("<b>all"), "{body}");
        assert!(body.contains("value=\"id&quot;&gt;&lt;x\""), "{body}");
        assert!(body.contains("Destructive") && body.contains("(unverified)"));
    }

    // AUTH-6: the federated button appears only when configured, escaped, with the request id.
    #[tokio::test]
    async fn the_login_page_offers_federated_sign_in_when_configured() {
        let c = ClientView {
            name: Some("App"),
            client_id: "c",
            unverified: false,
            redirect_host: "h".into(),
        };
        let body = |r: Response| async {
            let b = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
            String::from_utf8(b.to_vec()).unwrap()
        };
        let with = body(login_page(
            "r1",
            "t",
            &c,
            Some("Okta <Corp>"),
            None,
            StatusCode::OK,
        ))
        .await;
        assert!(
            with.contains("href=\"/oauth/federated/start?request_id=r1\"")
                && with.contains("Sign in with Okta &lt;Corp&gt;"),
            "{with}"
        );
        assert!(
            with.contains("name=\"password\""),
            "the local form stays: {with}"
        );
        let without = body(login_page("r1", "t", &c, None, None, StatusCode::OK)).await;
        assert!(!without.contains("federated"), "{without}");
    }
}
