//! The Cedar schema Portcullis publishes (AZ-1), embedded in the binary.

use std::sync::LazyLock;

use cedar_policy::Schema;

/// The schema's text, as `portcullis policy schema` prints it.
pub const SCHEMA_TEXT: &str = include_str!("../policies/portcullis.cedarschema");

/// The Cedar namespace of every entity type and action.
pub const NAMESPACE: &str = "Portcullis";

static SCHEMA: LazyLock<Schema> = LazyLock::new(|| {
    // The text is ours and a unit test parses it: a failure here is a build defect, not input.
    #[allow(clippy::expect_used)]
    Schema::from_cedarschema_str(SCHEMA_TEXT)
        .map(|(s, _warnings)| s)
        .expect("the embedded Cedar schema parses (checked by a unit test)")
});

/// The parsed schema, built once.
pub fn schema() -> &'static Schema {
    &SCHEMA
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_schema_parses_without_warnings() {
        let (_, warnings) = Schema::from_cedarschema_str(SCHEMA_TEXT).unwrap();
        assert_eq!(warnings.count(), 0);
        let actions: Vec<String> = schema().actions().map(|a| a.to_string()).collect();
        for a in ["call_tool", "read_resource", "get_prompt", "list"] {
            assert!(
                actions.contains(&format!("Portcullis::Action::\"{a}\"")),
                "{actions:?}"
            );
        }
    }
}
