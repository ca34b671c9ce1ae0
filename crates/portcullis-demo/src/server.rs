//! The `crm` MCP server: five tools, one resource, one prompt, over a per-instance copy of the
//! demo table.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{
    CallToolResult, ContentBlock, GetPromptRequestParams, GetPromptResponse, GetPromptResult,
    Implementation, ListPromptsResult, ListResourcesResult, PaginatedRequestParams, Prompt,
    PromptArgument, PromptMessage, ReadResourceRequestParams, ReadResourceResponse,
    ReadResourceResult, Resource, ResourceContents, Role, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, Json, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};

use crate::data::{Customer, customers};
use crate::web::demo_page;

/// The name the server gives in `initialize` (`serverInfo.name`).
pub const SERVER_NAME: &str = "portcullis-demo-crm";
/// The URI of the customer-record JSON Schema resource.
pub const SCHEMA_URI: &str = "crm://schema";
/// The name of the prompt that summarises one customer.
pub const SUMMARIZE_PROMPT: &str = "summarize_customer";
/// Largest `limit` `search_customers` accepts.
pub const MAX_SEARCH_LIMIT: i64 = 50;
/// `limit` of `search_customers` when the caller gives none.
pub const DEFAULT_SEARCH_LIMIT: i64 = 10;

/// The customer table one server instance works on. Deleting from it affects only the instances
/// that share it (see [`CrmServer::with_table`]), never the pristine [`customers`] table.
#[derive(Debug, Clone)]
pub struct Table(Arc<Mutex<BTreeMap<String, Customer>>>);

impl Table {
    /// A fresh copy of the demo table.
    pub fn fresh() -> Self {
        let map = customers()
            .iter()
            .map(|c| (c.id.clone(), c.clone()))
            .collect();
        Self(Arc::new(Mutex::new(map)))
    }

    fn with<R>(&self, f: impl FnOnce(&mut BTreeMap<String, Customer>) -> R) -> R {
        // A panic while holding the lock cannot leave the map half-updated (every mutation is a
        // single insert or remove), so a poisoned lock is safe to keep using.
        let mut guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut guard)
    }

    /// How many customers are left.
    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    /// Whether every customer has been deleted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for Table {
    fn default() -> Self {
        Self::fresh()
    }
}

/// Arguments of `search_customers`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchArgs {
    /// Text to look for, case-insensitively, in the customer's name, e-mail, company and city.
    pub query: String,
    /// Most records to return, 1 to 50; 10 when absent.
    #[schemars(range(min = 1, max = 50), extend("default" = 10))]
    pub limit: Option<i64>,
}

/// Arguments of `get_customer` and `delete_customer`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct IdArgs {
    /// Customer id, e.g. `cus_0001`.
    pub id: String,
}

/// Arguments of `fetch_url`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct FetchArgs {
    /// Absolute URL of the page to fetch.
    pub url: String,
}

/// Structured result of `search_customers` and `export_customers`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CustomerList {
    /// The matching customers, in id order.
    pub customers: Vec<Customer>,
}

/// Structured result of `delete_customer`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Deleted {
    /// The record as it was before deletion.
    pub deleted: Customer,
}

/// The demo CRM server. Each instance owns (or shares, through [`CrmServer::with_table`]) one
/// [`Table`]; cloning an instance shares its table.
#[derive(Debug, Clone)]
pub struct CrmServer {
    table: Table,
    tool_router: ToolRouter<Self>,
}

impl Default for CrmServer {
    fn default() -> Self {
        Self::new()
    }
}

fn unknown_id(id: &str) -> String {
    format!(
        "no customer with id '{id}': ids look like cus_0001; use search_customers to find one \
         (it may also have been deleted)"
    )
}

#[tool_router]
impl CrmServer {
    /// A server over a fresh copy of the demo table.
    pub fn new() -> Self {
        Self::with_table(Table::fresh())
    }

    /// A server over `table`, which other servers may share (the HTTP service gives every
    /// session the same table, so a deletion is visible across sessions of one listener).
    pub fn with_table(table: Table) -> Self {
        Self {
            table,
            tool_router: Self::tool_router(),
        }
    }

