//! Least privilege for Portcullis (AZ-1 to AZ-6, HC-1): policies in the Cedar language, checked
//! against the schema Portcullis publishes ([`schema::SCHEMA_TEXT`]), deciding every call.
//!
//! ```
//! use portcullis_policy::*;
//! let engine = PolicyEngine::baseline();
//! let crm = ConnectorFacts::new("crm", "alice");
//! let tool = ToolFacts { read_only: true, ..ToolFacts::named("search_customers") };
//! let resource = PreparedResource::new(ResourceFacts::tool(crm, tool)).unwrap(); // once per tool
//! let decision = engine.authorize(&AuthzRequest {
//!     principal: PrincipalFacts::user("bob", &["end_user"]),
//!     action: Action::CallTool,
//!     resource,
//!     context: ContextFacts {
//!         scopes: expand_scopes(&["crm:read".into()]),
//!         source_ip: "127.0.0.1".parse().unwrap(),
//!         time: TimeFacts::at(chrono::DateTime::UNIX_EPOCH),
//!         risk: 0,
//!         confirmed: false,
//!         token_environment: Environment::Prod,
//!     },
//! });
//! assert_eq!(decision.verdict, Verdict::Allow);
//! ```

#![warn(missing_docs)]

pub mod engine;
pub mod entities;
pub mod error;
pub mod facts;
mod index;
pub mod load;
mod plan;
pub mod roles;
pub mod schema;
pub mod testcases;

pub use engine::{
    AuthzDecision, AuthzRequest, DEFAULT_DENY, Outcome, PolicyEngine, Reason, Verdict,
};
pub use entities::PreparedResource;
pub use error::{PolicyDiagnostic, PolicyError};
pub use facts::{
    Action, Classification, ConnectorFacts, ContextFacts, Environment, PrincipalFacts,
    ResourceFacts, ResourceItem, ResourceKind, Sharing, SharingMode, TimeFacts, ToolFacts,
    expand_scopes,
};
pub use load::{BASELINE_NAME, BASELINE_TEXT, PolicyInfo, PolicySource};
