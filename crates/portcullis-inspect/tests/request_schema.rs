//! IV-1: tool arguments against the tool's input schema and the stricter override, with size
//! and depth limits, external `$ref`s refused, and errors that name the field.

use std::net::TcpListener;
use std::sync::Arc;

use portcullis_config::inspect::ValidInspection;
use portcullis_inspect::schema::{ArgumentError, ArgumentValidator, SchemaSource, ToolSchemas};
use serde_json::{Value, json};

fn validator() -> ArgumentValidator {
    ArgumentValidator::new(&ValidInspection::default())
}

fn tool<'a>(schema: &'a Value) -> ToolSchemas<'a> {
    ToolSchemas {
        connector: "crm",
        tool: "search_customers",
        input_schema: Some(schema),
        override_schema: None,
    }
}

fn search_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "maxLength": 200},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100},
            "filters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "value": {"type": "string"}},
                    "required": ["name"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["query"],
        "additionalProperties": false
    })
}

fn invalid_message(r: Result<(), ArgumentError>) -> String {
    match r {
        Err(e @ ArgumentError::Invalid { .. }) => e.to_string(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn valid_arguments_pass() {
    let s = search_schema();
    let args =
        json!({"query": "acme", "limit": 10, "filters": [{"name": "country", "value": "NL"}]});
    validator().validate(&tool(&s), Some(&args)).unwrap();
}

#[test]
fn maximum_violation_names_field_expected_and_found() {
    let s = search_schema();
    let msg = invalid_message(
        validator().validate(&tool(&s), Some(&json!({"query": "a", "limit": 5000}))),
    );
    assert_eq!(
        msg,
        "argument /limit: 5000 is greater than the maximum of 100"
    );
}

#[test]
fn type_violation_names_field_and_type() {
    let s = search_schema();
    let msg = invalid_message(
        validator().validate(&tool(&s), Some(&json!({"query": "a", "limit": "ten"}))),
    );
    assert_eq!(msg, r#"argument /limit: "ten" is not of type "integer""#);
}

#[test]
fn missing_and_unknown_fields_are_named_by_pointer() {
    let s = search_schema();
    let err = validator()
        .validate(&tool(&s), Some(&json!({"limit": 5, "extra": true})))
        .unwrap_err();
    let ArgumentError::Invalid {
        schema,
        violations,
        total,
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(*schema, SchemaSource::Tool);
    assert_eq!(*total, 2);
    let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
    assert!(pointers.contains(&"/query"), "{pointers:?}");
    assert!(pointers.contains(&"/extra"), "{pointers:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("argument /query is required but missing"),
        "{msg}"
    );
    assert!(
        msg.contains("argument /extra is not a property the tool accepts"),
        "{msg}"
    );
    assert_eq!(err.reason(), "arguments_invalid");
}

#[test]
fn nested_violation_has_a_nested_pointer() {
    let s = search_schema();
    let err = validator()
        .validate(
            &tool(&s),
            Some(&json!({"query": "a", "filters": [{"name": "x"}, {"value": "y"}]})),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "argument /filters/1/name is required but missing"
    );
}

#[test]
fn long_and_secret_values_are_never_echoed_whole() {
    let s = json!({"type": "object", "properties": {"token": {"type": "integer"}}});
    let secret = "ghp_0123456789abcdefghijABCDEFGHIJ012345-and-then-some-more-secret-text";
    let msg = invalid_message(validator().validate(&tool(&s), Some(&json!({"token": secret}))));
    assert!(!msg.contains(secret), "{msg}");
    assert!(!msg.contains("some-more-secret-text"), "{msg}");
    assert!(msg.starts_with("argument /token: \"ghp_0123"), "{msg}");
    assert!(
        msg.contains(&format!("({} characters)", secret.chars().count())),
        "{msg}"
    );
    // Objects and arrays are described by size, never by content.
    let msg = invalid_message(
        validator().validate(&tool(&s), Some(&json!({"token": {"password": "hunter2"}}))),
    );
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(msg.contains("an object with 1 property"), "{msg}");
}

#[test]
fn many_violations_are_counted_not_all_listed() {
    let s = json!({"type": "object", "additionalProperties": {"type": "integer"}});
    let mut args = serde_json::Map::new();
    for i in 0..20 {
        args.insert(format!("f{i:02}"), json!("x"));
    }
    let msg = invalid_message(validator().validate(&tool(&s), Some(&Value::Object(args))));
    assert!(msg.ends_with("; and 15 more"), "{msg}");
    assert_eq!(msg.matches("is not of type").count(), 5, "{msg}");
}

#[test]
fn the_override_is_stricter_and_says_so() {
    let s = search_schema();
    let over = json!({"properties": {"limit": {"maximum": 20}}});
    let schemas = ToolSchemas {
        override_schema: Some(&over),
        ..tool(&s)
    };
    let v = validator();
    v.validate(&schemas, Some(&json!({"query": "a", "limit": 20})))
        .unwrap();
    let err = v
        .validate(&schemas, Some(&json!({"query": "a", "limit": 50})))
        .unwrap_err();
    assert!(matches!(
        err,
        ArgumentError::Invalid {
            schema: SchemaSource::Override,
            ..
        }
    ));
    assert_eq!(err.reason(), "arguments_invalid_override");
    let msg = err.to_string();
    assert!(
        msg.starts_with("argument /limit: 50 is greater than the maximum of 20"),
        "{msg}"
    );
    assert!(msg.contains("stricter schema"), "{msg}");
    // The tool's own schema is still checked first.
    let err = v
        .validate(&schemas, Some(&json!({"query": "a", "limit": 500})))
        .unwrap_err();
    assert!(matches!(
        err,
        ArgumentError::Invalid {
            schema: SchemaSource::Tool,
            ..
        }
    ));
}

#[test]
fn the_override_asserts_formats_the_tool_schema_only_annotates() {
    let s =
        json!({"type": "object", "properties": {"email": {"type": "string", "format": "email"}}});
    let v = validator();
    let args = json!({"email": "not an address"});
    v.validate(&tool(&s), Some(&args)).unwrap();
    let schemas = ToolSchemas {
        override_schema: Some(&s),
        ..tool(&s)
    };
    let msg = invalid_message(v.validate(&schemas, Some(&args)));
    assert!(
        msg.starts_with(r#"argument /email: "not an address" is not a "email""#),
        "{msg}"
    );
}

#[test]
fn absent_arguments_are_an_empty_object() {
    let v = validator();
    let open = json!({"type": "object"});
    v.validate(&tool(&open), None).unwrap();
    let s = search_schema();
    let msg = invalid_message(v.validate(&tool(&s), None));
    assert_eq!(msg, "argument /query is required but missing");
}

#[test]
fn arguments_must_be_an_object() {
    let s = json!({"type": "object"});
    for (args, found) in [
        (json!([1, 2]), "an array"),
        (json!("x"), "a string"),
        (json!(null), "null"),
        (json!(3), "a number"),
    ] {
        let err = validator().validate(&tool(&s), Some(&args)).unwrap_err();
        assert_eq!(err, ArgumentError::NotAnObject { found });
        assert_eq!(
            err.to_string(),
            format!("the arguments must be a JSON object; found {found}")
        );
    }
}

#[test]
fn size_limit_is_checked_before_the_schema() {
    let v = ArgumentValidator::with_limits(100, 32);
    let s = json!({"type": "object"});
    v.validate(&tool(&s), Some(&json!({"a": "x".repeat(80)})))
        .unwrap();
    let err = v
        .validate(&tool(&s), Some(&json!({"a": "x".repeat(200)})))
        .unwrap_err();
    assert_eq!(err, ArgumentError::TooLarge { limit: 100 });
    assert_eq!(err.reason(), "arguments_too_large");
    assert!(err.to_string().contains("inspection.arguments.max_bytes"));
    // Even a tool without any schema gets the limits first.
    let none = ToolSchemas {
        input_schema: None,
        ..tool(&s)
    };
    assert_eq!(
        v.validate(&none, Some(&json!({"a": "x".repeat(200)}))),
        Err(ArgumentError::TooLarge { limit: 100 })
    );
}

/// A value nested `depth` arrays deep, built without recursion.
fn deep(depth: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = Value::Array(vec![v]);
    }
    // Not `json!`: it would serialize `v` again, recursively.
    let mut m = serde_json::Map::new();
    m.insert("a".into(), v);
    Value::Object(m)
}

/// Takes a deep value apart without recursion (dropping it whole would recurse).
fn dismantle(mut v: Value) {
    let mut stack = vec![];
    loop {
        match &mut v {
            Value::Array(a) => stack.append(a),
            Value::Object(m) => {
                let m = std::mem::take(m);
                stack.extend(m.into_iter().map(|(_, x)| x));
            }
            _ => {}
        }
        match stack.pop() {
            Some(next) => v = next,
            None => break,
        }
    }
}

#[test]
fn depth_limit_names_where_and_survives_hostile_nesting() {
    let v = ArgumentValidator::with_limits(64 * 1024 * 1024, 4);
    let s = json!({"type": "object"});
    // {"a": [[1]]} is 3 levels deep.
    v.validate(&tool(&s), Some(&deep(2))).unwrap();
    v.validate(&tool(&s), Some(&deep(3))).unwrap();
    let err = v.validate(&tool(&s), Some(&deep(4))).unwrap_err();
    assert_eq!(
        err,
        ArgumentError::TooDeep {
            pointer: "/a/0/0/0".into(),
            limit: 4
        }
    );
    assert_eq!(err.reason(), "arguments_too_deep");
    // 200,000 levels: a recursive walk or serializer would overflow the stack here.
    let hostile = deep(200_000);
    let err = v.validate(&tool(&s), Some(&hostile)).unwrap_err();
    assert!(matches!(err, ArgumentError::TooDeep { limit: 4, .. }));
    dismantle(hostile);
}

#[test]
fn external_refs_are_refused_and_never_fetched() {
    // A listener the schema points at: if anything fetched the reference, it would connect.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/schema.json");
    let v = validator();
    for schema in [
        json!({"type": "object", "properties": {"a": {"$ref": url}}}),
        json!({"$ref": format!("{url}#/definitions/x")}),
        json!({"$id": format!("http://127.0.0.1:{port}/base/"), "properties": {"a": {"$ref": "other.json"}}}),
    ] {
        let err = v
            .validate(&tool(&schema), Some(&json!({"a": 1})))
            .unwrap_err();
        let ArgumentError::ToolSchemaInvalid { detail, .. } = &err else {
            panic!("{err:?}");
        };
        assert!(detail.contains("never fetches"), "{detail}");
        assert!(detail.contains(&format!("127.0.0.1:{port}")), "{detail}");
        assert_eq!(err.reason(), "tool_schema_invalid");
        let msg = err.to_string();
        assert!(
            msg.starts_with(
                "the input schema that connector crm lists for tool search_customers is invalid"
            ),
            "{msg}"
        );
    }
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::WouldBlock,
        "the reference was fetched"
    );
    let file = json!({"properties": {"a": {"$ref": "file:///etc/passwd"}}});
    let err = v.validate(&tool(&file), Some(&json!({}))).unwrap_err();
    assert!(err.to_string().contains("file:///etc/passwd"), "{err}");
}

#[test]
fn internal_refs_resolve() {
    let s = json!({
        "$defs": {"limit": {"type": "integer", "maximum": 10}},
        "type": "object",
        "properties": {"limit": {"$ref": "#/$defs/limit"}}
    });
    let v = validator();
    v.validate(&tool(&s), Some(&json!({"limit": 10}))).unwrap();
    let msg = invalid_message(v.validate(&tool(&s), Some(&json!({"limit": 11}))));
    assert_eq!(msg, "argument /limit: 11 is greater than the maximum of 10");
}

#[test]
fn draft_07_is_honoured_through_dollar_schema() {
    // Tuple validation is `items: [...]` + `additionalItems` in draft-07; in 2020-12 it is
    // `prefixItems`, and the same keywords mean something else.
    let s = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "definitions": {"pair": {"type": "array", "items": [{"type": "string"}, {"type": "integer"}], "additionalItems": false}},
        "properties": {"pair": {"$ref": "#/definitions/pair"}}
    });
    let v = validator();
    v.validate(&tool(&s), Some(&json!({"pair": ["a", 1]})))
        .unwrap();
    let msg = invalid_message(v.validate(&tool(&s), Some(&json!({"pair": ["a", "b"]}))));
    assert_eq!(msg, r#"argument /pair/1: "b" is not of type "integer""#);
    assert!(
        v.validate(&tool(&s), Some(&json!({"pair": ["a", 1, 2]})))
            .is_err()
    );
}

#[test]
fn draft_2020_12_is_the_default() {
    let s = json!({
        "type": "object",
        "properties": {"pair": {"type": "array", "prefixItems": [{"type": "string"}], "items": false}}
    });
    let v = validator();
    v.validate(&tool(&s), Some(&json!({"pair": ["a"]})))
        .unwrap();
    assert!(
        v.validate(&tool(&s), Some(&json!({"pair": ["a", "b"]})))
            .is_err()
    );
}

#[test]
fn unknown_dollar_schema_is_refused_not_fetched() {
    let s = json!({"$schema": "https://schemas.example/custom-meta", "type": "object"});
    let err = validator()
        .validate(&tool(&s), Some(&json!({})))
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("is not a draft this gateway supports"),
        "{msg}"
    );
    assert!(msg.contains("https://schemas.example/custom-meta"), "{msg}");
}

#[test]
fn a_schema_that_does_not_compile_fails_closed_and_is_cached() {
    let bad = json!({"type": "object", "properties": {"limit": {"type": "bogus"}}});
    let v = validator();
    for _ in 0..3 {
        let err = v.validate(&tool(&bad), Some(&json!({}))).unwrap_err();
        assert_eq!(err.reason(), "tool_schema_invalid");
        let msg = err.to_string();
        assert!(msg.contains("connector crm"), "{msg}");
        assert!(msg.contains("/properties/limit/type"), "{msg}");
        assert!(
            msg.ends_with("the call is refused until the connector fixes its schema"),
            "{msg}"
        );
    }
    assert_eq!(v.cached_schemas(), 1);
    assert_eq!(
        v.prepare("crm", "search_customers", &bad)
            .unwrap_err()
            .reason(),
        "tool_schema_invalid"
    );
    v.prepare("crm", "search_customers", &search_schema())
        .unwrap();
    assert_eq!(v.cached_schemas(), 2);
}

#[test]
fn a_broken_override_fails_closed_naming_the_config_key() {
    let s = json!({"type": "object"});
    let over = json!({"minimum": "ten"});
    let schemas = ToolSchemas {
        override_schema: Some(&over),
        ..tool(&s)
    };
    let err = validator()
        .validate(&schemas, Some(&json!({})))
        .unwrap_err();
    assert_eq!(err.reason(), "override_schema_invalid");
    assert!(
        err.to_string()
            .contains("connectors.crm.inspect.tools.search_customers.input_schema"),
        "{err}"
    );
}

#[test]
fn a_missing_tool_schema_fails_closed() {
    let schemas = ToolSchemas {
        connector: "crm",
        tool: "t",
        input_schema: None,
        override_schema: None,
    };
    let err = validator()
        .validate(&schemas, Some(&json!({})))
        .unwrap_err();
    assert_eq!(err.reason(), "tool_schema_missing");
}

#[test]
fn a_pattern_that_exhausts_its_budget_refuses_the_value() {
    // A back-reference forces the backtracking engine; this input makes it explode.
    let s = json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "^(a|a)*\\1b$"}}});
    let args = json!({"a": format!("{}c", "a".repeat(30))});
    let err = validator().validate(&tool(&s), Some(&args)).unwrap_err();
    assert_eq!(err.reason(), "arguments_invalid");
    assert_eq!(
        err.to_string(),
        "argument /a: the value could not be checked against the schema's pattern within the \
         matching budget, so it is refused; send a shorter or simpler value"
    );
    // The same pattern still decides ordinary values.
    validator()
        .validate(&tool(&s), Some(&json!({"a": "ab"})))
        .unwrap_err();
    validator()
        .validate(&tool(&s), Some(&json!({"a": "aab"})))
        .unwrap();
}

#[test]
fn one_validator_serves_many_threads() {
    let v = Arc::new(validator());
    let s = Arc::new(search_schema());
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (v, s) = (v.clone(), s.clone());
            std::thread::spawn(move || {
                for n in 1..50 {
                    let limit = if i % 2 == 0 { n } else { n + 100 };
                    let r = v.validate(&tool(&s), Some(&json!({"query": "q", "limit": limit})));
                    assert_eq!(r.is_ok(), limit <= 100);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(v.cached_schemas(), 1);
}
