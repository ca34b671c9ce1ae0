//! Where a request really comes from, and whether it came over TLS (AUTH transport rules): the
//! authorization server and the MCP endpoints refuse plain HTTP from anywhere but loopback,
//! since bearer tokens, codes and client secrets would cross the network in clear.
//!
//! The TCP peer and the TLS state come from the server ([`ConnectionInfo`], or axum's
//! `ConnectInfo<SocketAddr>` for a plain listener). Forwarding headers (`Forwarded`, RFC 7239;
//! `X-Forwarded-For`, `X-Forwarded-Proto`) are believed only from a peer in the trusted proxy
//! list, and then only up to the rightmost hop that is not itself a trusted proxy: anything to
//! the left of it was written by the client and proves nothing.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, StatusCode};
use ipnet::IpNet;

/// The facts of the connection a request arrived on; the server inserts it as a request
/// extension (the TLS listener does; a plain one may rely on `ConnectInfo<SocketAddr>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
}

/// Who sent a request, after trusted proxies are accounted for; a request extension set by
/// [`enforce`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientOrigin {
    /// The client's address. `0.0.0.0` when a trusted proxy could not say (an `unknown` or
    /// obfuscated hop): never mistaken for loopback.
    pub addr: IpAddr,
    /// Whether the client's own connection was https.
    pub https: bool,
}

/// The transport rules for one listener.
#[derive(Debug, Clone, Default)]
pub struct TransportPolicy {
    trusted: Arc<Vec<IpNet>>,
}

impl TransportPolicy {
    /// Rules believing forwarding headers from peers in `trusted_proxies` only.
    pub fn new(trusted_proxies: Vec<IpNet>) -> Self {
        Self {
            trusted: Arc::new(trusted_proxies),
        }
    }

    /// Puts [`enforce`] in front of every route of `router`.
    pub fn apply<S: Clone + Send + Sync + 'static>(
        self,
        router: axum::Router<S>,
    ) -> axum::Router<S> {
        router.layer(axum::middleware::from_fn_with_state(self, enforce))
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|n| n.contains(&ip))
    }

    /// The origin of a request from `peer` over a connection that is (`tls`) or is not TLS.
    pub fn origin(&self, peer: IpAddr, tls: bool, headers: &HeaderMap) -> ClientOrigin {
        let peer = peer.to_canonical();
        let direct = ClientOrigin {
            addr: peer,
            https: tls,
        };
        if !self.is_trusted(peer) {
            return direct;
        }
        let hops = forwarded_hops(headers);
        if hops.is_empty() {
            return direct;
        }
        // Rightmost first: each proxy appended the peer it saw.
        for (i, hop) in hops.iter().enumerate().rev() {
            match hop.addr {
                Some(ip) if self.is_trusted(ip) && i > 0 => continue,
                Some(ip) => {
                    return ClientOrigin {
                        addr: ip,
                        https: hop.https.unwrap_or(tls),
                    };
                }
                None => break,
            }
        }
        // A hop the proxy could not name: the client is unknown, so nothing is granted for
        // being local, and https is not assumed.
        ClientOrigin {
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            https: false,
        }
    }
}

/// One hop of a forwarding chain: the address a proxy saw and, where said, the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    addr: Option<IpAddr>,
    https: Option<bool>,
}

/// The hops of `Forwarded` (preferred, RFC 7239) or else `X-Forwarded-For` with
/// `X-Forwarded-Proto`, leftmost first.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Hop> {
    let forwarded: Vec<&str> = headers
        .get_all(http::header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|v| split_outside_quotes(v, ','))
            .map(|element| {
                let mut hop = Hop {
                    addr: None,
                    https: None,
                };
                for pair in split_outside_quotes(element, ';') {
                    let Some((k, v)) = pair.split_once('=') else {
                        continue;
                    };
                    let v = v.trim().trim_matches('"');
                    match k.trim().to_ascii_lowercase().as_str() {
                        "for" => hop.addr = parse_node(v),
                        "proto" => hop.https = Some(v.eq_ignore_ascii_case("https")),
                        _ => {}
                    }
                }
                hop
            })
            .collect();
    }
    let list = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .collect()
    };
    let xff = list("x-forwarded-for");
    let xfp = list("x-forwarded-proto");
    let n = xff.len();
    xff.iter()
        .enumerate()
        .map(|(i, a)| Hop {
            addr: parse_node(a),
            // One protocol for the chain, or one per hop; anything else says nothing, and
            // saying nothing is not https.
            https: match xfp.len() {
                0 => None,
                1 => Some(xfp[0].eq_ignore_ascii_case("https")),
                m if m == n => Some(xfp[i].eq_ignore_ascii_case("https")),
                _ => Some(false),
            },
        })
        .collect()
}

