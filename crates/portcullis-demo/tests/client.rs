//! Every tool, the resource and the prompt, through a real rmcp client over the in-process pipe the
//! gateway uses (`serve_in_process`).

use portcullis_demo::rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientConfig, GetPromptRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ResourceContents, Tool,
};
use portcullis_demo::rmcp::service::{RoleClient, RunningService};
use portcullis_demo::rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceError, ServiceExt};
use portcullis_demo::{Customer, CustomerList, customers, demo_pages, serve_in_process};
use serde_json::{Value, json};

type Client = RunningService<RoleClient, ()>;

async fn connect() -> Client {
    ().serve(serve_in_process()).await.expect("client connects")
}

async fn call(client: &Client, tool: &'static str, args: Value) -> CallToolResult {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool).with_arguments(args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: protocol error {e}"))
}

fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

fn is_error(result: &CallToolResult) -> bool {
    result.is_error == Some(true)
}

/// The structured content, checked against the text content (the same JSON, for clients that
/// read only text).
fn structured<T: serde::de::DeserializeOwned>(result: &CallToolResult) -> T {
    assert!(!is_error(result), "tool error: {}", text_of(result));
    let value = result
        .structured_content
        .clone()
        .expect("structuredContent");
    let from_text: Value = serde_json::from_str(&text_of(result)).expect("text content is JSON");
    assert_eq!(from_text, value, "text and structured content disagree");
    serde_json::from_value(value).expect("structuredContent has the declared shape")
}

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no tool {name}"))
}

