//! The federated endpoint's naming: tools and prompts of every connector under `{connector}__{name}`,
//! resources under `{connector}+{uri}`. Connector names are restricted (see portcullis-config) to
//! `a-z0-9-`, so both forms split back unambiguously at the first separator.

/// Separator between connector and tool or prompt name.
pub const NAME_SEP: &str = "__";
/// Separator between connector and resource URI (the result is still a valid URI: `a+b` is a
/// legal scheme).
pub const URI_SEP: char = '+';

/// `crm`, `search_customers` -> `crm__search_customers`.
pub fn namespace_name(connector: &str, name: &str) -> String {
    format!("{connector}{NAME_SEP}{name}")
}

/// `crm__search_customers` -> (`crm`, `search_customers`).
pub fn split_name(namespaced: &str) -> Option<(&str, &str)> {
    let (c, n) = namespaced.split_once(NAME_SEP)?;
    (!c.is_empty() && !n.is_empty()).then_some((c, n))
}

/// `crm`, `crm://schema` -> `crm+crm://schema`.
pub fn namespace_uri(connector: &str, uri: &str) -> String {
    format!("{connector}{URI_SEP}{uri}")
}

/// `crm+crm://schema` -> (`crm`, `crm://schema`).
pub fn split_uri(namespaced: &str) -> Option<(&str, &str)> {
    let (c, u) = namespaced.split_once(URI_SEP)?;
    (!c.is_empty() && !u.is_empty()).then_some((c, u))
}

/// The list methods the federated endpoint answers by merging, with the result key holding the
/// items and the item field to namespace.
pub fn list_shape(method: &str) -> Option<(&'static str, &'static str, bool)> {
    match method {
        "tools/list" => Some(("tools", "name", false)),
        "prompts/list" => Some(("prompts", "name", false)),
        "resources/list" => Some(("resources", "uri", true)),
        "resources/templates/list" => Some(("resourceTemplates", "uriTemplate", true)),
        _ => None,
    }
}

/// Namespaces the items of one connector's list result in place.
pub fn namespace_items(
    connector: &str,
    items: &mut [serde_json::Value],
    field: &str,
    is_uri: bool,
) {
    for item in items {
        if let Some(v) = item.get_mut(field)
            && let Some(s) = v.as_str()
        {
            *v = serde_json::Value::String(if is_uri {
                namespace_uri(connector, s)
            } else {
                namespace_name(connector, s)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = namespace_name("crm", "search_customers");
        assert_eq!(n, "crm__search_customers");
        assert_eq!(split_name(&n), Some(("crm", "search_customers")));
        // A tool whose own name holds the separator still splits at the connector.
        assert_eq!(split_name("ev__get__thing"), Some(("ev", "get__thing")));
        assert_eq!(split_name("nosep"), None);
        assert_eq!(split_name("__x"), None);
    }

    #[test]
    fn uris_round_trip() {
        let u = namespace_uri("crm", "crm://schema");
        assert_eq!(u, "crm+crm://schema");
        assert_eq!(split_uri(&u), Some(("crm", "crm://schema")));
        assert_eq!(split_uri("ev+https://a/b+c"), Some(("ev", "https://a/b+c")));
        assert_eq!(split_uri("plain://x"), None);
    }

    #[test]
    fn items_are_namespaced() {
        let mut items = [
            serde_json::json!({"name": "a"}),
            serde_json::json!({"uri": "x://y"}),
        ];
        namespace_items("c", &mut items[..1], "name", false);
        namespace_items("c", &mut items[1..], "uri", true);
        assert_eq!(items[0]["name"], "c__a");
        assert_eq!(items[1]["uri"], "c+x://y");
    }
}
