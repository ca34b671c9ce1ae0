//! Transport settings: TLS termination and the proxies whose forwarding headers are believed
//! (AUTH transport rules: the authorization server and MCP endpoints refuse plain HTTP outside
//! loopback, so the gateway must know when a request really arrived over TLS).

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_saphyr::Spanned;

use crate::validate::ConfigError;

/// TLS termination, as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM, leaf first. Reloaded when the file changes.
    #[schemars(with = "String")]
    pub cert_file: Spanned<String>,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1). Reloaded when the file changes.
    #[schemars(with = "String")]
    pub key_file: Spanned<String>,
    /// The oldest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[schemars(with = "Option<String>")]
    pub min_version: Option<Spanned<String>>,
}

/// The oldest TLS version accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Validated TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Certificate chain file (PEM).
    pub cert_file: PathBuf,
    /// Private key file (PEM).
    pub key_file: PathBuf,
    /// The oldest version accepted.
    pub min_version: TlsVersion,
}

pub(crate) fn validate_tls(file: &str, t: &TlsConfig) -> Result<Tls, ConfigError> {
    for (name, v) in [("cert_file", &t.cert_file), ("key_file", &t.key_file)] {
        if v.value.trim().is_empty() {
            return Err(ConfigError::at(
                file,
                v,
                format!("`tls.{name}` is empty: give the path of a PEM file"),
            ));
        }
    }
    let min_version = match &t.min_version {
        None => TlsVersion::Tls12,
        Some(v) => match v.value.as_str() {
            "1.2" => TlsVersion::Tls12,
            "1.3" => TlsVersion::Tls13,
            other => {
                return Err(ConfigError::at(
                    file,
                    v,
                    format!(
                        "`tls.min_version` must be \"1.2\" or \"1.3\" (older versions are not safe); found {other:?}"
                    ),
                ));
            }
        },
    };
    Ok(Tls {
        cert_file: t.cert_file.value.clone().into(),
        key_file: t.key_file.value.clone().into(),
        min_version,
    })
}

/// Parses the trusted proxies: CIDRs (`10.0.0.0/8`) or single addresses (`127.0.0.1`, taken as
/// a /32 or /128).
pub(crate) fn validate_trusted_proxies(
    file: &str,
    list: &[Spanned<String>],
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    list.iter()
        .map(|s| {
            let v = s.value.trim();
            v.parse::<ipnet::IpNet>()
                .map(|n| n.trunc())
                .or_else(|_| v.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    ConfigError::at(
                        file,
                        s,
                        format!(
                            "`trusted_proxies` entries are IP networks in CIDR form, like 10.0.0.0/8 or 127.0.0.1/32; found {:?}",
                            s.value
                        ),
                    )
                })
                .and_then(|n| {
                    // Trusting every address would let any client write its own origin.
                    if n.prefix_len() == 0 {
                        Err(ConfigError::at(
                            file,
                            s,
                            format!(
                                "`trusted_proxies` entry {:?} trusts every address, so any client could forge its origin: list only your proxies' networks",
                                s.value
                            ),
                        ))
                    } else {
                        Ok(n)
                    }
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::{TlsVersion, load_str};

    #[test]
    fn tls_settings_load_with_a_safe_default() {
        let c = load_str("tls:\n  cert_file: c.pem\n  key_file: k.pem\n", "t").unwrap();
        let t = c.tls.unwrap();
        assert_eq!(t.min_version, TlsVersion::Tls12);
        assert_eq!(t.cert_file, std::path::PathBuf::from("c.pem"));
        let c = load_str(
            "tls:\n  cert_file: c\n  key_file: k\n  min_version: \"1.3\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.tls.unwrap().min_version, TlsVersion::Tls13);
        let e = load_str(
            "tls:\n  cert_file: c\n  key_file: k\n  min_version: \"1.1\"\n",
            "t",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("\"1.2\" or \"1.3\""), "{e}");
        assert!(load_str("connectors: {}\n", "t").unwrap().tls.is_none());
    }

    #[test]
    fn trusted_proxies_are_cidrs() {
        let c = load_str(
            "trusted_proxies: [\"10.0.0.0/8\", \"127.0.0.1\", \"::1/128\"]\n",
            "t",
        )
        .unwrap();
        let want: Vec<ipnet::IpNet> = ["10.0.0.0/8", "127.0.0.1/32", "::1/128"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(c.trusted_proxies, want);
        let e = load_str(
            "trusted_proxies:\n  - 10.0.0.0/8\n  - proxy.internal\n",
            "t",
        )
        .unwrap_err();
        assert_eq!((e.line, e.column), (3, 5), "{e}");
        assert!(e.message.contains("CIDR"), "{e}");
        for all in ["0.0.0.0/0", "::/0"] {
            let e = load_str(&format!("trusted_proxies: [\"{all}\"]\n"), "t").unwrap_err();
            assert!(e.message.contains("trusts every address"), "{e}");
        }
    }

    #[test]
    fn the_schema_describes_transport_and_credentials() {
        let text = crate::schema().to_string();
        for word in [
            "trusted_proxies",
            "min_version",
            "credential",
            "client_secret_basic",
            "token_exchange",
        ] {
            assert!(text.contains(word), "{word} missing from the schema");
        }
    }
}