#[tokio::test]
async fn server_identifies_itself_and_offers_tools_resources_and_prompts() {
    let client = connect().await;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().unwrap().name,
        "portcullis-demo-crm"
    );
    assert!(info.capabilities.tools.is_some());
    assert!(info.capabilities.resources.is_some());
    assert!(info.capabilities.prompts.is_some());
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or_default()
            .contains("export_customers")
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn tools_carry_the_annotations_policy_depends_on() {
    let client = connect().await;
    let tools = client.list_all_tools().await.unwrap();
    assert_eq!(tools.len(), 5);
    // (name, title, readOnly, destructive, idempotent, openWorld)
    let expected = [
        (
            "search_customers",
            "Search customers",
            true,
            false,
            true,
            false,
        ),
        ("get_customer", "Get customer", true, false, true, false),
        (
            "delete_customer",
            "Delete customer",
            false,
            true,
            true,
            false,
        ),
        ("fetch_url", "Fetch URL", true, false, true, true),
        (
            "export_customers",
            "Export all customers",
            true,
            false,
            true,
            false,
        ),
    ];
    for (name, title, read_only, destructive, idempotent, open_world) in expected {
        let t = tool(&tools, name);
        assert_eq!(t.title.as_deref(), Some(title), "{name}");
        assert!(
            t.description.as_deref().is_some_and(|d| !d.is_empty()),
            "{name}"
        );
        let a = t
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has annotations"));
        assert_eq!(a.title.as_deref(), Some(title), "{name}");
        assert_eq!(a.read_only_hint, Some(read_only), "{name} readOnlyHint");
        assert_eq!(
            a.destructive_hint,
            Some(destructive),
            "{name} destructiveHint"
        );
        assert_eq!(a.idempotent_hint, Some(idempotent), "{name} idempotentHint");
        assert_eq!(a.open_world_hint, Some(open_world), "{name} openWorldHint");
    }
    // The wire form uses the spec's camelCase names.
    let wire = serde_json::to_value(tool(&tools, "delete_customer")).unwrap();
    assert_eq!(wire["annotations"]["destructiveHint"], true);
    let wire = serde_json::to_value(tool(&tools, "fetch_url")).unwrap();
    assert_eq!(wire["annotations"]["openWorldHint"], true);
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn input_and_output_schemas_describe_the_arguments_and_results() {
    let client = connect().await;
    let tools = client.list_all_tools().await.unwrap();

    let search = serde_json::to_value(tool(&tools, "search_customers")).unwrap();
    let input = &search["inputSchema"];
    assert_eq!(input["type"], "object");
    assert_eq!(input["required"], json!(["query"]));
    assert_eq!(input["properties"]["query"]["type"], "string");
    let limit = &input["properties"]["limit"];
    assert_eq!(limit["minimum"], 1, "{limit}");
    assert_eq!(limit["maximum"], 50, "{limit}");
    assert_eq!(limit["default"], 10, "{limit}");
    let output = &search["outputSchema"];
    assert_eq!(output["type"], "object");
    assert_eq!(output["required"], json!(["customers"]));

    for name in ["get_customer", "delete_customer"] {
        let t = serde_json::to_value(tool(&tools, name)).unwrap();
        assert_eq!(t["inputSchema"]["required"], json!(["id"]), "{name}");
        assert!(t["outputSchema"].is_object(), "{name}");
    }
    let fetch = serde_json::to_value(tool(&tools, "fetch_url")).unwrap();
    assert_eq!(fetch["inputSchema"]["required"], json!(["url"]));
    assert!(
        fetch.get("outputSchema").is_none(),
        "fetch_url returns plain text"
    );
    let export = serde_json::to_value(tool(&tools, "export_customers")).unwrap();
    assert_eq!(export["inputSchema"]["type"], "object");
    assert!(export["outputSchema"].is_object());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn search_matches_name_email_company_and_city_case_insensitively() {
    let client = connect().await;
    let probe = &customers()[6];
    let cases = [
        probe.full_name.to_uppercase(),
        probe.email.split('@').next().unwrap().to_owned(),
        probe.company.to_lowercase(),
        probe.address.city.to_lowercase(),
    ];
    for query in cases {
        let list: CustomerList = structured(
            &call(
                &client,
                "search_customers",
                json!({"query": query, "limit": 50}),
            )
            .await,
        );
        assert!(!list.customers.is_empty(), "{query}");
        assert!(
            list.customers.iter().any(|c| c.id == probe.id),
            "{query} finds {}",
            probe.id
        );
        let q = query.to_lowercase();
        for c in &list.customers {
            let hay = [&c.full_name, &c.email, &c.company, &c.address.city];
            assert!(
                hay.iter().any(|f| f.to_lowercase().contains(&q)),
                "{query} matched {}",
                c.id
            );
        }
    }
    // Non-ASCII folds too: "MÜLLER" finds the Müllers when there are any.
    let muellers = customers()
        .iter()
        .filter(|c| c.full_name.contains("Müller"))
        .count();
    let list: CustomerList = structured(
        &call(
            &client,
            "search_customers",
            json!({"query": "MÜLLER", "limit": 50}),
        )
        .await,
    );
    assert_eq!(list.customers.len(), muellers.min(50));
    // A query that matches nothing is an empty list, not an error.
    let list: CustomerList =
        structured(&call(&client, "search_customers", json!({"query": "zzz-nobody"})).await);
    assert!(list.customers.is_empty());
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn search_limit_defaults_to_10_and_is_bounded() {
    let client = connect().await;
    // "example" is in every e-mail domain, so every customer matches.
    let list: CustomerList =
        structured(&call(&client, "search_customers", json!({"query": "example"})).await);
    assert_eq!(list.customers.len(), 10);
    assert_eq!(list.customers, customers()[..10]);
    let list: CustomerList = structured(
        &call(
            &client,
            "search_customers",
            json!({"query": "example", "limit": 50}),
        )
        .await,
    );
    assert_eq!(list.customers.len(), 50);
    let list: CustomerList = structured(
        &call(
            &client,
            "search_customers",
            json!({"query": "example", "limit": 1}),
        )
        .await,
    );
    assert_eq!(list.customers.len(), 1);
    for bad in [0, 51, -3, 1000] {
        let r = call(
            &client,
            "search_customers",
            json!({"query": "example", "limit": bad}),
        )
        .await;
        assert!(is_error(&r), "limit {bad} must be refused");
        assert!(text_of(&r).contains("between 1 and 50"), "{}", text_of(&r));
    }
    let r = call(&client, "search_customers", json!({"query": "   "})).await;
    assert!(is_error(&r));
    assert!(text_of(&r).contains("query is empty"));
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn missing_or_mistyped_arguments_are_tool_errors_and_unknown_tools_protocol_errors() {
    let client = connect().await;
    // Argument errors come back as tool errors (isError), so the model can read and correct them.
    for (tool, args) in [
        ("search_customers", json!({})),
        ("search_customers", json!({"query": 7})),
        ("search_customers", json!({"query": "a", "limit": 2.5})),
        ("get_customer", json!({})),
        ("delete_customer", json!({"id": null})),
        ("fetch_url", json!({"url": ["x"]})),
    ] {
        let r = call(&client, tool, args.clone()).await;
        assert!(is_error(&r), "{tool} {args}");
        assert!(
            text_of(&r).contains("failed to deserialize parameters"),
            "{}",
            text_of(&r)
        );
    }
    let err = client
        .call_tool(CallToolRequestParams::new("drop_database"))
        .await
        .expect_err("unknown tool");
    assert!(matches!(err, ServiceError::McpError(_)), "{err}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn get_customer_returns_the_record_or_a_clear_tool_error() {
    let client = connect().await;
    for c in [&customers()[0], &customers()[199]] {
        let got: Customer = structured(&call(&client, "get_customer", json!({"id": c.id})).await);
        assert_eq!(&got, c);
    }
    let r = call(&client, "get_customer", json!({"id": "cus_9999"})).await;
    assert!(is_error(&r));
    let text = text_of(&r);
    assert!(text.contains("no customer with id 'cus_9999'"), "{text}");
    assert!(
        text.contains("search_customers"),
        "the error says what to do: {text}"
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn delete_customer_removes_from_this_instance_only() {
    let a = connect().await;
    let b = connect().await;
    let victim = &customers()[41];

    let deleted: Value = structured(&call(&a, "delete_customer", json!({"id": victim.id})).await);
    assert_eq!(deleted["deleted"], serde_json::to_value(victim).unwrap());

    let r = call(&a, "get_customer", json!({"id": victim.id})).await;
    assert!(is_error(&r), "gone from instance a");
    let again = call(&a, "delete_customer", json!({"id": victim.id})).await;
    assert!(is_error(&again), "a second delete finds nothing");
    let all: CustomerList = structured(&call(&a, "export_customers", json!({})).await);
    assert_eq!(all.customers.len(), customers().len() - 1);
    assert!(all.customers.iter().all(|c| c.id != victim.id));

    // Another instance, and the pristine table, are untouched.
    let still: Customer = structured(&call(&b, "get_customer", json!({"id": victim.id})).await);
    assert_eq!(&still, victim);
    assert!(customers().iter().any(|c| c.id == victim.id));
    a.cancel().await.unwrap();
    b.cancel().await.unwrap();
}

#[tokio::test]
async fn fetch_url_serves_the_demo_web_and_nothing_else() {
    let client = connect().await;
    for (url, body) in demo_pages() {
        let r = call(&client, "fetch_url", json!({"url": url})).await;
        assert!(!is_error(&r), "{url}");
        assert_eq!(text_of(&r), *body, "{url}");
        assert!(r.structured_content.is_none());
    }
    // The injection page arrives with its invisible tag characters intact.
    let r = call(
        &client,
        "fetch_url",
        json!({"url": portcullis_demo::INJECTION_URL}),
    )
    .await;
    assert!(text_of(&r).contains(&portcullis_demo::to_unicode_tags(
        portcullis_demo::HIDDEN_TAG_TEXT
    )));
    for url in [
        "https://example.com/",
        "http://docs.example.com/getting-started",
        "file:///etc/passwd",
    ] {
        let r = call(&client, "fetch_url", json!({"url": url})).await;
        assert!(is_error(&r), "{url}");
        assert!(
            text_of(&r).contains("not found in the demo web"),
            "{}",
            text_of(&r)
        );
    }
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn export_customers_returns_the_whole_table() {
    let client = connect().await;
    let r = call(&client, "export_customers", json!({})).await;
    let all: CustomerList = structured(&r);
    assert_eq!(all.customers, customers());
    // Without arguments at all, too.
    let r = client
        .call_tool(CallToolRequestParams::new("export_customers"))
        .await
        .unwrap();
    assert_eq!(
        structured::<CustomerList>(&r).customers.len(),
        customers().len()
    );
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn schema_resource_describes_the_customer_record() {
    let client = connect().await;
    let resources = client.list_all_resources().await.unwrap();
    assert_eq!(resources.len(), 1);
    assert_eq!(resources[0].uri, "crm://schema");
    assert_eq!(resources[0].mime_type.as_deref(), Some("application/json"));

    let read = client
        .read_resource(ReadResourceRequestParams::new("crm://schema"))
        .await
        .unwrap();
    let [
        ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            ..
        },
    ] = read.contents.as_slice()
    else {
        panic!("one text content: {read:?}")
    };
    assert_eq!(uri, "crm://schema");
    assert_eq!(mime_type.as_deref(), Some("application/json"));
    let schema: Value = serde_json::from_str(text).unwrap();
    assert_eq!(schema["title"], "Customer");
    for field in [
        "id",
        "full_name",
        "email",
        "phone",
        "address",
        "date_of_birth",
        "plan",
        "notes",
    ] {
        assert!(schema["properties"][field].is_object(), "{field}");
        assert!(
            schema["required"]
                .as_array()
                .unwrap()
                .contains(&json!(field)),
            "{field}"
        );
    }
    assert_eq!(schema, portcullis_demo::customer_schema());

    let err = client
        .read_resource(ReadResourceRequestParams::new("crm://nope"))
        .await
        .expect_err("unknown resource");
    assert!(err.to_string().contains("crm://nope"), "{err}");
    client.cancel().await.unwrap();
}

#[tokio::test]
async fn summarize_prompt_embeds_the_record() {
    let client = connect().await;
    let prompts = client.list_all_prompts().await.unwrap();
    assert_eq!(prompts.len(), 1);
    assert_eq!(prompts[0].name, "summarize_customer");
    let args = prompts[0].arguments.as_ref().unwrap();
    assert_eq!(args.len(), 1);
    assert_eq!(args[0].name, "id");
    assert_eq!(args[0].required, Some(true));

    let c = &customers()[2];
    let Value::Object(arguments) = json!({"id": c.id}) else {
        unreachable!()
    };
    let got = client
        .get_prompt(GetPromptRequestParams::new("summarize_customer").with_arguments(arguments))
        .await
        .unwrap();
    assert_eq!(got.messages.len(), 1);
    let text = serde_json::to_value(&got.messages[0]).unwrap()["content"]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        text.contains(&c.full_name) && text.contains(&c.email),
        "{text}"
    );

    for args in [json!({"id": "cus_0000"}), json!({})] {
        let Value::Object(arguments) = args else {
            unreachable!()
        };
        let err = client
            .get_prompt(GetPromptRequestParams::new("summarize_customer").with_arguments(arguments))
            .await
            .expect_err("bad id");
        assert!(err.to_string().contains("id"), "{err}");
    }
    client.cancel().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_the_pipe_ends_the_server_task() {
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let client = connect().await;
    let _ = call(&client, "get_customer", json!({"id": "cus_0001"})).await;
    assert!(metrics.num_alive_tasks() > before);
    client.cancel().await.unwrap();
    // Cancelling the client drops its end of the pipe; the server sees EOF and its tasks finish.
    // Poll without sleeping: each yield lets the runtime run them to completion.
    for _ in 0..10_000 {
        if metrics.num_alive_tasks() == before {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!(
        "server tasks still alive: {} > {before}",
        metrics.num_alive_tasks()
    );
}

#[tokio::test]
async fn the_2026_discover_lifecycle_works_over_the_pipe_too() {
    let lifecycle = ClientLifecycleMode::Discover {
        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
    };
    let client = ClientConfig::default()
        .serve_with_lifecycle(serve_in_process(), lifecycle)
        .await
        .expect("discover");
    assert_eq!(
        client.peer_info().unwrap().protocol_version,
        ProtocolVersion::V_2026_07_28
    );
    let Value::Object(args) = json!({"id": "cus_0004"}) else {
        unreachable!()
    };
    let r = client
        .call_tool(CallToolRequestParams::new("get_customer").with_arguments(args))
        .await
        .unwrap();
    let got: Customer = structured(&r);
    assert_eq!(&got, &customers()[3]);
    client.cancel().await.unwrap();
}