/// Splits on `sep` outside double quotes.
fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted) = (0, false);
    for (i, c) in s.char_indices() {
        if c == '"' {
            quoted = !quoted;
        } else if c == sep && !quoted {
            out.push(&s[start..i]);
            start = i + 1;
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// A node of RFC 7239 §6 (`1.2.3.4`, `1.2.3.4:80`, `[::1]`, `[::1]:80`) or a bare address as
/// X-Forwarded-For writes it; `unknown` and obfuscated names (`_hidden`) are `None`.
fn parse_node(v: &str) -> Option<IpAddr> {
    let v = v.trim();
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Some(rest) = v.strip_prefix('[') {
        let end = rest.find(']')?;
        return rest[..end]
            .parse::<IpAddr>()
            .ok()
            .map(|ip| ip.to_canonical());
    }
    v.parse::<SocketAddr>().ok().map(|s| s.ip().to_canonical())
}

/// Middleware: sets the [`ClientOrigin`] extension, and refuses plain HTTP from a client that
/// is not on loopback with 403 and a JSON error saying to use https.
pub async fn enforce(
    State(policy): State<TransportPolicy>,
    mut req: Request,
    next: Next,
) -> Response {
    let conn = req
        .extensions()
        .get::<ConnectionInfo>()
        .copied()
        .or_else(|| {
            req.extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| ConnectionInfo {
                    peer: c.0,
                    tls: false,
                })
        });
    let Some(conn) = conn else {
        // A wiring mistake, not the client's: without the peer nothing can be decided, so
        // nothing is served (fail closed).
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server does not know the connection's peer address: serve the router with ConnectionInfo or into_make_service_with_connect_info::<SocketAddr>()",
        );
    };
    let origin = policy.origin(conn.peer.ip(), conn.tls, req.headers());
    // Liveness says nothing about anyone, and orchestrators probe it over plain HTTP.
    let probe = req.uri().path() == "/healthz";
    if !origin.https && !origin.addr.is_loopback() && !probe {
        return error(
            StatusCode::FORBIDDEN,
            "https_required",
            "plain HTTP is accepted from loopback only: connect with https:// (tokens and credentials must not cross the network in clear)",
        );
    }
    req.extensions_mut().insert(origin);
    next.run(req).await
}