    /// The table this server works on.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Search customers by name, e-mail, company or city (case-insensitive substring match).
    #[tool(
        title = "Search customers",
        annotations(
            title = "Search customers",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn search_customers(
        &self,
        Parameters(SearchArgs { query, limit }): Parameters<SearchArgs>,
    ) -> Result<Json<CustomerList>, String> {
        let limit = limit.unwrap_or(DEFAULT_SEARCH_LIMIT);
        if !(1..=MAX_SEARCH_LIMIT).contains(&limit) {
            return Err(format!(
                "limit must be between 1 and {MAX_SEARCH_LIMIT}, got {limit}; leave it out for {DEFAULT_SEARCH_LIMIT}"
            ));
        }
        let needle = query.trim().to_lowercase();
        if needle.is_empty() {
            return Err(
                "query is empty: give part of a name, e-mail address, company or city".to_owned(),
            );
        }
        let found = self.table.with(|m| {
            m.values()
                .filter(|c| {
                    [&c.full_name, &c.email, &c.company, &c.address.city]
                        .iter()
                        .any(|field| field.to_lowercase().contains(&needle))
                })
                .take(limit as usize)
                .cloned()
                .collect()
        });
        Ok(Json(CustomerList { customers: found }))
    }

    /// Get one customer record by id.
    #[tool(
        title = "Get customer",
        annotations(
            title = "Get customer",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn get_customer(
        &self,
        Parameters(IdArgs { id }): Parameters<IdArgs>,
    ) -> Result<Json<Customer>, String> {
        self.table
            .with(|m| m.get(id.trim()).cloned())
            .map(Json)
            .ok_or_else(|| unknown_id(&id))
    }

    /// Permanently delete a customer record; returns the record that was deleted.
    #[tool(
        title = "Delete customer",
        annotations(
            title = "Delete customer",
            read_only_hint = false,
            destructive_hint = true,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn delete_customer(
        &self,
        Parameters(IdArgs { id }): Parameters<IdArgs>,
    ) -> Result<Json<Deleted>, String> {
        let removed = self.table.with(|m| m.remove(id.trim()));
        match removed {
            Some(deleted) => {
                tracing::info!(customer = %deleted.id, "demo crm: customer deleted");
                Ok(Json(Deleted { deleted }))
            }
            None => Err(unknown_id(&id)),
        }
    }

    /// Fetch a web page and return its text. (Demo: serves a built-in set of pages, no network.)
    #[tool(
        title = "Fetch URL",
        annotations(
            title = "Fetch URL",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = true
        )
    )]
    fn fetch_url(
        &self,
        Parameters(FetchArgs { url }): Parameters<FetchArgs>,
    ) -> Result<CallToolResult, String> {
        match demo_page(url.trim()) {
            Some(body) => Ok(CallToolResult::success(vec![ContentBlock::text(body)])),
            None => Err(format!(
                "{url} not found in the demo web: this demo serves only its built-in pages \
                 (for example https://docs.example.com/getting-started)"
            )),
        }
    }

    /// Export every customer record in one call.
    #[tool(
        title = "Export all customers",
        annotations(
            title = "Export all customers",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    fn export_customers(&self) -> Json<CustomerList> {
        Json(CustomerList {
            customers: self.table.with(|m| m.values().cloned().collect()),
        })
    }
}

/// The JSON Schema of a [`Customer`] record, as served at [`SCHEMA_URI`].
pub fn customer_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Customer)).expect("a schema serialises")
}

fn schema_resource() -> Resource {
    Resource::new(SCHEMA_URI, "customer-schema")
        .with_title("Customer record schema")
        .with_description("JSON Schema of the customer records the crm tools return.")
        .with_mime_type("application/json")
}

fn summarize_prompt() -> Prompt {
    Prompt::new(
        SUMMARIZE_PROMPT,
        Some("Summarise one customer for an account manager: plan, tenure, and what to follow up."),
        Some(vec![
            PromptArgument::new("id")
                .with_title("Customer id")
                .with_description("The customer's id, e.g. cus_0001.")
                .with_required(true),
        ]),
    )
    .with_title("Summarize customer")
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for CrmServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_prompts()
                .build(),
        )
        .with_server_info(
            Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"))
                .with_title("Portcullis demo CRM"),
        )
        .with_instructions(
            "A demo customer database with synthetic records. Use search_customers or \
             get_customer to look customers up, delete_customer to remove one, export_customers \
             for the whole table, and fetch_url to read pages of a small built-in demo web.",
        )
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        Ok(ListResourcesResult::with_all_items(vec![schema_resource()]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        if request.uri != SCHEMA_URI {
            return Err(ErrorData::resource_not_found(
                format!(
                    "no resource {}: this server has only {SCHEMA_URI}",
                    request.uri
                ),
                None,
            ));
        }
        let text = serde_json::to_string_pretty(&customer_schema())
            .map_err(|e| ErrorData::internal_error(format!("schema: {e}"), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, SCHEMA_URI).with_mime_type("application/json"),
        ])
        .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        Ok(ListPromptsResult::with_all_items(vec![summarize_prompt()]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        if request.name != SUMMARIZE_PROMPT {
            return Err(ErrorData::invalid_params(
                format!(
                    "no prompt named '{}': this server has only {SUMMARIZE_PROMPT}",
                    request.name
                ),
                None,
            ));
        }
        let id = request
            .arguments
            .as_ref()
            .and_then(|args| args.get("id"))
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                ErrorData::invalid_params(
                    format!(
                        "{SUMMARIZE_PROMPT} needs the argument 'id' (a string such as cus_0001)"
                    ),
                    None,
                )
            })?;
        let customer = self
            .table
            .with(|m| m.get(id.trim()).cloned())
            .ok_or_else(|| ErrorData::invalid_params(unknown_id(id), None))?;
        let record = serde_json::to_string_pretty(&customer)
            .map_err(|e| ErrorData::internal_error(format!("record: {e}"), None))?;
        let text = format!(
            "Summarise this customer for their account manager in three short bullet points: \
             who they are and their plan, how long they have been a customer, and anything in \
             the notes that needs a follow-up. Do not repeat payment or identity numbers.\n\n\
             ```json\n{record}\n```"
        );
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(format!("Summary of customer {}", customer.id))
                .into(),
        )
    }
}
