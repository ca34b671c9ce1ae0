//! The roles of Portcullis (AZ-2), with separated duties. The baseline policy
//! (`policies/baseline.cedar`) grants each what its duty needs for MCP calls; the admin API grants
//! the rest. A user holds any number of roles; each is the Cedar entity `Portcullis::Role::"<id>"`.

use serde::Serialize;

/// One role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RoleInfo {
    /// Its id, as in policies and tokens.
    pub id: &'static str,
    /// Its name, fit to show.
    pub title: &'static str,
    /// What the holder does, and what it may do through the gateway under the baseline.
    pub description: &'static str,
}

/// Security admin.
pub const SECURITY_ADMIN: &str = "security_admin";
/// IT admin.
pub const IT_ADMIN: &str = "it_admin";
/// Approver (department head).
pub const APPROVER: &str = "approver";
/// Developer.
pub const DEVELOPER: &str = "developer";
/// Auditor.
pub const AUDITOR: &str = "auditor";
/// End user.
pub const END_USER: &str = "end_user";
/// Data steward: the only role that may run bulk-extraction tools.
pub const DATA_STEWARD: &str = "data_steward";

/// Every role, the six of separated duty first.
pub const ROLES: &[RoleInfo] = &[
    RoleInfo {
        id: SECURITY_ADMIN,
        title: "Security admin",
        description: "Writes policy, detection rules and alerts; reviews audit evidence. Through the gateway: \
                      listings, resources, prompts and read-only tools, to investigate; no writes.",
    },
    RoleInfo {
        id: IT_ADMIN,
        title: "IT admin",
        description: "Registers connectors, credentials and scopes and runs the gateway. Through the gateway: \
                      listings only; it does not use the connectors' data.",
    },
    RoleInfo {
        id: APPROVER,
        title: "Approver",
        description: "A department head who approves use cases and data sources. Through the gateway: \
                      listings, resources, prompts and read-only tools, to judge what is asked.",
    },
    RoleInfo {
        id: DEVELOPER,
        title: "Developer",
        description: "Puts connectors behind the gateway and tests them. Through the gateway: what an end \
                      user may do, on the connectors shared with it.",
    },
    RoleInfo {
        id: AUDITOR,
        title: "Auditor",
        description: "Reads evidence and reports, changes nothing. Through the gateway: listings, resources, \
                      prompts and read-only tools.",
    },
    RoleInfo {
        id: END_USER,
        title: "End user",
        description: "Uses the assistant's tools. Through the gateway: tools, resources and prompts of the \
                      connectors shared with it, within its token's scopes; destructive tools after a \
                      human's confirmation.",
    },
    RoleInfo {
        id: DATA_STEWARD,
        title: "Data steward",
        description: "Accountable for a data set. Through the gateway: bulk-extraction tools (such as \
                      `export_customers`), which no other role may call; held beside end_user.",
    },
];

/// The role with this id.
pub fn role(id: &str) -> Option<&'static RoleInfo> {
    ROLES.iter().find(|r| r.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_is_named_in_the_baseline() {
        for r in ROLES {
            assert!(
                crate::BASELINE_TEXT.contains(&format!("Role::\"{}\"", r.id)),
                "{} is not used by the baseline",
                r.id
            );
        }
        assert!(role("auditor").is_some());
        assert!(role("root").is_none());
    }
}