fn error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({"error": code, "error_description": description})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt;

    fn policy() -> TransportPolicy {
        TransportPolicy::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ])
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarding_headers_from_an_untrusted_peer_are_ignored() {
        let h = headers(&[
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-proto", "https"),
        ]);
        let o = policy().origin(ip("203.0.113.9"), false, &h);
        assert_eq!(
            o,
            ClientOrigin {
                addr: ip("203.0.113.9"),
                https: false
            }
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        // The client forged "127.0.0.1" on the left; two trusted proxies appended after it.
        let h = headers(&[
            ("x-forwarded-for", "127.0.0.1, 198.51.100.7, 10.1.2.3"),
            ("x-forwarded-proto", "https"),
        ]);
        let o = policy().origin(ip("10.0.0.2"), false, &h);
        assert_eq!(
            o,
            ClientOrigin {
                addr: ip("198.51.100.7"),
                https: true
            }
        );
    }

    #[test]
    fn forwarded_is_preferred_and_parsed_per_rfc_7239() {
        let h = headers(&[
            (
                "forwarded",
                r#"for=192.0.2.60;proto=http, for="[2001:db8::1]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "127.0.0.1"),
        ]);
        let o = policy().origin(ip("10.0.0.2"), false, &h);
        assert_eq!(
            o,
            ClientOrigin {
                addr: ip("2001:db8::1"),
                https: true
            }
        );
        let h = headers(&[("forwarded", "for=unknown;proto=https")]);
        let o = policy().origin(ip("127.0.0.1"), false, &h);
        assert_eq!(o.addr, ip("0.0.0.0"), "an unknown client is not loopback");
        assert!(!o.https);
    }

    #[test]
    fn a_chain_of_trusted_proxies_ends_at_its_leftmost_hop() {
        let h = headers(&[
            ("x-forwarded-for", "10.9.9.9, 10.1.1.1"),
            ("x-forwarded-proto", "http, https"),
        ]);
        let o = policy().origin(ip("10.0.0.2"), true, &h);
        assert_eq!(
            o,
            ClientOrigin {
                addr: ip("10.9.9.9"),
                https: false
            }
        );
        // Protocol lists that do not line up with the hops say nothing: not https.
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.7"),
            ("x-forwarded-proto", "https, https"),
        ]);
        assert!(!policy().origin(ip("10.0.0.2"), false, &h).https);
        // Mapped IPv4 peers (a dual-stack listener) are matched as IPv4.
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            policy().origin(ip("::ffff:10.0.0.2"), true, &h).addr,
            ip("198.51.100.7")
        );
    }

    async fn status_for(conn: Option<ConnectionInfo>, h: &[(&str, &str)]) -> (StatusCode, String) {
        let app = policy().apply(axum::Router::new().route(
            "/mcp",
            get(
                |axum::Extension(o): axum::Extension<ClientOrigin>| async move {
                    format!("{} {}", o.addr, o.https)
                },
            ),
        ));
        let mut req = Request::builder().uri("/mcp");
        for (k, v) in h {
            req = req.header(*k, *v);
        }
        let mut req = req.body(Body::empty()).unwrap();
        if let Some(c) = conn {
            req.extensions_mut().insert(c);
        }
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    fn conn(peer: &str, tls: bool) -> Option<ConnectionInfo> {
        Some(ConnectionInfo {
            peer: peer.parse().unwrap(),
            tls,
        })
    }

    #[tokio::test]
    async fn plain_http_from_outside_loopback_is_refused() {
        let (s, body) = status_for(conn("203.0.113.9:5000", false), &[]).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["error"], "https_required");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("https://")
        );
        // The same client over TLS, or on loopback, is served.
        assert_eq!(
            status_for(conn("203.0.113.9:5000", true), &[]).await,
            (StatusCode::OK, "203.0.113.9 true".into())
        );
        assert_eq!(
            status_for(conn("127.0.0.1:5000", false), &[]).await,
            (StatusCode::OK, "127.0.0.1 false".into())
        );
        assert_eq!(
            status_for(conn("[::1]:5000", false), &[]).await.0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn a_forged_loopback_header_from_an_untrusted_peer_does_not_help() {
        let (s, _) = status_for(
            conn("203.0.113.9:5000", false),
            &[
                ("x-forwarded-for", "127.0.0.1"),
                ("x-forwarded-proto", "https"),
                ("forwarded", "for=127.0.0.1;proto=https"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn a_trusted_proxy_that_terminated_tls_is_believed() {
        let (s, body) = status_for(
            conn("10.0.0.2:443", false),
            &[
                ("x-forwarded-for", "198.51.100.7"),
                ("x-forwarded-proto", "https"),
            ],
        )
        .await;
        assert_eq!((s, body.as_str()), (StatusCode::OK, "198.51.100.7 true"));
        // ...and a plain-HTTP client behind it is refused, although the proxy is trusted.
        let (s, _) = status_for(
            conn("10.0.0.2:443", false),
            &[
                ("x-forwarded-for", "198.51.100.7"),
                ("x-forwarded-proto", "http"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // A loopback proxy (trusted) forwarding a remote client is not loopback.
        let (s, _) = status_for(
            conn("127.0.0.1:1", false),
            &[("x-forwarded-for", "198.51.100.7")],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn without_connection_facts_nothing_is_served() {
        let (s, body) = status_for(None, &[]).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(body.contains("connect_info"), "{body}");
        // axum's ConnectInfo is enough for a plain listener.
        let app = policy().apply(axum::Router::new().route("/", get(|| async { "ok" })));
        let mut req = Request::builder().uri("/").body(Body::empty()).unwrap();
        req.extensions_mut()
            .insert(ConnectInfo("127.0.0.1:9".parse::<SocketAddr>().unwrap()));
        assert_eq!(app.oneshot(req).await.unwrap().status(), StatusCode::OK);
    }
}
